# CASSCF stage: stratified subset of the proxy table -> one SA-CASSCF(9,7)+SO job per ligand
# (cached per tier and ligand id) -> labels table. Config block: config["casscf"].

from smmflow.stages.casscf import selected_ids


checkpoint select_subset:
    input:
        proxies=R("proxies/proxies.parquet"),
    output:
        selection=R("casscf/selection.tsv"),
    params:
        size=config["casscf"]["subset_size"],
        seed=config["casscf"]["seed"],
        strata_columns=config["casscf"]["strata_columns"],
        n_bins=config["casscf"]["n_bins"],
    log:
        "logs/select_subset/select_subset.log",
    benchmark:
        R("benchmarks/select_subset/select_subset.tsv")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/select_subset.py"


rule casscf:
    input:
        # ancient: a re-written proxy table does not rerun finished complexes (cache per ligand id)
        proxies=ancient(R("proxies/proxies.parquet")),
    output:
        result=R("casscf/{tier}/{ligand_id}.json"),
    params:
        # what changes the result; memory (resources.mem_mb), cache and verbosity do not
        settings=lambda wc: {**result_settings(config["casscf"]["settings"]), "tier": wc.tier},
    log:
        "logs/casscf/{tier}/{ligand_id}.log",
    benchmark:
        R("benchmarks/casscf/{tier}/{ligand_id}.tsv")
    threads: config["casscf"]["threads"]
    resources:
        mem_mb=config["casscf"]["mem_mb"],
        runtime=config["casscf"]["runtime_min"],
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/casscf.py"


rule aggregate_casscf:
    input:
        # the selected ids are known once the select_subset checkpoint has run
        results=lambda wc: expand(
            R("casscf/{tier}/{ligand_id}.json"),
            tier=config["casscf"]["tier"],
            ligand_id=selected_ids(checkpoints.select_subset.get().output.selection),
        ),
    output:
        labels=R("casscf/labels.parquet"),
    log:
        "logs/aggregate_casscf/aggregate_casscf.log",
    benchmark:
        R("benchmarks/aggregate_casscf/aggregate_casscf.tsv")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/aggregate_casscf.py"


register_target("casscf", R("casscf/labels.parquet"))
