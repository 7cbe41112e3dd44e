"""The graph KD head (smmflow.ml.heads.gnn): featurisation, invariances, fitting, and its learning-curve lines."""

from pathlib import Path

import numpy as np
import pytest
import torch

from smmflow import tables
from smmflow.ml.data import side_features
from smmflow.ml.heads.gnn import N_ATOM_FEATURES, N_BOND_FEATURES, KDGraphNet, collate, fit_gnn_ensemble, ligand_graph
from smmflow.ml.metrics import r2_score
from smmflow.ml.published_benchmark import read_published_labels

ROOT = Path(__file__).resolve().parents[1]
PUB = ROOT / "resources" / "published" / "kramers_labelled_excerpt.txt"
STRUCT = ["struct_1", "struct_2", "angle_l_dy_l_deg", "dist_dy_donor1_a", "dist_dy_donor2_a"]


def published_rows(n: int):
    lab = read_published_labels(PUB).iloc[:n]
    side, _ = side_features(lab, lab["ligand_class"].tolist(), STRUCT)
    return lab, side


def test_graph_features_shapes_and_donor_distance():
    g = ligand_graph("[O-]CCN")
    assert g.atoms.shape == (4, N_ATOM_FEATURES) and g.edge_features.shape == (6, N_BOND_FEATURES)
    assert g.edges.shape == (2, 6) and g.donor == 0
    assert g.atoms[0, -1] == 1 and g.atoms[1:, -1].sum() == 0  # donor flag
    dist_block = g.atoms[:, -9:-1]  # one-hot topological distance from the donor (0..6, other)
    assert dist_block.argmax(1).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        ligand_graph("not a smiles")
    with pytest.raises(ValueError):
        ligand_graph("OCC", donor=5)


def test_prediction_is_invariant_to_atom_order_and_depends_on_the_donor():
    from rdkit import Chem

    torch.manual_seed(0)
    net = KDGraphNet(n_side=2, n_out=3, hidden=16, layers=3, dropout=0.0).eval()
    mol = Chem.MolFromSmiles("[O-]C(=O)c1ccc(N)cc1C#N")
    order = list(np.random.default_rng(1).permutation(mol.GetNumAtoms()))
    shuffled = Chem.RenumberAtoms(mol, [int(i) for i in order])
    donor_new = order.index(0)  # new index of the old atom 0
    side = torch.tensor([[0.3, -1.2]])
    with torch.no_grad():
        p0 = net(collate([ligand_graph(mol, 0)]), side)
        p1 = net(collate([ligand_graph(shuffled, donor_new)]), side)
        p_other_donor = net(collate([ligand_graph(mol, mol.GetNumAtoms() - 1)]), side)
        # batching: a graph predicts the same alone and next to others
        pb = net(collate([ligand_graph("OCC"), ligand_graph(mol, 0)]), side.repeat(2, 1))[1:]
    assert torch.allclose(p0, p1, atol=1e-5)
    assert torch.allclose(p0, pb, atol=1e-5)
    assert not torch.allclose(p0, p_other_donor, atol=1e-3)


def test_tiny_gnn_overfits_twenty_published_ligands_and_is_deterministic():
    torch.set_num_threads(1)
    lab, side = published_rows(20)
    graphs = [ligand_graph(s) for s in lab["smiles"]]
    y = lab[["kd2_cm1", "kd3_cm1"]].to_numpy(float)
    y[3, 1] = np.nan  # a missing auxiliary label is masked, not propagated
    kw = dict(n_members=2, hidden=32, layers=2, dropout=0.0, epochs=150, batch_size=10, learning_rate=5e-3,
              weight_decay=0.0, aux_weight=0.5)
    ens = fit_gnn_ensemble(graphs, side, y, seed=3, **kw)
    mean, std = ens.predict(graphs, side)
    assert mean.shape == (20, 2) and std.shape == (20, 2) and np.isfinite(mean).all()
    assert r2_score(y[:, 0], mean[:, 0]) > 0.95
    assert (std[:, 0] > 0).any()  # two members, two seeds
    short = {**kw, "n_members": 1, "epochs": 10}
    first, _ = fit_gnn_ensemble(graphs, side, y, seed=3, **short).predict(graphs, side)
    again, _ = fit_gnn_ensemble(graphs, side, y, seed=3, **short).predict(graphs, side)
    other, _ = fit_gnn_ensemble(graphs, side, y, seed=4, **short).predict(graphs, side)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_gnn_lines_in_the_learning_curve(tmp_path):
    from smmflow.ml.data import LearningData
    from smmflow.ml.learning_curve import proxy_pretraining_curve
    from smmflow.ml.vae.trainer import TrainConfig

    lab, side = published_rows(40)
    data = LearningData(smiles=lab["smiles"].tolist(), ligand_class=lab["ligand_class"].tolist(),
                        proxy=np.full((40, 1), np.nan), proxy_names=["p"], side=side, side_names=[f"s{i}" for i in range(side.shape[1])],
                        kd=lab[["kd2_cm1"]].to_numpy(float), kd_names=["kd2_cm1"])
    gnn = dict(n_members=1, hidden=8, layers=1, dropout=0.0, epochs=2, batch_size=16, learning_rate=1e-3,
               weight_decay=0.0, aux_weight=1.0)
    df, extra = proxy_pretraining_curve(data, [5, 20, 100], 10, 0, 0, {}, TrainConfig(), {}, modes=[],
                                        gnn_modes=["no_vae"], gnn_cfg=gnn,
                                        gnn_targets=lab[["kd2_cm1", "kd8_cm1"]].to_numpy(float))
    assert list(df.columns) == list(tables.LEARNING_CURVE_COLUMNS)
    assert set(df["kd_model"]) == {"gnn"} and set(df["pretraining"]) == {"no_vae"}
    assert (df.loc[df["n_train"] < 100, "status"] == "ok").all() and df.loc[df["n_train"] == 100, "status"].item() == "failed"
    assert extra["gnn"]["n_targets"] == 2
    with pytest.raises(ValueError, match="first column"):
        proxy_pretraining_curve(data, [5], 10, 0, 0, {}, TrainConfig(), {}, modes=[], gnn_modes=["no_vae"],
                                gnn_cfg=gnn, gnn_targets=lab[["kd8_cm1"]].to_numpy(float))
    with pytest.raises(ValueError, match="unknown gnn modes"):
        proxy_pretraining_curve(data, [5], 10, 0, 0, {}, TrainConfig(), {}, modes=[], gnn_modes=["gin"])


def test_published_benchmark_gnn_only_with_detached_rows_dropped(tmp_path):
    """Entry point of the rule on the shipped excerpt (graph head only, tiny settings): detached
    ligands (Dy-donor > 3 A) leave test and training, the table and metrics say so."""
    import json

    from smmflow.io import read_table
    from smmflow.ml.published_benchmark import run_published_benchmark
    from smmflow.ml.vae.trainer import TrainConfig

    lab = read_published_labels(PUB)
    n_far = int(((lab["dist_dy_donor1_a"] > 3) | (lab["dist_dy_donor2_a"] > 3)).sum())
    gnn = dict(n_members=1, hidden=8, layers=1, dropout=0.0, epochs=1, batch_size=32, learning_rate=1e-3,
               weight_decay=0.0, aux_weight=1.0)
    df = run_published_benchmark(PUB, None, tmp_path / "lc.tsv", None, tmp_path / "lc.json", n_trains=[30],
                                 n_test=20, split_seed=0, seed=0, model_cfg={}, train_cfg=TrainConfig(),
                                 ensemble_cfg={}, modes=[], gnn_modes=["no_vae"], gnn_cfg=gnn,
                                 gnn_targets=["kd2_cm1", "kd3_cm1"], max_dy_donor_distance_a=3.0)
    met = json.loads((tmp_path / "lc.json").read_text())
    assert met["n_detached_rows_dropped"] == n_far > 0
    assert met["n_labelled"] == len(lab) - n_far
    assert read_table(tmp_path / "lc.tsv")["kd_model"].tolist() == ["gnn"] and df["status"].tolist() == ["ok"]
    with pytest.raises(ValueError, match="must start with"):
        run_published_benchmark(PUB, None, tmp_path / "x.tsv", None, None, n_trains=[30], n_test=20,
                                split_seed=0, seed=0, model_cfg={}, train_cfg=TrainConfig(), ensemble_cfg={},
                                modes=[], gnn_modes=["no_vae"], gnn_cfg=gnn, gnn_targets=["kd3_cm1"])
