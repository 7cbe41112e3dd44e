"""select_subset: stratified, seeded subset of the proxy table for CASSCF labelling."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.stages.casscf import select_subset

p = snakemake.params  # noqa: F821
proxies = read_table(snakemake.input.proxies)  # noqa: F821
sel = select_subset(proxies, size=p.size, seed=p.seed, columns=list(p.strata_columns), n_bins=p.n_bins)
log.info("selected %d of %d proxy rows over %d strata", len(sel), len(proxies), sel["stratum"].nunique())
write_table(sel, snakemake.output.selection)  # noqa: F821
