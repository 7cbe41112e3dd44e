# Learning: VAE trained by proxy, learning curve, latent-space generation, published benchmark.
# Needs R(), register_target() and config["learning"] (config/config.yaml).
# Stage targets: "learning" (model, learning curve, generation) and "published_benchmark".
# gpu resource of the training rules: 1 only when config["learning"]["gpu"] asks for one (clusters)

rule train_vae:
    input:
        ligands=R("ligands/ligands.parquet"),
        proxies=R("proxies/proxies.parquet"),
        labels=R("casscf/labels.parquet"),
        extra=config["learning"]["extra_smiles_files"],
    output:
        model=R("model/model.pt"),
        metrics=R("model/metrics.json"),
        history=R("model/history.tsv"),
    params:
        settings=lambda wildcards: config["learning"],
    log:
        "logs/train_vae/train_vae.log",
    benchmark:
        R("benchmarks/train_vae/train_vae.tsv")
    threads: config["learning"]["threads"]
    resources:
        mem_mb=config["learning"]["mem_mb"],
        runtime=config["learning"]["runtime_min"],
        gpu=lambda wildcards: int(bool(config["learning"]["gpu"])),
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/train_vae.py"


rule learning_curve:
    input:
        ligands=R("ligands/ligands.parquet"),
        proxies=R("proxies/proxies.parquet"),
        labels=R("casscf/labels.parquet"),
    output:
        table=R("learning_curve/learning_curve.tsv"),
        plot=R("learning_curve/learning_curve.png"),
    params:
        settings=lambda wildcards: config["learning"],
    log:
        "logs/learning_curve/learning_curve.log",
    benchmark:
        R("benchmarks/learning_curve/learning_curve.tsv")
    threads: config["learning"]["threads"]
    resources:
        mem_mb=config["learning"]["mem_mb"],
        runtime=config["learning"]["runtime_min"],
        gpu=lambda wildcards: int(bool(config["learning"]["gpu"])),
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/learning_curve.py"


rule generate:
    input:
        model=R("model/model.pt"),
        ligands=R("ligands/ligands.parquet"),
        labels=R("casscf/labels.parquet"),
    output:
        candidates=R("generation/candidates.parquet"),
        metrics=R("generation/metrics.json"),
    params:
        settings=lambda wildcards: config["learning"],
    log:
        "logs/generate/generate.log",
    benchmark:
        R("benchmarks/generate/generate.tsv")
    threads: config["learning"]["threads"]
    resources:
        mem_mb=config["learning"]["mem_mb"],
        runtime=config["learning"]["runtime_min"],
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/generate.py"


rule published_benchmark:
    input:
        labels=config["learning"]["published_benchmark"]["labels"],
        proxies=config["learning"]["published_benchmark"]["proxies"] or [],
    output:
        table=R("benchmark/published_learning_curve.tsv"),
        plot=R("benchmark/published_learning_curve.png"),
        metrics=R("benchmark/published_learning_curve.json"),
    params:
        settings=lambda wildcards: config["learning"],
    log:
        "logs/published_benchmark/published_benchmark.log",
    benchmark:
        R("benchmarks/published_benchmark/published_benchmark.tsv")
    threads: config["learning"]["threads"]
    resources:
        mem_mb=config["learning"]["mem_mb"],
        runtime=config["learning"]["runtime_min"],
        gpu=lambda wildcards: int(bool(config["learning"]["gpu"])),
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/published_benchmark.py"


register_target(
    "learning",
    R("model/model.pt"),
    R("learning_curve/learning_curve.tsv"),
    R("generation/candidates.parquet"),
)
register_target("published_benchmark", R("benchmark/published_learning_curve.tsv"))
