"""Rule published_benchmark: learning curve of KD2_cm1 on the published excerpt (resources/published)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.ml.published_benchmark import run_published_benchmark
from smmflow.ml.rng import RESULT_THREADS
from smmflow.ml.vae.trainer import TrainConfig

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

s = sm.params.settings
b = s["published_benchmark"]
df = run_published_benchmark(
    sm.input.labels,
    sm.input.proxies or None,
    sm.output.table,
    sm.output.plot,
    sm.output.metrics,
    n_trains=b["n_trains"],
    n_test=int(b["n_test"]),
    split_seed=int(b["split_seed"]),
    seed=int(s["seed"]),
    model_cfg=dict(b["model"]),
    train_cfg=TrainConfig(**b["training"], device=s["device"], threads=RESULT_THREADS),
    ensemble_cfg=dict(b["ensemble"]),
    modes=b["modes"],
    gnn_modes=b["gnn_modes"],
    gnn_cfg=dict(b["gnn"]),
    gnn_targets=b["gnn_targets"],
    max_dy_donor_distance_a=b["max_dy_donor_distance_a"],
)
log.info("\n%s", df.to_string())
