# Re-validation and active learning: round r's top-K generated ligands and baseline_k pool ligands per
# baseline (random, class_matched, surrogate_screen: active_learning.baselines) -> complex building +
# xTB relaxation -> CASSCF (same tier and settings as the labels) -> predicted vs computed table, hit
# rates, winners, improvement ratio against the strongest baseline; every label feeds round r+1.
# Needs R(), register_target(), round_tables() (learning.smk) and config["active_learning"].
# Stage target "revalidation": every round's metrics and the report figures.

from smmflow.stages.casscf import label_priority, selected_ids


checkpoint select_revalidation:
    input:
        model=R("rounds/{round}/model/model.pt"),
        candidates=R("rounds/{round}/generation/candidates.parquet"),
        pool=R("ligands/ligands.parquet"),
        labels=round_tables("labels"),
    output:
        selection=R("rounds/{round}/revalidation/selection.tsv"),
    params:
        top_k=config["active_learning"]["top_k"],
        baseline_k=config["active_learning"]["baseline_k"],
        baselines=config["active_learning"]["baselines"],
        max_tanimoto=config["active_learning"]["max_tanimoto"],
        seed=lambda wildcards: config["active_learning"]["seed"] + int(wildcards.round),
        # the surrogate screen ranks the pool as the generate rule ranked the candidates
        acquisition={
            "method": config["learning"]["generation"]["acquisition"],
            "kappa": config["learning"]["generation"]["ucb_kappa"],
            "xi": config["learning"]["generation"]["ei_xi"],
        },
        ring_strain_guard=config["learning"]["generation"]["ring_strain_guard"],
    log:
        R("logs/select_revalidation/round{round}.log"),
    benchmark:
        R("benchmarks/select_revalidation/round{round}.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/select_revalidation.py"


rule revalidation_proxies:
    input:
        selection=R("rounds/{round}/revalidation/selection.tsv"),
        pool_proxies=R("proxies/proxies.parquet"),
    output:
        proxies=R("rounds/{round}/revalidation/proxies.parquet"),
    params:
        # the xTB settings only: editing the DFT block or the runtime does not rerun xTB
        settings=lambda wildcards: stage_settings("proxies", drop=("dft", "pointcharge")),
    log:
        R("logs/revalidation_proxies/round{round}.log"),
    benchmark:
        R("benchmarks/revalidation_proxies/round{round}.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wildcards: int(config["proxies"]["shard_runtime_min"]),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/revalidation_proxies.py"


use rule casscf_geometry as revalidation_geometry with:
    input:
        proxies=ancient(R("rounds/{round}/revalidation/proxies.parquet")),
    output:
        geometry=R("rounds/{round}/casscf/geometries/{ligand_id}.extxyz"),
    params:
        geometry_sha256=lambda wc: geometry_sha256_of(
            R(f"rounds/{wc.round}/revalidation/proxies.parquet"), wc.ligand_id
        ),
        geometry=geometry_settings(),
    log:
        R("logs/revalidation_geometry/round{round}/{ligand_id}.log"),
    benchmark:
        R("benchmarks/revalidation_geometry/round{round}/{ligand_id}.tsv")
    priority: lambda wc: label_priority(R(f"rounds/{wc.round}/revalidation/selection.tsv"), wc.ligand_id)


use rule casscf as casscf_revalidation with:
    input:
        geometry=R("rounds/{round}/casscf/geometries/{ligand_id}.extxyz"),
        proxies=ancient(R("rounds/{round}/revalidation/proxies.parquet")),
        free_ion=free_ion_path(),
    output:
        result=R("rounds/{round}/casscf/{tier}/{ligand_id}.json"),
    log:
        R("logs/casscf_revalidation/round{round}/{tier}/{ligand_id}.log"),
    benchmark:
        R("benchmarks/casscf_revalidation/round{round}/{tier}/{ligand_id}.tsv")
    priority: lambda wc: label_priority(R(f"rounds/{wc.round}/revalidation/selection.tsv"), wc.ligand_id)


use rule aggregate_casscf as aggregate_revalidation with:
    input:
        results=lambda wc: expand(
            R("rounds/{round}/casscf/{tier}/{ligand_id}.json"),
            round=wc.round,
            tier=config["casscf"]["tier"],
            # a ligand picked by two methods is computed once
            ligand_id=list(
                dict.fromkeys(selected_ids(checkpoints.select_revalidation.get(round=wc.round).output.selection))
            ),
        ),
    output:
        labels=R("rounds/{round}/revalidation/labels.parquet"),
    log:
        R("logs/aggregate_revalidation/round{round}.log"),
    benchmark:
        R("benchmarks/aggregate_revalidation/round{round}.tsv")


rule revalidate:
    input:
        selection=R("rounds/{round}/revalidation/selection.tsv"),
        labels=R("rounds/{round}/revalidation/labels.parquet"),
        pool_labels=R("casscf/labels.parquet"),
    output:
        table=report(
            R("rounds/{round}/revalidation/revalidation.tsv"),
            caption="../report/revalidation.rst",
            category="Re-validation",
            subcategory="Round {round}",
        ),
        metrics=R("rounds/{round}/revalidation/metrics.json"),
    params:
        threshold_quantile=config["active_learning"]["threshold_quantile"],
        threshold_cm1=config["active_learning"]["threshold_cm1"],
        baselines=config["active_learning"]["baselines"],
    log:
        R("logs/revalidate/round{round}.log"),
    benchmark:
        R("benchmarks/revalidate/round{round}.tsv")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/revalidate.py"


ROUNDS = list(range(config["active_learning"]["rounds"]))
LAST_ROUND = ROUNDS[-1]


rule report_figures:
    input:
        revalidation=expand(R("rounds/{round}/revalidation/revalidation.tsv"), round=ROUNDS),
        metrics=expand(R("rounds/{round}/revalidation/metrics.json"), round=ROUNDS),
        labels=expand(R("rounds/{round}/revalidation/labels.parquet"), round=ROUNDS),
        pool_labels=R("casscf/labels.parquet"),
        model=R(f"rounds/{LAST_ROUND}/model/model.pt"),
        pool=R("ligands/ligands.parquet"),
    output:
        parity=report(R("report/parity.png"), caption="../report/parity.rst", category="Re-validation"),
        hit_rate=report(R("report/hit_rate.png"), caption="../report/hit_rate.rst", category="Re-validation"),
        latent=report(R("report/latent_space.png"), caption="../report/latent.rst", category="Model"),
        ladders=report(R("report/kd_ladders.png"), caption="../report/ladders.rst", category="Best ligands"),
        grid=report(R("report/top_ligands.png"), caption="../report/grid.rst", category="Best ligands"),
        summary=R("report/rounds.tsv"),
        summary_html=report(R("report/rounds.html"), caption="../report/rounds.rst", category="Re-validation"),
        revalidation_html=report(
            R("report/revalidation.html"), caption="../report/revalidation_all.rst", category="Re-validation"
        ),
        pooled=R("report/methods_pooled.tsv"),
        pooled_html=report(R("report/methods_pooled.html"), caption="../report/pooled.rst", category="Re-validation"),
    params:
        seed=config["active_learning"]["seed"],  # bootstrap interval of the pooled comparison
    log:
        R("logs/report_figures/report_figures.log"),
    benchmark:
        R("benchmarks/report_figures/report_figures.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/learning.yaml"
    script:
        "../scripts/report_figures.py"


register_target(
    "revalidation",
    *expand(R("rounds/{round}/revalidation/metrics.json"), round=ROUNDS),
    R("report/rounds.tsv"),
)
