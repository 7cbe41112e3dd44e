"""SMILES tokenizer for donor-first ligand SMILES.

Tokens are the chemically meaningful units of a SMILES string: bracket atoms (``[O-]``,
``[nH]``, ``[C@@H]``), two-letter organic-subset atoms (``Cl``, ``Br``), ring-bond numbers
(``1``, ``%12``), bonds and branches. Joining the tokens gives the string back exactly, so the
donor atom stays first (it is always the first atom token).

Optionally (``representation="selfies"``) ligands are represented as SELFIES (package ``selfies``):
every token string decodes to a valence-valid molecule and the SELFIES of a donor-first SMILES
keeps the donor as its first atom, so decoded ligands stay donor-first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
REPRESENTATIONS: tuple[str, ...] = ("smiles", "selfies")
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

# Order matters: bracket atoms, two-letter atoms, %nn ring closures, then single characters.
_TOKEN_RE = re.compile(r"(\[[^\[\]]+\]|Br|Cl|%\d{2}|[BCNOPSFIbcnops]|[0-9]|[=#\-\+\\/\(\)\.:~@\*\$])")


def tokenize_smiles(smiles: str) -> list[str]:
    """Split a SMILES string into tokens; raise ``ValueError`` if any character is left over."""
    if not isinstance(smiles, str) or not smiles:
        raise ValueError(f"empty or non-string SMILES: {smiles!r}")
    tokens = _TOKEN_RE.findall(smiles)
    if "".join(tokens) != smiles:
        raise ValueError(f"SMILES {smiles!r} has characters the tokenizer does not know")
    return tokens


def tokenize_selfies(smiles: str) -> list[str]:
    """SELFIES tokens of a SMILES string (``ValueError`` if ``selfies`` cannot encode it)."""
    import selfies as sf

    if not isinstance(smiles, str) or not smiles:
        raise ValueError(f"empty or non-string SMILES: {smiles!r}")
    try:
        return list(sf.split_selfies(sf.encoder(smiles, strict=True)))
    except Exception as e:  # selfies raises its own EncoderError
        raise ValueError(f"SELFIES cannot encode {smiles!r}: {e}") from None


@dataclass
class SmilesVocabulary:
    """Token <-> index map with the special tokens ``<pad>``=0, ``<bos>``, ``<eos>``, ``<unk>``.

    ``representation`` is ``smiles`` (tokens of the SMILES string) or ``selfies``; encode takes a
    SMILES either way and decode returns a SMILES either way.
    """

    tokens: list[str] = field(default_factory=lambda: list(SPECIAL_TOKENS))
    representation: str = "smiles"

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError("vocabulary must start with the special tokens")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {self.representation!r}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def tokenize(self, smiles: str) -> list[str]:
        return tokenize_selfies(smiles) if self.representation == "selfies" else tokenize_smiles(smiles)

    def encoded_length(self, smiles: str) -> int:
        """Number of ids :meth:`encode` produces (tokens + ``<bos>`` + ``<eos>``)."""
        return len(self.tokenize(smiles)) + 2

    @classmethod
    def from_smiles(cls, smiles: Iterable[str], representation: str = "smiles") -> "SmilesVocabulary":
        """Vocabulary of every token seen in ``smiles`` (sorted, so it is deterministic)."""
        tok = tokenize_selfies if representation == "selfies" else tokenize_smiles
        seen: set[str] = set()
        for s in smiles:
            seen.update(tok(s))
        return cls(list(SPECIAL_TOKENS) + sorted(seen), representation)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def bos_id(self) -> int:
        return self.index[BOS]

    @property
    def eos_id(self) -> int:
        return self.index[EOS]

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    def encode(self, smiles: str, max_len: int | None = None) -> list[int]:
        """``<bos>`` + token ids + ``<eos>``, padded with ``<pad>`` to ``max_len`` if given.

        Raises ``ValueError`` when the encoded SMILES does not fit in ``max_len``.
        """
        ids = [self.bos_id] + [self.index.get(t, self.unk_id) for t in self.tokenize(smiles)]
        ids.append(self.eos_id)
        if max_len is not None:
            if len(ids) > max_len:
                raise ValueError(f"SMILES {smiles!r} needs {len(ids)} tokens > max_len {max_len}")
            ids = ids + [self.pad_id] * (max_len - len(ids))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids back to a string: stops at ``<eos>``, skips ``<bos>``/``<pad>``."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            tok = self.tokens[i] if 0 <= i < len(self.tokens) else UNK
            out.append("" if tok == UNK else tok)
        text = "".join(out)
        if self.representation == "selfies":
            import selfies as sf

            try:
                return sf.decoder(text) or ""
            except Exception:  # noqa: BLE001 - an undecodable string is just an invalid sample
                return ""
        return text

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "representation": self.representation}

    @classmethod
    def from_dict(cls, d: dict) -> "SmilesVocabulary":
        return cls(list(d["tokens"]), d.get("representation", "smiles"))


def encoded_length(smiles: str) -> int:
    """Number of ids :meth:`SmilesVocabulary.encode` produces (tokens + ``<bos>`` + ``<eos>``)."""
    return len(tokenize_smiles(smiles)) + 2
