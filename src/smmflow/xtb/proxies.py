"""GFN2-xTB proxy labels: free-ligand electronic descriptors and relaxed-complex structure.

For one ligand row (contract :data:`smmflow.tables.LIGANDS_COLUMNS`) :func:`proxy_row` returns one
row of :data:`smmflow.tables.PROXY_COLUMNS`:

free ligand (:data:`~smmflow.tables.XTB_LIGAND_COLUMNS`)
    GFN2-xTB single point at the lowest-energy MMFF94 conformer (the same conformer set the
    complex builder uses): donor-atom charge (GFN2 Mulliken charge), summed charge of the donor's
    bonded neighbours, |dipole| with the origin at the centre of mass (origin-independent for
    neutral ligands, the convention for anions), HOMO/LUMO/gap, and the donor's summed Wiberg-Mayer
    bond orders (its valence in use: low for anionic donors, ~3 for a nitrile N).
complex (:data:`~smmflow.tables.XTB_COMPLEX_COLUMNS`)
    [Dy(H2O)5L2] built by :func:`smmflow.geometry.builder.build_complex` and relaxed with
    :func:`smmflow.xtb.relax.relax_complex` (waters frozen): both Dy-donor distances, L-Dy-L angle, RMS
    deviation from an ideal D5h bipyramid, GFN2 charge on Dy, mean GFN2 charge of the two donors,
    number of GFN2 evaluations; the relaxed complex as extended XYZ.

Binding mode (``binding_check``, off by default: see docs/geometry.md for what it costs): a relaxed
complex must bind each ligand end-on through its donor alone
(:func:`smmflow.geometry.binding.binding_problems`: no other ligand atom touching Dy, Dy-donor-X
angles >= 100 deg, both donors bound, the waters in place). When the relaxation from the builder's
best start ends otherwise, the builder's next start (the next-best conformer, then the best one
turned about the Dy-donor axis) is relaxed, up to ``binding_retries`` more starts; the first clean
one is kept (``xtb_opt_steps`` counts the GFN2 evaluations of all of
them).

Chemistry failures (unparsable SMILES, no embedding, SCC failure, a ligand that leaves Dy or ends
up bound through another of its atoms on every start tried, a relaxation that does not converge,
the per-ligand wall-time cap ``max_wall_s_per_ligand``, checked before every GFN2 SCC) give a
``status='failed'`` row with a ``reason``; :func:`proxy_row` never raises for them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from smmflow import tables as T
from smmflow.chem.conformers import LigandError, ligand_class_of, ligand_conformers
from smmflow.constants import complex_charge
from smmflow.geometry.binding import BindingCriteria, binding_problems
from smmflow.geometry.builder import EXTRA_START_TURNS_DEG, build_complex
from smmflow.geometry.contract import donor_indices, to_extxyz
from smmflow.geometry.descriptors import closest_non_donor_contacts, structural_descriptors
from smmflow.xtb.engine import XtbError, XtbTimeout, gfn2_singlepoint
from smmflow.xtb.relax import relax_complex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxySettings:
    """Knobs of the proxy stage (config block ``proxies``; defaults = config/config.yaml)."""

    n_conformers: int = 8  # RDKit ETKDG conformers tried for the free ligand and the complex
    n_rotations: int = 12  # rotations about the Dy-donor axis scanned by the builder
    seed: int = 0
    relax_mode: str = "rigid"  # axial | rigid | flexible | rigid+flexible  (smmflow.xtb)
    waters: str = "fixed"  # fixed | rotate (each water turns about its fixed O)
    fmax_ev_a: float = 0.05
    max_steps: int = 200
    maxstep_a: float = 0.2  # optimiser step cap per atom/body, A
    xtb_accuracy: float = 1.0
    xtb_max_iter: int = 100  # SCC iterations before the EEQ/damped retry
    max_dy_donor_a: float = 3.0  # a relaxed Dy-donor distance above this = ligand left: failed
    # no new GFN2 SCC starts after this many seconds (row failed); None: no cap. A wall-clock cap makes
    # the table depend on machine load, so the workflow leaves it off (max_steps bounds the work)
    max_wall_s_per_ligand: float | None = None
    #: check the binding mode of every relaxed complex (end-on, donor only), retry other starts, fail
    #: the row when none binds cleanly; off: only a ligand that left Dy or bound through a closer atom fails
    binding_check: bool = False
    #: more builder starts (next-best conformers) tried when a relaxation ends in a wrong binding mode
    binding_retries: int = 3
    #: thresholds of the binding-mode check (:class:`BindingCriteria` fields; missing ones: its defaults)
    binding: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "ProxySettings":
        """Build from a config mapping; unknown keys are ignored (the JSON schema rejects them)."""
        cfg = dict(cfg or {})
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in cfg.items() if k in names})


def _com(symbols: tuple[str, ...], pos: np.ndarray) -> np.ndarray:
    from ase.data import atomic_masses, atomic_numbers

    m = np.array([atomic_masses[atomic_numbers[s]] for s in symbols])
    return (m[:, None] * pos).sum(axis=0) / m.sum()


def free_ligand_descriptors(symbols: tuple[str, ...], positions_a: np.ndarray, charge: int,
                            neighbors_of_donor: tuple[int, ...], *, accuracy: float = 1.0,
                            max_iter: int = 100) -> dict[str, float]:
    """GFN2-xTB descriptors of a free ligand (atom 0 = donor); raises :class:`XtbError`."""
    from ase.data import atomic_numbers

    numbers = np.array([atomic_numbers[s] for s in symbols])
    pos = positions_a - _com(symbols, positions_a)  # dipole about the centre of mass
    p = gfn2_singlepoint(numbers, pos, charge, accuracy=accuracy, max_iter=max_iter)
    homo, lumo = p.frontier_orbitals_ev()
    q = p.charges
    bo = p.bond_orders
    return {
        "xtb_donor_charge": float(q[0]),
        "xtb_donor_neighbor_charge_sum": float(sum(q[j] for j in neighbors_of_donor)),
        "xtb_dipole_debye": p.dipole_debye,
        "xtb_homo_ev": homo,
        "xtb_lumo_ev": lumo,
        "xtb_gap_ev": lumo - homo,
        "xtb_donor_bond_order_sum": float(bo[0].sum() - bo[0, 0]) if bo.size else math.nan,
    }


def _empty_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {c: math.nan for c in T.PROXY_COLUMNS}
    out[T.LIGAND_ID] = str(row.get(T.LIGAND_ID, ""))
    out["smiles"] = str(row.get("smiles", ""))
    out["ligand_class"] = str(row.get("ligand_class", ""))
    out["complex_charge"] = row.get("complex_charge", math.nan)
    out["complex_xyz"] = ""
    out["status"] = T.STATUS_FAILED
    out["reason"] = ""
    return out


def _binding_failure(relaxed, criteria: BindingCriteria, full_check: bool = True) -> str:
    """Why a relaxed complex does not bind its ligands end-on through the donors ("" when it does).
    Without ``full_check`` only a ligand that left Dy or bound through a closer atom counts."""
    r1, r2 = (float(np.linalg.norm(relaxed.positions[d] - relaxed.positions[0])) for d in donor_indices(relaxed))
    far = max(r1, r2)
    if far > criteria.max_dy_donor_a:
        return f"ligand left Dy during relaxation (Dy-donor {far:.2f} A > {criteria.max_dy_donor_a} A)"
    for (i, r), r_d in zip(closest_non_donor_contacts(relaxed), (r1, r2)):
        if r < r_d:
            el = relaxed.get_chemical_symbols()[i]
            return (f"ligand rebound through another atom during relaxation ({el}{i} at {r:.2f} A "
                    f"from Dy, closer than the donor)")
    problems = binding_problems(relaxed, criteria) if full_check else []
    return f"binding mode: {problems[0]}" if problems else ""


def proxy_row(row: Mapping[str, Any], settings: ProxySettings | None = None) -> dict[str, Any]:
    """Full proxy row (all of :data:`tables.PROXY_COLUMNS`) for one ligand row; never raises for
    a chemistry failure (it returns ``status='failed'`` with a ``reason``)."""
    s = settings or ProxySettings()
    t0 = time.perf_counter()
    out = _empty_row(row)
    try:
        smiles = str(row["smiles"])
        cls = ligand_class_of(smiles)
        if out["ligand_class"] and out["ligand_class"] != cls:
            raise LigandError(f"ligand_class {out['ligand_class']!r} disagrees with the SMILES ({cls})")
        out["ligand_class"] = cls
        lc = ligand_conformers(smiles, n_conformers=s.n_conformers, seed=s.seed)
        q_l = row.get("ligand_charge", lc.formal_charge)
        if q_l is None or (isinstance(q_l, float) and math.isnan(q_l)):
            q_l = lc.formal_charge
        if int(q_l) != lc.formal_charge:
            raise LigandError(f"ligand_charge {q_l} disagrees with the SMILES formal charge {lc.formal_charge}")
        out["complex_charge"] = complex_charge(lc.formal_charge)
        best = int(np.argmin(lc.energies_kcal))
        out.update(free_ligand_descriptors(lc.symbols, lc.conformers[best], lc.formal_charge,
                                           lc.neighbors_of_donor, accuracy=s.xtb_accuracy,
                                           max_iter=s.xtb_max_iter))
        criteria = BindingCriteria.from_mapping(
            {"max_dy_donor_a": s.max_dy_donor_a, **dict(s.binding or {})}
        )
        n_starts = 1
        if s.binding_check:
            n_starts = min(1 + max(0, int(s.binding_retries)), len(lc.conformers) + len(EXTRA_START_TURNS_DEG))
        n_steps, first_reason = 0, ""
        for rank in range(n_starts):
            atoms = build_complex(smiles, ligand_id=out[T.LIGAND_ID], n_rotations=s.n_rotations,
                                  seed=s.seed, conformers=lc, start_rank=rank)
            budget = None
            if s.max_wall_s_per_ligand is not None:
                budget = float(s.max_wall_s_per_ligand) - (time.perf_counter() - t0)
                if budget <= 0:
                    raise XtbTimeout("wall-time cap reached before the complex relaxation")
            relaxed, info = relax_complex(atoms, mode=s.relax_mode, fmax=s.fmax_ev_a, max_steps=s.max_steps,
                                          accuracy=s.xtb_accuracy, max_iter=s.xtb_max_iter, waters=s.waters,
                                          maxstep=s.maxstep_a, max_wall_s=budget)
            n_steps += int(info.n_steps)
            reason = _binding_failure(relaxed, criteria, full_check=s.binding_check)
            if not reason:
                break
            first_reason = first_reason or reason
            log.info("%s: start %d ends in a wrong binding mode (%s)", out["smiles"], rank, reason)
        out.update(structural_descriptors(relaxed))
        q = relaxed.get_initial_charges()
        d1, d2 = donor_indices(relaxed)
        out["xtb_dy_charge"] = float(q[0])
        out["xtb_complex_donor_charge_mean"] = float((q[d1] + q[d2]) / 2.0)
        out["xtb_opt_steps"] = n_steps
        out["complex_xyz"] = to_extxyz(relaxed)
        if reason:
            tried = f"; {n_starts} starts tried" if n_starts > 1 else ""
            out["reason"] = f"{first_reason}{tried}"
        elif not info.converged:
            out["reason"] = (f"relaxation not converged in {s.max_steps} steps "
                             f"(max force {info.max_force_ev_a:.3f} eV/A)")
        else:
            out["status"] = T.STATUS_OK
    except XtbTimeout as exc:
        out["reason"] = f"XtbTimeout: {exc} (max_wall_s_per_ligand={s.max_wall_s_per_ligand} s)"
    except (LigandError, XtbError, KeyError, ValueError) as exc:
        out["reason"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a batch must survive any single-ligand failure
        log.exception("unexpected failure for %s", out["smiles"])
        out["reason"] = f"unexpected {type(exc).__name__}: {exc}"
    out["wall_s"] = time.perf_counter() - t0
    return out


def proxy_table(ligands: pd.DataFrame, settings: ProxySettings | None = None) -> pd.DataFrame:
    """Proxy rows for every ligand row, in input order, with the :data:`tables.PROXY_COLUMNS`."""
    df = T.table_of_rows(ligands, lambda row: proxy_row(row, settings), T.PROXY_COLUMNS, log)
    df["xtb_opt_steps"] = df["xtb_opt_steps"].astype("float")
    return df


def shard(ligands: pd.DataFrame, k: int, n_shards: int) -> pd.DataFrame:
    """Rows i (after sorting by ligand_id) with i % n_shards == k: a DAG fixed by n_shards alone."""
    if n_shards < 1 or not 0 <= k < n_shards:
        raise ValueError(f"shard {k} out of range for n_shards={n_shards}")
    srt = ligands.sort_values(T.LIGAND_ID, kind="mergesort").reset_index(drop=True)
    return srt.iloc[k::n_shards].reset_index(drop=True)


def aggregate(shards: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate shard tables, sorted by ligand_id; checks the contract and id uniqueness."""
    frames = [df for df in shards if len(df)]
    if not frames:
        return T.empty_frame(T.PROXY_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    T.check_columns(df, T.PROXY_COLUMNS, "proxies")
    dup = df[T.LIGAND_ID].duplicated()
    if dup.any():
        raise ValueError(f"duplicate ligand_id across shards: {df.loc[dup, T.LIGAND_ID].tolist()[:5]}")
    return df.sort_values(T.LIGAND_ID, kind="mergesort").reset_index(drop=True)[list(T.PROXY_COLUMNS)]


def settings_dict(settings: ProxySettings) -> dict[str, Any]:
    return asdict(settings)
