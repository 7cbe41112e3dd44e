"""Tokenizer: exact round trips on awkward donor-first SMILES, bad input."""

import pytest

from smmflow.ml.tokenizer import SmilesVocabulary, encoded_length, tokenize_smiles

AWKWARD = [
    "[O-]c1ccccc1Cl",
    "[N-]1C(CC1C(F)(F)F)C",
    "n1cc[nH]c1Br",
    "O=C1CC%10CC1.C%10",
    "OC[C@@H](N)C(=O)O",
    "N/C=C/C#N",
    "[O-]C(=O)c1ccc(I)cc1",
    "OC1C2=CCNC2=NC1",
    "[NH-]c1ccccc1",
]


@pytest.mark.parametrize("smi", AWKWARD)
def test_tokens_join_back_to_the_smiles(smi):
    toks = tokenize_smiles(smi)
    assert "".join(toks) == smi
    assert toks[0][0] in "[ONn"  # donor atom is the first token


def test_multi_character_tokens_stay_whole():
    assert tokenize_smiles("[O-]CCl") == ["[O-]", "C", "Cl"]
    assert tokenize_smiles("n1cc[nH]c1") == ["n", "1", "c", "c", "[nH]", "c", "1"]
    assert "%10" in tokenize_smiles("C%10CC%10")
    assert tokenize_smiles("OBr") == ["O", "Br"]


@pytest.mark.parametrize("smi", AWKWARD)
def test_vocabulary_encode_decode_round_trip(smi):
    vocab = SmilesVocabulary.from_smiles(AWKWARD)
    ids = vocab.encode(smi, max_len=40)
    assert len(ids) == 40 and ids[0] == vocab.bos_id
    assert vocab.decode(ids) == smi
    assert encoded_length(smi) == ids.index(vocab.eos_id) + 1


def test_vocabulary_serialises_and_is_deterministic():
    a = SmilesVocabulary.from_smiles(AWKWARD)
    b = SmilesVocabulary.from_smiles(list(reversed(AWKWARD)))
    assert a.tokens == b.tokens
    assert SmilesVocabulary.from_dict(a.to_dict()).tokens == a.tokens


@pytest.mark.parametrize("bad", ["", "O?C", "C[O-", None])
def test_bad_smiles_raise_value_error(bad):
    with pytest.raises(ValueError):
        tokenize_smiles(bad)


def test_too_long_for_max_len_raises():
    vocab = SmilesVocabulary.from_smiles(["CCCCCC"])
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode("CCCCCC", max_len=5)


def test_unknown_token_decodes_to_nothing():
    vocab = SmilesVocabulary.from_smiles(["OCC"])
    assert vocab.decode(vocab.encode("OCCl")) == "OC"  # Cl is one unknown token


@pytest.mark.parametrize("smi", [s for s in AWKWARD if "." not in s and "%" not in s])
def test_selfies_round_trip_keeps_the_donor_first(smi):
    from rdkit import Chem

    vocab = SmilesVocabulary.from_smiles(AWKWARD[:1] + [smi], representation="selfies")
    back = vocab.decode(vocab.encode(smi))
    a, b = Chem.MolFromSmiles(smi), Chem.MolFromSmiles(back)
    assert Chem.MolToSmiles(a) == Chem.MolToSmiles(b)
    d0, d1 = a.GetAtomWithIdx(0), b.GetAtomWithIdx(0)
    assert (d0.GetSymbol(), d0.GetFormalCharge()) == (d1.GetSymbol(), d1.GetFormalCharge())
    assert vocab.encoded_length(smi) == len(vocab.tokenize(smi)) + 2
    assert SmilesVocabulary.from_dict(vocab.to_dict()).representation == "selfies"


def test_selfies_decodes_any_token_string_to_a_molecule_or_empty():
    from rdkit import Chem

    vocab = SmilesVocabulary.from_smiles(["[O-]C(=O)c1ccccc1", "n1cc[nH]c1"], representation="selfies")
    rng = __import__("numpy").random.default_rng(0)
    for _ in range(50):
        ids = [vocab.bos_id] + list(rng.integers(4, len(vocab), 12))
        s = vocab.decode(ids)
        assert s == "" or Chem.MolFromSmiles(s) is not None


def test_unknown_representation_rejected():
    with pytest.raises(ValueError, match="representation"):
        SmilesVocabulary(representation="inchi")
