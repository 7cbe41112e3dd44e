"""Compare the science outputs of two workflow runs (tests/test_reproducibility.py; also a script).

Science outputs: every table (parquet, tsv), JSON and extended-XYZ geometry under ``results/``,
plus the tensors of every ``model.pt``; left out: Snakemake benchmarks, rule logs, figures, HTML, the free-ion
``.npz`` cache, and the fields that measure time or speed (:data:`TIMING_KEYS`, any key ending in
``_s`` or ``_per_s``). Numbers must agree to ``rtol`` (0 = bit for bit).

    python tests/reproducibility.py RUN_A/results RUN_B/results [--rtol 0]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: timing/throughput fields, whatever their suffix
TIMING_KEYS = frozenset({"wall_s", "cpu_s", "elapsed_s", "train_smiles_per_s", "ligand_shell_scf_s"})
SKIP_DIRS = ("benchmarks", "report", "logs")
SUFFIXES = (".parquet", ".tsv", ".json", ".extxyz", ".pt")


def is_timing(key: str) -> bool:
    return key in TIMING_KEYS or key.endswith(("_s", "_per_s", "_seconds"))


def science_files(results: Path) -> list[str]:
    """Relative paths of the science outputs under ``results``, sorted."""
    out = []
    for p in results.rglob("*"):
        rel = p.relative_to(results)
        if p.is_file() and p.suffix in SUFFIXES and rel.parts[0] not in SKIP_DIRS:
            out.append(rel.as_posix())
    return sorted(out)


def _strip(obj: Any) -> Any:
    """JSON without timing fields."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not is_timing(str(k))}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _same_number(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b if rtol == 0 else math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)
    return a == b


def _diff_json(a: Any, b: Any, rtol: float, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'b' if k not in a else 'a'}")
            else:
                _diff_json(a[k], b[k], rtol, f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff_json(x, y, rtol, f"{where}[{i}]", out)
    elif not _same_number(a, b, rtol):
        out.append(f"{where}: {a!r} != {b!r}")


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)  # text, compared as written
    return df[[c for c in df.columns if not is_timing(str(c))]]


def _same_cell(u: Any, v: Any) -> bool:
    na_u = u is None or (np.ndim(u) == 0 and bool(pd.isna(u)))
    na_v = v is None or (np.ndim(v) == 0 and bool(pd.isna(v)))
    if na_u or na_v:
        return na_u and na_v
    return bool(np.all(u == v))


def _diff_frames(a: pd.DataFrame, b: pd.DataFrame, rtol: float, where: str, out: list[str]) -> None:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        out.append(f"{where}: shape/columns {a.shape} {list(a.columns)[:5]}... != {b.shape}")
        return
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind == "f" and y.dtype.kind == "f":
            same = (
                (x == y) | (np.isnan(x) & np.isnan(y))
                if rtol == 0
                else np.isclose(x, y, rtol=rtol, atol=rtol, equal_nan=True)
            )
        else:
            same = np.array([_same_cell(u, v) for u, v in zip(x, y)], bool)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            out.append(
                f"{where}: column {c!r} differs in {int((~same).sum())} row(s), first row {i}: {x[i]!r} != {y[i]!r}"
            )


def _diff_tsv(a: Path, b: Path, where: str, rtol: float, out: list[str]) -> None:
    fa, fb = _read_table(a), _read_table(b)
    if rtol:  # numbers to within rtol: numeric columns as floats, the rest as text
        fa, fb = (
            f.apply(lambda c: pd.to_numeric(c) if pd.to_numeric(c, errors="coerce").notna().all() else c)
            for f in (fa, fb)
        )
        fa, fb = (f.apply(lambda c: c.astype(float) if c.dtype.kind in "iuf" else c) for f in (fa, fb))
    _diff_frames(fa, fb, rtol, where, out)


def _diff_model(a: Path, b: Path, rtol: float, where: str, out: list[str]) -> None:
    import torch

    def tensors(path: Path) -> dict[str, np.ndarray]:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        flat: dict[str, np.ndarray] = {}

        def walk(obj: Any, key: str) -> None:
            if isinstance(obj, torch.Tensor):
                flat[key] = obj.detach().numpy()
            elif isinstance(obj, dict):
                for k, v in obj.items():
                    walk(v, f"{key}.{k}")
            elif isinstance(obj, (list, tuple)):
                for i, v in enumerate(obj):
                    walk(v, f"{key}[{i}]")

        walk(blob, "")
        return flat

    ta, tb = tensors(a), tensors(b)
    if set(ta) != set(tb):
        out.append(f"{where}: tensor names differ")
        return
    for k in sorted(ta):
        x, y = ta[k], tb[k]
        same = x.shape == y.shape and (np.array_equal(x, y) if rtol == 0 else np.allclose(x, y, rtol=rtol, atol=rtol))
        if not same:
            delta = float(np.max(np.abs(x - y))) if x.shape == y.shape else float("nan")
            out.append(f"{where}: tensor {k} differs (max |delta| {delta:.3g})")


def compare_results(a: Path, b: Path, rtol: float = 0.0) -> list[str]:
    """Differences between the science outputs of two ``results`` folders (empty list: identical)."""
    a, b = Path(a), Path(b)
    fa, fb = science_files(a), science_files(b)
    out = [f"only in {a}: {p}" for p in sorted(set(fa) - set(fb))] + [
        f"only in {b}: {p}" for p in sorted(set(fb) - set(fa))
    ]
    for rel in sorted(set(fa) & set(fb)):
        pa, pb = a / rel, b / rel
        if pa.suffix == ".json":
            _diff_json(_strip(json.loads(pa.read_text())), _strip(json.loads(pb.read_text())), rtol, rel, out)
        elif pa.suffix == ".parquet":
            _diff_frames(_read_table(pa), _read_table(pb), rtol, rel, out)
        elif pa.suffix == ".tsv":
            _diff_tsv(pa, pb, rel, rtol, out)
        elif pa.suffix == ".pt":
            _diff_model(pa, pb, rtol, rel, out)
        elif pa.read_bytes() != pb.read_bytes():
            out.append(f"{rel}: content differs")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    tol = float(args[args.index("--rtol") + 1]) if "--rtol" in args else 0.0
    diffs = compare_results(Path(args[0]), Path(args[1]), tol)
    print("\n".join(diffs) if diffs else "identical science outputs")
    sys.exit(1 if diffs else 0)
