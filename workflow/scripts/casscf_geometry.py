"""casscf_geometry: one ligand's label geometry as a file, the input of its CASSCF job: the relaxed
complex of its proxies row (geometry.method xtb) or that complex relaxed again with DFT (dft); a failed
DFT relaxation writes the xTB geometry marked failed with the reason (the CASSCF job then writes a
failed label); empty for a ligand whose proxy stage failed (the job then reports that reason)."""

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow.io import read_table, write_text_atomic
from smmflow.stages.casscf import geometry_of
from smmflow.stages.geometry import label_geometry

lid = snakemake.wildcards.ligand_id
xtb_text = geometry_of(read_table(snakemake.input.proxies), lid)
params = snakemake.params.geometry
text, summary = label_geometry(
    xtb_text, params["method"], params.get("dft"), threads=snakemake.threads, mem_mb=snakemake.resources.mem_mb
)
log.info(
    "%s: %s geometry, %s %s; %s",
    lid,
    params["method"],
    summary["status"],
    summary["reason"],
    {k: v for k, v in summary.items() if k not in ("status", "reason")},
)
log.info("%s: %d characters, xTB geometry sha256 %s", lid, len(text), snakemake.params.geometry_sha256)
write_text_atomic(snakemake.output.geometry, text)
