"""The engine against an independent reference: OpenMolcas 22.10 on one fixed geometry
([Dy(H2O)5(OH)2]+, tests/data/README.md), and a regression pin of the workflow's label tier there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smmflow.abinitio.casscf import DyCasscfSO
from smmflow.geometry.contract import from_extxyz

DATA = Path(__file__).resolve().parent / "data"

#: OpenMolcas 22.10, ANO-RCC-VDZP on every atom, DKH2, RICD, AMFI, SA-CASSCF(9,7) x 21 sextets,
#: RASSI + SINGLE_ANISO (shared reference, 2026-12-04): KD energies (cm-1) and ground g
OPENMOLCAS_ANO_RCC_VDZP_KD = (0.0, 531.4, 892.8, 1085.9, 1096.5, 1118.8, 1148.2, 1152.8)
OPENMOLCAS_GROUND_G = (0.000, 0.000, 19.991)
#: the same reference with ANO-R2 on Dy, ANO-R1 on O/H, X2C: KD2 (the basis bracket's upper end)
OPENMOLCAS_ANO_R2_KD2 = 597.7

#: regression pin: this engine's embedded-tier KD2 on this geometry with the default basis (x2c-SVPall),
#: measured 2026-12-04 (configuration-average solver, average_conv_tol_grad 1e-3, 9 iterations: 571.18;
#: 570.92 at 3e-3, 571.32 when converged to 1e-9 Eh); a change beyond 0.5 cm-1 is a change of the
#: physics or of the solver
EMBEDDED_KD2_CM1 = 571.18


def reference_complex():
    atoms = from_extxyz((DATA / "dy_oh2_xtb_charges.extxyz").read_text(), index=0)
    atoms.info["charge"] = 1
    return atoms


def test_embedded_kd2_regression_and_basis_bracket(tmp_path_factory):
    res = DyCasscfSO(reference_complex(), tier="embedded",
                     cache_dir=str(tmp_path_factory.mktemp("free_ion"))).kernel()
    assert res["status"] == "ok", res["reason"]
    kd2 = res["kd_energies_cm1"][1]
    assert abs(kd2 - EMBEDDED_KD2_CM1) <= 0.5, kd2
    # between OpenMolcas with a double-zeta (2 f on Dy) and a larger ANO-R basis: the basis, not the method
    assert OPENMOLCAS_ANO_RCC_VDZP_KD[1] < kd2 < OPENMOLCAS_ANO_R2_KD2
    assert np.allclose(res["g_principal"][0], OPENMOLCAS_GROUND_G, atol=0.05)


@pytest.mark.slow
def test_full_tier_with_openmolcas_basis_reproduces_openmolcas(tmp_path_factory):
    """Same basis as OpenMolcas (ANO-RCC-VDZP everywhere): every KD within 0.5 %, g within 0.01 (~4 min)."""
    res = DyCasscfSO(reference_complex(), tier="full", basis={"default": "ano-rcc-vdzp"},
                     cache_dir=str(tmp_path_factory.mktemp("free_ion_ano"))).kernel()
    assert res["status"] == "ok", res["reason"]
    kd = np.asarray(res["kd_energies_cm1"])
    ref = np.asarray(OPENMOLCAS_ANO_RCC_VDZP_KD)
    assert np.all(np.abs(kd[1:] - ref[1:]) <= 0.005 * ref[1:]), kd
    assert np.allclose(res["g_principal"][0], OPENMOLCAS_GROUND_G, atol=0.01)


def test_float32_df_tensor_keeps_the_float64_kd_ladder(tmp_path_factory):
    """The default float32 DF factors (float64 solve, float32 storage and exchange GEMMs) against
    PySCF's float64 tensor on the reference geometry: every KD within 0.02 % and 0.1 cm-1 (a float32
    solve moved KD2 by up to 0.22 % on the benchmark set: docs/casscf.md)."""
    cache = str(tmp_path_factory.mktemp("free_ion_f32"))
    kd = {}
    for f32 in (True, False):
        res = DyCasscfSO(reference_complex(), tier="embedded", df_float32=f32, cache_dir=cache).kernel()
        assert res["status"] == "ok", res["reason"]
        kd[f32] = np.asarray(res["kd_energies_cm1"])
    assert np.all(np.abs(kd[True] - kd[False]) <= np.minimum(0.1, 2e-4 * kd[False] + 1e-6)), kd


def test_frozen_core_keeps_the_unfrozen_kd_ladder(tmp_path_factory):
    """The default frozen Dy 1s-3d (free-ion orbitals) and ligand inner cores against optimising every
    occupied orbital, both converged to |g| < 1e-5 on the reference geometry: every KD within 0.05 %
    (freezing Dy 4s-4d as well moved KD2 of a diol complex by -0.33 %: docs/casscf.md)."""
    cache = str(tmp_path_factory.mktemp("free_ion_frozen"))
    kd, g = {}, {}
    for frozen in (True, False):
        res = DyCasscfSO(reference_complex(), tier="embedded", frozen_core=frozen, average_conv_tol_grad=1e-5,
                         cache_dir=cache).kernel()
        assert res["status"] == "ok", res["reason"]
        kd[frozen], g[frozen] = np.asarray(res["kd_energies_cm1"]), np.asarray(res["g_principal"][0])
        assert (res["start"]["n_frozen"] > 0) == frozen
    assert np.all(np.abs(kd[True] - kd[False]) <= 5e-4 * kd[False] + 1e-6), kd
    assert np.allclose(g[True], g[False], atol=1e-3)
