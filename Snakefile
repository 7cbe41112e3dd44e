# smmflow: ligand design for Dy(III) single-molecule magnets (arXiv 2602.23230, reproduced and extended)
#   snakemake --cores 2                        default small run (config/config.yaml)
#   snakemake --profile profiles/slurm         on a SLURM cluster
#   snakemake --configfile config/X.yaml ...   another scale or use (see config/)
#   snakemake --report results/report.html     HTML report of a finished run
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ligands.smk"
include: "workflow/rules/proxies.smk"
include: "workflow/rules/casscf.smk"
include: "workflow/rules/learning.smk"
include: "workflow/rules/revalidation.smk"


rule all:
    input:
        requested_targets(),
    default_target: True
