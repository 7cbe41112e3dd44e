"""casscf: SA-CASSCF(9,7)+SO for one selected ligand; a failed calculation writes status=failed."""

import logging

from smmflow.abinitio.settings import settings_from_mapping
from smmflow.io import read_table, write_json_atomic
from smmflow.stages.casscf import run_job

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
lid = snakemake.wildcards.ligand_id  # noqa: F821
settings = settings_from_mapping(dict(snakemake.params.settings))  # noqa: F821
proxies = read_table(snakemake.input.proxies)  # noqa: F821
rows = proxies[proxies["ligand_id"] == lid]
if rows.empty:
    raise ValueError(f"ligand {lid} is not in {snakemake.input.proxies}")  # a bug upstream, not physics  # noqa: F821
res = run_job(rows.iloc[0].to_dict(), settings)
logging.info("%s %s: status %s %s, wall %.1f s", lid, settings.tier, res["status"], res.get("reason", ""), res["wall_s"])
write_json_atomic(snakemake.output.result, res)  # noqa: F821
