"""Relaxed [Dy(H2O)5L2] geometries against the published (BP86 DFT) structural columns.

A seeded, class-stratified sample of published ligands (``resources/published/
kramers_labelled_excerpt.txt``; rows whose published ligand drifted away, Dy-donor > 3 A, are left
out) is built with the workflow's builder and relaxed with each method asked for:

* ``rigid``: GFN2-xTB, ligands as rigid bodies, waters fixed (the workflow default,
  ``proxies.relax_mode: rigid``);
* ``flexible``: GFN2-xTB, every atom but Dy free, a 0.05 A seeded symmetry break (no exact C2);
* ``dft``: the ``rigid`` geometry relaxed again with :class:`smmflow.dft.relax.DyComplexRelaxer`
  (``geometry.method: dft``; the slow one: 5-30 CPU-min per complex).

Per complex: the two Dy-donor distances (each relaxed distance is paired with the published one of
the same rank, shorter with shorter), the L-Dy-L angle, the binding-mode check
(:func:`smmflow.geometry.binding.binding_problems`) and the process CPU time (user + sys) of the
method (the ``dft`` time excludes the ``rigid`` step it starts from). Prints, per class and method,
how many complexes kept both ligands bound (Dy-donor <= 3 A; the workflow fails the others), the MAE
and median absolute error of the distance (over both donors) and the MAE of the angle over those,
how many of them the binding-mode check flags, and the median CPU time; ``--csv`` keeps the
per-complex rows. One worker process per ``--jobs``, each with one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_geometry.py --n 100 --methods rigid flexible --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/bench_geometry.py --n 8 --methods rigid dft --csv dft.csv
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "resources" / "published" / "kramers_labelled_excerpt.txt"
from smmflow.tables import LIGAND_CLASS_CODE  # the one class-code table

CLASS_NAMES = {code: name for name, code in LIGAND_CLASS_CODE.items()}  # published ligand_class -> ours
METHODS = ("rigid", "flexible", "dft")
MAX_PUBLISHED_DONOR_A = 3.0


def sample_published(n: int, seed: int, path: Path = PUBLISHED):
    """``n`` published rows, ``ceil(n/4)`` per class (seeded), whose ligands stayed bound."""
    import pandas as pd

    df = pd.read_csv(path, sep=r"\s+")
    df = df[(df.dist_Dy_donor1_A <= MAX_PUBLISHED_DONOR_A) & (df.dist_Dy_donor2_A <= MAX_PUBLISHED_DONOR_A)]
    per = math.ceil(n / 4)
    parts = [g.sample(n=min(per, len(g)), random_state=seed) for _, g in df.groupby("ligand_class")]
    return pd.concat(parts).reset_index(drop=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(atoms) -> dict:
    from smmflow.geometry.binding import binding_problems
    from smmflow.geometry.descriptors import dy_donor_distances, l_dy_l_angle

    r1, r2 = dy_donor_distances(atoms)
    problems = binding_problems(atoms)
    return {"r1": r1, "r2": r2, "angle": l_dy_l_angle(atoms), "binding": "; ".join(problems)}


def relax_one(smiles: str, methods: tuple[str, ...], seed: int, save_dir: str | None = None) -> dict:
    """Every method on one ligand, in this (1-thread) worker. Never raises. ``save_dir``: each
    relaxed geometry goes to ``save_dir/<method>/<sha1 of the SMILES, 12 hex>.extxyz``."""
    import hashlib

    from smmflow.geometry.builder import build_complex
    from smmflow.geometry.contract import from_extxyz, to_extxyz
    from smmflow.xtb.relax import relax_complex

    out: dict = {"smiles": smiles}
    try:
        c0 = _cpu()
        built = build_complex(smiles, seed=seed)
        out["build_cpu_s"] = _cpu() - c0
    except Exception as exc:  # noqa: BLE001 - a failed ligand is a row, not a crash
        out["error"] = f"build: {exc}"
        return out
    rigid = None
    for m in methods:
        c0, w0 = _cpu(), time.monotonic()
        try:
            if m == "rigid":
                atoms, info = relax_complex(built, mode="rigid", waters="fixed")
                rigid, conv = atoms, info.converged
            elif m == "flexible":
                atoms, info = relax_complex(built, mode="flexible", waters="free", symmetry_break_a=0.05, seed=seed)
                conv = info.converged
            else:
                from smmflow.stages.geometry import label_geometry

                if rigid is None:
                    rigid, _ = relax_complex(built, mode="rigid", waters="fixed")
                    c0, w0 = _cpu(), time.monotonic()
                text, summary = label_geometry(to_extxyz(rigid), "dft", {}, threads=1)
                if summary["status"] != "ok":
                    raise RuntimeError(summary["reason"])
                atoms, conv = from_extxyz(text), True
                out["dft_n_gradients"] = summary.get("n_gradients")
            out[m] = dict(_measure(atoms), converged=bool(conv), cpu_s=_cpu() - c0, wall_s=time.monotonic() - w0)
            if save_dir:
                d = Path(save_dir) / m
                d.mkdir(parents=True, exist_ok=True)
                name = hashlib.sha1(smiles.encode()).hexdigest()[:12]
                atoms.info["smiles"] = smiles
                (d / f"{name}.extxyz").write_text(to_extxyz(atoms))
        except Exception as exc:  # noqa: BLE001
            out[m] = {"error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                      "cpu_s": _cpu() - c0}
    return out


def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def errors(row, pub) -> tuple[float, float, float]:
    """(mean |dr| over both donors (A), signed mean dr (A), |d angle| (deg)); ranks paired."""
    mine = sorted((row["r1"], row["r2"]))
    ref = sorted((pub.dist_Dy_donor1_A, pub.dist_Dy_donor2_A))
    dr = [a - b for a, b in zip(mine, ref)]
    return (abs(dr[0]) + abs(dr[1])) / 2, (dr[0] + dr[1]) / 2, abs(row["angle"] - pub.angle_L_Dy_L_deg)


def summarise(rows: list[dict], sample, methods) -> str:
    """Per method and class: the complexes whose ligands stayed bound (both Dy-donor <= 3 A, the
    workflow's ``max_dy_donor_a``; the rest would be failed rows there) and their errors."""
    pub = {r.smiles: r for r in sample.itertuples()}
    header = ("| method | class | bound / n | MAE Dy-donor (A) | median abs (A) | mean signed (A) | "
              "MAE angle (deg) | binding flagged | median CPU s |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        for cls in (*CLASS_NAMES.values(), "all"):
            sel = [r for r in rows if cls == "all" or CLASS_NAMES[int(pub[r["smiles"]].ligand_class)] == cls]
            ran = [r for r in sel if m in r and "error" not in r[m]]
            ok = [r for r in ran if max(r[m]["r1"], r[m]["r2"]) <= MAX_PUBLISHED_DONOR_A]
            if not sel:
                continue
            errs = [errors(r[m], pub[r["smiles"]]) for r in ok]
            cpu = [r[m]["cpu_s"] for r in ran]
            flagged = sum(bool(r[m]["binding"]) for r in ok)
            if errs:
                lines.append(
                    f"| {m} | {cls} | {len(ok)} / {len(sel)} | {statistics.mean(e[0] for e in errs):.3f} | "
                    f"{statistics.median(e[0] for e in errs):.3f} | {statistics.mean(e[1] for e in errs):+.3f} | "
                    f"{statistics.mean(e[2] for e in errs):.1f} | {flagged} | {statistics.median(cpu):.1f} |"
                )
            else:
                lines.append(f"| {m} | {cls} | 0 / {len(sel)} | - | - | - | - | - | - |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="ligands (ceil(n/4) per class)")
    ap.add_argument("--seed", type=int, default=0, help="sample and builder seed")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=["rigid", "flexible"])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--csv", help="per-complex rows (one line per ligand and method)")
    ap.add_argument("--jsonl", help="raw per-ligand results, appended as they finish (resumable)")
    ap.add_argument("--save-dir", help="keep the relaxed geometries here (<method>/<SMILES sha1>.extxyz)")
    args = ap.parse_args()
    sample = sample_published(args.n, args.seed)
    done: dict[str, dict] = {}
    if args.jsonl and Path(args.jsonl).exists():
        for line in Path(args.jsonl).read_text().splitlines():
            r = json.loads(line)
            done[r["smiles"]] = r
    todo = [s for s in sample.smiles if s not in done]
    print(f"{len(sample)} ligands ({len(done)} done before), methods {args.methods}, jobs {args.jobs}", file=sys.stderr)
    rows = [done[s] for s in sample.smiles if s in done]
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker) as pool:
        futs = {pool.submit(relax_one, s, tuple(args.methods), args.seed, args.save_dir): s for s in todo}
        for fut in as_completed(futs):
            r = fut.result()
            rows.append(r)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
            print(f"{len(rows)}/{len(sample)} {r['smiles']}: " + ", ".join(
                f"{m} " + (f"{r[m]['r1']:.3f}/{r[m]['r2']:.3f} A {r[m]['angle']:.0f} deg {r[m]['cpu_s']:.0f} s"
                           if m in r and "error" not in r[m] else f"{m} failed") for m in args.methods),
                file=sys.stderr, flush=True)
    order = {s: i for i, s in enumerate(sample.smiles)}
    rows.sort(key=lambda r: order[r["smiles"]])
    if args.csv:
        import pandas as pd

        pub = {r.smiles: r for r in sample.itertuples()}
        flat = []
        for r in rows:
            p = pub[r["smiles"]]
            for m in args.methods:
                d = {"smiles": r["smiles"], "ligand_class": CLASS_NAMES[int(p.ligand_class)], "method": m,
                     "pub_r1": p.dist_Dy_donor1_A, "pub_r2": p.dist_Dy_donor2_A, "pub_angle": p.angle_L_Dy_L_deg,
                     "error": r.get("error", "")}
                d.update(r.get(m, {}))
                flat.append(d)
        pd.DataFrame(flat).to_csv(args.csv, index=False)
    print(summarise([r for r in rows if "error" not in r], sample, args.methods))
    n_build_failed = sum("error" in r for r in rows)
    print(f"\n{len(rows)} ligands, {n_build_failed} failed in the builder; seed {args.seed}")


if __name__ == "__main__":
    main()
