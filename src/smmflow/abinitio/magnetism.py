"""Magnetic properties of Kramers doublets (KDs): g-tensors, easy axes, transition magnetic moments
and a SINGLE_ANISO-like estimate of the relaxation barrier.

Magnetic moment (units of the Bohr magneton): ``mu = -(L + g_e S)``. For an effective spin 1/2,
``M_k = sum_l g_kl s_l``, so ``(g g^T)_kl = 2 Tr(M_k M_l)`` restricted to the doublet; principal
g-values are the square roots of its eigenvalues, the axes its eigenvectors.
"""

from __future__ import annotations

import numpy as np

from smmflow.abinitio.spin_orbit import spin_matrices
from smmflow.constants import G_ELECTRON

#: transverse moment (mu_B) above which a KD is taken to relax quickly (QTM/TA-QTM path)
BARRIER_MOMENT_THRESHOLD_MUB = 0.1


def orbital_angular_momentum_ao(mol, origin: np.ndarray) -> np.ndarray:
    """Hermitian one-electron orbital angular momentum ``l = -i r x nabla`` (3, nao, nao) about ``origin`` (bohr)."""
    with mol.with_common_orig(origin):
        rxnabla = mol.intor("int1e_cg_irxp", comp=3)  # <mu| r x nabla |nu>, real antisymmetric
    return -1j * np.asarray(rxnabla)


def moment_operators(gamma: np.ndarray, l_act: np.ndarray, spin_s: float) -> np.ndarray:
    """mu_k = -(L_k + g_e S_k) in the |I, M> basis (3, n*nm, n*nm), in mu_B."""
    n = gamma.shape[0]
    smat = spin_matrices(spin_s)
    nm = smat.shape[1]
    lred = np.einsum("kpq,ijpq->kij", l_act, gamma)
    mu = np.zeros((3, n * nm, n * nm), dtype=complex)
    for k in range(3):
        mu[k] = -(np.kron(lred[k], np.eye(nm)) + G_ELECTRON * np.kron(np.eye(n), smat[k]))
    return mu


def kd_moments(mu: np.ndarray, vecs: np.ndarray, n_kd: int) -> np.ndarray:
    """mu in the SO eigenbasis of the lowest ``2 n_kd`` states: (3, 2n_kd, 2n_kd)."""
    v = vecs[:, : 2 * n_kd]
    return np.einsum("ai,kab,bj->kij", v.conj(), mu, v)


def g_tensor(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal g-values (ascending: gx <= gy <= gz) and axes (columns) of one KD's (3, 2, 2) moment block."""
    gg = 2.0 * np.real(np.einsum("kab,lba->kl", block, block))
    w, axes = np.linalg.eigh(0.5 * (gg + gg.T))
    return np.sqrt(np.clip(w, 0.0, None)), axes


def kd_g_tensors(mu_kd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal g-values (n_kd, 3) and axes (n_kd, 3, 3) for every KD."""
    n_kd = mu_kd.shape[1] // 2
    gs, axes = [], []
    for i in range(n_kd):
        g, ax = g_tensor(mu_kd[:, 2 * i : 2 * i + 2, 2 * i : 2 * i + 2])
        gs.append(g)
        axes.append(ax)
    return np.array(gs), np.array(axes)


def axis_angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two axes (lines, not vectors), in [0, 90] degrees."""
    c = abs(float(np.dot(u, v))) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(1.0, c))))


def transition_moment_matrix(mu_kd: np.ndarray, easy_axis: np.ndarray) -> np.ndarray:
    """SINGLE_ANISO-style averaged transition moments (n_kd x n_kd blocks of 2x2 as a 2n x 2n matrix).

    Each KD is first rotated so that its moment along the ground-KD easy axis is diagonal (the
    states of definite magnetisation |+>, |->); then ``(|mu_x| + |mu_y| + |mu_z|)/3`` per pair.
    """
    n = mu_kd.shape[1]
    mu_axis = np.einsum("k,kij->ij", easy_axis, mu_kd)
    u = np.zeros((n, n), dtype=complex)
    for i in range(0, n, 2):
        w, v = np.linalg.eigh(mu_axis[i : i + 2, i : i + 2])
        u[i : i + 2, i : i + 2] = v[:, ::-1]  # |+> (larger moment) first
    rot = np.einsum("ai,kab,bj->kij", u.conj(), mu_kd, u)
    return np.mean(np.abs(rot), axis=0)


def blocking_barrier(energies_kd: np.ndarray, tm: np.ndarray, threshold: float = BARRIER_MOMENT_THRESHOLD_MUB) -> tuple[float, int]:
    """Estimated barrier (cm-1 if ``energies_kd`` is) and the KD index (0-based) it goes through.

    Following the usual reading of SINGLE_ANISO's blocking-barrier figure: climbing from the ground
    doublet, relaxation goes through the lowest KD n >= 1 whose intra-doublet transverse moment
    <n+|mu|n-> exceeds ``threshold``; if the ground doublet itself has such a moment the barrier is
    0 (fast QTM). If none exceeds it, the top KD is returned.
    """
    n_kd = len(energies_kd)
    for i in range(n_kd):
        if tm[2 * i, 2 * i + 1] > threshold:
            return float(energies_kd[i]), i
    return float(energies_kd[-1]), n_kd - 1
