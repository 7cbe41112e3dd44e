#!/usr/bin/env bash
# Opt-in test (needs root; installs Debian slurm-wlm + munge): start a single-node SLURM on this
# machine and run the tiny end-to-end config through profiles/slurm. Prints the jobs SLURM ran.
#   bash tests/slurm/test_slurm_profile.sh        (from the repo root, with the venv active)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bash "$repo/tests/slurm/start_single_node.sh"
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || pip install -q -e "$repo[slurm]"
work=$(mktemp -d /tmp/smmflow-slurm.XXXX)
ln -s "$repo/config" "$work/config"
ln -s "$repo/resources" "$work/resources"
cd "$work"
start=$(date +%s)
# no accounting database on a test node: poll with squeue instead of sacct
snakemake --snakefile "$repo/Snakefile" --profile "$repo/profiles/slurm" \
  --configfile config/tiny.yaml --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 5 --jobs 4 \
  --default-resources mem_mb=2000 runtime=30 --set-threads casscf=1 proxy_xtb=1 \
  --set-resources casscf:mem_mb=3000 train_vae:mem_mb=3000 proxy_xtb:mem_mb=2000 2>&1 | tee snakemake.log
end=$(date +%s)
echo "== SLURM jobs submitted: $(grep -c 'Job .* has been submitted with SLURM jobid' snakemake.log || true)"
grep -o "SLURM jobid [0-9]*" snakemake.log | head -50 | tr '\n' ' '; echo
echo "== wall time: $((end - start)) s"
test -s results/casscf/labels.parquet
test -s results/rounds/0/generation/candidates.parquet && test -s results/report/rounds.tsv
snakemake --snakefile "$repo/Snakefile" --configfile config/tiny.yaml -n 2>&1 | grep -q "Nothing to be done"
echo "SLURM profile test passed ($work)"
