# Helpers shared by the stage files (config validation, result paths, the target registry).
from pathlib import Path

from snakemake.exceptions import WorkflowError

from smmflow.config import ConfigError, check_config, load_schema, result_settings
from smmflow.stages.casscf import free_ion_filename

try:
    check_config(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

#: stage name -> output files that the default target (all) asks for when the stage is in config["targets"]
TARGETS: dict[str, list[str]] = {}


def R(path: str) -> str:
    """A path under the configured results directory."""
    return f"{config['results_dir']}/{path}"


def register_target(stage: str, *paths: str) -> None:
    """Declare outputs of ``stage`` that the default target (all) builds when the stage is requested."""
    TARGETS.setdefault(stage, []).extend(paths)


def requested_targets() -> list[str]:
    unknown = [s for s in config["targets"] if s not in TARGETS]
    if unknown:
        raise WorkflowError(
            f"config error at 'targets': unknown stage(s) {unknown}; known: {sorted(TARGETS)}"
        )
    return [p for stage in config["targets"] for p in TARGETS[stage]]


def stage_settings(stage: str, drop: tuple[str, ...] = ()) -> dict:
    """What of config[stage] a rule's params may hold: without the sub-blocks in ``drop`` and without
    resources, caches and verbosity (smmflow.config.NON_RESULT_KEYS), so that editing what does not
    change an output never reruns its rule."""
    return result_settings(config[stage], drop)


wildcard_constraints:
    round=r"\d+",


def round_tables(kind: str):
    """Input function: the `kind` tables (ligands, proxies, labels) that round r trains on."""
    pool = {
        "ligands": R("ligands/ligands.parquet"),
        "proxies": R("proxies/proxies.parquet"),
        "labels": R("casscf/labels.parquet"),
    }[kind]
    revalidated = {"ligands": "selection.tsv", "proxies": "proxies.parquet", "labels": "labels.parquet"}[kind]

    def tables_of_round(wildcards) -> list[str]:
        earlier = range(int(wildcards.round))
        return [pool] + [R(f"rounds/{q}/revalidation/{revalidated}") for q in earlier]

    return tables_of_round


def free_ion_path() -> str:
    """The free-ion reference of the configured basis (one file per basis; every CASSCF job reads it)."""
    return R(f"casscf/free_ion/{free_ion_filename(result_settings(config['casscf']['settings']))}")


def physics_proxies() -> list[str]:
    """The pointcharge-ladder proxy table when proxies.pointcharge.enabled (an input of the learning rules)."""
    return [R("proxies/pointcharge.parquet")] if config["proxies"]["pointcharge"]["enabled"] else []


def geometry_settings() -> dict:
    """The label-geometry params: the method and, for dft, its options (no resources)."""
    g = config["geometry"]
    return {"method": g["method"], **({"dft": result_settings(g["dft"])} if g["method"] == "dft" else {})}


def geometry_resource(key: str, xtb_value: int) -> int:
    """A resource of the label-geometry rules: the geometry block's for dft, a copy's for xtb."""
    return int(config["geometry"][key]) if config["geometry"]["method"] == "dft" else xtb_value
