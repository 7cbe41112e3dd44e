"""SA-CASSCF(9,7) over the 21 sextets of Dy(III) 4f^9, with spin-orbit state interaction and
magnetic properties, for [Dy(H2O)5L2] complexes at three fidelity tiers.

Method (see docs/casscf.md)
---------------------------
* Scalar relativity sfx2c1e; all-electron segmented ``x2c-SVPall`` basis by default (per element
  configurable, :mod:`smmflow.abinitio.basis`).
* Ms = 5/2 sector, CAS(9,7) with nelecas = (7, 2): exactly 21 determinants = the 21 sextets
  (6H, 6F, 6P); all 21 are state-averaged with equal weights.
* The 7 active orbitals are chosen by Dy 4f Mulliken population, never by orbital energy.
* Start: the free Dy3+ SA-CASSCF orbitals (computed once per basis and cached), combined for the
  embedded/full tiers with closed-shell orbitals of the ligand shell (one RHF per fragment: the
  waters, each ligand piece) computed in the field of a +3 point charge at Dy ("ion + fragments" start).
* Tiers: ``pointcharge`` (Dy3+ quantum, every other atom a point charge with its xTB charge),
  ``embedded`` (Dy + the five waters + each ligand's donor atom and its bonded neighbours quantum,
  cut bonds capped with H link atoms, the rest point charges; charges of atoms bonded to the quantum
  region are zeroed), ``full`` (the whole complex quantum).
* Spin-orbit: :mod:`smmflow.abinitio.spin_orbit` (BP one-electron + AMFI two-electron on the bare Dy);
  magnetism: :mod:`smmflow.abinitio.magnetism`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from smmflow.abinitio import magnetism, spin_orbit
from smmflow.abinitio.free_ion import FreeIonReference, free_ion_reference
from smmflow.abinitio.molecule import build_molecule, dy_f_population, make_scf, outer_atoms, point_charge_potential
from smmflow.abinitio.regions import partition
from smmflow.abinitio.settings import NCAS, NELECAS, SPIN_S, CasscfSettings
from smmflow.abinitio.solvers import SaCasscfOutcome, run_average_casscf, run_sa_casscf
from smmflow.abinitio.start_orbitals import ion_plus_fragments_start
from smmflow.constants import HARTREE_TO_CM1, N_KRAMERS_DOUBLETS_GROUND_MULTIPLET
from smmflow.geometry.contract import N_FRAME_ATOMS, donor_indices
from smmflow.native_blas import select_pyscf_blas_kernel

# ---------------------------------------------------------------------------------------------
# The whole calculation
# ---------------------------------------------------------------------------------------------

_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(CasscfSettings))


class DyCasscfSO:
    """SA-CASSCF(9,7)+SO Kramers doublets and magnetic properties of one complex (``ase.Atoms``
    following the geometry contract), configured by attributes and run by :meth:`kernel`, in
    PySCF's idiom::

        mc = DyCasscfSO(atoms, tier="embedded")  # or DyCasscfSO(atoms, settings, conv_tol=1e-10)
        mc.soc_scale = 0.95
        res = mc.kernel()  # the JSON-ready result dict

    The attributes are the fields of :class:`CasscfSettings` (tier, basis, auxbasis, conv_tol, ...;
    initialised from ``settings`` then ``overrides``); :attr:`settings` gives them back as a
    (validated) :class:`CasscfSettings`. After :meth:`kernel`: ``result`` (the dict it returns),
    ``region``, ``mol``, ``_scf`` (the mean-field object the solver used) and ``outcome``
    (:class:`SaCasscfOutcome`).
    """

    def __init__(self, atoms, settings: CasscfSettings | None = None, **overrides: Any) -> None:
        unknown = set(overrides) - set(_SETTING_NAMES)
        if unknown:
            raise TypeError(f"unknown CASSCF settings: {', '.join(sorted(unknown))}")
        base = settings if settings is not None else CasscfSettings()
        self.atoms = atoms
        for name in _SETTING_NAMES:
            setattr(self, name, overrides.get(name, getattr(base, name)))
        self.check_sanity()
        self.result: dict[str, Any] | None = None
        self.region = self.mol = self._scf = self.outcome = None

    def check_sanity(self) -> DyCasscfSO:
        """Validate the attributes (unknown tier or orbital_optimiser: ``ValueError``)."""
        _ = self.settings
        return self

    @property
    def settings(self) -> CasscfSettings:
        """The current attributes as a :class:`CasscfSettings` (raises ``ValueError`` if invalid)."""
        return CasscfSettings(**{name: getattr(self, name) for name in _SETTING_NAMES})

    def kernel(self) -> dict[str, Any]:
        """Run the calculation; returns (and keeps in ``self.result``) the JSON-ready dict (see the
        module docstring; ``stages.casscf.label_row`` reads it). Raises ``ValueError`` on bad input
        and :class:`CasscfFailure` for a physically failed calculation."""
        select_pyscf_blas_kernel()  # before the first pyscf import of the process
        settings = self.settings
        atoms = self.atoms
        t0 = time.perf_counter()
        self.region = region = partition(atoms, settings.tier, settings.embedded_radius_a, settings.embedded_bond_shells)
        ref = free_ion_reference(settings)
        t_ref = time.perf_counter() - t0
        t_start = time.perf_counter()
        region.outer = outer_atoms(region.coords, settings)
        self.mol = mol = build_molecule(region.symbols, region.coords, region.charge, 5, settings, outer=region.outer)
        v_pc = point_charge_potential(mol, region.mm_coords, region.mm_charges)
        single_atom = mol.natm == 1
        use_df = settings.density_fit and not single_atom
        self._scf = mf = make_scf(mol, v_pc, settings, use_df=use_df, eri=ref.dy_eri() if single_atom else None)
        with_df = getattr(mf, "with_df", None) if settings.start_shared_df else None
        mo0, ncore, start_info = ion_plus_fragments_start(mol, ref, region, settings, with_df=with_df)
        t1 = time.perf_counter()
        solve = run_average_casscf if use_df and settings.orbital_optimiser == "average" else run_sa_casscf
        self.outcome = out = solve(mf, mo0, ncore, settings, frozen=start_info.get("n_frozen", 0))
        t_casscf = time.perf_counter() - t1
        res = spin_orbit_properties(mol, out, ref, settings, atoms)
        t_so = time.perf_counter() - t1 - t_casscf
        res.update(
            tier=settings.tier,
            converged=out.converged,
            macro_iterations=out.macro_iterations,  # configuration-average SCF iterations for "average"
            orbital_optimiser=out.solver,
            casscf_history=out.history,
            n_ao=int(mol.nao),
            n_quantum_atoms=int(mol.natm),
            n_point_charges=int(len(region.mm_charges)),
            n_link_atoms=int(region.n_link_atoms),
            start=start_info,
            timings_s={"free_ion_reference": t_ref, "start_orbitals": t1 - t_start, "sa_casscf": t_casscf,
                       "spin_orbit": t_so},
            wall_s=time.perf_counter() - t0,
        )
        status, reason = validate(res, settings)
        res["status"], res["reason"] = status, reason
        self.result = res
        return res


def run_complex(atoms, settings: CasscfSettings | None = None) -> dict[str, Any]:
    """``DyCasscfSO(atoms, settings).kernel()``: the result dict of one complex."""
    return DyCasscfSO(atoms, settings).kernel()


def spin_orbit_properties(mol, out: SaCasscfOutcome, ref: FreeIonReference, settings: CasscfSettings, atoms=None) -> dict[str, Any]:
    """SO state interaction, KD energies, g-tensors, easy axis, transition moments, barrier."""
    c_act = out.mo_coeff[:, out.ncore : out.ncore + NCAS]
    fpop = dy_f_population(mol, c_act)
    nao_dy = ref.amfi.shape[1]
    x = spin_orbit.bp_one_electron_ao(mol)
    x[:, :nao_dy, :nao_dy] += ref.amfi
    h_ao = spin_orbit.soc_operator(x, settings.soc_scale)
    h_act = np.einsum("pi,kpq,qj->kij", c_act, h_ao, c_act)
    origin = mol.atom_coord(0)
    l_act = np.einsum("pi,kpq,qj->kij", c_act, magnetism.orbital_angular_momentum_ao(mol, origin), c_act)
    zeta = spin_orbit.zeta_from_active(h_act, l_act)
    gamma, rhoz = spin_orbit.transition_densities(out.ci, NCAS, NELECAS)
    e_sf = out.e_states
    w, v = spin_orbit.diagonalise(spin_orbit.so_hamiltonian(e_sf, rhoz, h_act, SPIN_S))
    w_cm = w * HARTREE_TO_CM1
    n_kd = N_KRAMERS_DOUBLETS_GROUND_MULTIPLET
    kd = w_cm[0 : 2 * n_kd : 2]
    kramers = float(np.max(np.abs(w_cm[1 : 2 * n_kd : 2] - w_cm[0 : 2 * n_kd : 2])))
    mu = magnetism.moment_operators(gamma, l_act, SPIN_S)
    mu_kd = magnetism.kd_moments(mu, v, n_kd)
    g, axes = magnetism.kd_g_tensors(mu_kd)
    easy = axes[0][:, 2]
    tm = magnetism.transition_moment_matrix(mu_kd, easy)
    ueff, ueff_kd = magnetism.blocking_barrier(kd, tm)
    angle = None
    if atoms is not None and len(atoms) > N_FRAME_ATOMS:
        try:
            d1, d2 = donor_indices(atoms)
            p = atoms.positions
            u1 = (p[d1] - p[0]) / np.linalg.norm(p[d1] - p[0])
            u2 = (p[d2] - p[0]) / np.linalg.norm(p[d2] - p[0])
            angle = magnetism.axis_angle_deg(easy, u1 - u2)
        except (ValueError, IndexError):
            angle = None
    return {
        "kd_energies_cm1": kd.tolist(),
        "g_principal": g.tolist(),
        "g_axes": [a.tolist() for a in axes],
        "easy_axis": easy.tolist(),
        "easy_axis_angle_deg": angle,
        "ueff_cm1": ueff,
        "ueff_kd": int(ueff_kd) + 1,
        "transition_moments_mub": tm.tolist(),
        "so_energies_cm1": w_cm.tolist(),
        "sf_energies_cm1": ((e_sf - e_sf.min()) * HARTREE_TO_CM1).tolist(),
        "zeta_4f_cm1": zeta * HARTREE_TO_CM1,
        "active_f_population": fpop.tolist(),
        "kramers_splitting_max_cm1": kramers,
    }


def validate(res: dict[str, Any], settings: CasscfSettings) -> tuple[str, str]:
    """Status ``ok``/``failed`` and the reasons (non-convergence, broken Kramers pairs, non-4f actives)."""
    reasons = []
    if not res.get("converged", False):
        reasons.append("SA-CASSCF not converged")
    if res["kramers_splitting_max_cm1"] > settings.kramers_tol_cm1:
        reasons.append(f"broken Kramers pairs ({res['kramers_splitting_max_cm1']:.3g} cm-1)")
    fmin = min(res["active_f_population"])
    if fmin < settings.f_population_min:
        reasons.append(f"active orbital not 4f (min Dy-f population {fmin:.2f})")
    so = res["so_energies_cm1"]
    if len(so) > 16 and so[16] - so[15] < 1000.0:
        reasons.append("no 6H15/2-6H13/2 gap: ground multiplet is not J=15/2")
    if res["zeta_4f_cm1"] <= 0:
        reasons.append("negative zeta_4f (SOC sign)")
    return ("failed", "; ".join(reasons)) if reasons else ("ok", "")


def failed_result(tier: str, reason: str, wall_s: float = 0.0) -> dict[str, Any]:
    """The JSON written for a calculation that failed for a physical/input reason."""
    return {"tier": tier, "status": "failed", "reason": reason, "converged": False, "wall_s": wall_s,
            "kd_energies_cm1": None, "g_principal": None}
