"""Rule proxy_pointcharge: the pointcharge-tier KD ladder of one shard of the xTB-relaxed complexes."""

import os

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow.io import read_table, write_table
from smmflow.stages.casscf import job_settings, pointcharge_proxy_table
from smmflow.xtb.proxies import shard

settings = job_settings({**snakemake.params.settings, "tier": "pointcharge"}, mem_mb=snakemake.resources.mem_mb,
                        cache_dir=os.path.dirname(snakemake.input.free_ion),
                        verbose=snakemake.config["casscf"]["settings"].get("verbose", 0))
part = shard(read_table(snakemake.input.proxies), int(snakemake.wildcards.shard), snakemake.params.n_shards)
table = pointcharge_proxy_table(part, settings, log)
log.info("ok %d, failed %d", int((table["status"] == "ok").sum()), int((table["status"] != "ok").sum()))
write_table(table, snakemake.output[0])
