"""Rule select_revalidation: top-K generated candidates + baseline_k pool ligands per baseline (one round)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.ml.generate import predict_kd
from smmflow.ml.rng import pin_result_threads
from smmflow.ml.vae.trainer import load_trained_model
from smmflow.stages.revalidation import select_for_revalidation

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

pin_result_threads()  # results independent of the thread count (smmflow.ml.rng)
p = sm.params
tm = load_trained_model(sm.input.model)
predict = (lambda smi, cls: predict_kd(tm, smi, cls)) if tm.ensemble is not None else None
sel = select_for_revalidation(
    read_table(sm.input.candidates),
    read_table(sm.input.pool),
    [read_table(path) for path in sm.input.labels],
    int(p.top_k),
    int(p.baseline_k),
    int(p.seed),
    predict=predict,
    baselines=list(p.baselines),
    acquisition=dict(p.acquisition),
    max_tanimoto=p.max_tanimoto,
    ring_strain_guard=bool(p.ring_strain_guard),
)
log.info("selected %s", sel["source"].value_counts().to_dict())
write_table(sel, sm.output.selection)
