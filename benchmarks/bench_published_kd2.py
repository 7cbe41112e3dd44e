"""Our KD2 labels against the published ones: a seeded sample of published ligands, each built and
xTB-relaxed exactly as the workflow's proxy stage does (``smmflow.xtb.proxies.proxy_row`` with the
default settings), then labelled with one CASSCF tier, compared with the published full-CASSCF KD2
(BP86 geometries) per class: Spearman, median ratio ours/published, MAE.

Three steps, so that the labelling can run elsewhere (e.g. a many-core node):

    python benchmarks/bench_published_kd2.py prepare --per-class 8 --out bench_kd2/      # xTB, ~10 s/ligand
    OMP_NUM_THREADS=1 python benchmarks/bench_published_kd2.py label bench_kd2/ --tier embedded --jobs 16
    python benchmarks/bench_published_kd2.py report bench_kd2/ --tier embedded

``report`` also gives the statistics without the complexes that fail the binding-mode check
(:func:`smmflow.geometry.binding.binding_problems`; the proxy stage fails or restarts those since
commit abade82). ``label`` runs every complex in a fresh 1-thread process (``bench_embedded.run_once``), appends to
``bench_kd2/<tier>.jsonl`` as each finishes (a rerun skips what is there) and records the kernel CPU
time (user + sys).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "resources" / "published" / "kramers_labelled_excerpt.txt"
from smmflow.tables import LIGAND_CLASS_CODE  # the one class-code table

CLASS_NAMES = {code: name for name, code in LIGAND_CLASS_CODE.items()}  # published ligand_class -> ours


def prepare(args) -> None:
    import pandas as pd

    from smmflow.xtb.proxies import ProxySettings, proxy_row

    df = pd.read_csv(PUBLISHED, sep=r"\s+")
    df = df[(df.dist_Dy_donor1_A <= 3.0) & (df.dist_Dy_donor2_A <= 3.0)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for cls, g in df.groupby("ligand_class"):
        picked = 0
        for i, r in g.sample(frac=1.0, random_state=args.seed).iterrows():
            if picked >= args.per_class:
                break
            lid = f"pub{int(i):05d}"
            row = proxy_row({"ligand_id": lid, "smiles": r.smiles}, ProxySettings())
            entry = {"ligand_id": lid, "smiles": r.smiles, "class": CLASS_NAMES[int(cls)],
                     "published_kd": [0.0] + [float(r[f"KD{k}_cm1"]) for k in range(2, 9)],
                     "status": row["status"], "reason": row["reason"]}
            manifest.append(entry)
            print(f"{lid} {r.smiles} {entry['class']}: {row['status']} {row['reason']}", file=sys.stderr, flush=True)
            if row["status"] != "ok":
                continue  # the workflow would not label it either
            (out / f"{lid}.extxyz").write_text(row["complex_xyz"])
            picked += 1
    (out / "manifest.json").write_text(json.dumps({"seed": args.seed, "per_class": args.per_class,
                                                   "ligands": manifest}, indent=1))


def label(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_embedded import run_once

    d = Path(args.dir)
    res_path = d / f"{args.tier}.jsonl"
    done = set()
    if res_path.exists():
        done = {json.loads(x)["ligand_id"] for x in res_path.read_text().splitlines() if x.strip()}
    todo = [p for p in sorted(d.glob("*.extxyz")) if p.stem not in done]
    todo.sort(key=lambda p: -p.stat().st_size)  # largest complexes first: better load balance
    overrides = json.loads(args.settings)
    print(f"{len(todo)} complexes to label ({len(done)} done), tier {args.tier}, jobs {args.jobs}", file=sys.stderr)

    def work(p: Path) -> dict:
        try:
            r = run_once(p, args.tier, args.cache_dir, overrides, None)
            return {"ligand_id": p.stem, "status": r["status"], "reason": r["reason"], "kd": r["kd_energies_cm1"],
                    "g": r.get("g_tensors"), "n_ao": r["n_ao"], "cpu_s": r["cpu_kernel_s"],
                    "iterations": r["macro_iterations"]}
        except Exception as exc:  # noqa: BLE001 - one failed complex is a row
            return {"ligand_id": p.stem, "status": "failed", "reason": str(exc)[:300]}

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each worker waits on its own process
        for fut in as_completed([pool.submit(work, p) for p in todo]):
            r = fut.result()
            with open(res_path, "a") as fh:
                fh.write(json.dumps(r) + "\n")
            kd2 = f"{r['kd'][1]:.1f}" if r.get("kd") else "-"
            print(f"{r['ligand_id']}: {r['status']} KD2 {kd2} cpu {r.get('cpu_s', 0):.0f} s {r['reason']}",
                  file=sys.stderr, flush=True)


def spearman(a, b) -> float:
    import pandas as pd

    return float(pd.Series(a).corr(pd.Series(b), method="spearman")) if len(a) > 2 else float("nan")


def report(args) -> None:
    d = Path(args.dir)
    man = {e["ligand_id"]: e for e in json.loads((d / "manifest.json").read_text())["ligands"]}
    rows = [json.loads(x) for x in (d / f"{args.tier}.jsonl").read_text().splitlines() if x.strip()]
    ok = [r for r in rows if r["status"] == "ok"]
    n_xtb_failed = sum(e["status"] != "ok" for e in man.values())
    print(f"tier {args.tier}: {len(ok)} ok of {len(rows)} labelled; {n_xtb_failed} sampled ligands failed in the "
          f"xTB stage (not labelled)")
    print("| class | n | Spearman KD2 | median ratio KD2 ours/published | MAE KD2 (cm-1) | median ratio KD8 | "
          "median CPU s |")
    print("|---|---|---|---|---|---|---|")
    from smmflow.geometry.binding import binding_problems
    from smmflow.geometry.contract import from_extxyz

    flagged = {r["ligand_id"] for r in ok if binding_problems(from_extxyz((d / f"{r['ligand_id']}.extxyz").read_text()))}
    for cls in (*CLASS_NAMES.values(), "all", "all, binding check passed"):
        sel = [r for r in ok if cls.startswith("all") or man[r["ligand_id"]]["class"] == cls]
        if cls.endswith("passed"):
            sel = [r for r in sel if r["ligand_id"] not in flagged]
        if not sel:
            continue
        ours = [r["kd"][1] for r in sel]
        pub = [man[r["ligand_id"]]["published_kd"][1] for r in sel]
        r8 = [r["kd"][7] / man[r["ligand_id"]]["published_kd"][7] for r in sel]
        print(f"| {cls} | {len(sel)} | {spearman(ours, pub):.2f} | "
              f"{statistics.median(o / p for o, p in zip(ours, pub)):.2f} | "
              f"{statistics.mean(abs(o - p) for o, p in zip(ours, pub)):.0f} | {statistics.median(r8):.2f} | "
              f"{statistics.median(r['cpu_s'] for r in sel):.0f} |")
    if args.rows:
        for r in sorted(ok, key=lambda r: (man[r["ligand_id"]]["class"], r["ligand_id"])):
            e = man[r["ligand_id"]]
            print(f"{r['ligand_id']} {e['class']:>2} {e['smiles']:<28} ours {r['kd'][1]:7.1f} / {r['kd'][7]:7.1f}  "
                  f"published {e['published_kd'][1]:7.1f} / {e['published_kd'][7]:7.1f}  {r['n_ao']} AOs "
                  f"{r['cpu_s']:.0f} s" + ("  binding check fails" if r["ligand_id"] in flagged else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("label")
    p.add_argument("dir")
    p.add_argument("--tier", default="embedded", choices=("pointcharge", "embedded", "full"))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--settings", default="{}", help="JSON of CasscfSettings overrides")
    p.add_argument("--cache-dir", default=None, help="free-ion reference cache (default: DIR/free_ion)")
    p = sub.add_parser("report")
    p.add_argument("dir")
    p.add_argument("--tier", default="embedded")
    p.add_argument("--rows", action="store_true", help="also print every complex")
    args = ap.parse_args()
    if args.cmd == "label" and args.cache_dir is None:
        args.cache_dir = str(Path(args.dir) / "free_ion")
    {"prepare": prepare, "label": label, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
