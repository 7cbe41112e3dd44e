"""The CASSCF stage of the workflow: stratified subset selection over the proxy table, one cached
job per ligand, and aggregation of the job results into the labels table.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smmflow.abinitio import casscf
from smmflow.abinitio import settings as abinitio_settings
from smmflow.geometry.contract import from_extxyz, geometry_failure
from smmflow.tables import (
    CASSCF_SELECTION_COLUMNS,
    G_COLUMNS,
    KD_COLUMNS,
    LABEL_COLUMNS,
    LABEL_PROVENANCE_COLUMNS,
    LIGAND_ID,
    N_KD,
    POINTCHARGE_PROXY_COLUMNS,
    STATUS_FAILED,
    STATUS_OK,
    check_columns,
    empty_frame,
    table_of_rows,
)


def stratum_labels(proxies: pd.DataFrame, columns: list[str], n_bins: int) -> pd.Series:
    """Stratum of each row: ligand class x quantile bin of each column (bins over the given rows)."""
    parts = [proxies["ligand_class"].astype(str)]
    for col in columns:
        x = pd.to_numeric(proxies[col], errors="coerce")
        if x.notna().sum() == 0:
            raise ValueError(f"stratification column {col!r} has no numeric values")
        ranks = x.rank(method="first")
        b = pd.qcut(ranks, q=min(n_bins, int(x.notna().sum())), labels=False, duplicates="drop")
        parts.append(col + ":" + b.fillna(-1).astype(int).astype(str))
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out


def allocate(counts: pd.Series, size: int) -> pd.Series:
    """Proportional allocation of ``size`` draws over strata (largest remainder, at most the count).

    With ``size`` >= number of strata every stratum gets at least one draw.
    """
    total = int(counts.sum())
    size = min(int(size), total)
    if size <= 0:
        return counts * 0
    floor_one = size >= len(counts)
    quota = counts / total * size
    alloc = np.floor(quota).astype(int)
    if floor_one:
        alloc = alloc.clip(lower=1)
    alloc = np.minimum(alloc, counts)
    while alloc.sum() > size:  # the floor-one rule can overshoot: trim the largest strata
        alloc[alloc.idxmax()] -= 1
    rem = (quota - alloc).sort_values(ascending=False, kind="mergesort")
    i = 0
    while alloc.sum() < size:
        k = rem.index[i % len(rem)]
        if alloc[k] < counts[k]:
            alloc[k] += 1
        i += 1
    return alloc


def select_subset(proxies: pd.DataFrame, size: int, seed: int, columns: list[str], n_bins: int = 3) -> pd.DataFrame:
    """Stratified, seeded subset of the usable (status ok) proxy rows; deterministic for a given input.

    Strata are ligand class x quantile bins of ``columns``; the draws are allocated over classes
    (proportionally, at least one per class when ``size`` allows), then over the bins of each class. Growing ``size`` with the same seed
    keeps earlier picks where the allocation of their stratum does not shrink (draws are the head
    of one seeded permutation per stratum), so finished CASSCF jobs are reused.
    """
    check_columns(proxies, (LIGAND_ID, "smiles", "ligand_class", "complex_charge", "status", *columns), "proxies")
    ok = proxies[proxies["status"] == STATUS_OK].drop_duplicates(LIGAND_ID).sort_values(LIGAND_ID)
    ok = ok[ok["complex_xyz"].astype(str).str.len() > 0] if "complex_xyz" in ok else ok
    if ok.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in CASSCF_SELECTION_COLUMNS})
    ok = ok.assign(stratum=stratum_labels(ok, list(columns), n_bins).values)
    # two levels: draws over ligand classes first (every class gets one once size >= the number of
    # classes, so a small budget still labels the rare alkoxides), then over the bins within a class
    class_alloc = allocate(ok.groupby("ligand_class").size(), size)
    alloc = pd.concat(
        [allocate(grp.groupby("stratum").size(), int(class_alloc[cls])) for cls, grp in ok.groupby("ligand_class")]
    )
    picks = []
    for stratum, grp in ok.groupby("stratum", sort=True):
        # one permutation per stratum from a seed derived from (seed, stratum name): stable under resizing
        sseed = int.from_bytes(__import__("hashlib").sha256(f"{seed}:{stratum}".encode()).digest()[:8], "little")
        order = np.random.default_rng(sseed).permutation(len(grp))
        picks.append(grp.iloc[order[: int(alloc[stratum])]])
    sel = pd.concat(picks) if picks else ok.iloc[:0]
    return sel.loc[:, list(CASSCF_SELECTION_COLUMNS)].sort_values(LIGAND_ID).reset_index(drop=True)


def selected_ids(selection_tsv: str | Path) -> list[str]:
    """Ligand ids listed in a selection table written by :func:`select_subset`."""
    df = pd.read_csv(selection_tsv, sep="\t", dtype=str, keep_default_na=False)
    return df[LIGAND_ID].tolist() if LIGAND_ID in df else []


#: orbital-basis functions per ligand atom by period (def2-SVP contractions, which x2c-SVPall
#: shares on the light atoms): H 2s1p = 5, C-F 3s2p1d = 14, Si-Cl 4s3p1d = 18
_AO_PER_ATOM_BY_PERIOD = {1: 5, 2: 14, 3: 18}


def label_cost_estimate(smiles: str) -> int:
    """Scheduling estimate of a ligand's CASSCF job size: the orbital-basis functions of the whole
    ligand, hydrogens included (0 for unparsable SMILES). The embedded region is a subset, but job
    CPU grows steeply with it (default run at 45fbc72: 9-24 atoms, 385-607 AOs, 75-331 s), so
    the order is what counts."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None:
        return 0
    n = 0
    for atom in Chem.AddHs(mol).GetAtoms():
        z = atom.GetAtomicNum()
        n += _AO_PER_ATOM_BY_PERIOD[1 if z <= 2 else 2 if z <= 10 else 3]
    return n


@functools.lru_cache(maxsize=16)
def _selection_costs(selection_tsv: str, mtime_ns: int) -> dict[str, int]:
    df = pd.read_csv(selection_tsv, sep="\t", dtype=str, keep_default_na=False)
    if LIGAND_ID not in df or "smiles" not in df:
        return {}
    return {lid: label_cost_estimate(smi) for lid, smi in zip(df[LIGAND_ID], df["smiles"])}


def label_priority(selection_tsv: str | Path, ligand_id: str) -> int:
    """Snakemake ``priority`` of a ligand's geometry and CASSCF jobs: :func:`label_cost_estimate` from
    its row of the selection table, so that the largest labels start first and a round does not wait
    for one long job started last (0 while the table does not exist yet, e.g. in a dry run)."""
    p = Path(selection_tsv)
    if not p.exists():
        return 0
    return _selection_costs(str(p), p.stat().st_mtime_ns).get(ligand_id, 0)


def complex_from_proxy_row(row: pd.Series | dict):
    """ase.Atoms of the relaxed complex stored in a proxies row (extxyz text in ``complex_xyz``)."""
    text = row["complex_xyz"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty complex_xyz")
    atoms = from_extxyz(text, index=0)
    atoms.info.setdefault("charge", int(row["complex_charge"]))
    return atoms


def geometry_sha256(text: str) -> str:
    """sha256 of a geometry's extxyz text: the identity of the exact geometry a label was computed on."""
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _geometry_shas(proxies_path: str, mtime_ns: int) -> dict[str, str]:
    df = pd.read_parquet(proxies_path, columns=[LIGAND_ID, "complex_xyz"])
    return {
        lid: geometry_sha256(text if isinstance(text, str) else "")
        for lid, text in zip(df[LIGAND_ID], df["complex_xyz"])
    }


def geometry_sha256_of(proxies_path: str | Path, ligand_id: str) -> str:
    """sha256 of one ligand's complex geometry in a proxies table (read once per table version): the
    param that reruns a ligand's CASSCF job when, and only when, its geometry changed."""
    p = Path(proxies_path)
    if not p.exists():  # not built yet (dry run of a fresh workflow): the job runs anyway
        return ""
    return _geometry_shas(str(p), p.stat().st_mtime_ns).get(ligand_id, "")


def geometry_of(proxies: pd.DataFrame, ligand_id: str) -> str:
    """The extxyz text of one ligand's relaxed complex in a proxies table ("" if its proxy stage failed)."""
    rows = proxies[proxies[LIGAND_ID] == ligand_id]
    if rows.empty:
        raise ValueError(f"ligand {ligand_id} is not in the proxies table")  # a bug upstream, not physics
    text = rows.iloc[0].get("complex_xyz")
    return text if isinstance(text, str) and rows.iloc[0].get("status") == STATUS_OK else ""


def free_ion_filename(result_settings: dict[str, Any]) -> str:
    """File name of the free-ion reference these settings use (it depends on the basis only)."""
    settings = abinitio_settings.settings_from_mapping({**result_settings, "tier": "pointcharge"})
    return f"dy3_free_ion_{settings.key()}.npz"


def provenance(geometry_text: str, settings: abinitio_settings.CasscfSettings) -> dict[str, Any]:
    """Where a label comes from: the exact geometry, the result-changing settings, the code versions."""
    from importlib import metadata

    import pyscf

    from smmflow import __version__
    from smmflow.config import NON_RESULT_KEYS

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return ""

    return {
        "geometry_sha256": geometry_sha256(geometry_text),
        "engine": "pyscf",
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k not in NON_RESULT_KEYS},
        "smmflow_version": __version__,
        "engine_version": pyscf.__version__,
        "tblite_version": version("tblite"),
    }


def job_settings(
    result_settings: dict[str, Any], mem_mb: int, cache_dir: str | None, verbose: int = 0
) -> abinitio_settings.CasscfSettings:
    """Settings of one workflow job: the result-changing settings (the rule's params) plus what changes
    no result: PySCF's memory from the rule's ``mem_mb`` (7/8 of it; the rest is Python's), the
    free-ion cache folder and PySCF's verbosity."""
    return abinitio_settings.settings_from_mapping(
        {**result_settings, "max_memory_mb": int(mem_mb * 7 // 8), "cache_dir": cache_dir, "verbose": int(verbose)}
    )


ENGINES: tuple[str, ...] = ("pyscf", "openmolcas")


def run_job(
    row: pd.Series | dict,
    settings: abinitio_settings.CasscfSettings,
    engine: str = "pyscf",
    openmolcas: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One CASSCF job: a result dict with status ok/failed; input and physics failures are caught.

    ``engine``: ``pyscf`` (this package's engine, every tier) or ``openmolcas`` (tier ``full``; its
    options, e.g. ``basis``, ``threads``, ``mem_mb``, in ``openmolcas``)."""
    import time

    if engine not in ENGINES:
        raise ValueError(f"unknown CASSCF engine {engine!r}; choose one of {ENGINES}")
    t0 = time.perf_counter()
    if row.get("status", STATUS_OK) != STATUS_OK:  # no relaxed complex: say why, not "empty complex_xyz"
        res = casscf.failed_result(settings.tier, f"no relaxed complex (proxy stage failed: {row.get('reason', '')})")
    elif geometry_failure(row.get("complex_xyz")):  # a failed DFT relaxation (rule casscf_geometry)
        res = casscf.failed_result(settings.tier, geometry_failure(row.get("complex_xyz")))
    elif engine == "openmolcas":
        from smmflow.abinitio import openmolcas as om

        try:
            atoms = complex_from_proxy_row(row)
            res = om.OpenMolcasCasscf(tier=settings.tier, **(openmolcas or {})).kernel(atoms)
        except (ValueError, KeyError, om.OpenMolcasError, om.OpenMolcasNotFound) as exc:
            res = om.failed_result(settings.tier, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    else:
        try:
            atoms = complex_from_proxy_row(row)
            res = casscf.run_complex(atoms, settings)
        except (ValueError, KeyError, abinitio_settings.CasscfFailure, np.linalg.LinAlgError) as exc:
            res = casscf.failed_result(settings.tier, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    res.update(
        {LIGAND_ID: row[LIGAND_ID], "smiles": row.get("smiles", ""), "ligand_class": row.get("ligand_class", "")}
    )
    text = row.get("complex_xyz")
    prov = provenance(text if isinstance(text, str) else "", settings)
    if engine == "openmolcas":
        engine_prov = res.get("provenance") or {}
        prov.update(
            engine="openmolcas",
            engine_version=engine_prov.get("openmolcas_version") or "",
            settings={
                "tier": settings.tier,
                **{
                    k: v
                    for k, v in (engine_prov.get("settings") or {}).items()
                    if k not in ("threads", "nprocs", "mem_mb", "timeout_s")
                },
            },
        )
    res["provenance"] = prov
    return res


def pointcharge_proxy_row(row: dict[str, Any], settings: abinitio_settings.CasscfSettings) -> dict[str, Any]:
    """The pointcharge-tier KD ladder of one proxies row as a row of ``POINTCHARGE_PROXY_COLUMNS``."""
    res = run_job(row, dataclasses.replace(settings, tier="pointcharge"))
    lab = label_row(res)
    out: dict[str, Any] = {
        LIGAND_ID: row[LIGAND_ID],
        "status": lab["status"],
        "reason": lab["reason"],
        "wall_s": res.get("wall_s", 0.0),
    }
    for k in range(2, N_KD + 1):
        out[f"pc_kd{k}_cm1"] = lab[f"kd{k}_cm1"]
    for ax in "xyz":
        out[f"pc_g1_{ax}"] = lab[f"g1_{ax}"]
    return out


def pointcharge_proxy_table(
    proxies: pd.DataFrame, settings: abinitio_settings.CasscfSettings, log=None
) -> pd.DataFrame:
    """Pointcharge-tier ladders of the rows whose xTB stage is ok (failed rows are skipped: they have
    no geometry), in one process so that the free-ion reference is loaded once."""
    ok = proxies[proxies["status"] == STATUS_OK]
    return table_of_rows(ok, lambda row: pointcharge_proxy_row(row, settings), POINTCHARGE_PROXY_COLUMNS, log)


def concat_shards(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    """Shard tables of one contract concatenated and sorted by ligand id (an empty contract table if none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_frame(columns)
    df = pd.concat(frames, ignore_index=True)
    check_columns(df, columns, "shards")
    return df.sort_values(LIGAND_ID, kind="mergesort").reset_index(drop=True)[list(columns)]


def label_row(res: dict[str, Any]) -> dict[str, Any]:
    """One labels-table row (``LABEL_COLUMNS``) from a job result."""
    row: dict[str, Any] = {c: None for c in LABEL_COLUMNS}
    for c in (
        LIGAND_ID,
        "smiles",
        "ligand_class",
        "tier",
        "status",
        "reason",
        "wall_s",
        "ueff_cm1",
        "easy_axis_angle_deg",
    ):
        row[c] = res.get(c)
    row["converged"] = bool(res.get("converged", False))
    kd = res.get("kd_energies_cm1")
    g = res.get("g_principal")
    if res.get("status") == STATUS_OK and kd is not None and len(kd) == N_KD and g is not None:
        for c, v in zip(KD_COLUMNS, kd):
            row[c] = float(v)
        for c, v in zip(G_COLUMNS, np.asarray(g, dtype=float).ravel()):
            row[c] = float(v)
    elif res.get("status") == STATUS_OK:
        row["status"], row["reason"] = STATUS_FAILED, "result lacks KD energies or g-values"
    row["reason"] = row["reason"] or ""
    prov = res.get("provenance") or {}
    for c in LABEL_PROVENANCE_COLUMNS:
        row[c] = prov.get(c, "") if c != "settings_json" else json.dumps(prov.get("settings", {}), sort_keys=True)
    return row


def aggregate_labels(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Labels table from per-ligand result JSONs (unreadable files become failed rows)."""
    rows = []
    for p in paths:
        try:
            res = json.loads(Path(p).read_text())
        except (OSError, ValueError) as exc:
            res = {LIGAND_ID: Path(p).stem, "status": STATUS_FAILED, "reason": f"unreadable result: {exc}"}
        rows.append(label_row(res))
    df = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    for c in (*KD_COLUMNS, *G_COLUMNS, "ueff_cm1", "easy_axis_angle_deg", "wall_s"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df
