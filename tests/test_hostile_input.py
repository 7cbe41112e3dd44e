"""Bad ligand input is rejected with a reason, quickly, and nothing is lost; bad config is refused
before any job, in one line naming the key."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml

from smmflow.chem.enumerate import LigandFilters, ParentRejected, enumerate_ligands, prepare_parent
from smmflow.chem.sources import read_smiles_file
from smmflow.config import ConfigError, check_config, load_schema

REPO = Path(__file__).resolve().parents[1]


def reason(smiles: str, **filters) -> str | None:
    try:
        prepare_parent(smiles, LigandFilters(**filters))
    except ParentRejected as err:
        return str(err)
    return None


@pytest.mark.parametrize("line", ["OCCÖ", "\x1bCCO", "CCO\u200b", "CCÖ", "C\ufffdO", "CC\x00O"])
def test_non_ascii_and_control_characters_are_invalid(line):
    assert reason(line).startswith("invalid characters"), line
    assert reason(line.replace("Ö", "").replace("\x1b", "").replace("\u200b", "")
                  .replace("\ufffd", "").replace("\x00", "")) != reason(line)


def test_a_huge_line_is_rejected_before_parsing():
    assert reason(".".join(["C"] * 20001)).startswith("SMILES too long")
    assert reason(".".join(["C"] * 40)).startswith("disconnected: 40 fragments")


def test_lone_carriage_return_does_not_shift_line_numbers(tmp_path):
    f = tmp_path / "in.smi"
    f.write_bytes(b"CCO\rCCN name\nOC\r\n# comment\n\nNCC\n")
    recs = list(read_smiles_file(f))
    assert [(r.line, r.smiles) for r in recs] == [(1, "CCO"), (2, "OC"), (5, "NCC")]


def test_largest_fragment_rescues_a_salt():
    salt = "[Na+].[O-]C(=O)C"
    assert reason(salt) == "contains metal: Na"
    assert reason(salt, fragments="largest").startswith("net charge -1")  # acetate: give the neutral parent
    assert reason(salt, fragments="largest", charged_inputs="neutralise") is None
    assert reason("[Na+].[O-]C(=O)C[Fe]", fragments="largest").startswith("contains metal")  # metal in the kept part


@pytest.mark.parametrize("smiles,kept", [
    ("C[N+](C)(C)CC([O-])=O", False),   # betaine: inner salt, anionic end not bonded to the cation
    ("C[N+](=O)[O-]", True),            # nitromethane: one charge-separated group
    ("[O-][n+]1ccccc1", True),          # pyridine N-oxide
    ("OCC[N+](C)(C)C.[Cl-]", False),    # a salt stays a salt
])
def test_zwitterions(smiles, kept):
    r = reason(smiles)
    assert (r is None) == kept, r
    if smiles.startswith("C[N+](C)(C)CC"):
        assert r.startswith("zwitterion")


HOSTILE = [
    "xyz", "C1CC", "C(C", "[Xe]", "[Dy+3]", "[Fe]", "CC[Cu]", "[CH3]", "[CH2]O", "[13CH3]O", "[2H]OC",
    "[Na+].[O-]C", "C[NH3+]", "CC(=O)[O-]", "C[N+](C)(C)CC([O-])=O", "*CO", "OCCÖ", "\x1bCCO", "CCO\u200b",
    "C" * 2000, ".".join(["C"] * 500), "OC(C)" * 60, "CCCCCCCCCCCCCCCCCCCCCCCCO", "OO", "C=C=C", "c1ccccc1",
    "P(O)(O)O", "OCCO", "[O-]c1ccccc1", "N#CC", "O=C1CC1", "n1ccccc1", "OC", "NC", "CO", "CCO",
]


def hostile_file(path: Path, n: int = 1200, seed: int = 0) -> list[int]:
    """A seeded file of hostile lines; returns the numbers of the lines that carry a record."""
    rng = random.Random(seed)
    lines, content = [], []
    for i in range(1, n + 1):
        kind = rng.random()
        if kind < 0.05:
            lines.append("")
        elif kind < 0.10:
            lines.append("# a comment line")
        else:
            lines.append(rng.choice(HOSTILE) + rng.choice(["", " name", "\tid"]))
            content.append(i)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return content


def test_fuzz_every_line_is_kept_or_rejected_and_none_is_lost(tmp_path):
    f = tmp_path / "hostile.smi"
    content = hostile_file(f)
    assert len(content) >= 1000
    res = enumerate_ligands(read_smiles_file(f, source="hostile"), LigandFilters())
    rejected_lines = res.rejected["line"].tolist()
    assert res.rejected["reason"].str.len().min() > 0
    kept_lines = {int(s.rsplit(":", 1)[1]) for s in res.ligands["source"]}
    assert len(rejected_lines) == len(set(rejected_lines))  # one row per rejected line
    assert kept_lines.isdisjoint(rejected_lines)
    assert kept_lines | set(rejected_lines) == set(content)
    assert len(res.ligands) > 0
    reasons = set(res.rejected["reason"].str.split(":").str[0])
    assert {"invalid characters", "contains metal", "duplicate parent (first at hostile"} & reasons


# ----------------------------------------------------------------------------------------------- config
@pytest.fixture(scope="module")
def schema():
    return load_schema(REPO / "workflow/schemas/config.schema.yaml")


@pytest.fixture()
def cfg():
    return copy.deepcopy(yaml.safe_load((REPO / "config/config.yaml").read_text()))


@pytest.mark.parametrize("edit,key", [
    (lambda c: c["learning"].update(proxy_targets=["xtb_nonexistent"]), "learning.proxy_targets"),
    (lambda c: c["learning"].update(struct_features=["no_such"]), "learning.struct_features"),
    (lambda c: c["casscf"].update(strata_columns=["no_such_column"]), "casscf.strata_columns"),
    (lambda c: c["ligands"].update(min_heavy_atoms=10, max_heavy_atoms=5), "ligands.min_heavy_atoms"),
    (lambda c: (c["ligands"].update(source_files=[], user_smiles=[]), c["ligands"]["generator"].update(enabled=False)),
     "ligands.source_files"),
    (lambda c: c["learning"].update(kd_targets=["kd3_cm1", "kd2_cm1"]), "learning.kd_targets"),
])
def test_semantic_config_errors_name_the_key(schema, cfg, edit, key):
    check_config(copy.deepcopy(cfg), schema)  # the default passes
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, schema)
    msg = str(err.value)
    assert msg.count("\n") == 0 and f"'{key}'" in msg, msg
