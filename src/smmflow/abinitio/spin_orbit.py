"""Spin-orbit coupling: Breit-Pauli one-electron term + atomic mean-field two-electron term, and the
spin-orbit state interaction among the SA-CASSCF sextets.

Conventions
-----------
``H_SO = sum_i h(i) . s(i)`` with ``h_k = c * i * (alpha^2/2) * X_k`` and ``X_k`` real antisymmetric:
``X = <mu| sum_A Z_A (r_A / r_A^3) x nabla |nu>`` (PySCF ``int1e_pnucxp``) plus the spin-orbit
mean field (SOMF) of the two-electron Breit-Pauli term, ``J - 3/2 (K + K')`` with the spin-averaged
density (Hess, Marian, Wahlgren, Gropen 1996; Neese 2005). In the atomic-mean-field (AMFI) flavour
used here the two-electron part is evaluated on the bare Dy atom with the free-ion SA-CASSCF density,
which makes it geometry independent, so it is computed once and cached.
The sign ``c`` is the one that gives ``h = +zeta l`` on the 4f shell with ``zeta > 0``; the free-ion
test then checks that the 6H15/2 level (16 states, Hund's third rule for 4f^9) is lowest.

State interaction uses the Wigner-Eckart theorem within one spin multiplet S: for any one-electron
spin-vector operator, ``<I S M| V_k |J S M'> = <I S S| V_z |J S S> / S * <M| S_k |M'>``, so only
the Ms = S transition spin densities are needed.
"""

from __future__ import annotations

import numpy as np

from smmflow.constants import FINE_STRUCTURE_ALPHA

ALPHA2 = FINE_STRUCTURE_ALPHA**2
#: phase c of h_k = c i (alpha^2/2) X_k (see module docstring; verified by the free-ion test)
SOC_PHASE = 1.0


def spin_matrices(s: float) -> np.ndarray:
    """Cartesian spin matrices (3, 2S+1, 2S+1) in the basis M = S, S-1, ..., -S."""
    m = np.arange(s, -s - 1, -1.0)
    n = m.size
    sp = np.zeros((n, n))
    for i in range(1, n):  # <M+1|S+|M>
        sp[i - 1, i] = np.sqrt(s * (s + 1) - m[i] * (m[i] + 1))
    sx = 0.5 * (sp + sp.T)
    sy = -0.5j * (sp - sp.T)
    sz = np.diag(m)
    return np.array([sx, sy, sz], dtype=complex)


def bp_one_electron_ao(mol) -> np.ndarray:
    """Real antisymmetric Breit-Pauli one-electron SOC integrals X_k (3, nao, nao), all nuclei of ``mol``."""
    return np.asarray(mol.intor("int1e_pnucxp", comp=3))


def somf_two_electron_ao(mol, dm: np.ndarray, shells: list[int] | None = None) -> np.ndarray:
    """Spin-orbit mean field of the two-electron BP term, real antisymmetric (3, nao, nao).

    ``dm`` is the spin-summed (total) AO density. Integrals are contracted on the fly (direct), never
    stored (the rank-5 tensor would be ~1 GB for Dy alone). With ``shells`` (shell indices, e.g. the
    Dy f shells) only the block of the operator between those shells is computed (exactly), the rest
    is left zero: the 4f SOC needs only that block and it costs ~(n_f/n)^2 of the full operator.
    """
    from pyscf.scf import jk

    nao = mol.nao
    if shells is None:
        vj, vk, vk2 = jk.get_jk(
            mol, [dm, dm, dm], ["ijkl,kl->ij", "ijkl,jk->il", "ijkl,li->kj"],
            intor="int2e_p1vxp1", comp=3,
        )
        return np.asarray(vj - 1.5 * vk - 1.5 * vk2)
    ao_loc = mol.ao_loc_nr()
    sh = sorted(shells)
    if sh != list(range(sh[0], sh[-1] + 1)):
        raise ValueError("shells must be contiguous")
    s0, s1 = sh[0], sh[-1] + 1
    p0, p1 = ao_loc[s0], ao_loc[s1]
    nb = mol.nbas
    allsh = (0, nb)
    # J: i,j in block; K: i,l in block; K': k,j in block
    vj = jk.get_jk(mol, dm, "ijkl,kl->ij", intor="int2e_p1vxp1", comp=3,
                   shls_slice=(s0, s1, s0, s1) + allsh + allsh)
    vk = jk.get_jk(mol, dm, "ijkl,jk->il", intor="int2e_p1vxp1", comp=3,
                   shls_slice=(s0, s1) + allsh + allsh + (s0, s1))
    vk2 = jk.get_jk(mol, dm, "ijkl,li->kj", intor="int2e_p1vxp1", comp=3,
                    shls_slice=allsh + (s0, s1, s0, s1) + allsh)
    out = np.zeros((3, nao, nao))
    out[:, p0:p1, p0:p1] = np.asarray(vj) - 1.5 * np.asarray(vk) - 1.5 * np.asarray(vk2)
    return out


def soc_operator(x_real: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Hermitian SOC spatial operators h_k = c i (alpha^2/2) X_k (hartree), for ``H = sum_i h(i) . s(i)``."""
    return SOC_PHASE * 1j * scale * 0.5 * ALPHA2 * np.asarray(x_real)


def zeta_from_active(h_act: np.ndarray, l_act: np.ndarray) -> float:
    """Effective spin-orbit constant (hartree): least-squares ratio of ``h`` to ``l`` in the shell."""
    num = float(np.real(np.sum(np.conj(l_act) * h_act)))
    den = float(np.real(np.sum(np.conj(l_act) * l_act)))
    return num / den


def transition_densities(ci: list[np.ndarray], ncas: int, nelecas: tuple[int, int]):
    """Spin-summed (gamma) and Sz (rho_z) transition densities, each (n, n, ncas, ncas).

    ``gamma[I, J, p, q] = <I| a+_p a_q |J>`` (summed over spin),
    ``rho_z[I, J, p, q] = <I| (a+_pa a_qa - a+_pb a_qb) / 2 |J>``.
    """
    from pyscf.fci import direct_spin1

    n = len(ci)
    gamma = np.zeros((n, n, ncas, ncas))
    rhoz = np.zeros((n, n, ncas, ncas))
    for i in range(n):
        for j in range(n):
            dma, dmb = direct_spin1.trans_rdm1s(ci[i], ci[j], ncas, nelecas)
            # PySCF: dm[p, q] = <bra| q+ p |ket>; transpose to <bra| p+ q |ket>
            gamma[i, j] = (dma + dmb).T
            rhoz[i, j] = 0.5 * (dma - dmb).T
    return gamma, rhoz


def so_hamiltonian(e_sf: np.ndarray, rhoz: np.ndarray, h_act: np.ndarray, spin_s: float) -> np.ndarray:
    """Spin-orbit Hamiltonian in the basis |I, M> (I outer, M = S..-S inner), hartree.

    ``e_sf`` (n,) spin-free energies; ``rhoz`` (n, n, ncas, ncas); ``h_act`` (3, ncas, ncas).
    """
    n = len(e_sf)
    smat = spin_matrices(spin_s)
    nm = smat.shape[1]
    # reduced matrix elements per Cartesian component: sum_pq h_k[p,q] <I|s_z(pq)|J> / S
    red = np.einsum("kpq,ijpq->kij", h_act, rhoz) / spin_s
    h = np.zeros((n * nm, n * nm), dtype=complex)
    for k in range(3):
        h += np.kron(red[k], smat[k])
    h += np.kron(np.diag(e_sf - e_sf.min()), np.eye(nm))
    return 0.5 * (h + h.conj().T)


def diagonalise(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending, relative to the lowest) and eigenvectors of the SO Hamiltonian."""
    w, v = np.linalg.eigh(h)
    return w - w[0], v
