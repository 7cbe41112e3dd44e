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
    symmetric rank-k update (``dsyrk``: half the flops of PySCF's GEMM). A :class:`Float32DF`
    does the same on its float32 tiles (:meth:`Float32DF.jk_of_orbitals`)."""
    if isinstance(with_df, Float32DF):
        return with_df.jk_of_orbitals(orbitals)
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
    # preallocated products: a fresh large array per block costs page faults (mmap'd allocations)
    jbuf = np.empty_like(vj)
    kbuf = np.empty((nao, nao))
    for cderi in with_df.loop(max(blksize, 64)):
        for p0 in range(0, cderi.shape[0], blksize):
            blk = cderi[p0 : p0 + blksize]
            nb = blk.shape[0]
            rho = dmtril @ blk.T  # (n, nb)
            vj += np.matmul(rho, blk, out=jbuf)
            lfull = lib.unpack_tril(blk, out=buf[: nb * nao * nao].reshape(nb, nao, nao)).reshape(nb * nao, nao)
            x = np.matmul(fac.T, lfull.T, out=xbuf[: nf * nb * nao].reshape(nf, nb * nao))  # [i, P, nu]
            for k in range(n):
                xk = x[bounds[k] : bounds[k + 1]].reshape((bounds[k + 1] - bounds[k]) * nb, nao)
                if xk.shape[0]:
                    # numpy uses a symmetric rank-k update (syrk) for A^T A
                    vk[k] += np.matmul(xk.T, xk, out=kbuf)
    return lib.unpack_tril(vj), vk


class Float32DF:
    """Cholesky-factorised density-fitting tensor ``B = L^-1 (P|mn)`` (``L L^T`` the Coulomb
    metric of the auxiliary basis) stored in float32 as dense tiles, for the configuration-average
    orbital optimisation of the embedded/full tiers.

    The 3-centre integrals, the metric, its Cholesky factor and the triangular solve are float64
    (as in ``pyscf.df.incore.cholesky_eri``); only the solved factors are rounded to float32. That
    halves the tensor's memory and memory traffic, and :meth:`jk_of_orbitals` runs the exchange
    GEMMs in single precision. A float32 *solve* was measured and rejected: with the even-tempered
    Dy auxiliary set (metric condition number ~1e13) it moved KD2 by up to 0.22 % for no CPU gain
    (docs/casscf.md, "Float32 DF tensor").

    Layout: the AOs are split at shell boundaries into blocks of about :attr:`tile_aos`; tile
    ``(I, J)``, ``I >= J``, holds ``B_P`` restricted to AO block I x AO block J as an (naux, bI, bJ)
    array (diagonal tiles in full, symmetric). The GEMMs of a J/K build read the tiles directly, so
    no packed-to-square unpacking is needed in any orbital iteration.

    ``pair_threshold`` > 0 screens AO pairs: a pair whose 3-centre integrals are all below it in
    magnitude is not solved and its factors are zero; a tile with no pair left is not stored, and
    its GEMMs are skipped (``n_screened_pairs``, ``n_pairs`` count them).

    PySCF-style: configure, then :meth:`build`; :meth:`jk_of_orbitals` and :meth:`active_eri` use
    it; :meth:`dense` gives the (naux, nao, nao) factors of small test molecules."""

    #: AOs per tile edge (whole shells): fewer, larger GEMMs against the waste of the full diagonal
    #: tiles and the granularity of screening
    tile_aos = 64
    #: auxiliary functions per batch of tile GEMMs in a J/K build
    aux_batch = 32

    def __init__(self, mol, auxmol, max_memory_mb: float = 2000.0, pair_threshold: float = 0.0):
        self.mol = mol
        self.auxmol = auxmol
        self.max_memory_mb = max_memory_mb
        self.pair_threshold = pair_threshold
        self.edges: np.ndarray | None = None  # AO block boundaries
        self.tiles: dict[tuple[int, int], np.ndarray] = {}
        self.naux = 0
        self.n_pairs = 0
        self.n_screened_pairs = 0
        self._cderi = None  # set to the tiles by build (the attribute average_jk tests)

    def get_naoaux(self) -> int:
        if self._cderi is None:
            self.build()
        return self.naux

    def _block_shells(self) -> list[int]:
        ao_loc = self.mol.ao_loc_nr()
        bounds = [0]
        for sh in range(1, self.mol.nbas):
            if ao_loc[sh + 1] - ao_loc[bounds[-1]] > self.tile_aos:
                bounds.append(sh)
        return bounds + [self.mol.nbas]

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
        self.naux = naux = low.shape[0]
        intor = mol._add_suffix("int3c2e")
        atm, bas, env = gto.mole.conc_env(mol._atm, mol._bas, mol._env, auxmol._atm, auxmol._bas, auxmol._env)
        cintopt = gto.moleintor.make_cintopt(atm, bas, env, intor)
        ao_loc = mol.ao_loc_nr()
        bshell = self._block_shells()
        self.edges = edges = ao_loc[bshell]
        # rows (AO pairs) per chunk: the float64 integrals of a chunk (solved in place; getints3c
        # returns them Fortran-ordered, so no copy) in ~1/10 of the memory budget, beside the
        # float32 tensor (2.4 GB at 607 AOs: the default run's largest job peaked at 3.98 GB RSS
        # with 1/4, against casscf.mem_mb 4000)
        max_rows = max(64, int(0.1 * self.max_memory_mb * 1e6 / (8 * naux)))
        thr = float(self.pair_threshold)
        self.tiles = {}
        self.n_pairs = mol.nao * (mol.nao + 1) // 2
        self.n_screened_pairs = 0
        for blk in range(len(bshell) - 1):
            e0, e1 = int(edges[blk]), int(edges[blk + 1])
            row = [np.zeros((naux, e1 - e0, int(edges[j + 1] - edges[j])), dtype=np.float32) for j in range(blk + 1)]
            kept_in = np.zeros(blk + 1, dtype=int)  # kept pairs per tile of this block row
            sh0 = bshell[blk]
            while sh0 < bshell[blk + 1]:
                sh1 = sh0 + 1
                while sh1 < bshell[blk + 1] and (ao_loc[sh1 + 1] * (ao_loc[sh1 + 1] + 1) - ao_loc[sh0] * (ao_loc[sh0] + 1)) // 2 <= max_rows:
                    sh1 += 1
                m0, m1 = int(ao_loc[sh0]), int(ao_loc[sh1])
                p0 = m0 * (m0 + 1) // 2
                ints = gto.moleintor.getints3c(intor, atm, bas, env, (sh0, sh1, 0, mol.nbas, mol.nbas, mol.nbas + auxmol.nbas),
                                               1, "s2ij", None, cintopt)
                # x L^-T = (L^-1 x^T)^T: the fitted factors of these AO pairs, as rows
                x = np.asarray(ints.reshape(-1, naux), order="F")
                ints = None
                npair = x.shape[0]
                slot = np.arange(npair)
                if thr > 0:
                    keep = np.abs(x).max(axis=1) >= thr
                    if not keep.all():
                        x = np.asfortranarray(x[keep])
                        slot = np.full(npair, len(x))  # screened pairs read the zero column
                        slot[keep] = np.arange(len(x))
                    self.n_screened_pairs += npair - len(x)
                else:
                    keep = np.ones(npair, dtype=bool)
                if len(x):
                    x = scipy.linalg.blas.dtrsm(1.0, low, x, side=1, lower=1, trans_a=1, overwrite_b=1)
                xz = np.zeros((naux, len(x) + 1), dtype=np.float32)  # + the zero column
                xz[:, : len(x)] = x.T
                x = None
                # square rows m0..m1 of the lower triangle (n <= m; n > m and screened pairs: zero)
                m, n = np.indices((m1 - m0, e1))
                m = m + m0
                lower = n <= m
                packed = np.where(lower, m * (m + 1) // 2 + n - p0, 0)
                take = np.where(lower, slot[packed], len(xz[0]) - 1).ravel()
                kept = np.where(lower, keep[packed], False)
                sq = np.take(xz, take, axis=1).reshape(naux, m1 - m0, e1)
                xz = None
                for j in range(blk + 1):
                    j0, j1 = int(edges[j]), int(edges[j + 1])
                    row[j][:, m0 - e0 : m1 - e0, :] = sq[:, :, j0:j1]
                    kept_in[j] += int(kept[:, j0:j1].sum())
                sq = None
                sh0 = sh1
            diag = row[blk]  # lower triangle filled: symmetrise in place, a batch of P at a time
            idx = np.arange(e1 - e0)
            for q0 in range(0, naux, 64):
                t = diag[q0 : q0 + 64]
                t += np.swapaxes(t, 1, 2).copy()
                t[:, idx, idx] *= 0.5
            for j in range(blk + 1):
                if kept_in[j]:
                    self.tiles[(blk, j)] = row[j]
            row = None
        self._cderi = self.tiles
        return self

    def _tile_slices(self, i: int, j: int) -> tuple[slice, slice]:
        e = self.edges
        return slice(int(e[i]), int(e[i + 1])), slice(int(e[j]), int(e[j + 1]))

    def dense(self) -> np.ndarray:
        """The factors as (naux, nao, nao) float32 (small test molecules only)."""
        if self._cderi is None:
            self.build()
        nao = self.mol.nao
        out = np.zeros((self.naux, nao, nao), dtype=np.float32)
        for (i, j), t in self.tiles.items():
            si, sj = self._tile_slices(i, j)
            out[:, si, sj] = t
            out[:, sj, si] = np.swapaxes(t, 1, 2)
        return out

    def jk_of_orbitals(self, orbitals: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """J and K (each (n, nao, nao), float64) of the densities ``C_k C_k^T`` of the orbital blocks
        ``orbitals`` in one pass over the tiles (see :func:`df_jk_of_orbitals`): per batch of
        auxiliary functions, ``X_P = L_P C`` from the tile GEMMs in float32 (transposed tiles for the
        upper blocks) and ``K_k += X_kP X_kP^T`` (float32 product, float64 sum); J from the tiles
        cast to float64."""
        if self._cderi is None:
            self.build()
        nao = self.mol.nao
        n = len(orbitals)
        bounds = np.concatenate([[0], np.cumsum([c.shape[1] for c in orbitals])]).astype(int)
        fac = np.asarray(np.hstack(orbitals), dtype=np.float32)
        nf = fac.shape[1]
        dms = [c @ c.T for c in orbitals]
        keys = list(self.tiles)
        # per tile, the densities' block (n, bI*bJ) in float64, off-diagonal tiles counted twice
        dtile = {}
        for i, j in keys:
            si, sj = self._tile_slices(i, j)
            w = 1.0 if i == j else 2.0
            dtile[(i, j)] = np.stack([w * d[si, sj].ravel() for d in dms])
        vj_t = {key: np.zeros((n, dtile[key].shape[1])) for key in keys}
        vk = np.zeros((n, nao, nao))
        pb = self.aux_batch
        x = np.empty((pb, nao, nf), dtype=np.float32)
        tmp = np.empty((pb, nao, nf), dtype=np.float32)
        kbuf = np.empty((nao, nao), dtype=np.float32)
        t64 = {key: np.empty((pb, self.tiles[key][0].size)) for key in keys}
        for p0 in range(0, self.naux, pb):
            p1 = min(self.naux, p0 + pb)
            nb = p1 - p0
            xv = x[:nb]
            xv.fill(0.0)
            rho = np.zeros((n, nb))
            for key in keys:
                t = self.tiles[key][p0:p1]
                i, j = key
                si, sj = self._tile_slices(i, j)
                tb = t64[key][:nb]
                np.copyto(tb, t.reshape(nb, -1))
                rho += dtile[key] @ tb.T
                bi = si.stop - si.start
                out = tmp.reshape(-1)[: nb * bi * nf].reshape(nb * bi, nf)
                xv[:, si] += np.matmul(t.reshape(nb * bi, -1), fac[sj], out=out).reshape(nb, bi, nf)
                if i != j:
                    out = tmp[:nb, : sj.stop - sj.start]
                    xv[:, sj] += np.matmul(np.swapaxes(t, 1, 2), fac[si], out=out)
            for key in keys:
                vj_t[key] += rho @ t64[key][:nb]
            for k in range(n):
                if bounds[k + 1] == bounds[k]:
                    continue
                xk = np.ascontiguousarray(np.swapaxes(xv[:, :, bounds[k] : bounds[k + 1]], 0, 1)).reshape(nao, -1)
                vk[k] += np.matmul(xk, xk.T, out=kbuf)
        vj = np.zeros((n, nao, nao))
        for (i, j), v in vj_t.items():
            si, sj = self._tile_slices(i, j)
            blk = v.reshape(n, si.stop - si.start, sj.stop - sj.start)
            vj[:, si, sj] = blk
            if i != j:
                vj[:, sj, si] = np.swapaxes(blk, 1, 2)
        return vj, vk

    def active_eri(self, c_act: np.ndarray) -> np.ndarray:
        """``(uv|wx)`` of the orbitals ``c_act`` (nao, n), (n^2, n^2), accumulated in float64."""
        if self._cderi is None:
            self.build()
        nao, n = c_act.shape
        pa = np.empty((self.naux, n * n))
        pb = self.aux_batch
        for p0 in range(0, self.naux, pb):
            p1 = min(self.naux, p0 + pb)
            y = np.zeros((p1 - p0, nao, n))
            for (i, j), t in self.tiles.items():
                si, sj = self._tile_slices(i, j)
                t = t[p0:p1].astype(np.float64)
                y[:, si] += t @ c_act[sj]
                if i != j:
                    y[:, sj] += np.swapaxes(t, 1, 2) @ c_act[si]
            pa[p0:p1] = np.einsum("mu,pmv->puv", c_act, y).reshape(p1 - p0, n * n)
        return pa.T @ pa
