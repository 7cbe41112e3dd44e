"""Ligand enumeration: donor rules, donor-first SMILES, ids, filters, rejects, subsampling."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pandas as pd
import pytest
from rdkit import Chem

from smmflow.chem.donors import canonical_donor_smiles, deprotonate, ligand_id
from smmflow.chem.enumerate import (
    LigandFilters,
    enumerate_ligands,
    ligands_from_parent,
    prepare_parent,
    subsample_ligands,
)
from smmflow.chem.sources import SourceRecord, read_smiles_file
from smmflow.cli.enumerate import main
from smmflow.tables import LIGAND_CLASSES, LIGANDS_COLUMNS, REJECTED_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
GARBAGE = ROOT / "tests" / "data" / "garbage_ligands.smi"
CURATED = ROOT / "resources" / "source_molecules" / "curated_donors.smi"


def ligs(smiles: str, **kw) -> set[tuple[str, str]]:
    mol = prepare_parent(smiles, LigandFilters())
    return {(lg.smiles, lg.ligand_class) for lg in ligands_from_parent(mol, **kw)}


def classes(smiles: str, **kw) -> list[str]:
    return sorted(c for _, c in ligs(smiles, **kw))


# ---------------------------------------------------------------- donor detection and classes
@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("CCO", {("OCC", "O"), ("[O-]CC", "O-")}),  # alcohol -> O and alkoxide
        ("CC(C)=O", {("O=C(C)C", "O")}),  # ketone: carbonyl O only
        ("CC=O", {("O=CC", "O")}),  # aldehyde
        ("CC#N", {("N#CC", "N")}),  # nitrile
        ("c1ccncc1", {("n1ccccc1", "N")}),  # pyridine
        ("CCN", {("NCC", "N"), ("[NH-]CC", "N-")}),  # primary amine and its amide anion
        ("CN(C)C", {("N(C)(C)C", "N")}),  # tertiary amine: no N-H, no anion
        ("C1CCOC1", {("O1CCCC1", "O")}),  # ether
        ("c1cc[nH]c1", {("[n-]1cccc1", "N-")}),  # pyrrole: only the azolide anion
        ("c1ccoc1", set()),  # furan: no donor
        ("CCCC", set()),  # alkane: no donor
        ("c1ccccc1", set()),  # benzene: no donor
    ],
)
def test_donor_sites_of_hand_picked_molecules(smiles, expected):
    assert ligs(smiles) == expected


def test_amide_binds_through_oxygen_and_deprotonated_nitrogen():
    # N-methylacetamide: carbonyl O (neutral) and amidate N- (anion); neutral amide N only on request
    assert classes("CC(=O)NC") == ["N-", "O"]
    assert classes("CC(=O)NC", amide_nitrogen_donor=True) == ["N", "N-", "O"]


def test_carbamate_sites():
    # methyl N-methylcarbamate: carbonyl O, alkoxy (ester-type) O, carbamate N- ; no neutral N
    got = ligs("CNC(=O)OC")
    assert {c for _, c in got} == {"O", "N-"}
    assert sum(c == "O" for _, c in got) == 2
    assert ("[N-](C)C(=O)OC", "N-") in got


def test_carboxylic_acid_gives_carboxylate():
    got = ligs("CC(=O)O")
    assert ("[O-]C(C)=O", "O-") in got
    assert {c for _, c in got} == {"O", "O-"}


def test_oxime_has_n_and_o_donors():
    assert classes("CC(C)=NO") == ["N", "O", "O-"]


def test_cations_and_their_neighbours_are_not_donors():
    mol = Chem.MolFromSmiles("C[N+](C)(C)CO")  # choline-like: only the OH counts
    got = {lg.ligand_class for lg in ligands_from_parent(mol)}
    assert got == {"O", "O-"}
    nitro = Chem.MolFromSmiles("C[N+](=O)[O-]")
    assert ligands_from_parent(nitro) == []


def test_symmetric_sites_are_merged():
    # 1,4-dioxane: two equivalent O atoms -> one ligand
    assert ligs("C1COCCO1") == {("O1CCOCC1", "O")}


# ---------------------------------------------------------------- donor-first SMILES and ids
@pytest.mark.parametrize(
    "smiles", ["CCO", "CC(=O)NC", "c1ccncc1", "CC(C)=NO", "NC(=O)OC", "OC1CCC(=O)N1", "c1nc[nH]n1"]
)
def test_donor_first_smiles_round_trips_to_the_same_molecule(smiles):
    parent = prepare_parent(smiles, LigandFilters())
    for lg in ligands_from_parent(parent):
        mol = Chem.MolFromSmiles(lg.smiles)
        assert mol is not None
        first = mol.GetAtomWithIdx(0)
        assert first.GetSymbol() == lg.donor_element
        assert first.GetFormalCharge() == lg.ligand_charge
        assert Chem.GetFormalCharge(mol) == lg.ligand_charge
        assert mol.GetNumHeavyAtoms() == parent.GetNumHeavyAtoms()
        # re-protonating the donor of an anion gives back the parent
        if lg.ligand_charge == -1:
            first.SetFormalCharge(0)
            first.SetNumExplicitHs(first.GetTotalNumHs() + 1)
            Chem.SanitizeMol(mol)
        assert Chem.MolToSmiles(mol) == Chem.MolToSmiles(parent)
        # canonical: writing it again from the donor changes nothing
        assert canonical_donor_smiles(lg.smiles) == lg.smiles


def test_donor_smiles_do_not_depend_on_input_atom_order():
    rng = random.Random(7)
    for smi in ["CC(=O)NCC(=O)O", "OC1CC(N)C1C#N", "Cc1cc(C)[nH]n1", "O=C1NCCO1"]:
        parent = prepare_parent(smi, LigandFilters())
        ref = {lg.smiles for lg in ligands_from_parent(parent)}
        for _ in range(5):
            order = list(range(parent.GetNumAtoms()))
            rng.shuffle(order)
            shuffled = Chem.RenumberAtoms(parent, order)
            assert {lg.smiles for lg in ligands_from_parent(shuffled)} == ref


def test_ligand_id_is_hash_of_canonical_donor_smiles():
    expected = "L" + hashlib.sha256(b"OCC").hexdigest()[:16]
    assert ligand_id("OCC") == expected
    assert ligand_id("O(CC)") == expected  # another donor-first spelling, same ligand
    assert ligand_id("OCC") != ligand_id("CCO")  # a different donor atom is a different ligand
    assert len(ligand_id("N#CC")) == 17
    with pytest.raises(ValueError):
        ligand_id("C1CC")


def test_deprotonate_refuses_atom_without_hydrogen():
    with pytest.raises(ValueError):
        deprotonate(Chem.MolFromSmiles("COC"), 1)


# ---------------------------------------------------------------- enumeration over a source set
SMALL_SET = ["CCO", "CC(C)=O", "CC(=O)NC", "c1ccncc1", "CC#N", "CCN", "CNC(=O)OC", "CCCC", "OCC"]


def records(smiles: list[str], source: str = "test") -> list[SourceRecord]:
    return [SourceRecord(source, i + 1, s) for i, s in enumerate(smiles)]


def test_enumerator_count_on_a_small_fixed_source_set():
    res = enumerate_ligands(records(SMALL_SET))
    # 2 + 1 + 2 + 1 + 1 + 2 + 3 ligands; butane has no donor; OCC duplicates CCO
    assert len(res.ligands) == 12
    assert res.ligands["ligand_class"].value_counts().to_dict() == {"O": 5, "N": 3, "N-": 3, "O-": 1}
    assert list(res.rejected["reason"]) == ["no donor site", "duplicate parent (first at test:1)"]
    assert tuple(res.ligands.columns) == LIGANDS_COLUMNS
    assert tuple(res.rejected.columns) == REJECTED_COLUMNS
    assert res.ligands["ligand_id"].is_unique and res.ligands["smiles"].is_unique
    charges = dict(zip(res.ligands["ligand_charge"], res.ligands["complex_charge"]))
    assert charges == {0: 3, -1: 1}
    assert set(res.ligands["ligand_class"]) <= set(LIGAND_CLASSES)


def test_same_ligand_from_two_parents_appears_once_with_first_source():
    # a donor-rooted ligand determines its neutral parent, so the same ligand reaches the
    # enumerator twice when the same parent comes twice (here spelled differently, two files)
    res = enumerate_ligands(records(["OCC"], "a.smi") + records(["C(O)C"], "b.smi"))
    assert len(res.ligands) == 2
    assert set(res.ligands["source"]) == {"a.smi:1"}
    assert res.rejected["reason"].tolist() == ["duplicate parent (first at a.smi:1)"]


def test_filters_classes_charges_elements_rings():
    only_neutral = LigandFilters(ligand_charges=frozenset({0}))
    res = enumerate_ligands(records(SMALL_SET), only_neutral)
    assert set(res.ligands["ligand_charge"]) == {0}
    only_n = LigandFilters(ligand_classes=frozenset({"N", "N-"}))
    res = enumerate_ligands(records(["CC(C)=O", "CCN"]), only_n)
    assert set(res.ligands["ligand_class"]) == {"N", "N-"}
    assert res.rejected["reason"].tolist() == ["no ligand of the allowed classes/charges"]
    res = enumerate_ligands(records(["CCS", "C1CO1"]), LigandFilters(ring_sizes=frozenset({5, 6})))
    assert res.rejected["reason"].tolist() == ["element not allowed: S", "ring size not allowed: 3"]
    assert res.ligands.empty and tuple(res.ligands.columns) == LIGANDS_COLUMNS


def test_zwitterions_are_neutralised_and_nitro_groups_are_not_donors():
    res = enumerate_ligands(records(["[NH3+]CC(=O)[O-]", "C[N+](=O)[O-]", "OCC[N+](=O)[O-]"]))
    assert set(res.ligands["parent_smiles"]) == {"NCC(=O)O", "O=[N+]([O-])CCO"}
    assert res.rejected["reason"].tolist() == ["no donor site"]  # nitromethane
    nitro_ligs = res.ligands[res.ligands["parent_smiles"] == "O=[N+]([O-])CCO"]
    assert sorted(nitro_ligs["ligand_class"]) == ["O", "O-"]  # only the hydroxyl


def test_charged_inputs_and_fragments_options():
    neutralise = LigandFilters(charged_inputs="neutralise", fragments="largest")
    res = enumerate_ligands(records(["CC[O-]", "CCCO.O"]), neutralise)
    assert set(res.ligands["parent_smiles"]) == {"CCO", "CCCO"}
    assert res.rejected.empty
    with pytest.raises(ValueError):
        LigandFilters(ligand_classes=frozenset({"S"}))
    with pytest.raises(ValueError):
        LigandFilters(ligand_charges=frozenset({1}))


def test_garbage_file_gives_reasons_and_no_crash():
    res = enumerate_ligands(read_smiles_file(GARBAGE))
    assert sorted(res.ligands["parent_smiles"].unique()) == sorted(["CCO", "C1CO1", "c1ccncc1"])
    reasons = dict(zip(res.rejected["line"], res.rejected["reason"]))
    assert (res.rejected["reason"].str.len() > 0).all()
    assert reasons[2].startswith("invalid SMILES")  # header line
    assert reasons[6].startswith("invalid SMILES")
    assert reasons[7].startswith("cannot sanitise")
    assert reasons[8].startswith("cannot sanitise")
    assert reasons[9] == "contains metal: Na"
    assert reasons[10] == "contains metal: Cu"
    assert reasons[11].startswith("radical") and reasons[12].startswith("radical")
    assert reasons[13].startswith("disconnected")
    assert reasons[14].startswith("isotope")
    assert reasons[15].startswith("net charge -1") and reasons[16].startswith("net charge +1")
    assert reasons[17] == "no donor site"
    assert reasons[18] == "element not allowed: S"
    assert "max_heavy_atoms" in reasons[19]
    assert reasons[20].startswith("ring size")
    assert reasons[21].startswith("dummy")
    assert reasons[23].startswith("duplicate") and reasons[24].startswith("duplicate")
    assert reasons[26].startswith("invalid characters")  # undecodable bytes (U+FFFD), not another molecule
    assert "min_heavy_atoms" in reasons[27]
    # blank lines (4, 5) and the comment (1) are not inputs
    assert not {1, 3, 4, 5, 22, 25} & set(reasons)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        list(read_smiles_file(tmp_path / "nope.smi"))


def test_curated_library_is_clean_and_diverse():
    res = enumerate_ligands(read_smiles_file(CURATED))
    assert res.rejected.empty, res.rejected.to_string()
    assert res.stats["parents_used"] >= 250
    counts = res.ligands["ligand_class"].value_counts()
    assert all(counts.get(c, 0) >= 50 for c in LIGAND_CLASSES)


# ---------------------------------------------------------------- subsampling
def test_subsample_is_seeded_stratified_and_order_independent():
    res = enumerate_ligands(read_smiles_file(CURATED))
    lig = res.ligands
    a = subsample_ligands(lig, 100, seed=1)
    b = subsample_ligands(lig.iloc[::-1].reset_index(drop=True), 100, seed=1)
    c = subsample_ligands(lig, 100, seed=2)
    assert len(a) == 100
    assert set(a["ligand_id"]) == set(b["ligand_id"])
    assert set(a["ligand_id"]) != set(c["ligand_id"])
    share = lig["ligand_class"].value_counts(normalize=True)
    got = a["ligand_class"].value_counts()
    for cls, frac in share.items():
        assert abs(got.get(cls, 0) - 100 * frac) <= 1
    assert subsample_ligands(lig, None, 0) is lig
    assert list(a.index) == sorted(a.index)  # input order kept


# ---------------------------------------------------------------- command line
def test_cli_writes_tables(tmp_path):
    out, rej = tmp_path / "l.parquet", tmp_path / "r.tsv"
    rc = main([str(GARBAGE), "-o", str(out), "--rejected", str(rej)])
    assert rc == 0
    assert len(pd.read_parquet(out)) == 4
    assert len(pd.read_csv(rej, sep="\t")) == 22
    assert main([str(tmp_path / "missing.smi")]) == 2


# ---------------------------------------------------------------- molecule generator
from smmflow.chem.grower import GeneratorSettings, generate_smiles, generated_records
from smmflow.chem.stability import unstable_reason


def test_generator_is_seeded_and_respects_its_settings():
    s = GeneratorSettings(n_molecules=150, max_heavy_atoms=7, seed=3)
    a = list(generate_smiles(s))
    assert a == list(generate_smiles(s))
    assert a != list(generate_smiles(GeneratorSettings(n_molecules=150, max_heavy_atoms=7, seed=4)))
    assert len(a) == len(set(a)) == 150
    for smi in a:
        mol = Chem.MolFromSmiles(smi)
        assert 3 <= mol.GetNumHeavyAtoms() <= 7
        assert {x.GetSymbol() for x in mol.GetAtoms()} <= {"C", "N", "O", "F"}
        assert Chem.GetFormalCharge(mol) == 0
        assert all(x.GetNumRadicalElectrons() == 0 for x in mol.GetAtoms())
        assert unstable_reason(mol) is None
        assert all(len(r) in s.ring_sizes for r in mol.GetRingInfo().AtomRings())


def test_generated_molecules_feed_the_enumerator():
    s = GeneratorSettings(n_molecules=100, seed=11)
    res = enumerate_ligands(generated_records(s))
    assert res.stats["inputs"] == 100
    assert res.stats["parents_used"] >= 95
    assert len(res.ligands) > 250  # several donor sites per QM9-sized molecule
    assert set(res.ligands["ligand_class"]) == set(LIGAND_CLASSES)
    assert res.ligands["source"].str.startswith("generator(seed=11):").all()


def test_generator_stops_when_chemical_space_is_exhausted():
    # there are far fewer than 500 distinct stable C/N/O molecules with at most 2 heavy atoms
    s = GeneratorSettings(n_molecules=500, min_heavy_atoms=1, max_heavy_atoms=2, seed=0,
                          max_attempts_per_molecule=5)
    got = list(generate_smiles(s))
    assert 0 < len(got) < 30


@pytest.mark.parametrize(
    "smiles, reason",
    [("C=C=CO", "cumulated"), ("OC1=CC1", "small ring"), ("C1CC#CCC1O", "triple bond in ring"),
     ("CC(F)O", "HF elimination"), ("CC(=O)F", "acyl fluoride"), ("CCN=O", "nitroso"),
     ("COC(OC)(OC)C", "orthoester"), ("COOC", "O-O"), ("CNNNC", "chain"),
     ("OC1CC2=CCC1C2", "Bredt"), ("CCC1=Cc2c[nH]c1c2", "bridged aromatic")],
)
def test_unstable_molecules_are_recognised(smiles, reason):
    got = unstable_reason(Chem.MolFromSmiles(smiles))
    assert got is not None and reason in got


@pytest.mark.parametrize(
    "smiles",
    ["C[N+](=O)[O-]", "Fc1ccccn1", "OC(F)(F)F", "O=C1C2CCC1CC2", "OC1CCC2=C(C1)CCCC2", "CC(C)=NO",
     "CC1=CCCC1=O", "C1CC1=O"],
)
def test_stable_molecules_pass_the_stability_rules(smiles):
    assert unstable_reason(Chem.MolFromSmiles(smiles)) is None


def test_enumerator_applies_stability_rules_unless_disabled():
    res = enumerate_ligands(records(["OOOO", "NNNN", "CCO"]))
    assert res.rejected["reason"].str.startswith("unstable:").tolist() == [True, True]
    res = enumerate_ligands(records(["OOOO", "NNNN", "CCO"]), LigandFilters(stability_rules=False))
    assert res.rejected.empty


def test_generator_rejects_bad_settings():
    with pytest.raises(ValueError):
        GeneratorSettings(elements=("C", "S"))
    with pytest.raises(ValueError):
        GeneratorSettings(elements=("C", "F"))
    with pytest.raises(ValueError):
        GeneratorSettings(min_heavy_atoms=5, max_heavy_atoms=4)


# ---------------------------------------------------------------- config part and its schema
def _config_and_schema():
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "ligands.part.schema.yaml").read_text())
    return cfg, schema, jsonschema


def test_default_config_validates_and_builds_settings():
    cfg, schema, jsonschema = _config_and_schema()
    jsonschema.validate(cfg, schema)
    lig = cfg["ligands"]
    filters = LigandFilters.from_config(lig)
    assert filters.max_heavy_atoms == 9 and set(filters.ligand_classes) == set(LIGAND_CLASSES)
    gen = GeneratorSettings.from_config({k: v for k, v in lig["generator"].items() if k != "enabled"})
    assert gen.n_molecules == lig["generator"]["n_molecules"]
    for f in lig["source_files"]:
        assert (ROOT / f).is_file()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["ligands"].update(max_heavy_atom=9),  # misspelt key
        lambda c: c["ligands"].update(max_heavy_atoms="nine"),  # wrong type
        lambda c: c["ligands"].update(ligand_classes=["O", "S"]),  # unknown class
        lambda c: c["ligands"]["generator"].update(seed=-1),  # out of range
    ],
)
def test_bad_config_is_refused_by_the_schema(mutate):
    cfg, schema, jsonschema = _config_and_schema()
    mutate(cfg)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, schema)


def test_cli_with_generator(tmp_path):
    out, rej = tmp_path / "l.tsv", tmp_path / "r.tsv"
    assert main(["--generate", "50", "--seed", "5", "--max-ligands", "40", "-o", str(out), "--rejected", str(rej)]) == 0
    df = pd.read_csv(out, sep="\t")
    assert len(df) == 40 and df["ligand_id"].is_unique


def test_donor_kinds_name_the_chemistry():
    res = enumerate_ligands(records(["OC(=O)C", "Oc1ccccc1", "CC(=O)NC", "c1cc[nH]c1", "CC(C)=N", "CCO"]))
    kinds = dict(zip(res.ligands["smiles"], res.ligands["donor_kind"]))
    assert kinds["[O-]C(C)=O"] == "carboxylate"
    assert kinds["O=C(C)O"] == "carbonyl"
    assert kinds["[O-]c1ccccc1"] == "phenolate"
    assert kinds["[N-](C)C(C)=O"] == "amidate"
    assert kinds["[n-]1cccc1"] == "aromatic N anion"
    assert kinds["[N-]=C(C)C"] == "imine anion"
    assert kinds["N=C(C)C"] == "imine"
    assert kinds["[O-]CC"] == "alkoxide"


def test_smmflow_enumerate_subcommand(tmp_path):
    from smmflow.cli import main as cli_main

    out = tmp_path / "l.parquet"
    assert cli_main(["enumerate", str(GARBAGE), "-o", str(out), "--rejected", str(tmp_path / "r.tsv")]) == 0
    assert out.is_file()
