"""The workflow config is validated against its schema, with defaults and one clear message."""

from __future__ import annotations

import copy

import pytest
import yaml

from smmflow.config import ConfigError, load_schema, validate_config


@pytest.fixture()
def schema(repo_root):
    return load_schema(repo_root / "workflow/schemas/config.schema.yaml")


@pytest.fixture()
def default_config(repo_root):
    return yaml.safe_load((repo_root / "config/config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "tiny.yaml", "paper.yaml", "published_benchmark.yaml"])
def test_shipped_configs_validate(repo_root, schema, name):
    path = repo_root / "config" / name
    if not path.exists():
        pytest.skip(f"{name} not shipped")
    cfg = yaml.safe_load(path.read_text())
    if name != "config.yaml":  # overlays are applied on top of the defaults, as snakemake does
        base = yaml.safe_load((repo_root / "config/config.yaml").read_text())
        cfg = _merge(base, cfg)
    validate_config(cfg, schema)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_defaults_are_filled(schema, default_config):
    cfg = copy.deepcopy(default_config)
    for key in ("results_dir", "targets"):
        del cfg[key]
    validate_config(cfg, schema)
    assert cfg["results_dir"] == schema["properties"]["results_dir"]["default"]
    assert cfg["targets"] == schema["properties"]["targets"]["default"]


def test_missing_stage_block_is_an_error(schema, default_config):
    cfg = copy.deepcopy(default_config)
    stage = next(k for k, v in cfg.items() if isinstance(v, dict))
    del cfg[stage]
    with pytest.raises(ConfigError, match=rf"'{stage}' is a required property"):
        validate_config(cfg, schema)


def test_misspelt_key_is_one_clear_error(schema, default_config):
    cfg = copy.deepcopy(default_config)
    cfg["sed"] = 3
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg, schema)
    msg = str(exc.value)
    assert msg.count("\n") == 0
    assert "'sed'" in msg and "config error" in msg


def test_wrong_type_names_the_key(schema, default_config):
    cfg = copy.deepcopy(default_config)
    cfg["casscf"]["seed"] = "forty-two"
    with pytest.raises(ConfigError, match=r"config error at 'casscf.seed': 'forty-two' is not of type 'integer'"):
        validate_config(cfg, schema)


def test_nested_wrong_type_names_the_path(schema, default_config):
    cfg = copy.deepcopy(default_config)
    stage = next((k for k, v in cfg.items() if isinstance(v, dict)), None)
    if stage is None:
        pytest.skip("no nested stage block yet")
    sub = schema["properties"][stage]["properties"]
    key = next(k for k, v in sub.items() if v.get("type") in ("integer", "number"))
    cfg[stage][key] = "not-a-number"
    with pytest.raises(ConfigError, match=rf"config error at '{stage}.{key}'"):
        validate_config(cfg, schema)


def test_master_seed_is_gone(schema, default_config):
    """Seeds are per stage; a master ``seed`` that nothing reads is refused, not silently ignored."""
    cfg = copy.deepcopy(default_config)
    cfg["seed"] = 1
    with pytest.raises(ConfigError, match="seed"):
        validate_config(cfg, schema)


def test_result_settings_drop_what_changes_no_result():
    from smmflow.config import result_settings

    block = {"tier": "embedded", "threads": 4, "mem_mb": 8000, "runtime_min": 60, "gpu": True,
             "settings": {"basis": {"default": "x"}, "verbose": 5, "max_memory_mb": 3000}, "dft": {"xc": "b"}}
    assert result_settings(block, drop=("dft",)) == {"tier": "embedded", "settings": {"basis": {"default": "x"}}}
