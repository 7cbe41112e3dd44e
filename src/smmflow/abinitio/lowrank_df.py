"""Low-rank density-fitted J/K and CASSCF integrals for the Dy complex engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def low_rank_jk_in_ah(mc):
    """Replacement of PySCF's ``CASSCF.update_jk_in_ah`` for density-fitted CASSCF that uses the low
    rank of the trial densities.

    In every augmented-Hessian step PySCF builds J and K of the two trial densities
    ``dm3 = C_core r_cv C_v^T + h.c.`` (rank <= 2 ncore) and ``dm4 = C_act casdm1 r_a C^T + h.c.``
    (rank <= 2 ncas) as if they were dense: 2 x 4 naux nao^3 flops. Here, with the DF factors
    ``L_P`` and ``dm = a b^T + b a^T``, ``K[dm] = sum_P (L_P a)(L_P b)^T + (L_P b)(L_P a)^T`` and only
    the rows/columns the Hessian needs (core/active rows, MO columns) are formed:
    about 8 naux nao^2 (ncore + ncas) flops, 3-4x fewer for ncore ~ 70, nao ~ 300.

    Within one macro-iteration the orbitals ``mo`` and ``casdm1`` are fixed, so the half of the
    factors that does not depend on the trial rotation (``a = C_core``, ``d = C_act casdm1``) gives
    the same ``C^T L_P [a d]`` in every AH step: it is kept from the first step of the
    macro-iteration when it fits in memory (``(ncore + ncas) naux nmo`` doubles, at most half of
    the free ``max_memory``), which halves the flops of every later step. Exact either way (same
    numbers as PySCF up to round-off; tested)."""
    from pyscf import lib

    with_df = mc.with_df
    cache: dict[str, Any] = {}

    def fixed_factor_products(mo, casdm1, moving):
        """The cached blocks of C^T L_P [a d] if they belong to these orbitals, else None."""
        if not cache:
            return None
        same = (cache["mo"].shape == mo.shape and np.array_equal(cache["mo"], mo)
                and np.array_equal(cache["casdm1"], casdm1) and np.array_equal(cache["moving"], moving))
        return cache["blocks"] if same else None

    def update_jk_in_ah(mo, r, casdm1, eris):
        ncore, ncas = mc.ncore, mc.ncas
        nocc = ncore + ncas
        nao, nmo = mo.shape
        moving = np.flatnonzero(np.any(r[:ncore, ncore:] != 0, axis=1))  # frozen rows are zero
        a = np.asarray(mo[:, moving], order="C")
        b = mo[:, ncore:] @ r[moving, ncore:].T  # dm3 = a b^T + b a^T
        nmv = len(moving)
        d = mo[:, ncore:nocc] @ casdm1
        e = mo @ r[ncore:nocc].T  # dm4 = d e^T + e d^T
        nfix = nmv + ncas  # fixed factors [a d]
        cached = fixed_factor_products(mo, casdm1, moving)
        keep = False
        if cached is None:
            cache.clear()
            need_mb = nfix * with_df.get_naoaux() * nmo * 8 / 1e6
            keep = need_mb < 0.5 * (mc.max_memory - lib.current_memory()[0])
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

    update_jk_in_ah.cache = cache  # for inspection (tests): the kept products and their reuse count
    return update_jk_in_ah


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


def low_rank_get_jk(get_jk_dense):
    """Wrap a DF ``get_jk(mol, dm, hermi, ...)`` so that every positive semidefinite density of low
    rank (the core and active densities PySCF's DF-CASSCF builds in every gradient update, ERI
    transformation and ``get_veff``) goes through PySCF's occupied-orbital DF path (K from
    ``L_P C``: 2 naux nao^2 rank flops) instead of the dense one (4 naux nao^3). Same numbers; any
    other density is passed through unchanged (tested)."""
    from pyscf import lib

    def factorised(dm):
        w, u = np.linalg.eigh(0.5 * (dm + dm.T))
        scale = max(float(np.abs(w).max()), 1e-300)
        keep = np.abs(w) > 1e-10 * scale
        if np.all(w[keep] > 0) and 2 * int(keep.sum()) < dm.shape[0]:
            return lib.tag_array(dm, mo_coeff=u[:, keep], mo_occ=w[keep])
        return None

    def get_jk(mol=None, dm=None, hermi=1, with_j=True, with_k=True, omega=None):
        if hermi != 1 or omega is not None or not with_k or getattr(dm, "mo_coeff", None) is not None:
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

    return get_jk


def use_low_rank_df(mc):
    """Give a PySCF DF-CASSCF object (before ``state_average_``) this module's faster, exact
    pieces: the low-rank AH exchange, the low-rank ``get_jk`` and the in-memory integral
    transformation. Returns ``mc``."""
    mc.update_jk_in_ah = low_rank_jk_in_ah(mc)
    mc.get_jk = low_rank_get_jk(mc.get_jk)
    mc.ao2mo = lambda mo_coeff=None: df_casscf_integrals(mc, mc.mo_coeff if mo_coeff is None else mo_coeff)
    return mc
