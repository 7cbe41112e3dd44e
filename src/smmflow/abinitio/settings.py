"""Settings, active-space constants and failure type of the SA-CASSCF(9,7)+SO engine."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smmflow.abinitio.basis import DEFAULT_BASIS
from smmflow.abinitio.regions import EMBEDDED_BOND_SHELLS, EMBEDDED_RADIUS_A
from smmflow.constants import DY_4F_ELECTRONS, DY_ION_CHARGE, DY_Z

TIERS = ("pointcharge", "embedded", "full")
NCAS = 7
NELECAS = (7, 2)  # Ms = 5/2: 21 determinants = 21 sextets
N_SEXTETS = 21
SPIN_S = 2.5
DY_CORE_ORBITALS = (DY_Z - DY_ION_CHARGE - DY_4F_ELECTRONS) // 2  # 27 doubly occupied in Dy3+
DY_INNER_CORE_ORBITALS = 23  # 1s..4d of Dy (n <= 4); 5s, 5p stay optimised (they shield the 4f)
#: 1s..3d of Dy (n <= 3): frozen at the free-ion orbitals when ``frozen_core`` (freezing 4s-4d as
#: well moved KD2 of the diol benchmark complex by -0.33 %, 1s-3d by -0.03 %: docs/casscf.md)
DY_FROZEN_CORE_ORBITALS = 14


def inner_core_orbitals(z: int) -> int:
    """Doubly occupied inner-shell orbitals of a light element (noble-gas core below the valence)."""
    for n_core, z_max in ((0, 2), (1, 10), (5, 18), (9, 36)):
        if z <= z_max:
            return n_core
    raise ValueError(f"no inner-core count for Z = {z} (only H-Kr ligand atoms are supported)")


ORBITAL_OPTIMISERS = ("average", "augmented_hessian")


class CasscfFailure(RuntimeError):
    """A physically failed calculation (not a bug): reported as status=failed with the message."""


@dataclass
class CasscfSettings:
    """Knobs of one SA-CASSCF+SO run (all have working defaults)."""

    tier: str = "pointcharge"
    basis: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BASIS))
    density_fit: bool = True  # DF for embedded/full (pointcharge uses exact Dy-only integrals)
    #: DF auxiliary basis: one name for every element, or element -> name with key "default";
    #: "etb" = PySCF's even-tempered basis generated from the orbital basis. Default: even-tempered
    #: on Dy (all-electron; no fitted set exists for x2c-SVPall Dy), def2-universal-jkfit on the
    #: light atoms (x2c-SVPall = def2-SVP contractions there; 40% fewer functions than etb).
    auxbasis: str | dict[str, str] | None = field(default_factory=lambda: {"Dy": "etb", "default": "def2-universal-jkfit"})
    #: embedded tier: every ligand atom within this distance of Dy (angstrom) is quantum, with its
    #: bonded neighbours (besides the donor atoms and theirs); e.g. a pendant OH or ring O near Dy
    embedded_radius_a: float = EMBEDDED_RADIUS_A
    #: embedded tier: every atom up to this many cuttable single bonds from a donor atom is quantum
    #: (a conjugated system or a 3-/4-ring counts as one shell); substituents beyond are replaced by
    #: H link atoms (docs/casscf.md, "Embedded region")
    embedded_bond_shells: int = EMBEDDED_BOND_SHELLS
    #: locally dense basis (embedded/full tiers): quantum atoms farther than ``dense_radius_a`` from
    #: Dy carry this basis instead of ``basis`` (e.g. "sto-3g"); None: ``basis`` everywhere
    outer_basis: str | None = None
    dense_radius_a: float = 3.5
    verbose: int = 0  # PySCF verbosity of the SCF/CASSCF objects (4: per-iteration log on stdout)
    conv_tol: float = 1e-9  # SA energy, hartree
    conv_tol_grad: float = 1e-4
    max_cycle_macro: int = 40
    #: embedded/full: Dy 1s-3d stay exactly the free-ion orbitals and the ligand-atom inner cores
    #: (1s; 1s2s2p for 3rd-row atoms) the fragment-RHF ones, orthogonalised to Dy's; both are frozen
    #: in the orbital optimisation and their J/K is computed once (median 1.04x less CPU per label;
    #: KD2 within -0.04..+0.14 %, KD8 within 0.05 % of the unfrozen optimisation on the benchmark
    #: set, docs/casscf.md "Frozen core and pair screening"). False: every
    #: occupied orbital is optimised (the start before session 15, one Loewdin orthogonalisation).
    frozen_core: bool = True
    #: embedded/full (DF): "average" optimises the orbitals as a configuration-average SCF (the
    #: SA over all 21 sextets is the determinant average; one J/K build per iteration) and falls back
    #: to PySCF after ``max_cycle_average`` iterations; "augmented_hessian" is PySCF's mc1step.
    #: Same SA-CASSCF either way. The Dy-only pointcharge tier always uses PySCF's.
    orbital_optimiser: str = "average"
    max_cycle_average: int = 80
    #: convergence of the configuration-average solver judged on the KD energies: stop when the
    #: orbital gradient norm is below this (energy change not tested). 1e-3: KD2 within 0.4 % of the
    #: tightly converged value on the small-KD2 amide complex (3e-3 was -1.6 % there), 0.04 % on the
    #: hydroxyalkoxide (docs/casscf.md). None: PySCF-style ``conv_tol`` and ``conv_tol_grad`` as for
    #: the augmented-Hessian solver.
    average_conv_tol_grad: float | None = 1e-3
    #: configuration-average solver: the DF factors stored in float32 (integrals, metric and solve in
    #: float64; exchange GEMMs in float32), docs/casscf.md "Float32 DF tensor"; false: PySCF's float64
    df_float32: bool = True
    #: float32 DF tensor: AO pairs whose 3-centre integrals are all below this (magnitude) are not
    #: solved (zero factors; a tile left without pairs is not stored). docs/casscf.md "Pair
    #: screening": 1e-10 left KD2/KD8 unchanged to 0.01 cm-1 and cut ~10 % of a label's CPU; 0: every pair
    df_pair_threshold: float = 1e-10
    #: embedded/full start: the ligand-shell RHF uses the complex's DF factors restricted to the
    #: ligand AO pairs (one DF tensor per complex instead of two). Measured: KDs unchanged (< 0.01
    #: cm-1) but no CPU gain (the RHF iterations on the larger auxiliary set cost what the second
    #: DF build saved), so off.
    start_shared_df: bool = False
    #: embedded/full start: one RHF per fragment (the five waters together, each ligand's quantum
    #: piece with its formal charge), each in the field of Dy3+ and of the xTB charges of the rest,
    #: instead of one RHF of the whole ligand shell (docs/casscf.md, "Speed")
    start_fragments: bool = True
    #: energy convergence of that ligand-shell RHF (hartree); the orbital optimisation refines it anyway
    start_conv_tol: float = 1e-7
    soc_scale: float = 1.0  # multiply the SOC operator (BP-AMFI overestimates zeta by ~5%)
    f_population_min: float = 0.80  # every active orbital must be at least this Dy-f
    kramers_tol_cm1: float = 0.01
    max_memory_mb: int = 4000
    cache_dir: str | None = None  # where the free-ion reference (orbitals + AMFI) is cached

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; choose one of {', '.join(TIERS)}")
        if self.orbital_optimiser not in ORBITAL_OPTIMISERS:
            raise ValueError(f"unknown orbital_optimiser {self.orbital_optimiser!r}; choose one of {', '.join(ORBITAL_OPTIMISERS)}")
        if int(self.embedded_bond_shells) != self.embedded_bond_shells or self.embedded_bond_shells < 1:
            raise ValueError(f"embedded_bond_shells must be an integer >= 1, got {self.embedded_bond_shells!r}")


    def key(self) -> str:
        """Hash of what the free-ion reference depends on (basis only)."""
        return hashlib.sha256(json.dumps(sorted(self.basis.items())).encode()).hexdigest()[:16]


def settings_from_mapping(cfg: dict[str, Any]) -> CasscfSettings:
    """CasscfSettings from a config mapping (unknown keys are rejected)."""
    names = {f.name for f in dataclasses.fields(CasscfSettings)}
    unknown = set(cfg) - names
    if unknown:
        raise ValueError(f"unknown casscf settings: {', '.join(sorted(unknown))}")
    return CasscfSettings(**cfg)


def default_cache_dir() -> str:
    return os.environ.get("SMMFLOW_CACHE", str(Path.home() / ".cache" / "smmflow"))
