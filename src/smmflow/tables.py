"""Column contracts of the tables the workflow writes: the single source of truth.

Every table that can hold a failure carries ``status`` (``ok`` or ``failed``) and ``reason``
(empty when ok). Rows with ``status != "ok"`` never feed training.
Ligand identity is :data:`LIGAND_ID`, a hash of the canonical donor-rooted SMILES, carried through
every table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import pandas as pd

LIGAND_ID: Final = "ligand_id"
STATUS_OK: Final = "ok"
STATUS_FAILED: Final = "failed"

# Ligand classes (order = the published data's integer code 1..4)
LIGAND_CLASSES: Final = ("O", "N", "O-", "N-")
LIGAND_CLASS_CODE: Final = {c: i + 1 for i, c in enumerate(LIGAND_CLASSES)}

# results/ligands/ligands.parquet
LIGANDS_COLUMNS: Final = (
    LIGAND_ID,  # "L" + 16 hex digits of sha256(donor-rooted canonical SMILES)
    "smiles",  # donor atom first (RDKit rootedAtAtom), canonical for that root
    "ligand_class",  # one of LIGAND_CLASSES
    "donor_element",  # "O" or "N"
    "ligand_charge",  # formal charge of L (0 or -1)
    "complex_charge",  # 3 + 2 q(L)
    "n_heavy",  # heavy atoms of L
    "parent_smiles",  # canonical SMILES of the neutral source molecule
    "source",  # where the parent came from (generator name or file)
    "donor_kind",  # chemistry of the donor site: carbonyl, hydroxyl, ether, amine, imine, nitrile,
    #               pyridine, amide-N, alkoxide, phenolate, enolate, carboxylate, amidate, ...
)

# results/ligands/rejected.tsv
REJECTED_COLUMNS: Final = ("source", "line", "input", "reason")

# xTB free-ligand descriptors (GFN2-xTB, tblite)
XTB_LIGAND_COLUMNS: Final = (
    "xtb_donor_charge",  # Mulliken (GFN2 CM5-free) charge on the donor atom, e
    "xtb_donor_neighbor_charge_sum",  # summed charge of the donor's bonded neighbours, e
    "xtb_dipole_debye",  # |dipole| of the free ligand (origin at centre of mass)
    "xtb_homo_ev",
    "xtb_lumo_ev",
    "xtb_gap_ev",
    "xtb_donor_bond_order_sum",  # Wiberg bond orders summed over the donor (valence in use)
)
# Structural descriptors of the xTB-relaxed [Dy(H2O)5L2]
XTB_COMPLEX_COLUMNS: Final = (
    "dist_dy_donor1_a",
    "dist_dy_donor2_a",
    "angle_l_dy_l_deg",
    "d5h_deviation_a",  # RMS deviation of the 7 donor positions from an ideal D5h bipyramid
    "xtb_dy_charge",  # xTB charge on Dy in the complex
    "xtb_complex_donor_charge_mean",
    "xtb_opt_steps",
)
# results/proxies/proxies.parquet
PROXY_COLUMNS: Final = (
    LIGAND_ID,
    "smiles",
    "ligand_class",
    "complex_charge",
    *XTB_LIGAND_COLUMNS,
    *XTB_COMPLEX_COLUMNS,
    "complex_xyz",  # extended-XYZ text of the relaxed complex (Dy first, 5 waters, L, L)
    "status",
    "reason",
    "wall_s",
)
# Default numeric proxies the learning stage regresses on (the proxy head)
PROXY_TARGETS: Final = (
    "xtb_donor_charge",
    "xtb_dipole_debye",
    "xtb_homo_ev",
    "xtb_lumo_ev",
    "xtb_gap_ev",
)
# Structural descriptors the KD head takes as extra inputs
STRUCTURAL_FEATURES: Final = (
    "dist_dy_donor1_a",
    "dist_dy_donor2_a",
    "angle_l_dy_l_deg",
    "d5h_deviation_a",
)

# results/casscf/labels.parquet  (one row per ligand x tier)
N_KD: Final = 8
KD_COLUMNS: Final = tuple(f"kd{i}_cm1" for i in range(1, N_KD + 1))  # kd1 = 0 (ground)
FIRST_EXCITED_KD: Final = "kd2_cm1"  # the quantity optimised (published column KD2_cm1)
G_COLUMNS: Final = tuple(f"g{i}_{ax}" for i in range(1, N_KD + 1) for ax in ("x", "y", "z"))
# provenance of a label (the JSON's "provenance" block, flattened): the exact geometry, the settings that
# change the result, and the code versions
LABEL_PROVENANCE_COLUMNS: Final = (
    "geometry_sha256",  # sha256 of the extxyz text the calculation read
    "engine",  # pyscf | openmolcas
    "settings_json",  # the result-changing settings, JSON
    "smmflow_version",
    "engine_version",  # PySCF (or OpenMolcas) version
    "tblite_version",  # the xTB that made the geometry and the point charges
)
LABEL_COLUMNS: Final = (
    LIGAND_ID,
    "smiles",
    "ligand_class",
    "tier",
    *KD_COLUMNS,
    *G_COLUMNS,
    "easy_axis_angle_deg",  # ground-KD easy axis vs the L-Dy-L axis
    "ueff_cm1",  # estimated barrier (SINGLE_ANISO-like)
    "converged",
    "status",
    "reason",
    "wall_s",
    *LABEL_PROVENANCE_COLUMNS,
)


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty table with the given columns (so downstream readers always see the contract)."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def check_columns(df: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    """Raise ``ValueError`` naming the missing columns if ``df`` breaks the contract ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks required columns: {', '.join(missing)}")


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that may feed training: ``status == 'ok'``."""
    return df[df["status"] == STATUS_OK]


# results/proxies/pointcharge.parquet: the pointcharge-tier KD ladder of every ligand with a relaxed complex,
# a physics proxy for the learning stage (smmflow.stages.casscf.pointcharge_proxy_table)
POINTCHARGE_PROXY_TARGETS: Final = (
    *(f"pc_kd{i}_cm1" for i in range(2, N_KD + 1)),
    "pc_g1_x",
    "pc_g1_y",
    "pc_g1_z",  # ground-KD principal g-values
)
POINTCHARGE_PROXY_COLUMNS: Final = (LIGAND_ID, *POINTCHARGE_PROXY_TARGETS, "status", "reason", "wall_s")

# results/proxies/dft.parquet: PySCF DFT proxies of the free ligand (smmflow.xtb.dft)
DFT_LIGAND_COLUMNS: Final = (
    "dft_donor_charge",  # IAO (intrinsic atomic orbital, Knizia 2013) charge on the donor atom, e
    "dft_donor_charge_mulliken",  # Mulliken charge on the donor (basis-dependent; for comparison)
    "dft_dipole_debye",  # |dipole| of the free ligand, origin at the centre of mass
    "dft_homo_ev",
    "dft_lumo_ev",
    "dft_gap_ev",
    "dft_energy_eh",
)
DFT_COLUMNS: Final = (
    LIGAND_ID,
    "smiles",
    "ligand_class",
    *DFT_LIGAND_COLUMNS,
    "dft_method",  # e.g. "PBE0/def2-SVP (DF), MMFF94 geometry"
    "status",
    "reason",
    "wall_s",
)

# results/casscf/selection.tsv: the stratified subset labelled by CASSCF (smmflow.stages.casscf)
CASSCF_SELECTION_COLUMNS: Final = (LIGAND_ID, "smiles", "ligand_class", "complex_charge", "stratum")

# results/rounds/{r}/generation/candidates.parquet (smmflow.ml.generate)
CANDIDATE_COLUMNS: Final = (
    LIGAND_ID,
    "smiles",
    "ligand_class",
    "strategy",
    "novel",
    "pred_kd2_cm1",
    "pred_kd2_std_cm1",
    "rank",
    "status",
    "reason",
)

# results/rounds/{r}/revalidation/selection.tsv; `source` is one of the SOURCE_* values (the re-validated
# methods; each is a top-level block of metrics.json). A ligand picked by two baselines has one row per
# source (and is computed once).
SOURCE_GENERATED: Final = "generated"  # top-K generated candidates
SOURCE_BASELINE: Final = "baseline"  # random pool ligands
SOURCE_CLASS_MATCHED: Final = "class_matched"  # random pool ligands with the generated top-K's class mix
SOURCE_SURROGATE_SCREEN: Final = "surrogate_screen"  # best pool ligands by the round model's acquisition score
#: config name (active_learning.baselines) -> source
BASELINE_SOURCES: Final = {
    "random": SOURCE_BASELINE,
    "class_matched": SOURCE_CLASS_MATCHED,
    "surrogate_screen": SOURCE_SURROGATE_SCREEN,
}
#: every source, in report order
SOURCES: Final = (SOURCE_GENERATED, *BASELINE_SOURCES.values())
REVALIDATION_SELECTION_COLUMNS: Final = (
    LIGAND_ID,
    "smiles",
    "ligand_class",
    "source",
    "strategy",
    "pred_kd2_cm1",
    "pred_kd2_std_cm1",
)
# results/rounds/{r}/revalidation/revalidation.tsv
REVALIDATION_COLUMNS: Final = (
    *REVALIDATION_SELECTION_COLUMNS,
    "computed_kd2_cm1",
    "abs_error_cm1",
    "hit",
    "status",
    "reason",
)

# results/learning_curve/learning_curve.tsv and the published benchmark's table (smmflow.ml.learning_curve)
LEARNING_CURVE_COLUMNS: Final = (
    "n_train",
    "pretraining",
    "kd_model",
    "r2",
    "mae",
    "n_test",
    "target",
    "seed",
    "split_seed",
    "status",
    "reason",
)

# resources/published (the GAUSS excerpt): its structural columns -> our names, and its proxy columns
PUBLISHED_STRUCT_MAP: Final = {
    "angle_L_Dy_L_deg": "angle_l_dy_l_deg",
    "dist_Dy_donor1_A": "dist_dy_donor1_a",
    "dist_Dy_donor2_A": "dist_dy_donor2_a",
    "struct_1": "struct_1",
    "struct_2": "struct_2",
}
PUBLISHED_STRUCT_FEATURES: Final = tuple(PUBLISHED_STRUCT_MAP.values())
PUBLISHED_PROXY_TARGETS: Final = ("prop_1", "prop_2", "prop_3")

#: RDKit descriptors of the free ligand computed on the fly (no QM): the donor atom is atom 0.
RDKIT_PROXY_NAMES: Final = (
    "gasteiger_donor_charge",  # Gasteiger-Marsili partial charge on the donor atom, e
    "gasteiger_donor_neighbor_charge_sum",  # summed Gasteiger charge of the donor's neighbours, e
    "donor_degree",  # heavy-atom neighbours of the donor
    "donor_total_h",  # hydrogens on the donor
    "donor_aromatic",  # 1 if the donor is aromatic
    "donor_in_ring",  # 1 if the donor is in a ring
    "mol_logp",  # Crippen logP of the ligand
    "tpsa",  # topological polar surface area, A^2
    "n_heavy",  # heavy atoms
)


def table_of_rows(
    records: pd.DataFrame,
    make_row: Callable[[dict[str, Any]], dict[str, Any]],
    columns: tuple[str, ...],
    log: logging.Logger | None = None,
) -> pd.DataFrame:
    """Apply ``make_row`` (which returns a row with status/reason/wall_s) to every record, in order.

    Each row is logged as it finishes; the result always has exactly ``columns``, even when empty.
    """
    rows = []
    for i, record in enumerate(records.to_dict("records")):
        row = make_row(record)
        if log is not None:
            log.info(
                "%d/%d %s %s %s %.2fs",
                i + 1,
                len(records),
                row.get(LIGAND_ID),
                row["status"],
                row["reason"],
                row["wall_s"],
            )
        rows.append(row)
    if not rows:
        return empty_frame(columns)
    return pd.DataFrame(rows, columns=list(columns))
