#!/usr/bin/env bash
# Opt-in test (needs root; installs Debian slurm-wlm + munge): start a single-node SLURM on this
# machine and run the tiny end-to-end config through profiles/slurm. Prints the jobs SLURM ran.
#   bash tests/slurm/test_slurm_profile.sh        (from the repo root, with the venv active)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bash "$repo/tests/slurm/start_single_node.sh"
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || pip install -q -e "$repo[slurm]"
extra=()
for f in "$@"; do extra+=(--configfile "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
work=$(mktemp -d /tmp/smmflow-slurm.XXXX)
ln -s "$repo/config" "$work/config"
ln -s "$repo/resources" "$work/resources"
cd "$work"
start=$(date +%s)
# no accounting database on a test node: poll with squeue instead of sacct
snakemake --snakefile "$repo/Snakefile" --profile "$repo/profiles/slurm" \
  --configfile config/tiny.yaml "${extra[@]}" --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 5 --jobs 4 \
  --default-resources mem_mb=2000 runtime=30 --set-threads casscf=1 casscf_revalidation=1 proxy_xtb=1 \
  --set-resources casscf:mem_mb=3000 casscf_revalidation:mem_mb=3000 train_vae:mem_mb=3000 proxy_xtb:mem_mb=2000 2>&1 | tee snakemake.log
end=$(date +%s)
echo "== SLURM jobs submitted: $(grep -c 'Job .* has been submitted with SLURM jobid' snakemake.log || true)"
grep -o "SLURM jobid [0-9]*" snakemake.log | head -50 | tr '\n' ' '; echo
echo "== resources requested per rule (jobs: threads, mem_mb, runtime min)"
python - snakemake.log <<'PY'
import collections, re, sys
rule, seen = None, collections.OrderedDict()
for line in open(sys.argv[1]):
    m = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):", line)
    if m:
        rule, threads = m.group(1), "1"
    t = re.match(r"\s*threads: (\d+)", line)
    if t:
        threads = t.group(1)
    r = re.match(r"\s*resources: (.*)", line)
    if r and rule:
        res = dict(kv.split("=", 1) for kv in r.group(1).split(", ") if "=" in kv)
        key = (rule, threads, res.get("mem_mb"), res.get("runtime"))
        seen[key] = seen.get(key, 0) + 1
for (rule, threads, mem, rt), n in seen.items():
    print(f"  {rule:24s} x{n:<3d} threads={threads} mem_mb={mem} runtime={rt}")
PY
echo "== completed: $(grep -c 'Finished jobid' snakemake.log || true) jobs"
echo "== wall time: $((end - start)) s"
test -s results/casscf/labels.parquet
test -s results/rounds/0/generation/candidates.parquet && test -s results/report/rounds.tsv
snakemake --snakefile "$repo/Snakefile" --configfile config/tiny.yaml "${extra[@]}" -n 2>&1 | grep -q "Nothing to be done"
echo "SLURM profile test passed ($work)"
