"""DFT relaxation of a whole [Dy(H2O)5L2] complex in PySCF (the geometries that get CASSCF labels).

Method (the published labels were computed on BP86 geometries):
    * Dy(III) with its 4f shell in the core: a large-core ECP basis from basis-set-exchange
      (default ``lcecp-1-SVP``: 55 core electrons = [Kr]4d10 4f9, so Dy keeps 11 valence electrons
      5s2 5p6 5d1 6s2 and the complex is closed-shell, as in GFN2-xTB). The core count is checked
      against the BSE metadata (:func:`dy_large_core_basis`).
    * def2-SVP on every other atom; BP86 (``bp86`` = PySCF's alias of ``b88,p86``); density fitting
      of the Coulomb term (def2-universal-jfit on the light atoms, an even-tempered auxiliary set on
      Dy: PySCF's default auxiliary basis has no entry for the ECP basis); D3(BJ) dispersion through
      ``pyscf-dispersion`` when installed (``mf.disp``).
    * geomeTRIC (``pyscf.geomopt.geometric_solver``) in its internal coordinates, every atom free
      (waters included), no symmetry; a loose but sensible convergence set and a cap on the number of
      gradients. The start is the xTB geometry.

CPU levers (measured in docs/geometry.md): the first SCF starts from the core Hamiltonian (PySCF's
``minao``/``atom`` guesses fail with a LinAlgError for the large-core ECP) on a coarse grid, then
each optimisation step starts from the previous step's density (the SCF scanner); density fitting;
few, loose-converged optimisation steps.

:class:`DyComplexRelaxer` follows PySCF's idiom: configure attributes, then :meth:`kernel`. It
never raises for a chemistry or convergence problem: ``status``/``reason`` say what went wrong
(not converged within ``max_steps``, SCF failure, a ligand that left Dy or bound side-on: see
:mod:`smmflow.geometry.binding`).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from smmflow import constants as C
from smmflow.geometry.binding import BindingCriteria, binding_problems
from smmflow.native_blas import select_pyscf_blas_kernel
from smmflow.tables import STATUS_FAILED, STATUS_OK

log = logging.getLogger(__name__)
# AVX2 kernels for PySCF's bundled OpenBLAS, before any pyscf import of the process: the XC gradient
# is dgemm-bound (pyscf.lib.dot), ~3x slower with the generic kernels on AMD Zen 3/4
select_pyscf_blas_kernel()

#: Dy core electrons of a 4f-in-core Dy(III) ECP: [Kr] 4d10 (46) + 4f9
DY_III_LARGE_CORE_ELECTRONS: int = 46 + C.DY_4F_ELECTRONS
#: geomeTRIC convergence keys (``convergence_<key>``): energy (Eh), grms/gmax (Eh/bohr), drms/dmax (A).
#: The default is between geomeTRIC's GAU_LOOSE and GAU: forces ~3x looser than geomeTRIC's default.
CONVERGENCE_DEFAULT: dict[str, float] = {"energy": 1e-5, "grms": 1e-3, "gmax": 1.5e-3, "drms": 4e-3, "dmax": 6e-3}


class DftGeometryError(RuntimeError):
    """The DFT set-up cannot work (wrong ECP, odd electron count): an input problem, not physics."""


@lru_cache(maxsize=8)
def _bse_dy(name: str) -> tuple[str, int]:
    import basis_set_exchange as bse

    text = bse.get_basis(name, elements=["Dy"], fmt="nwchem", header=False)
    data = bse.get_basis(name, elements=["Dy"])
    n_core = int(data["elements"][str(C.DY_Z)].get("ecp_electrons", 0))
    return text, n_core


def dy_large_core_basis(name: str = "lcecp-1-SVP") -> tuple[Any, Any, int]:
    """``(basis, ecp, n_core)`` of Dy from basis-set-exchange's NWChem text, parsed in two parts (the
    basis block and the ECP block, ``symb='Dy'``) into PySCF's internal format. ``DftGeometryError``
    unless the ECP holds exactly the 55 core electrons of Dy(III) with 4f9 in the core."""
    from pyscf import gto

    try:
        text, n_core = _bse_dy(name)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise DftGeometryError(f"basis-set-exchange has no Dy in {name!r}: {exc}") from None
    if n_core != DY_III_LARGE_CORE_ELECTRONS:
        raise DftGeometryError(
            f"{name}: Dy ECP has {n_core} core electrons; a 4f-in-core Dy(III) ECP has {DY_III_LARGE_CORE_ELECTRONS}"
        )
    head, sep, tail = text.partition("\nECP")
    if not sep:
        raise DftGeometryError(f"{name}: no ECP block in the basis-set-exchange text")
    basis = gto.basis.parse(head, symb="Dy")
    ecp = gto.basis.parse_ecp("ECP" + tail, symb="Dy")
    return basis, ecp, n_core


def gpu_available() -> bool:
    """True when gpu4pyscf imports and CUDA sees a device (never required)."""
    try:
        import cupy
        import gpu4pyscf  # noqa: F401
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no device: CPU
        return False


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class DyComplexRelaxer:
    """DFT relaxation of one [Dy(H2O)5L2] (ASE atoms in the geometry contract's order, ``info['charge']``).

    Attributes (set before :meth:`kernel`):
        xc, basis, dy_basis, disp, grid_level, start_grid_level, conv_tol, max_cycle, max_steps,
        convergence (geomeTRIC keys, see :data:`CONVERGENCE_DEFAULT`), aux_beta (even-tempered ratio of
        Dy's auxiliary set), binding (:class:`BindingCriteria`), threads, max_memory (MB), verbose,
        use_gpu.
    Results (after :meth:`kernel`): ``atoms`` (the last geometry, relaxed when ``status == 'ok'``),
    ``status``, ``reason``, ``converged``, ``n_gradients``, ``e_tot``, ``wall_s``, ``cpu_s``,
    ``disp_used``, ``gpu_used``.
    """

    xc: str = "bp86"
    basis: str = "def2-SVP"
    dy_basis: str = "lcecp-1-SVP"
    disp: str | None = "d3bj"
    grid_level: int = 1
    #: (radial, angular) points of Dy's atomic grid whatever grid_level is (level 2's; None: the level's)
    dy_atom_grid: tuple[int, int] | None = (85, 302)
    start_grid_level: int = 0
    conv_tol: float = 1e-7
    max_cycle: int = 100
    max_steps: int = 30
    aux_beta: float = 2.0
    threads: int | None = None
    max_memory: int = 2000
    verbose: int = 0
    use_gpu: bool = True

    def __init__(self, atoms, **kwargs):
        self.input_atoms = atoms
        self.convergence = dict(CONVERGENCE_DEFAULT)
        self.binding = BindingCriteria()
        for k, v in kwargs.items():
            if not hasattr(self, k):
                raise ValueError(f"unknown DyComplexRelaxer option {k!r}")
            setattr(self, k, v)
        self.atoms = atoms.copy()
        self.status, self.reason = STATUS_FAILED, "not run"
        self.converged = False
        self.n_gradients = 0
        self.e_tot = float("nan")
        self.wall_s = self.cpu_s = 0.0
        self.disp_used = ""
        self.gpu_used = False

    # ----------------------------------------------------------------------------------------
    def method(self) -> str:
        """One line: the method of the geometry (the provenance of a DFT geometry file)."""
        disp = f"-{self.disp.upper()}" if self.disp else ""
        return (
            f"RKS {self.xc}{disp}/{self.basis}, Dy {self.dy_basis} (4f-in-core ECP), DF, "
            f"grid {self.grid_level} (Dy {self.dy_atom_grid}), geomeTRIC max {self.max_steps} steps"
        )

    def settings(self) -> dict[str, Any]:
        """The result-changing settings (for provenance)."""
        return {
            "xc": self.xc,
            "basis": self.basis,
            "dy_basis": self.dy_basis,
            "disp": self.disp or "",
            "grid_level": self.grid_level,
            "dy_atom_grid": list(self.dy_atom_grid or ()),
            "conv_tol": self.conv_tol,
            "max_steps": self.max_steps,
            "convergence": dict(self.convergence),
            "aux_beta": self.aux_beta,
        }

    def build_mol(self, atoms=None):
        """The PySCF molecule of ``atoms`` (default: the input): closed shell, charge from ``info``."""
        from pyscf import df, gto

        atoms = self.input_atoms if atoms is None else atoms
        if "charge" not in atoms.info:
            raise DftGeometryError("the complex has no 'charge' in its info")
        dy_bas, dy_ecp, _ = dy_large_core_basis(self.dy_basis)
        symbols = atoms.get_chemical_symbols()
        if symbols[0] != "Dy" or symbols.count("Dy") != 1:
            raise DftGeometryError("atom 0 must be the only Dy (geometry contract)")
        basis = {s: self.basis for s in set(symbols) if s != "Dy"}
        basis["Dy"] = dy_bas
        mol = gto.Mole()
        mol.atom = [(s, tuple(p)) for s, p in zip(symbols, atoms.get_positions())]
        mol.unit = "Angstrom"
        mol.basis = basis
        mol.ecp = {"Dy": dy_ecp}
        mol.charge = int(atoms.info["charge"])
        mol.spin = 0
        mol.max_memory = int(self.max_memory)
        mol.verbose = int(self.verbose)
        # keep the 3-index DF tensor in memory (~0.3 GB here): without it a J-only (pure functional) SCF
        # recomputes the 3-centre integrals twice per cycle (pyscf.df.df_jk.get_j; 27 % of a step, py-spy)
        mol.incore_anyway = True
        n_el = int(sum(atoms.numbers)) - DY_III_LARGE_CORE_ELECTRONS - mol.charge
        if n_el % 2:
            raise DftGeometryError(
                f"odd electron count {n_el} (charge {mol.charge}): not a closed-shell Dy(III) complex"
            )
        mol.build()
        dy_only = gto.M(
            atom=[("Dy", (0.0, 0.0, 0.0))], basis={"Dy": dy_bas}, ecp={"Dy": dy_ecp}, charge=3, spin=0, verbose=0
        )
        self._auxbasis = {s: "def2-universal-jfit" for s in basis if s != "Dy"}
        self._auxbasis["Dy"] = df.aug_etb(dy_only, beta=float(self.aux_beta))["Dy"]
        return mol

    def build_scf(self, mol):
        """The SCF object (RKS, DF, dispersion when available, on the GPU when possible)."""
        from pyscf import dft

        mf = dft.RKS(mol, xc=self.xc).density_fit(auxbasis=self._auxbasis)
        mf.grids.level = int(self.grid_level)
        if self.dy_atom_grid:
            mf.grids.atom_grid = {"Dy": tuple(int(n) for n in self.dy_atom_grid)}
        mf.conv_tol = float(self.conv_tol)
        mf.max_cycle = int(self.max_cycle)
        mf.init_guess = "1e"  # minao/atom fail for the large-core ECP
        mf.verbose = int(self.verbose)
        self.disp_used = ""
        if self.disp:
            try:
                import pyscf.dispersion  # noqa: F401  (pyscf-dispersion)

                mf.disp = self.disp
                self.disp_used = self.disp
            except ImportError:
                log.warning("pyscf-dispersion not installed: no %s dispersion", self.disp)
        self.gpu_used = False
        if self.use_gpu and gpu_available():
            mf = mf.to_gpu()
            self.gpu_used = True
        return mf

    def start_density(self, mf):
        """A converged density at the start geometry, cheaply: the core-Hamiltonian guess converged
        on a coarse grid (``start_grid_level``), then used as the start on the production grid."""
        if self.start_grid_level is None or self.start_grid_level >= self.grid_level:
            return None
        coarse = mf.copy()
        coarse.grids = mf.grids.copy()
        coarse.grids.level = int(self.start_grid_level)
        coarse.grids.atom_grid = {}
        coarse.conv_tol = max(float(self.conv_tol), 1e-5)
        coarse.kernel()
        return coarse.make_rdm1() if coarse.converged else None

    # ----------------------------------------------------------------------------------------
    def kernel(self):
        """Relax; returns the final ASE atoms (also ``self.atoms``) and sets the result attributes."""
        from pyscf import lib

        t0, c0 = time.perf_counter(), _cpu_s()
        old_threads = lib.num_threads()
        if self.threads:
            lib.num_threads(int(self.threads))
        try:
            self._run()
        except DftGeometryError:
            raise
        except Exception as exc:  # noqa: BLE001 - one complex never crashes a batch: status failed
            self.status, self.reason = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
            log.warning("DFT relaxation failed: %s", self.reason)
        finally:
            lib.num_threads(old_threads)
            self.wall_s, self.cpu_s = time.perf_counter() - t0, _cpu_s() - c0
        return self.atoms

    def _run(self) -> None:
        from pyscf.geomopt import geometric_solver

        mol = self.build_mol()
        mf = self.build_scf(mol)
        t = time.perf_counter()
        dm0 = self.start_density(mf)
        mf.kernel(dm0=dm0)
        log.info(
            "DFT start SCF: converged=%s, E = %.8f Eh, %.0f s (%s)",
            mf.converged,
            mf.e_tot,
            time.perf_counter() - t,
            self.method(),
        )
        if not mf.converged:
            self.status, self.reason = STATUS_FAILED, "SCF not converged at the start geometry"
            return
        n_grad = [0]
        last = {"coords": mol.atom_coords(unit="Angstrom"), "e": mf.e_tot}

        t_start = time.perf_counter()
        restore_logging = _logging_keeper()

        def callback(env):
            restore_logging()  # geomeTRIC's logging.config.fileConfig replaced the root handlers
            n_grad[0] += 1
            last["coords"] = env["mol"].atom_coords(unit="Angstrom")
            last["e"] = float(env["energy"])
            log.info(
                "DFT step %d: E = %.8f Eh, |grad| = %.2e Eh/bohr, %.0f s",
                n_grad[0],
                last["e"],
                float(np.linalg.norm(env["gradients"])),
                time.perf_counter() - t_start,
            )

        opt = geometric_solver.GeometryOptimizer(mf)
        opt.max_cycle = int(self.max_steps)
        opt.callback = callback
        params = {f"convergence_{k}": float(v) for k, v in self.convergence.items()}
        params["logIni"] = _quiet_log_ini() if self.verbose < 4 else None
        params = {k: v for k, v in params.items() if v is not None}
        try:
            opt.kernel(params)
        finally:
            restore_logging()
            self.n_gradients = n_grad[0]
            self._set_positions(last["coords"])
            self.e_tot = float(last["e"])
        self.converged = bool(opt.converged)
        if not self.converged:
            self.status, self.reason = STATUS_FAILED, f"geometry not converged in {self.max_steps} steps"
            return
        problems = binding_problems(self.atoms, self.binding)
        if problems:
            self.status, self.reason = STATUS_FAILED, "binding mode: " + "; ".join(problems)
            return
        self.status, self.reason = STATUS_OK, ""

    def _set_positions(self, coords_a: np.ndarray) -> None:
        out = self.input_atoms.copy()
        out.info = dict(self.input_atoms.info)
        out.set_positions(np.asarray(coords_a, dtype=float).reshape(-1, 3))
        self.atoms = out


def _logging_keeper():
    """A function that puts the root logger's level and handlers back as they are now and quiets
    geomeTRIC's loggers: geomeTRIC configures logging with ``logging.config.fileConfig``, which
    replaces the root handlers (a workflow job's rule log would lose every later line)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def restore() -> None:
        root.setLevel(level)
        root.handlers[:] = handlers
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("geometric"):
                logging.getLogger(name).setLevel(logging.WARNING)

    return restore


@lru_cache(maxsize=1)
def _quiet_log_ini() -> str:
    """A geomeTRIC logging configuration that prints warnings only (its default prints every step)."""
    import tempfile

    text = (
        "[loggers]\nkeys=root\n\n[handlers]\nkeys=stream_handler\n\n[formatters]\nkeys=formatter\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=stream_handler\n\n"
        "[handler_stream_handler]\nclass=geometric.nifty.RawStreamHandler\nlevel=WARNING\n"
        "formatter=formatter\nargs=(sys.stderr,)\n\n[formatter_formatter]\nformat=%(message)s\n"
    )
    fd, path = tempfile.mkstemp(prefix="smmflow_geometric_", suffix=".ini")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def with_xtb_charges(atoms):
    """A copy of ``atoms`` with GFN2-xTB charges of this geometry in ``initial_charges`` (the point
    charges the embedded and pointcharge CASSCF tiers place; the xTB start's charges belong to another
    geometry). Raises :class:`smmflow.xtb.engine.XtbError` on an SCC failure."""
    from smmflow.xtb.engine import gfn2_singlepoint

    out = atoms.copy()
    out.info = dict(atoms.info)
    props = gfn2_singlepoint(atoms.numbers, atoms.get_positions(), int(atoms.info["charge"]))
    out.set_initial_charges(props.charges)
    return out


def relaxer_from_config(atoms, cfg: Mapping[str, Any] | None, **overrides) -> DyComplexRelaxer:
    """A relaxer configured from the ``geometry.dft`` config block (unknown keys: ``ValueError``)."""
    cfg = dict(cfg or {})
    kw: dict[str, Any] = {}
    if "ecp" in cfg:  # the config's name of the Dy large-core ECP basis
        kw["dy_basis"] = cfg.pop("ecp")
    for key in (
        "xc",
        "basis",
        "dy_basis",
        "disp",
        "grid_level",
        "dy_atom_grid",
        "start_grid_level",
        "conv_tol",
        "max_cycle",
        "max_steps",
        "aux_beta",
        "verbose",
    ):
        if key in cfg:
            kw[key] = cfg.pop(key)
    if "convergence" in cfg:
        conv = dict(CONVERGENCE_DEFAULT)
        conv.update({k: float(v) for k, v in dict(cfg.pop("convergence")).items()})
        kw["convergence"] = conv
    if "binding" in cfg:
        kw["binding"] = BindingCriteria.from_mapping(cfg.pop("binding"))
    for key in ("threads", "mem_mb", "runtime_min", "gpu", "cache_dir", "max_memory_mb"):
        cfg.pop(key, None)  # resources: set by the caller
    if cfg:
        raise ValueError(f"unknown geometry.dft option(s) {sorted(cfg)}")
    kw.update(overrides)
    if kw.get("disp") in ("", "none"):
        kw["disp"] = None
    return DyComplexRelaxer(atoms, **kw)
