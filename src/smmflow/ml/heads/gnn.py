"""A message-passing neural network on the ligand graph, read out at the donor atom, as a KD head.

Why: the VAE latent compresses a whole SMILES into 32 numbers for generation; the KD energies of
[Dy(H2O)5L2] are set mostly by the donor atom and its first few shells (charge donation, pi
acceptance, steric push of the ligand off the axis). A graph network that reads the molecule out
at the donor atom sees that environment directly.

- featurisation (:func:`ligand_graph`): RDKit atoms and bonds of the free ligand; atom features
  are element, degree, formal charge, aromaticity, hydrogen count, ring membership and ring size,
  hybridisation and the topological distance (in bonds) from the donor atom; bond features are
  the bond order class, conjugation and ring membership. The donor atom is atom 0 of a
  donor-first SMILES (any index can be given).
- model (:class:`KDGraphNet`): GINE-style edge-aware message passing with residual updates,
  readout = [donor-atom state, mean over atoms], concatenated with the standardised structural
  side inputs (and optionally the VAE latent of the ligand) -> MLP -> all requested KD energies
  at once (multi-task; the first target, KD2, weighs most in the loss).
- ensemble (:func:`fit_gnn_ensemble`): members differ by their seed (initialisation and batch
  order) and all see every training row; the spread of their predictions is the uncertainty.

Everything is plain torch (no graph library) and runs on one CPU thread in about a minute for a
few thousand ~10-heavy-atom ligands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from smmflow.ml.data import Standardizer
from smmflow.ml.metrics import masked_mse
from smmflow.ml.rng import preserves_torch_rng

ELEMENTS: tuple[str, ...] = ("C", "N", "O", "F", "S", "Cl", "Br", "P")  # + "other"
MAX_DONOR_DISTANCE = 6  # topological distances >= this share one bin
RING_SIZES = (3, 4, 5, 6)


def _one_hot(value, choices: Sequence) -> list[float]:
    """One-hot of ``value`` in ``choices`` with a final 'other' slot."""
    out = [0.0] * (len(choices) + 1)
    out[choices.index(value) if value in choices else len(choices)] = 1.0
    return out


def _atom_features(atom, donor_distance: int, is_donor: bool) -> list[float]:
    from rdkit import Chem

    hyb = Chem.rdchem.HybridizationType
    return [
        *_one_hot(atom.GetSymbol(), ELEMENTS),
        *_one_hot(atom.GetDegree(), (0, 1, 2, 3, 4)),
        *_one_hot(atom.GetFormalCharge(), (-1, 0, 1)),
        float(atom.GetIsAromatic()),
        *_one_hot(atom.GetTotalNumHs(), (0, 1, 2, 3)),
        float(atom.IsInRing()),
        *[float(atom.IsInRingSize(k)) for k in RING_SIZES],
        *_one_hot(atom.GetHybridization(), (hyb.SP, hyb.SP2, hyb.SP3)),
        *_one_hot(min(donor_distance, MAX_DONOR_DISTANCE), tuple(range(MAX_DONOR_DISTANCE + 1))),
        float(is_donor),
    ]


def _bond_features(bond) -> list[float]:
    from rdkit import Chem

    bt = Chem.rdchem.BondType
    return [*_one_hot(bond.GetBondType(), (bt.SINGLE, bt.DOUBLE, bt.TRIPLE, bt.AROMATIC))[:4],
            float(bond.GetIsConjugated()), float(bond.IsInRing())]


N_ATOM_FEATURES = len(ELEMENTS) + 1 + 6 + 4 + 1 + 5 + 1 + len(RING_SIZES) + 4 + MAX_DONOR_DISTANCE + 2 + 1
N_BOND_FEATURES = 6


@dataclass
class LigandGraph:
    """One ligand as arrays: atom features (A, F), directed edges (2, E), edge features (E, B) and
    the index of the donor atom."""

    atoms: np.ndarray
    edges: np.ndarray
    edge_features: np.ndarray
    donor: int


def ligand_graph(smiles_or_mol, donor: int = 0) -> LigandGraph:
    """Graph of a ligand (heavy atoms; hydrogens enter as the H-count feature). ``donor`` is the
    donor atom's index (0 for the project's donor-first SMILES). Raises ValueError if RDKit cannot
    parse the SMILES."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    if mol is None or mol.GetNumAtoms() == 0:
        raise ValueError(f"cannot parse ligand {smiles_or_mol!r}")
    if not 0 <= donor < mol.GetNumAtoms():
        raise ValueError(f"donor index {donor} outside the {mol.GetNumAtoms()} atoms")
    dist = Chem.GetDistanceMatrix(mol)[donor]
    atoms = np.array([_atom_features(a, int(dist[a.GetIdx()]) if np.isfinite(dist[a.GetIdx()]) else MAX_DONOR_DISTANCE,
                                     a.GetIdx() == donor) for a in mol.GetAtoms()], np.float32)
    src, dst, ef = [], [], []
    for b in mol.GetBonds():
        i, j, f = b.GetBeginAtomIdx(), b.GetEndAtomIdx(), _bond_features(b)
        src += [i, j]
        dst += [j, i]
        ef += [f, f]
    edges = np.array([src, dst], np.int64).reshape(2, -1)
    edge_features = np.array(ef, np.float32).reshape(-1, N_BOND_FEATURES)
    return LigandGraph(atoms=atoms, edges=edges, edge_features=edge_features, donor=donor)


@dataclass
class GraphBatch:
    """Several ligand graphs as one disconnected graph (tensors)."""

    atoms: torch.Tensor         # (A, F)
    edges: torch.Tensor         # (2, E), global atom indices
    edge_features: torch.Tensor  # (E, B)
    graph_of_atom: torch.Tensor  # (A,)
    donors: torch.Tensor        # (G,), global index of each graph's donor atom
    n_atoms: torch.Tensor       # (G,)


def collate(graphs: Sequence[LigandGraph]) -> GraphBatch:
    """Concatenate graphs, shifting atom indices."""
    sizes = np.array([len(g.atoms) for g in graphs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    edges = np.concatenate([g.edges + o for g, o in zip(graphs, offsets)], axis=1)
    return GraphBatch(
        atoms=torch.from_numpy(np.concatenate([g.atoms for g in graphs])),
        edges=torch.from_numpy(edges),
        edge_features=torch.from_numpy(np.concatenate([g.edge_features for g in graphs])),
        graph_of_atom=torch.from_numpy(np.repeat(np.arange(len(graphs)), sizes)),
        donors=torch.from_numpy(offsets + np.array([g.donor for g in graphs], np.int64)),
        n_atoms=torch.from_numpy(sizes),
    )


class KDGraphNet(nn.Module):
    """Edge-aware message passing (GINE-like, residual) + donor/mean readout + side inputs -> KDs."""

    def __init__(self, n_side: int, n_out: int, hidden: int = 64, layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Linear(N_ATOM_FEATURES, hidden)
        self.edge_embed = nn.ModuleList(nn.Linear(N_BOND_FEATURES, hidden) for _ in range(layers))
        self.update = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(layers))
        self.norm = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(2 * hidden + n_side, hidden), nn.SiLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out))

    def forward(self, g: GraphBatch, side: torch.Tensor) -> torch.Tensor:
        h = self.embed(g.atoms)
        src, dst = g.edges
        for emb, upd, norm in zip(self.edge_embed, self.update, self.norm):
            msg = torch.relu(h[src] + emb(g.edge_features))
            agg = torch.zeros_like(h).index_add_(0, dst, msg)
            h = norm(h + upd(torch.cat([h, agg], 1)))
        pooled = torch.zeros(len(g.donors), h.shape[1], dtype=h.dtype).index_add_(0, g.graph_of_atom, h)
        pooled = pooled / g.n_atoms[:, None].to(h.dtype)
        return self.head(torch.cat([h[g.donors], pooled, side], 1))


@dataclass
class GNNEnsemble:
    """Trained :class:`KDGraphNet` members with the scalers of their training rows."""

    members: list[KDGraphNet]
    side_scaler: Standardizer
    kd_scaler: Standardizer

    def predict(self, graphs: Sequence[LigandGraph], side: np.ndarray,
                batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members of the KD predictions in physical units, shape (N, K) each."""
        s = torch.as_tensor(np.nan_to_num(self.side_scaler.transform(side), nan=0.0), dtype=torch.float32)
        preds = []
        with torch.no_grad():
            for m in self.members:
                m.eval()
                out = [m(collate(graphs[b:b + batch_size]), s[b:b + batch_size]).numpy()
                       for b in range(0, len(graphs), batch_size)]
                preds.append(self.kd_scaler.inverse(np.vstack(out)))
        p = np.stack(preds)
        return p.mean(0), p.std(0)


@preserves_torch_rng
def fit_gnn_ensemble(graphs: Sequence[LigandGraph], side: np.ndarray, y: np.ndarray, seed: int, *,
                     n_members: int = 5, hidden: int = 64, layers: int = 3, dropout: float = 0.1,
                     epochs: int = 150, batch_size: int = 64, learning_rate: float = 2e-3,
                     weight_decay: float = 1e-4, aux_weight: float = 0.5) -> GNNEnsemble:
    """Fit ``n_members`` :class:`KDGraphNet` on all labelled rows (NaN labels masked).

    ``y`` (N, K): K KD energies, the first is the main target; the other columns together weigh
    ``aux_weight`` in the loss (multi-task regularisation). Side inputs and targets are standardised
    with these rows' statistics. AdamW with a cosine schedule, fixed epochs; deterministic for a
    given ``seed`` (member k uses seed * 1000 + k).
    """
    y = np.asarray(y, float)
    y = y[:, None] if y.ndim == 1 else y
    ok = np.isfinite(y).any(1)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 KD labels, got {int(ok.sum())}")
    graphs = [g for g, k in zip(graphs, ok) if k]
    side, y = np.asarray(side, float)[ok], y[ok]
    side_scaler = Standardizer.fit(side)
    kd_scaler = Standardizer.fit(y)
    s = torch.as_tensor(np.nan_to_num(side_scaler.transform(side), nan=0.0), dtype=torch.float32)
    ys = kd_scaler.transform(y)
    yt = torch.as_tensor(np.nan_to_num(ys), dtype=torch.float32)
    ym = torch.as_tensor(np.isfinite(ys))
    k = y.shape[1]
    w = torch.tensor([1.0] + [aux_weight / max(k - 1, 1)] * (k - 1), dtype=torch.float32)
    n = len(graphs)
    steps = epochs * math.ceil(n / batch_size)
    members = []
    for m_i in range(n_members):
        torch.manual_seed(seed * 1000 + m_i)
        rng = np.random.default_rng(seed * 1000 + m_i)
        net = KDGraphNet(s.shape[1], k, hidden=hidden, layers=layers, dropout=dropout)
        opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
        net.train()
        for _ in range(epochs):
            perm = rng.permutation(n)
            for b in range(0, n, batch_size):
                idx = perm[b:b + batch_size]
                opt.zero_grad()
                pred = net(collate([graphs[i] for i in idx]), s[idx])
                loss = sum(w[j] * masked_mse(pred[:, j], yt[idx, j], ym[idx, j]) for j in range(k))
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        members.append(net)
    return GNNEnsemble(members=members, side_scaler=side_scaler, kd_scaler=kd_scaler)
