"""Physical constants and reference numbers. The one place where each is defined."""

from __future__ import annotations

# --- unit conversions -------------------------------------------------------------------------
HARTREE_TO_CM1: float = 219474.6313632
HARTREE_TO_EV: float = 27.211386245988
BOHR_TO_ANGSTROM: float = 0.529177210903
ANGSTROM_TO_BOHR: float = 1.0 / BOHR_TO_ANGSTROM
EBOHR_TO_DEBYE: float = 2.541746473
G_ELECTRON: float = 2.00231930436256  # free-electron g factor (magnitude)
FINE_STRUCTURE_ALPHA: float = 1.0 / 137.035999084

# --- dysprosium(III) ---------------------------------------------------------------------------
DY_Z: int = 66
DY_ION_CHARGE: int = 3
DY_4F_ELECTRONS: int = 9
DY_GROUND_J: float = 7.5  # 6H15/2
N_KRAMERS_DOUBLETS_GROUND_MULTIPLET: int = 8  # 2J+1 = 16 states
# Free-ion reference numbers (Carnall-type fit), cm-1
DY_ZETA_4F_CM1: float = 1915.0
DY_SLATER_F2_CM1: float = 92373.0
DY_SLATER_F4_CM1: float = 65281.0
DY_SLATER_F6_CM1: float = 47642.0
DY_6H13_2_OBSERVED_CM1: float = 3500.0
# Stevens operator-equivalent factors of 6H15/2
STEVENS_ALPHA_J: float = -2.0 / 315.0
STEVENS_BETA_J: float = -8.0 / 135135.0
STEVENS_GAMMA_J: float = 4.0 / 3864861.0

# --- the complex ------------------------------------------------------------------------------
N_EQUATORIAL_WATERS: int = 5
N_AXIAL_LIGANDS: int = 2


def complex_charge(ligand_charge: int) -> int:
    """Total charge of [Dy(H2O)5L2] for a ligand of formal charge ``ligand_charge``: 3 + 2 q(L)."""
    return DY_ION_CHARGE + N_AXIAL_LIGANDS * int(ligand_charge)

# --- complex geometry (builder starting values; the xTB relaxation refines the axial ligands) --
DY_WATER_O_DISTANCE_A: float = 2.40  # Dy-O(water) in [Dy(H2O)5L2]-type pentagonal bipyramids
WATER_OH_DISTANCE_A: float = 0.96
WATER_HOH_ANGLE_DEG: float = 104.5
#: class-typical Dy-donor start distances, A (published DFT-relaxed data: O- ~2.10, N- ~2.25,
#: O ~2.2-2.3, N ~2.4-2.5)
DY_DONOR_START_DISTANCE_A: dict[str, float] = {"O-": 2.12, "N-": 2.28, "O": 2.28, "N": 2.45}
