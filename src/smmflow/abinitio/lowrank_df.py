"""Low-rank density-fitted J/K and CASSCF integrals for the Dy complex engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def low_rank_get_jk(get_jk_dense, mol=None, dm=None, hermi=1, with_j=True, with_k=True, omega=None):
    """J and K of ``dm`` through a density-fitted ``get_jk_dense(mol, dm, hermi, with_j=, with_k=,
    omega=)`` (PySCF's ``_DFHF.get_jk`` or ``_DFCAS.get_jk``), with every positive semidefinite density
    of low rank (the core and active densities PySCF's DF-CASSCF builds in every gradient update,
    ERI transformation and ``get_veff``) tagged with its orbitals, so that it goes through PySCF's
    occupied-orbital DF path (K from ``L_P C``: 2 naux nao^2 rank flops) instead of the dense one
    (4 naux nao^3). Same numbers; any other density is passed through unchanged (tested)."""
    from pyscf import lib

    def factorised(d):
        w, u = np.linalg.eigh(0.5 * (d + d.T))
        scale = max(float(np.abs(w).max()), 1e-300)
        keep = np.abs(w) > 1e-10 * scale
        if np.all(w[keep] > 0) and 2 * int(keep.sum()) < d.shape[0]:
            return lib.tag_array(d, mo_coeff=u[:, keep], mo_occ=w[keep])
        return None

    if (dm is None or hermi != 1 or omega is not None or not with_k
            or getattr(dm, "mo_coeff", None) is not None):
        return get_jk_dense(mol, dm, hermi, with_j=with_j, with_k=with_k, omega=omega)
    dms = np.asarray(dm)
    single = dms.ndim == 2
    stack = dms[None] if single else dms
    tagged = [factorised(d) for d in stack]
    if not any(t is not None for t in tagged):
        return get_jk_dense(mol, dm, hermi, with_j=with_j, with_k=with_k, omega=omega)
    vj, vk = [], []
    for d, t in zip(stack, tagged):
        j, k = get_jk_dense(mol, d if t is None else t, hermi, with_j=with_j, with_k=with_k, omega=omega)
        vj.append(j)
        vk.append(k)
    if single:
        return vj[0], vk[0]
    return (np.asarray(vj) if with_j else None), np.asarray(vk)


class LowRankJK:
    """Mixin for a density-fitted PySCF SCF (``_DFHF``) or CASSCF (``_DFCAS``) class: ``get_jk``
    sends low-rank positive semidefinite densities through the occupied-orbital DF path
    (:func:`low_rank_get_jk`). Put it before the DF class in the bases, e.g.
    ``lib.set_class(mf, (LowRankJK, mf.__class__))``."""

    __name_mixin__ = "LowRankJK"

    def get_jk(self, mol=None, dm=None, hermi=1, with_j=True, with_k=True, omega=None):
        if not getattr(self, "with_df", None):
            return super().get_jk(mol, dm, hermi, with_j=with_j, with_k=with_k, omega=omega)
        return low_rank_get_jk(super().get_jk, mol, dm, hermi, with_j, with_k, omega)


class LowRankDFCASSCF(LowRankJK):
    """Mixin on PySCF's DF-CASSCF class (``pyscf.mcscf.df._DFCASSCF`` composed with
    ``mc1step.CASSCF``) with three exact, faster pieces:

    * ``update_jk_in_ah``: the augmented-Hessian J/K from the DF factors and the low-rank trial
      densities, with the fixed half of the factor products kept per macro-iteration (``_ah_cache``);
    * ``get_jk``: low-rank densities through the occupied-orbital DF path (:class:`LowRankJK`);
    * ``ao2mo``: the in-memory integral transformation :func:`df_casscf_integrals`.

    Composed like PySCF's own mixins (``_DFCASSCF``, ``StateAverageMCSCF``, ``QMMMSCF``):
    ``lib.set_class(LowRankDFCASSCF(mc), (LowRankDFCASSCF, mc.__class__))`` for a DF-CASSCF ``mc``
    (:func:`low_rank_dfcasscf`); ``state_average_`` then derives its class from the composed one.
    Same numbers as PySCF up to round-off (tested). This module does not import PySCF at import
    time (``smmflow.native_blas`` must load it first), hence a mixin and not a subclass of
    ``_DFCASSCF``.
    """

    __name_mixin__ = "LowRank"

    def __init__(self, mc):
        self.__dict__.update(mc.__dict__)
        self._ah_cache: dict[str, Any] = {}

    def reset(self, mol=None):
        self._ah_cache = {}
        return super().reset(mol)

    def ao2mo(self, mo_coeff=None):
        if mo_coeff is None:
            mo_coeff = self.mo_coeff
        if not self.with_df:
            return super().ao2mo(mo_coeff)
        return df_casscf_integrals(self, mo_coeff)

    def _fixed_factor_products(self, mo, casdm1, moving):
        """The cached blocks of C^T L_P [a d] if they belong to these orbitals, else None."""
        cache = self._ah_cache
        if not cache:
            return None
        same = (cache["mo"].shape == mo.shape and np.array_equal(cache["mo"], mo)
                and np.array_equal(cache["casdm1"], casdm1) and np.array_equal(cache["moving"], moving))
        return cache["blocks"] if same else None

    def update_jk_in_ah(self, mo, r, casdm1, eris):
        """PySCF's ``CASSCF.update_jk_in_ah`` for density-fitted CASSCF, using the low rank of the
        trial densities.

        In every augmented-Hessian step PySCF builds J and K of the two trial densities
        ``dm3 = C_core r_cv C_v^T + h.c.`` (rank <= 2 ncore) and ``dm4 = C_act casdm1 r_a C^T + h.c.``
        (rank <= 2 ncas) as if they were dense: 2 x 4 naux nao^3 flops. Here, with the DF factors
        ``L_P`` and ``dm = a b^T + b a^T``, ``K[dm] = sum_P (L_P a)(L_P b)^T + (L_P b)(L_P a)^T`` and
        only the rows/columns the Hessian needs (core/active rows, MO columns) are formed:
        about 8 naux nao^2 (ncore + ncas) flops, 3-4x fewer for ncore ~ 70, nao ~ 300.

        Within one macro-iteration the orbitals ``mo`` and ``casdm1`` are fixed, so the half of the
        factors that does not depend on the trial rotation (``a = C_core``, ``d = C_act casdm1``)
        gives the same ``C^T L_P [a d]`` in every AH step: it is kept in ``self._ah_cache`` from the
        first step of the macro-iteration when it fits in memory (``(ncore + ncas) naux nmo``
        doubles, at most half of the free ``max_memory``), which halves the flops of every later
        step. Exact either way (same numbers as PySCF up to round-off; tested)."""
        if not self.with_df:
            return super().update_jk_in_ah(mo, r, casdm1, eris)
        from pyscf import lib

        with_df = self.with_df
        cache = self._ah_cache
        ncore, ncas = self.ncore, self.ncas
        nocc = ncore + ncas
        nao, nmo = mo.shape
        moving = np.flatnonzero(np.any(r[:ncore, ncore:] != 0, axis=1))  # frozen rows are zero
        a = np.asarray(mo[:, moving], order="C")
        b = mo[:, ncore:] @ r[moving, ncore:].T  # dm3 = a b^T + b a^T
        nmv = len(moving)
        d = mo[:, ncore:nocc] @ casdm1
        e = mo @ r[ncore:nocc].T  # dm4 = d e^T + e d^T
        nfix = nmv + ncas  # fixed factors [a d]
        cached = self._fixed_factor_products(mo, casdm1, moving)
        keep = False
        if cached is None:
            cache.clear()
            need_mb = nfix * with_df.get_naoaux() * nmo * 8 / 1e6
            keep = need_mb < 0.5 * (self.max_memory - lib.current_memory()[0])
            fac = np.hstack([a, d, b, e])  # (nao, nf): fixed [a d] first, then the trial factors
        else:
            fac = np.hstack([b, e])
            cache["hits"] += 1
        nf = fac.shape[1]
        vj3 = np.zeros((nao, nao))
        vj4 = np.zeros((nao, nao))
        k3 = np.zeros((nocc, nmo))  # occupied rows of C^T K[dm3] C
        k4 = np.zeros((ncore, nmo))  # core rows of C^T K[dm4] C
        blocks: list[np.ndarray] = []
        # the same blocks in every call of a macro-iteration (the cached products are per block)
        blksize = max(4, min(with_df.blockdim, int(2.0e7 / max(1, nao * max(nao, 2 * nfix)))))
        for ib, cderi in enumerate(with_df.loop(blksize)):
            naux = cderi.shape[0]
            lfull = lib.unpack_tril(cderi).reshape(naux * nao, nao)
            # factor-major layout (nf, naux, nao): factors^T L_P (L_P symmetric), then C^T on the
            # last axis; two plain GEMMs, no batched matmul and no transposed copies
            lt = lib.dot(fac.T, lfull.T).reshape(nf, naux, nao)
            lt_b, lt_e = lt[nf - nmv - ncas : nf - ncas], lt[nf - ncas :]
            rho3 = 2.0 * np.einsum("cpk,kc->p", lt_b, a)  # tr(dm3 L_P) = 2 a^T L_P b
            rho4 = 2.0 * np.einsum("cpk,kc->p", lt_e, d)
            lfull = lfull.reshape(naux, nao * nao)
            vj3 += (rho3 @ lfull).reshape(nao, nao)
            vj4 += (rho4 @ lfull).reshape(nao, nao)
            m = lib.dot(lt.reshape(nf * naux, nao), mo).reshape(nf, naux, nmo)  # C^T L_P [factors]
            if cached is None:
                mfix, mvar = m[:nfix], m[nfix:]
                if keep:
                    blocks.append(np.array(mfix))
            else:
                mfix, mvar = cached[ib], m
            ma = mfix[:nmv].reshape(nmv * naux, nmo)
            md = mfix[nmv:].reshape(ncas * naux, nmo)
            mb = mvar[:nmv].reshape(nmv * naux, nmo)
            me = mvar[nmv:].reshape(ncas * naux, nmo)
            k3 += lib.dot(ma[:, :nocc].T, mb) + lib.dot(mb[:, :nocc].T, ma)  # sum_P x_P[rows] y_P^T
            k4 += lib.dot(md[:, :ncore].T, me) + lib.dot(me[:, :ncore].T, md)
        if keep:
            cache.update(mo=np.array(mo), casdm1=np.array(casdm1), moving=moving, blocks=blocks, hits=0)
        c_act = mo[:, ncore:nocc]
        va = casdm1 @ (2.0 * (c_act.T @ vj3 @ mo) - k3[ncore:nocc])
        vj34 = 2.0 * vj3 + vj4
        vc = 2.0 * (mo[:, :ncore].T @ vj34 @ mo[:, ncore:]) - (2.0 * k3[:ncore, ncore:] + k4[:, ncore:])
        return va, vc


def low_rank_dfcasscf(mf, ncas: int, nelecas, ncore: int | None = None, frozen=None):
    """``mcscf.DFCASSCF(mf, ...)`` of a density-fitted SCF ``mf`` with :class:`LowRankDFCASSCF` on
    top (shares ``mf.with_df``)."""
    from pyscf import lib, mcscf

    if getattr(mf, "with_df", None) is None:
        raise ValueError("low_rank_dfcasscf needs a density-fitted SCF object (mf.density_fit())")
    mc = mcscf.DFCASSCF(mf, ncas, nelecas, ncore=ncore, frozen=frozen)
    return lib.set_class(LowRankDFCASSCF(mc), (LowRankDFCASSCF, mc.__class__))


@dataclass
class DfCasscfIntegrals:
    """The integrals one DF-CASSCF macro-iteration needs (the attributes of PySCF's
    ``mcscf.df._ERIS``), held in memory: ``ppaa[p,q,u,v] = (pq|uv)``, ``papa[p,u,q,v] = (pu|qv)``,
    ``j_pc = (pp|cc)``, ``k_pc = (pc|pc)``, ``vhf_c`` (core Fock potential, MO basis)."""

    ppaa: np.ndarray
    papa: np.ndarray
    j_pc: np.ndarray
    k_pc: np.ndarray
    vhf_c: np.ndarray


def df_casscf_integrals(mc, mo: np.ndarray) -> DfCasscfIntegrals:
    """Replacement of PySCF's DF-CASSCF integral transformation (``mcscf.df._ERIS``) with the same
    numbers from a fraction of the work.

    PySCF transforms every auxiliary function to the full MO basis, ``(P|pq)`` for all p, q
    (2 naux nao^2 nmo flops), writes the result to a temporary HDF5 file (naux nmo^2 doubles:
    ~10 GB for 600 AOs) and reads it back to contract with ``(P|uv)``. Only occupied columns are
    needed except in ``ppaa``, so here: ``(P|p i)`` for occupied i (2 x 2 naux nao^2 nocc flops)
    gives ``papa``, ``k_pc`` and ``(P|cc)``; then one pass over the packed AO factors forms the AO
    matrices ``sum_P L_P (P|uv)`` and ``sum_P L_P (P|cc)``, which are taken to the MO basis for
    ``ppaa`` and (diagonal only) ``j_pc``. Everything stays in memory (tested against PySCF)."""
    from pyscf import lib

    with_df = mc.with_df
    ncore, ncas = mc.ncore, mc.ncas
    nocc = ncore + ncas
    mo = np.asarray(mo, order="C")
    nao, nmo = mo.shape
    naux = with_df.get_naoaux()
    c_occ = np.asarray(mo[:, :nocc], order="C")
    pa = np.empty((naux, nmo, ncas))  # (P|p u)
    cc = np.empty((naux, ncore))  # (P|c c)
    k_cp = np.zeros((ncore, nmo))
    free_mb = max(500.0, mc.max_memory - lib.current_memory()[0])
    per_aux = 8 * (nao * nao + nocc * (nao + nmo))  # unpacked L_P, L_P C_occ, C^T L_P C_occ
    blksize = max(4, min(with_df.blockdim, int(0.3 * free_mb * 1e6 / per_aux)))
    p0 = 0
    for cderi in with_df.loop(blksize):
        nb = cderi.shape[0]
        lfull = lib.unpack_tril(cderi).reshape(nb * nao, nao)
        lt = lib.dot(c_occ.T, lfull.T)  # (nocc, nb * nao): [i, (P, mu)] = (L_P C_occ)[mu, i]
        m = lib.dot(lt.reshape(nocc * nb, nao), mo).reshape(nocc, nb, nmo)  # [i, P, p] = (P|p i)
        pa[p0 : p0 + nb] = m[ncore:].transpose(1, 2, 0)
        mcore = m[:ncore]
        k_cp += np.einsum("cPp,cPp->cp", mcore, mcore)
        cc[p0 : p0 + nb] = np.einsum("cPc->Pc", mcore[:, :, :ncore])
        p0 += nb
    aa = np.ascontiguousarray(pa[:, ncore:nocc, :]).reshape(naux, ncas * ncas)  # (P|uv)
    coef = np.hstack([aa, cc])  # (naux, ncas^2 + ncore)
    npair = nao * (nao + 1) // 2
    g = np.zeros((npair, coef.shape[1]))  # packed AO matrices sum_P L_P coef[P, k]
    p0 = 0
    for cderi in with_df.loop(blksize):
        nb = cderi.shape[0]
        g += lib.dot(cderi.T, coef[p0 : p0 + nb])
        p0 += nb
    ppaa = np.empty((nmo, nmo, ncas * ncas))
    for k in range(ncas * ncas):
        x = lib.unpack_tril(g[:, k])
        ppaa[:, :, k] = mo.T @ x @ mo
    ppaa = ppaa.reshape(nmo, nmo, ncas, ncas)
    j_pc = np.empty((nmo, ncore))
    for c in range(ncore):
        x = lib.unpack_tril(g[:, ncas * ncas + c])
        j_pc[:, c] = np.einsum("mp,mp->p", mo, x @ mo)
    g = None
    papa = lib.dot(pa.reshape(naux, nmo * ncas).T, pa.reshape(naux, nmo * ncas)).reshape(nmo, ncas, nmo, ncas)
    dm_core = c_occ[:, :ncore] @ c_occ[:, :ncore].T
    vj, vk = mc.get_jk(mc.mol, dm_core)
    vhf_c = mo.T @ (2.0 * vj - vk) @ mo
    return DfCasscfIntegrals(ppaa, papa, j_pc, k_cp.T.copy(), vhf_c)


def df_jk_of_orbitals(with_df, orbitals: list[np.ndarray], max_memory_mb: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    """J and K (AO basis, each (n, nao, nao)) of the densities ``D_k = C_k C_k^T`` of the orbital
    blocks ``orbitals = [C_1, C_2, ...]`` from the DF factors of ``with_df``, in one pass over them.

    The same numbers as PySCF's occupied-orbital DF path (``df_jk.get_jk`` with ``mo_coeff``-tagged
    densities; tested), cheaper: per block of auxiliary functions the factors ``C^T L_P`` of all
    blocks come from one GEMM on the unpacked ``L_P`` (factor-major layout, as in
    :meth:`LowRankDFCASSCF.update_jk_in_ah`), and ``K_k = sum_P (L_P C_k)(L_P C_k)^T`` is a
    symmetric rank-k update (``dsyrk``: half the flops of PySCF's GEMM)."""
    from pyscf import lib

    nao = orbitals[0].shape[0]
    sizes = [c.shape[1] for c in orbitals]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    fac = np.asarray(np.hstack(orbitals), order="C")
    nf = fac.shape[1]
    n = len(orbitals)
    idx = np.arange(nao)
    dmtril = np.stack([lib.pack_tril(2.0 * (c @ c.T)) for c in orbitals])
    dmtril[:, idx * (idx + 1) // 2 + idx] *= 0.5
    vj = np.zeros((n, nao * (nao + 1) // 2))
    vk = np.zeros((n, nao, nao))
    # small blocks: the unpacked L_P of a block (blksize nao^2 doubles) stays in cache; unpacking
    # a large block is memory-bound and costs as much as the GEMMs
    blksize = max(1, min(with_df.blockdim, int(4e6 / (8 * nao * nao))))
    buf = np.empty(blksize * nao * nao)
    xbuf = np.empty(blksize * nao * nf)
    for cderi in with_df.loop(max(blksize, 64)):
        for p0 in range(0, cderi.shape[0], blksize):
            blk = cderi[p0 : p0 + blksize]
            nb = blk.shape[0]
            rho = dmtril @ blk.T  # (n, nb)
            vj += rho @ blk
            lfull = lib.unpack_tril(blk, out=buf[: nb * nao * nao].reshape(nb, nao, nao)).reshape(nb * nao, nao)
            x = np.matmul(fac.T, lfull.T, out=xbuf[: nf * nb * nao].reshape(nf, nb * nao))  # [i, P, nu]
            for k in range(n):
                xk = x[bounds[k] : bounds[k + 1]].reshape((bounds[k + 1] - bounds[k]) * nb, nao)
                if xk.shape[0]:
                    vk[k] += xk.T @ xk  # numpy uses a symmetric rank-k update (syrk) for A^T A
    return lib.unpack_tril(vj), vk
