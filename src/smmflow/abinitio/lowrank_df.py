"""Low-rank density-fitted J/K and CASSCF integrals for the Dy complex engine."""

from __future__ import annotations

import functools
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
    symmetric rank-k update (``dsyrk``: half the flops of PySCF's GEMM). With a :class:`Float32DF`
    the exchange GEMMs run in float32 (block results summed in float64) and J in float64."""
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
    single = isinstance(with_df, Float32DF)  # float32 factors: float32 exchange GEMMs
    dtype = np.float32 if single else np.float64
    buf = np.empty(blksize * nao * nao, dtype=dtype)
    xbuf = np.empty(blksize * nao * nf, dtype=dtype)
    fac = fac.astype(dtype)
    if single:  # J in float64 over the stored (possibly screened) pair columns
        dmtril = with_df.compact_pairs(dmtril)
        vj = np.zeros_like(dmtril)
    blk64 = np.empty((blksize, dmtril.shape[1])) if single else None
    # preallocated products: a fresh large array per block costs page faults (mmap'd allocations)
    jbuf = np.empty_like(vj)
    kbuf = np.empty((nao, nao), dtype=dtype)
    for cderi in with_df.loop(max(blksize, 64)):
        for p0 in range(0, cderi.shape[0], blksize):
            blk = cderi[p0 : p0 + blksize]
            nb = blk.shape[0]
            if single:
                b64 = blk64[:nb]
                np.copyto(b64, blk)
                rho = dmtril @ b64.T
                vj += np.matmul(rho, b64, out=jbuf)
                lfull = with_df.unpack(blk, buf[: nb * nao * nao].reshape(nb, nao, nao)).reshape(nb * nao, nao)
            else:
                rho = dmtril @ blk.T  # (n, nb)
                vj += np.matmul(rho, blk, out=jbuf)
                lfull = lib.unpack_tril(blk, out=buf[: nb * nao * nao].reshape(nb, nao, nao)).reshape(nb * nao, nao)
            x = np.matmul(fac.T, lfull.T, out=xbuf[: nf * nb * nao].reshape(nf, nb * nao))  # [i, P, nu]
            for k in range(n):
                xk = x[bounds[k] : bounds[k + 1]].reshape((bounds[k + 1] - bounds[k]) * nb, nao)
                if xk.shape[0]:
                    # numpy uses a symmetric rank-k update (syrk) for A^T A
                    vk[k] += np.matmul(xk.T, xk, out=kbuf)
    if single:
        vj = with_df.expand_pairs(vj)
    return lib.unpack_tril(vj), vk


class Float32DF:
    """Cholesky-factorised density-fitting tensor ``B = L^-1 (P|mn)`` (``L L^T`` the Coulomb
    metric of the auxiliary basis, AO pairs packed lower-triangular) stored in float32, for the
    configuration-average orbital optimisation of the embedded/full tiers.

    The 3-centre integrals, the metric, its Cholesky factor and the triangular solve are float64
    (as in ``pyscf.df.incore.cholesky_eri``); only the solved factors are rounded to float32. That
    halves the tensor's memory and memory traffic, and :func:`df_jk_of_orbitals` then runs the
    exchange GEMMs in single precision (~1.45x faster per orbital iteration). A float32 *solve* was
    measured and rejected: with the even-tempered Dy auxiliary set (metric condition number ~1e13) it
    moved KD2 by up to 0.22 % for no CPU gain (docs/casscf.md, "Float32 DF tensor").

    ``pair_threshold`` > 0 screens AO pairs: a pair whose 3-centre integrals are all below it in
    magnitude is not solved and not stored (``pairs``: the packed indices of the stored pairs; the
    stored rows end with one zero column that stands for every screened pair when unpacking).

    PySCF-style: configure, then :meth:`build`; :meth:`loop` yields blocks of rows like
    ``pyscf.df.DF.loop`` (in the stored pair columns: :meth:`unpack`, :meth:`compact_pairs` and
    :meth:`expand_pairs` translate). :meth:`active_eri` gives active-space ERIs accumulated in float64."""

    blockdim = 240

    def __init__(self, mol, auxmol, max_memory_mb: float = 2000.0, pair_threshold: float = 0.0):
        self.mol = mol
        self.auxmol = auxmol
        self.max_memory_mb = max_memory_mb
        self.pair_threshold = pair_threshold
        self.pairs: np.ndarray | None = None  # None: every pair stored
        self._cderi: np.ndarray | None = None
        self._unpack_index: np.ndarray | None = None

    def get_naoaux(self) -> int:
        if self._cderi is None:
            self.build()
        return self._cderi.shape[0]

    def build(self) -> Float32DF:
        import scipy.linalg
        from pyscf import gto

        mol, auxmol = self.mol, self.auxmol
        j2c = auxmol.intor("int2c2e", hermi=1)
        try:
            low = scipy.linalg.cholesky(j2c, lower=True)
        except scipy.linalg.LinAlgError as exc:
            raise ValueError("auxiliary-basis metric is not positive definite (linear dependence); "
                             "use the float64 DF path (df_float32: false)") from exc
        low = np.asarray(low, order="F")
        naux = low.shape[0]
        nao = mol.nao
        npair = nao * (nao + 1) // 2
        cderi = np.empty((naux, npair), dtype=np.float32)
        intor = mol._add_suffix("int3c2e")
        atm, bas, env = gto.mole.conc_env(mol._atm, mol._bas, mol._env, auxmol._atm, auxmol._bas, auxmol._env)
        cintopt = gto.moleintor.make_cintopt(atm, bas, env, intor)
        ao_loc = mol.ao_loc_nr()
        # rows (AO pairs) per chunk: the float64 integrals of a chunk (solved in place; getints3c
        # returns them Fortran-ordered, so no copy) in ~1/10 of the memory budget, beside the
        # float32 tensor (2.4 GB at 607 AOs: the default run's largest job peaked at 3.98 GB RSS
        # with 1/4, against casscf.mem_mb 4000)
        max_rows = max(64, int(0.1 * self.max_memory_mb * 1e6 / (8 * naux)))
        thr = float(self.pair_threshold)
        kept: list[np.ndarray] = []
        q0 = 0  # stored columns so far
        sh0 = 0
        while sh0 < mol.nbas:
            sh1 = sh0 + 1
            while sh1 < mol.nbas and (ao_loc[sh1 + 1] * (ao_loc[sh1 + 1] + 1) - ao_loc[sh0] * (ao_loc[sh0] + 1)) // 2 <= max_rows:
                sh1 += 1
            p0 = ao_loc[sh0] * (ao_loc[sh0] + 1) // 2
            p1 = ao_loc[sh1] * (ao_loc[sh1] + 1) // 2
            ints = gto.moleintor.getints3c(intor, atm, bas, env, (sh0, sh1, 0, mol.nbas, mol.nbas, mol.nbas + auxmol.nbas),
                                           1, "s2ij", None, cintopt)
            # x L^-T = (L^-1 x^T)^T: the fitted factors of these AO pairs, as rows
            # in float64: a float32 solve with this metric (condition number ~1e13 with the ETB Dy
            # set) moved KD2 by up to 0.22 % (docs/casscf.md); rounding the solved factors does not
            x = np.asarray(ints.reshape(p1 - p0, naux), order="F")
            ints = None
            if thr > 0:
                keep = np.abs(x).max(axis=1) >= thr
                kept.append(np.arange(p0, p1)[keep])
                if not keep.all():
                    x = np.asfortranarray(x[keep])
            if len(x):
                x = scipy.linalg.blas.dtrsm(1.0, low, x, side=1, lower=1, trans_a=1, overwrite_b=1)
            cderi[:, q0 : q0 + len(x)] = x.T
            q0 += len(x)
            sh0 = sh1
        if thr > 0 and q0 < npair:
            cderi = _shrink_columns(cderi, q0 + 1)  # + the zero column of the screened pairs
            cderi[:, q0] = 0.0
            self.pairs = np.concatenate(kept)
        else:
            self.pairs = None
        self._cderi = cderi
        self._unpack_index = None
        return self

    def unpack(self, blk: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Rows ``blk`` of :meth:`loop` as full symmetric (nb, nao, nao) float32 matrices in ``out``
        (zeros at the screened pairs)."""
        if self._unpack_index is None:
            tril = _tril_index(self.mol.nao)
            if self.pairs is None:
                self._unpack_index = tril
            else:
                npair = self.mol.nao * (self.mol.nao + 1) // 2
                slot = np.full(npair, len(self.pairs))  # the zero column
                slot[self.pairs] = np.arange(len(self.pairs))
                self._unpack_index = slot[tril]
        np.take(blk, self._unpack_index, axis=1, out=out.reshape(len(blk), -1))
        return out

    def compact_pairs(self, packed: np.ndarray) -> np.ndarray:
        """Packed lower-triangular matrices (n, npair) restricted to the stored pair columns (the
        zero column included)."""
        if self.pairs is None:
            return packed
        out = np.zeros((packed.shape[0], len(self.pairs) + 1))
        out[:, :-1] = packed[:, self.pairs]
        return out

    def expand_pairs(self, stored: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`compact_pairs`: (n, stored columns) -> (n, npair), zero at screened pairs."""
        if self.pairs is None:
            return stored
        nao = self.mol.nao
        out = np.zeros((stored.shape[0], nao * (nao + 1) // 2))
        out[:, self.pairs] = stored[:, :-1]
        return out

    def loop(self, blksize: int | None = None):
        if self._cderi is None:
            self.build()
        blksize = blksize or self.blockdim
        for p0 in range(0, self._cderi.shape[0], blksize):
            yield self._cderi[p0 : p0 + blksize]

    def active_eri(self, c_act: np.ndarray) -> np.ndarray:
        """``(uv|wx)`` of the orbitals ``c_act`` (nao, n), (n^2, n^2), accumulated in float64."""
        nao, n = c_act.shape
        naux = self.get_naoaux()
        pa = np.empty((naux, n * n))
        blksize = max(1, int(50e6 / (8 * nao * nao)))  # ~50 MB of unpacked float64 factors at a time
        buf = np.empty((blksize, nao, nao), dtype=np.float32)
        for p0, blk in zip(range(0, naux, blksize), self.loop(blksize)):
            lfull = self.unpack(blk, buf[: len(blk)]).astype(np.float64)  # (nb, nao, nao)
            pa[p0 : p0 + len(blk)] = np.einsum("mu,pmn,nv->puv", c_act, lfull, c_act, optimize=True).reshape(len(blk), n * n)
        return pa.T @ pa


def _shrink_columns(a: np.ndarray, ncol: int) -> np.ndarray:
    """The first ``ncol`` columns of the C-ordered 2-D array ``a`` as a new array that reuses ``a``'s
    memory (rows moved in place, the buffer then shrunk): no second copy of a multi-GB tensor."""
    nrow, ncol0 = a.shape
    flat = a.reshape(-1)
    for r in range(1, nrow):
        flat[r * ncol : (r + 1) * ncol] = flat[r * ncol0 : r * ncol0 + ncol]
    del flat
    a.resize((nrow * ncol,), refcheck=False)
    return a.reshape(nrow, ncol)


@functools.lru_cache(maxsize=4)
def _tril_index(nao: int) -> np.ndarray:
    i, j = np.indices((nao, nao))
    hi, lo = np.maximum(i, j), np.minimum(i, j)
    return (hi * (hi + 1) // 2 + lo).ravel()


def unpack_tril_float32(blk: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows of packed lower-triangular float32 matrices ``blk`` (nb, npair) as full symmetric
    matrices in ``out`` (nb, nao, nao), float32 (PySCF's ``unpack_tril`` is float64/complex only)."""
    nao = out.shape[1]
    np.take(blk, _tril_index(nao), axis=1, out=out.reshape(len(blk), nao * nao))
    return out
