"""The configuration-average SCF is the SA-CASSCF over every determinant of the active shell:
same energy, same gradient, same converged orbitals and states as PySCF's SA-CASSCF."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from smmflow.abinitio import configuration_average as cav

#: water dimer triplet, 6-31G, density fitted: 20 electrons, 26 MOs
GEOMETRY = "O 0 0 0; H 0 0.76 0.58; H 0 -0.76 0.58; O 2.8 0 0; H 3.3 0.7 0.3; H 3.3 -0.7 0.3"


@pytest.fixture(scope="module")
def water_dimer():
    from pyscf import gto, scf

    mol = gto.M(atom=GEOMETRY, basis="6-31g", spin=2, verbose=0)
    mf = scf.ROHF(mol).density_fit().run()
    return mol, mf


def _random_orbitals(mf, seed: int, scale: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    nmo = mf.mo_coeff.shape[1]
    x = rng.normal(size=(nmo, nmo)) * scale
    return mf.mo_coeff @ cav._expm_antisymmetric(x - x.T).real


def _all_determinant_sa(mf, ncas, nelecas):
    """PySCF SA-CASSCF object averaging over every determinant of the active shell."""
    from math import comb

    from pyscf import mcscf

    nroots = comb(ncas, nelecas[0]) * comb(ncas, nelecas[1])
    mc = mcscf.DFCASSCF(mf, ncas, nelecas).state_average_([1.0 / nroots] * nroots)
    mc.fcisolver.nroots = nroots
    return mc


def test_shell_coefficients_known_cases():
    dy = cav.shell_coefficients(7, (7, 2))  # 4f^9 sextets
    assert (Fraction(dy.n).limit_denominator(100), Fraction(dy.alpha).limit_denominator(100),
            Fraction(dy.beta).limit_denominator(100)) == (Fraction(9, 7), Fraction(17, 21), Fraction(11, 21))
    closed = cav.shell_coefficients(5, (5, 5))  # a filled shell is a closed shell: sum (2J - K)
    assert (closed.n, closed.alpha, closed.beta) == (2.0, 2.0, 1.0)
    one = cav.shell_coefficients(7, (1, 0))  # one electron: no self-interaction
    assert (one.alpha, one.beta) == (0.0, 0.0)
    with pytest.raises(ValueError):
        cav.shell_coefficients(3, (4, 0))


@pytest.mark.parametrize("ncas,nelecas", [(4, (3, 1)), (3, (2, 2))])
def test_average_energy_and_gradient_equal_pyscf_sa_casscf(water_dimer, ncas, nelecas):
    """At arbitrary orbitals: energy = mean of all CASCI roots, gradient = 2 x PySCF's g_orb."""
    mol, mf = water_dimer
    ncore = (mol.nelectron - sum(nelecas)) // 2
    mo = _random_orbitals(mf, seed=3)
    mc = _all_determinant_sa(mf, ncas, nelecas)
    eris = mc.ao2mo(mo)
    e_sa, _, ci = mc.casci(mo, ci0=None, eris=eris)[:3]
    terms = cav.average_energy_terms(mf.get_hcore(), lambda dm: mf.get_jk(mol, dm), mo, ncore, ncas,
                                     cav.shell_coefficients(ncas, nelecas), mol.energy_nuc())
    assert terms.energy == pytest.approx(e_sa, abs=1e-9)
    casdm1, casdm2 = mc.fcisolver.make_rdm12(ci, ncas, nelecas)
    g_pyscf = mc.gen_g_hop(mo, 1, casdm1, casdm2, eris)[0]
    nmo = mo.shape[1]
    ours = terms.gradient[mc.uniq_var_indices(nmo, ncore, ncas, mc.frozen)]
    assert np.abs(g_pyscf).max() > 0.1  # not at a stationary point
    np.testing.assert_allclose(ours, 2.0 * g_pyscf, atol=1e-8)
    np.testing.assert_allclose(terms.gradient, -terms.gradient.T, atol=1e-12)


def test_optimised_orbitals_reproduce_pyscf_sa_casscf(water_dimer):
    """Minimising the average from the ROHF orbitals lands on PySCF's SA-CASSCF solution: same
    averaged energy and the same CASCI state energies on the final orbitals."""
    from pyscf import fci

    mol, mf = water_dimer
    ncas, nelecas = 4, (3, 1)
    ncore = (mol.nelectron - 4) // 2
    res = cav.optimise_average_orbitals(mf.get_hcore(), lambda dm: mf.get_jk(mol, dm), mf.mo_coeff, ncore, ncas,
                                        nelecas, mol.energy_nuc(), conv_tol=1e-11, conv_tol_grad=1e-6)
    assert res.converged and res.iterations < 30
    assert res.history[-1]["norm_gorb"] < 1e-6
    mc = _all_determinant_sa(mf, ncas, nelecas)
    mc.conv_tol = 1e-11
    mc.kernel()
    assert mc.converged
    assert res.energy == pytest.approx(mc.e_tot, abs=1e-8)
    c_act = res.mo_coeff[:, ncore : ncore + ncas]
    h1 = c_act.T @ res.terms.core_fock_ao @ c_act
    h2 = mf.with_df.ao2mo(c_act, compact=False).reshape([ncas] * 4)
    e, _ = fci.direct_spin1.FCI(mol).kernel(h1, h2, ncas, nelecas, nroots=16, ecore=res.terms.core_energy)
    np.testing.assert_allclose(np.sort(e), np.sort(mc.e_states), atol=1e-7)


def test_frozen_orbitals_do_not_move(water_dimer):
    mol, mf = water_dimer
    mo0 = _random_orbitals(mf, seed=5, scale=0.02)
    res = cav.optimise_average_orbitals(mf.get_hcore(), lambda dm: mf.get_jk(mol, dm), mo0, 8, 4, (3, 1),
                                        mol.energy_nuc(), max_cycle=5, frozen=2)
    np.testing.assert_allclose(res.mo_coeff[:, :2], mo0[:, :2], atol=1e-12)
    assert np.abs(res.mo_coeff[:, 2:] - mo0[:, 2:]).max() > 1e-3  # the rest did move
    assert res.history[-1]["e_tot"] < res.history[0]["e_tot"]
