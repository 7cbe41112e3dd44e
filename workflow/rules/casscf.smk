# CASSCF stage: stratified subset of the proxy table -> one SA-CASSCF(9,7)+SO job per ligand
# (cached per tier and ligand id) -> labels table. Config block: config["casscf"].

from smmflow.stages.casscf import geometry_sha256_of, label_priority, selected_ids


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
        R("logs/select_subset/select_subset.log"),
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


rule free_ion_reference:
    output:
        free_ion=free_ion_path(),
    params:
        settings=lambda wc: result_settings(config["casscf"]["settings"]),
    log:
        R("logs/free_ion_reference/free_ion_reference.log"),
    benchmark:
        R("benchmarks/free_ion_reference/free_ion_reference.tsv")
    threads: config["casscf"]["threads"]
    resources:
        mem_mb=config["casscf"]["mem_mb"],
        runtime=config["casscf"]["runtime_min"],
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/free_ion_reference.py"


rule casscf_geometry:
    input:
        # ancient: a re-written proxy table reruns no job by itself; the geometry's sha256 (params) does.
        # The param names the table by path, not through `input`: Snakemake ignores params derived from
        # input files when it decides what to rerun.
        proxies=ancient(R("proxies/proxies.parquet")),
    output:
        geometry=R("casscf/geometries/{ligand_id}.extxyz"),
    params:
        geometry_sha256=lambda wc: geometry_sha256_of(R("proxies/proxies.parquet"), wc.ligand_id),
        # geometry.method (xtb | dft) and, for dft, its result-changing options (docs/geometry.md)
        geometry=geometry_settings(),
    log:
        R("logs/casscf_geometry/{ligand_id}.log"),
    benchmark:
        R("benchmarks/casscf_geometry/{ligand_id}.tsv")
    # largest ligands first (a cost estimate from the selection table), so that the labels do not wait
    # for one long job started last; proxy_pointcharge shards (priority 0) fill the gaps
    priority: lambda wc: label_priority(R("casscf/selection.tsv"), wc.ligand_id)
    threads: geometry_resource("threads", 1)
    resources:
        mem_mb=geometry_resource("mem_mb", 1000),
        runtime=geometry_resource("runtime_min", 5),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/casscf_geometry.py"


rule casscf:
    input:
        # the exact geometry of this complex: a changed geometry re-labels the ligand, an unchanged one not
        geometry=R("casscf/geometries/{ligand_id}.extxyz"),
        proxies=ancient(R("proxies/proxies.parquet")),  # the ligand's row: class, charge, proxy status
        free_ion=free_ion_path(),
    output:
        result=R("casscf/{tier}/{ligand_id}.json"),
    params:
        # what changes the result; memory (resources.mem_mb) and verbosity do not
        settings=lambda wc: {**result_settings(config["casscf"]["settings"]), "tier": wc.tier},
        engine=config["casscf"]["engine"],
        openmolcas=lambda wc: result_settings(config["casscf"]["openmolcas"]) if config["casscf"]["engine"] == "openmolcas" else {},
    log:
        R("logs/casscf/{tier}/{ligand_id}.log"),
    benchmark:
        R("benchmarks/casscf/{tier}/{ligand_id}.tsv")
    priority: lambda wc: label_priority(R("casscf/selection.tsv"), wc.ligand_id)
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
        R("logs/aggregate_casscf/aggregate_casscf.log"),
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
