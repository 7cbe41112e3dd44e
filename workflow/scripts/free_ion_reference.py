"""free_ion_reference: SA-CASSCF orbitals and AMFI operator of the bare Dy3+ ion for the configured basis,
computed once and read by every CASSCF job."""

import os

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow.abinitio.free_ion import free_ion_reference
from smmflow.stages.casscf import job_settings

out = snakemake.output.free_ion
settings = job_settings({**snakemake.params.settings, "tier": "pointcharge"}, mem_mb=snakemake.resources.mem_mb,
                        cache_dir=os.path.dirname(out), verbose=snakemake.config["casscf"]["settings"].get("verbose", 0))
ref = free_ion_reference(settings)
if not os.path.exists(out):
    raise RuntimeError(f"free-ion reference was not written to {out}")
log.info("free-ion reference %s: %.1f s", out, ref.wall_s)
