"""The geometry of a complex that gets a CASSCF label (rules ``casscf_geometry`` and
``revalidation_geometry``; config block ``geometry:``).

``geometry.method``:
    * ``xtb``: the xTB-relaxed complex of the ligand's proxies row, as it is;
    * ``dft``: that complex relaxed again with DFT (:class:`smmflow.dft.relax.DyComplexRelaxer`:
      every atom free, no symmetry). A failed or unconverged relaxation, or one that ends in another
      binding mode, writes the xTB geometry marked ``geometry_status=failed`` with the reason; the
      CASSCF job then writes a failed label with that reason instead of labelling it.
Either way the file records its method (``geometry_method`` in the extxyz info line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from smmflow.geometry.contract import from_extxyz, mark_geometry, to_extxyz

log = logging.getLogger(__name__)

GEOMETRY_METHODS: tuple[str, ...] = ("xtb", "dft")


def check_method(method: str) -> str:
    if method not in GEOMETRY_METHODS:
        raise ValueError(f"unknown geometry method {method!r}; choose one of {GEOMETRY_METHODS}")
    return method


def label_geometry(
    xtb_text: str, method: str, dft: Mapping[str, Any] | None = None, *, threads: int = 1, mem_mb: int = 4000
) -> tuple[str, dict[str, Any]]:
    """The geometry file text of one label complex and a summary dict (status, reason, times).

    ``xtb_text``: the extxyz of the xTB-relaxed complex ("" when the proxy stage failed: the result is
    "" too and the CASSCF job reports the proxy failure). ``dft``: the ``geometry.dft`` block.
    Never raises for a chemistry or convergence failure of the DFT relaxation."""
    check_method(method)
    if not isinstance(xtb_text, str) or not xtb_text.strip():
        return "", {"status": "failed", "reason": "no xTB geometry (proxy stage failed)"}
    atoms = from_extxyz(xtb_text, index=0)
    if method == "xtb":
        mark_geometry(atoms, "xtb")
        return to_extxyz(atoms), {"status": "ok", "reason": ""}
    from smmflow.dft.relax import relaxer_from_config, with_xtb_charges

    relaxer = relaxer_from_config(atoms, dft, threads=int(threads), max_memory=int(mem_mb * 7 // 8))
    relaxed = relaxer.kernel()
    summary = {
        "status": relaxer.status,
        "reason": relaxer.reason,
        "n_gradients": relaxer.n_gradients,
        "wall_s": relaxer.wall_s,
        "cpu_s": relaxer.cpu_s,
        "e_tot": relaxer.e_tot,
        "method": relaxer.method(),
        "disp": relaxer.disp_used,
        "gpu": relaxer.gpu_used,
    }
    if relaxer.status == "ok":
        try:  # the point charges of the embedded/pointcharge tiers, at this geometry
            out = with_xtb_charges(relaxed)
        except RuntimeError as exc:  # XtbError
            relaxer.status, relaxer.reason = "failed", f"xTB charges at the DFT geometry: {exc}"
            summary.update(status=relaxer.status, reason=relaxer.reason)
    if relaxer.status == "ok":
        mark_geometry(out, "dft")
        out.info["dft_method"] = relaxer.method()
        out.info["dft_energy_eh"] = float(relaxer.e_tot)
        out.info["dft_n_gradients"] = int(relaxer.n_gradients)
    else:
        out = atoms  # the xTB geometry, marked failed: the CASSCF job writes a failed label
        mark_geometry(out, "dft", relaxer.reason)
    return to_extxyz(out), summary
