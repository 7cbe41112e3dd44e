"""casscf: SA-CASSCF(9,7)+SO for one selected ligand; a failed calculation writes status=failed."""

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

import os
from pathlib import Path

from smmflow.io import read_table, write_json_atomic
from smmflow.stages.casscf import job_settings, run_job

# params hold what changes the result; memory follows the rule's mem_mb, verbosity comes from the config
settings = job_settings(
    snakemake.params.settings,
    mem_mb=snakemake.resources.mem_mb,
    cache_dir=os.path.dirname(snakemake.input.free_ion),
    verbose=snakemake.config["casscf"]["settings"].get("verbose", 0),
)
lid = snakemake.wildcards.ligand_id
proxies = read_table(snakemake.input.proxies)
rows = proxies[proxies["ligand_id"] == lid]
if rows.empty:
    raise ValueError(f"ligand {lid} is not in {snakemake.input.proxies}")  # a bug upstream, not physics
row = dict(rows.iloc[0].to_dict(), complex_xyz=Path(snakemake.input.geometry).read_text())
openmolcas = dict(snakemake.params.openmolcas, threads=snakemake.threads, mem_mb=int(snakemake.resources.mem_mb * 7 // 8))
res = run_job(row, settings, engine=snakemake.params.engine, openmolcas=openmolcas)
log.info("%s %s: status %s %s, wall %.1f s", lid, settings.tier, res["status"], res.get("reason", ""), res["wall_s"])
write_json_atomic(snakemake.output.result, res)
