"""Training by proxy: masked losses, train-split standardisation, annealing, overfitting, seeds."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from smmflow import tables
from smmflow.ml.data import LearningData, Standardizer, assemble_learning_data, axial_field_features, split_indices
from smmflow.ml.heads.ensemble import fit_kd_ensemble
from smmflow.ml.metrics import masked_mse
from smmflow.ml.vae.trainer import (
    TrainConfig,
    kl_weight,
    latent_means,
    load_trained_model,
    save_trained_model,
    token_accuracy,
    train_vae,
)

SMILES = ["[O-]c1ccccc1", "OCC", "N1CCCC1", "[NH-]C(C)C", "O=CN", "n1ccccc1", "[O-]C(=O)C", "OC(C)(C)C"]
TINY = dict(embed_dim=16, hidden_dim=48, latent_dim=8, head_hidden=16, dropout=0.0)


def tiny_data(n_kd: int = 4) -> LearningData:
    rng = np.random.default_rng(0)
    n = len(SMILES)
    kd = np.full((n, 1), np.nan)
    kd[:n_kd, 0] = rng.uniform(50, 500, n_kd)
    classes = ["O-", "O", "N", "N-", "O", "N", "O-", "O"]
    side = np.hstack([rng.normal(size=(n, 3)), np.eye(4)[[tables.LIGAND_CLASS_CODE[c] - 1 for c in classes]]])
    return LearningData(smiles=SMILES, ligand_class=classes, proxy=rng.normal(size=(n, 2)),
                        proxy_names=["p1", "p2"], side=side, side_names=["a", "b", "c", "O", "N", "O-", "N-"],
                        kd=kd, kd_names=["kd2_cm1"])


def test_masked_mse_ignores_missing_labels_in_value_and_gradient():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, float("nan")], [1.0, 1e6]])
    mask = torch.tensor([[True, False], [True, False]])
    loss = masked_mse(pred, target, mask)
    assert math.isfinite(float(loss.detach()))
    assert float(loss.detach()) == pytest.approx((1.0 + 4.0) / 2)
    loss.backward()
    g = pred.grad.numpy()
    assert g[0, 1] == 0.0 and g[1, 1] == 0.0  # masked entries get no gradient
    assert g[0, 0] == pytest.approx(1.0) and g[1, 0] == pytest.approx(2.0)
    # changing a masked target changes nothing
    target2 = target.clone()
    target2[1, 1] = -5.0
    assert float(masked_mse(pred, target2, mask).detach()) == pytest.approx(float(loss.detach()))


def test_masked_mse_with_no_label_is_zero_and_differentiable():
    pred = torch.ones(3, 1, requires_grad=True)
    loss = masked_mse(pred, torch.full((3, 1), float("nan")), torch.zeros(3, 1, dtype=torch.bool))
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(pred.grad.abs().sum()) == 0.0


def test_standardizer_uses_only_the_rows_it_is_fitted_on():
    x = np.array([[1.0], [3.0], [np.nan], [1000.0]])
    s = Standardizer.fit(x[:3])
    assert s.mean[0] == pytest.approx(2.0) and s.std[0] == pytest.approx(1.0)
    assert s.inverse(s.transform(x))[3, 0] == pytest.approx(1000.0)
    lg = Standardizer.fit(np.array([[10.0], [100.0]]), [True])
    assert lg.inverse(lg.transform(np.array([[42.0]])))[0, 0] == pytest.approx(42.0)


def test_kl_annealing_is_linear_then_flat():
    assert kl_weight(0, 10, 0.5) == 0.0
    assert kl_weight(5, 10, 0.5) == pytest.approx(0.25)
    assert kl_weight(50, 10, 0.5) == 0.5
    assert kl_weight(0, 0, 0.5) == 0.5


def test_axial_field_features_physics():
    f = axial_field_features(np.array([2.0, 4.0]), np.array([2.0, 4.0]), np.array([180.0, 180.0]))
    assert f[0, 0] == pytest.approx(2 / 8) and f[1, 0] == pytest.approx(2 / 64)  # r^-3 falls off
    assert f[0, 2] == pytest.approx(-1.0)  # linear L-Dy-L
    assert f[0, 3] == 0.0


def test_split_is_seeded_and_disjoint():
    a = split_indices(20, 0.25, 3)
    b = split_indices(20, 0.25, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not set(a[0]) & set(a[1]) and len(a[1]) == 5


def test_tiny_model_overfits_tiny_set():
    data = tiny_data()
    cfg = TrainConfig(epochs=150, batch_size=8, learning_rate=1e-2, kl_beta_max=0.0, patience=1000,
                      val_fraction=0.0, threads=1)
    tm, hist, met = train_vae(data, dict(TINY, dropout=0.0), cfg, seed=0)
    tm.model.word_dropout = 0.0
    assert token_accuracy(tm, SMILES) > 0.95
    assert hist["train_recon"].iloc[-1] < 0.2 * hist["train_recon"].iloc[0]


def test_same_seed_same_metrics_and_checkpoint_round_trip(tmp_path):
    data = tiny_data()
    cfg = TrainConfig(epochs=3, batch_size=4, threads=1)
    _, h1, m1 = train_vae(data, TINY, cfg, seed=7)
    tm, h2, m2 = train_vae(data, TINY, cfg, seed=7)
    cols = ["train_loss", "val_loss", "val_recon"]
    np.testing.assert_allclose(h1[cols].to_numpy(), h2[cols].to_numpy())
    assert m1["best_val_criterion"] == m2["best_val_criterion"]
    _, h3, _ = train_vae(data, TINY, cfg, seed=8)
    assert not np.allclose(h1[cols].to_numpy(), h3[cols].to_numpy())
    mu = latent_means(tm, SMILES)
    tm.ensemble = fit_kd_ensemble(mu, data.side, data.kd, seed=0, n_members=2, epochs=20)
    save_trained_model(tm, tmp_path / "m.pt")
    tm2 = load_trained_model(tmp_path / "m.pt")
    np.testing.assert_allclose(latent_means(tm2, SMILES), mu, atol=1e-6)
    np.testing.assert_allclose(tm2.ensemble.predict(mu, data.side)[0], tm.ensemble.predict(mu, data.side)[0], atol=1e-5)


def test_kd_ensemble_needs_two_labels_and_gives_spread():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = 100 + 50 * x[:, :1]
    ens = fit_kd_ensemble(np.zeros((40, 0)), x, y, seed=0, n_members=3, epochs=200, use_latent=False)
    mean, sd = ens.predict(np.zeros((40, 0)), x)
    assert np.corrcoef(mean[:, 0], y[:, 0])[0, 1] > 0.9 and (sd >= 0).all() and sd.mean() > 0
    with pytest.raises(ValueError, match="at least 2"):
        fit_kd_ensemble(np.zeros((3, 0)), x[:3], np.array([[1.0], [np.nan], [np.nan]]), seed=0)


def test_assemble_joins_tables_and_drops_failed_rows():
    lig = pd.DataFrame({"ligand_id": ["L1", "L2", "L3"], "smiles": ["OCC", "[O-]C", "N1CC1"],
                        "ligand_class": ["O", "O-", "N"]})
    px = pd.DataFrame({"ligand_id": ["L1", "L2"], "status": ["ok", "failed"],
                       **{c: [1.0, 2.0] for c in (*tables.PROXY_TARGETS, *tables.STRUCTURAL_FEATURES)}})
    lb = pd.DataFrame({"ligand_id": ["L1", "L3"], "status": ["ok", "failed"], "kd2_cm1": [300.0, 999.0]})
    d = assemble_learning_data(lig, px, lb)
    assert d.smiles == ["OCC", "[O-]C", "N1CC1"]
    assert np.isfinite(d.proxy[0, :5]).all() and np.isnan(d.proxy[1, :5]).all()  # failed proxy row dropped
    assert d.kd[0, 0] == 300.0 and np.isnan(d.kd[2, 0])  # failed label dropped
    assert "inv_r3_sum" in d.side_names
    with pytest.raises(ValueError, match="lacks required columns"):
        assemble_learning_data(lig.drop(columns="ligand_class"), px, lb)


def test_training_rejects_too_little_data():
    d = tiny_data()
    one = LearningData(d.smiles[:1], d.ligand_class[:1], d.proxy[:1], d.proxy_names, d.side[:1], d.side_names,
                       d.kd[:1], d.kd_names)
    with pytest.raises(ValueError, match="at least 2"):
        train_vae(one, TINY, TrainConfig(epochs=1), seed=0)


def test_fitting_leaves_the_global_random_state_alone():
    """Seeds come from the config; training, the KD ensemble and the graph head set no global RNG state."""
    from smmflow.ml.heads.gnn import fit_gnn_ensemble, ligand_graph

    torch.manual_seed(123)
    np.random.seed(7)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    data = tiny_data()
    tm, _, _ = train_vae(data, TINY, TrainConfig(epochs=1, batch_size=4, val_fraction=0.25), seed=3)
    fit_kd_ensemble(latent_means(tm, data.smiles), data.side, data.kd, seed=0, n_members=2, epochs=2)
    fit_gnn_ensemble([ligand_graph(s) for s in data.smiles], data.side, data.kd, seed=0, n_members=1, epochs=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    # and the seeded result does not depend on the caller's global state
    torch.manual_seed(999)
    _, h1, _ = train_vae(data, TINY, TrainConfig(epochs=1, batch_size=4, val_fraction=0.25), seed=3)
    torch.manual_seed(5)
    _, h2, _ = train_vae(data, TINY, TrainConfig(epochs=1, batch_size=4, val_fraction=0.25), seed=3)
    pd.testing.assert_frame_equal(h1.drop(columns=[c for c in h1 if "time" in c or "wall" in c or "_s" in c]),
                                  h2.drop(columns=[c for c in h2 if "time" in c or "wall" in c or "_s" in c]))


def test_kd_ensemble_stays_bounded_far_outside_a_near_constant_training_column():
    """Four labels with a nearly constant side input (std 1e-6): a new row with an ordinary value of
    that column is millions of standard deviations out. Unclipped, the MLPs extrapolated linearly to
    KD2 ~1e6 cm-1; the clipped inputs keep predictions within a few times the label range."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(4, 3))
    side = np.column_stack([rng.normal(size=4), 2.0 + 1e-6 * rng.normal(size=4)])
    y = np.array([50.0, 90.0, 340.0, 430.0])
    ens = fit_kd_ensemble(mu, side, y, seed=0, n_members=3, epochs=200)
    new_side = np.array([[0.0, 2.5], [0.0, -3.0]])
    mean, _ = ens.predict(rng.normal(size=(2, 3)), new_side)
    assert np.all(np.isfinite(mean)) and np.all(np.abs(mean) < 10 * y.max()), mean
