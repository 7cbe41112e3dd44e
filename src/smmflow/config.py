"""Workflow configuration: JSON-schema validation with defaults and one clear error message."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from smmflow import tables

#: config keys that change no result (resources, caches, verbosity): rule params leave them out, so
#: editing them never reruns a job (``snakemake -n`` plans nothing)
NON_RESULT_KEYS: frozenset[str] = frozenset(
    {"threads", "mem_mb", "runtime_min", "shard_runtime_min", "gpu", "cache_dir", "max_memory_mb", "verbose"}
)


def result_settings(block: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``block`` without the keys that change no result (:data:`NON_RESULT_KEYS`, at any depth) and
    without the sub-blocks in ``drop``: what a rule's ``params`` may hold."""
    return {k: (result_settings(v) if isinstance(v, Mapping) else v) for k, v in block.items()
            if k not in NON_RESULT_KEYS and k not in drop}


class ConfigError(ValueError):
    """The configuration breaks its schema; the message names the key, the value and the rule."""


def _extend_with_defaults(validator_class: type) -> type:
    """A validator that fills in ``default`` values of properties while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(prop, _copy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft7Validator)


def load_schema(path: str | Path) -> dict[str, Any]:
    """Load the config schema and merge the per-stage fragments beside it.

    Each stage documents its own block in ``<stage>.part.schema.yaml`` next to the main schema
    (``properties: {<stage>: {...}}``); they are merged into the top-level ``properties`` and every
    stage block is required.
    """
    path = Path(path)
    with open(path) as fh:
        schema: dict[str, Any] = yaml.safe_load(fh)
    for part in sorted(path.parent.glob("*.part.schema.yaml")):
        with open(part) as fh:
            fragment = yaml.safe_load(fh) or {}
        for name, sub in (fragment.get("properties") or {}).items():
            if name in schema["properties"]:
                raise ValueError(f"{part.name}: config key {name!r} is already defined")
            schema["properties"][name] = sub
            schema.setdefault("required", []).append(name)
    return schema


def _where(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def validate_config(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place against ``schema``, filling defaults.

    Raises :class:`ConfigError` with a single line per problem such as
    ``config error at 'proxies.n_shards': 'two' is not of type 'integer'``.
    """
    validator = _DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            msg = err.message
            if err.validator == "additionalProperties":
                msg = f"{msg} (check the spelling against workflow/schemas/config.schema.yaml)"
            lines.append(f"config error at '{_where(err)}': {msg}")
        raise ConfigError("\n".join(lines))
    return config


def _numeric_proxy_columns() -> tuple[str, ...]:
    return (*tables.XTB_LIGAND_COLUMNS, *tables.XTB_COMPLEX_COLUMNS)


def semantic_errors(config: Mapping[str, Any]) -> list[str]:
    """What the schema cannot see: column names against :mod:`smmflow.tables`, ranges that must be
    ordered, a ligand stage with no input. One line per problem, naming the key."""
    errors = []

    def unknown(key: str, names, allowed) -> None:
        bad = [n for n in names if n not in allowed]
        if bad:
            errors.append(f"config error at '{key}': unknown column(s) {bad}; known: {sorted(allowed)}")

    numeric = _numeric_proxy_columns()
    lig = config.get("ligands", {})
    if lig.get("min_heavy_atoms", 0) > lig.get("max_heavy_atoms", 1 << 30):
        errors.append(f"config error at 'ligands.min_heavy_atoms': {lig['min_heavy_atoms']} > "
                      f"max_heavy_atoms {lig['max_heavy_atoms']}")
    gen = lig.get("generator", {})
    if gen.get("enabled") and gen.get("min_heavy_atoms", 0) > min(gen.get("max_heavy_atoms", 1 << 30),
                                                                  lig.get("max_heavy_atoms", 1 << 30)):
        errors.append(f"config error at 'ligands.generator.min_heavy_atoms': {gen['min_heavy_atoms']} > "
                      "generator/ligands max_heavy_atoms")
    if lig and not lig.get("source_files") and not lig.get("user_smiles") and not gen.get("enabled"):
        errors.append("config error at 'ligands.source_files': no ligand source (source_files and user_smiles "
                      "are empty and the generator is disabled)")
    cas = config.get("casscf", {})
    if cas.get("engine") == "openmolcas" and cas.get("tier") != "full":
        errors.append(f"config error at 'casscf.engine': openmolcas computes tier 'full' only, not {cas.get('tier')!r}")
    unknown("casscf.strata_columns", cas.get("strata_columns", []), numeric)
    learn = config.get("learning", {})
    prox = config.get("proxies", {})
    dft = tuple(tables.DFT_LIGAND_COLUMNS) if prox.get("dft", {}).get("enabled") else ()
    pc = tuple(tables.POINTCHARGE_PROXY_TARGETS) if prox.get("pointcharge", {}).get("enabled") else ()
    unknown("learning.proxy_targets", learn.get("proxy_targets", []), (*numeric, *dft, *pc))
    unknown("learning.struct_features", learn.get("struct_features", []), tables.XTB_COMPLEX_COLUMNS)
    unknown("learning.kd_targets", learn.get("kd_targets", []), tables.KD_COLUMNS[1:])
    kd = learn.get("kd_targets") or [tables.FIRST_EXCITED_KD]
    if kd[0] != tables.FIRST_EXCITED_KD:
        errors.append(f"config error at 'learning.kd_targets': the first target must be {tables.FIRST_EXCITED_KD!r}")
    pb = learn.get("published_benchmark", {})
    unknown("learning.published_benchmark.gnn_targets", pb.get("gnn_targets", []), tables.KD_COLUMNS[1:])
    return errors


def check_config(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Schema validation (with defaults), then :func:`semantic_errors`; raises :class:`ConfigError`."""
    validate_config(config, schema)
    errors = semantic_errors(config)
    if errors:
        raise ConfigError("\n".join(errors))
    return config
