"""Gaussian basis sets per element, resolved offline.

Names are looked up first in the ``basis-set-exchange`` package (which ships its data, so nothing
is downloaded), then in PySCF's built-in library. The default for every element is the segmented
all-electron ``x2c-SVPall`` family (made for X2C Hamiltonians; Dy: 85 AOs / 200 primitives, about
4x fewer primitives than ANO-RCC-VDZP, which is what makes the Dy integrals cheap).

Never use PySCF's ``def2`` names for Dy: PySCF's def2 files lack lanthanides and
``ecp={'Dy': 'def2-svp'}`` silently builds no ECP.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

#: element -> basis name; "default" applies to every element not listed.
DEFAULT_BASIS: dict[str, str] = {"default": "x2c-svpall"}


@functools.lru_cache(maxsize=256)
def basis_for_element(element: str, name: str) -> list:
    """PySCF basis (internal format) for ``element`` from the basis set called ``name``.

    Raises ``ValueError`` naming the element and basis when neither source has it.
    """
    from pyscf import gto

    errors = []
    try:
        import basis_set_exchange as bse

        text = bse.get_basis(name, elements=[element], fmt="nwchem", header=False)
        return gto.parse(text, element)
    except Exception as exc:  # noqa: BLE001 - fall through to PySCF's library
        errors.append(f"basis-set-exchange: {exc}")
    try:
        basis = gto.basis.load(name, element)
        if basis:
            return basis
        errors.append("pyscf: empty basis")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"pyscf: {exc}")
    raise ValueError(f"no basis {name!r} for element {element}: " + "; ".join(errors))


def basis_map(elements, spec: Mapping[str, str] | None = None) -> dict:
    """Basis dictionary for ``gto.Mole.basis``: ``spec[element]`` or ``spec['default']``."""
    spec = dict(DEFAULT_BASIS if spec is None else spec)
    default = spec.get("default", DEFAULT_BASIS["default"])
    return {el: basis_for_element(el, spec.get(el, default)) for el in sorted(set(elements))}
