# Proxy labels: GFN2-xTB (sharded) and optional PySCF DFT of the free ligands.
# Needs R() and config["proxies"] (config/config.yaml); the DAG depends on n_shards only.
# Targets for rule all: R("proxies/proxies.parquet"), plus R("proxies/dft.parquet") when
# config["proxies"]["dft"]["enabled"].


wildcard_constraints:
    shard=r"\d+",


rule proxy_xtb:
    input:
        ligands=R("ligands/ligands.parquet"),
    output:
        R("proxies/shards/{shard}.parquet"),
    params:
        # the xTB settings only: editing the DFT block or the runtime does not rerun xTB
        settings=lambda wildcards: stage_settings("proxies", drop=("dft", "pointcharge")),
        n_shards=lambda wildcards: int(config["proxies"]["n_shards"]),
    log:
        R("logs/proxy_xtb/{shard}.log"),
    benchmark:
        R("benchmarks/proxy_xtb/{shard}.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wildcards: int(config["proxies"]["shard_runtime_min"]),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/proxy_xtb.py"


rule aggregate_proxies:
    input:
        shards=expand(
            R("proxies/shards/{shard}.parquet"), shard=range(int(config["proxies"]["n_shards"]))
        ),
    output:
        R("proxies/proxies.parquet"),
    log:
        R("logs/aggregate_proxies/aggregate_proxies.log"),
    benchmark:
        R("benchmarks/aggregate_proxies/aggregate_proxies.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/aggregate_proxies.py"


rule proxy_dft:
    input:
        ligands=R("ligands/ligands.parquet"),
    output:
        R("proxies/dft.parquet"),
    params:
        settings=lambda wildcards: stage_settings("proxies", drop=("pointcharge",)),
    log:
        R("logs/proxy_dft/proxy_dft.log"),
    benchmark:
        R("benchmarks/proxy_dft/proxy_dft.tsv")
    threads: lambda wildcards: int(config["proxies"]["dft"]["threads"])
    resources:
        mem_mb=4000,
        runtime=lambda wildcards: int(config["proxies"]["dft"]["runtime_min"]),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/proxy_dft.py"


rule proxy_pointcharge:
    input:
        proxies=R("proxies/proxies.parquet"),
        free_ion=free_ion_path(),
    output:
        R("proxies/pointcharge/{shard}.parquet"),
    params:
        # the pointcharge tier with the label settings (basis, thresholds): a physics proxy
        settings=lambda wildcards: result_settings(config["casscf"]["settings"]),
        n_shards=lambda wildcards: int(config["proxies"]["pointcharge"]["n_shards"]),
    log:
        R("logs/proxy_pointcharge/{shard}.log"),
    benchmark:
        R("benchmarks/proxy_pointcharge/{shard}.tsv")
    threads: 1
    resources:
        mem_mb=config["casscf"]["mem_mb"],
        runtime=lambda wildcards: int(config["proxies"]["pointcharge"]["shard_runtime_min"]),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/proxy_pointcharge.py"


rule aggregate_pointcharge:
    input:
        shards=expand(
            R("proxies/pointcharge/{shard}.parquet"),
            shard=range(int(config["proxies"]["pointcharge"]["n_shards"])),
        ),
    output:
        R("proxies/pointcharge.parquet"),
    log:
        R("logs/aggregate_pointcharge/aggregate_pointcharge.log"),
    benchmark:
        R("benchmarks/aggregate_pointcharge/aggregate_pointcharge.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/aggregate_pointcharge.py"


register_target(
    "proxies",
    R("proxies/proxies.parquet"),
    *([R("proxies/dft.parquet")] if config["proxies"]["dft"]["enabled"] else []),
    *physics_proxies(),
)
