"""Rule enumerate_ligands: source SMILES files + generator -> ligands.parquet, rejected.tsv."""

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow.chem.enumerate import LigandFilters, enumerate_ligands, subsample_ligands
from smmflow.chem.grower import GeneratorSettings, generated_records
from smmflow.chem.sources import read_smiles_file
from smmflow.io import write_table



def records(cfg: dict):
    for path in snakemake.input.smiles:
        yield from read_smiles_file(path, source=str(path))
    gen = cfg["generator"]
    if gen["enabled"]:
        settings = GeneratorSettings.from_config(
            {k: v for k, v in gen.items() if k != "enabled"},
            elements=tuple(e for e in cfg["elements"] if e in ("C", "N", "O", "F")),
            max_heavy_atoms=min(gen["max_heavy_atoms"], cfg["max_heavy_atoms"]),
        )
        log.info("generator: %s", settings)
        yield from generated_records(settings)


cfg = snakemake.params.ligands
filters = LigandFilters.from_config(cfg)
log.info("filters: %s", filters)
result = enumerate_ligands(records(cfg), filters)
log.info("enumeration: %s", result.stats)
for reason, n in result.rejected["reason"].str.split(" (", regex=False).str[0].value_counts().items():
    log.info("rejected %6d  %s", n, reason)
ligands = subsample_ligands(result.ligands, cfg["max_ligands"], cfg["seed"])
log.info(
    "kept %d of %d ligands (max_ligands=%s, seed=%s); classes %s",
    len(ligands), len(result.ligands), cfg["max_ligands"], cfg["seed"],
    ligands["ligand_class"].value_counts().to_dict(),
)
write_table(ligands, snakemake.output.ligands)
write_table(result.rejected, snakemake.output.rejected)
