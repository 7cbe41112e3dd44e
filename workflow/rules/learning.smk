# Learning: VAE trained by proxy, learning curve, latent-space generation, published benchmark.
# Needs R(), register_target() and config["learning"] (config/config.yaml).
# Stage targets: "learning" (round-0 model and generation, learning curve) and "published_benchmark".
# gpu resource of the training rules: 1 only when config["learning"]["gpu"] asks for one (clusters)
# Active-learning rounds (workflow/rules/revalidation.smk): round r trains on round_tables() of
# common.smk: the pool tables plus the re-validated ligands of rounds < r.


rule train_vae:
    input:
        ligands=round_tables("ligands"),
        proxies=round_tables("proxies"),
        labels=round_tables("labels"),
        physics_proxies=physics_proxies(),
        extra=config["learning"]["extra_smiles_files"],
    output:
        model=R("rounds/{round}/model/model.pt"),
        metrics=R("rounds/{round}/model/metrics.json"),
        history=R("rounds/{round}/model/history.tsv"),
    params:
        # the model does not depend on the curve, generation or benchmark blocks: editing them keeps it
        settings=lambda wildcards: stage_settings(
            "learning", drop=("learning_curve", "generation", "published_benchmark", "gnn")
        ),
    log:
        R("logs/train_vae/round{round}.log"),
    benchmark:
        R("benchmarks/train_vae/round{round}.tsv")
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
        physics_proxies=physics_proxies(),
    output:
        table=R("learning_curve/learning_curve.tsv"),
        plot=report(
            R("learning_curve/learning_curve.png"),
            caption="../report/learning_curve.rst",
            category="Model",
        ),
    params:
        settings=lambda wildcards: stage_settings("learning"),
    log:
        R("logs/learning_curve/learning_curve.log"),
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
        model=R("rounds/{round}/model/model.pt"),
        ligands=round_tables("ligands"),
        labels=round_tables("labels"),
    output:
        candidates=R("rounds/{round}/generation/candidates.parquet"),
        metrics=R("rounds/{round}/generation/metrics.json"),
    params:
        # each round samples afresh: seed = learning.seed + round
        # generated ligands must lie in the enumerated ligand space (config["ligands"] rules)
        settings=lambda wildcards: {
            **stage_settings("learning"),
            "seed": config["learning"]["seed"] + int(wildcards.round),
            "ligand_space": stage_settings("ligands"),
        },
    log:
        R("logs/generate/round{round}.log"),
    benchmark:
        R("benchmarks/generate/round{round}.tsv")
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
        plot=report(
            R("benchmark/published_learning_curve.png"),
            caption="../report/published_learning_curve.rst",
            category="Published benchmark",
        ),
        metrics=R("benchmark/published_learning_curve.json"),
    params:
        settings=lambda wildcards: stage_settings("learning"),
    log:
        R("logs/published_benchmark/published_benchmark.log"),
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
    R("rounds/0/model/model.pt"),
    R("learning_curve/learning_curve.tsv"),
    R("rounds/0/generation/candidates.parquet"),
)
register_target("published_benchmark", R("benchmark/published_learning_curve.tsv"))
