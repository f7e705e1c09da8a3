"""Extensions beyond the paper: whitening (norm_pre/norm_inf 'whiten') and GEN 'auto'."""

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.generation import auto_candidates
from imprint_core.normalisation import fit_whitener


def correlated_classes(seed=0, n=60, d=20):
    """Two classes that differ along one axis while a shared nuisance direction varies a lot."""
    rng = np.random.default_rng(seed)
    base = np.ones(d) * 3
    nuisance = np.zeros(d)
    nuisance[1] = 1
    signal = np.zeros(d)
    signal[2] = 1

    def sample(m):
        t = rng.normal(size=(2 * m, 1)) * 6
        X = base + t * nuisance + 0.1 * rng.normal(size=(2 * m, d))
        y = np.repeat([0, 1], m)
        X += np.where(y[:, None] == 1, 0.25, -0.25) * signal
        return X, y

    return sample(n), sample(n)


def test_whitener_whitens_within_class_scatter():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 5
    y = np.repeat([0, 1], 200)
    w = fit_whitener(X, y, shrinkage=1e-9)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    R = np.concatenate([U[y == c] - U[y == c].mean(0) for c in (0, 1)])
    Z = R @ w.matrix
    np.testing.assert_allclose(Z.T @ Z / len(Z), np.eye(6), atol=1e-5)
    full = fit_whitener(X, y, shrinkage=1.0)  # full shrinkage: a multiple of the identity
    np.testing.assert_allclose(full.matrix / full.matrix[0, 0], np.eye(6), atol=1e-9)


def test_whitener_few_samples_uses_small_gram():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 50)) + 1, np.repeat([0, 1], 4)  # n << d
    w = fit_whitener(X, y, shrinkage=0.3)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    R = np.concatenate([U[y == c] - U[y == c].mean(0) for c in (0, 1)])
    S = R.T @ R / len(R)
    S = 0.7 * S + 0.3 * np.trace(S) / 50 * np.eye(50)
    evals, V = np.linalg.eigh(S)
    np.testing.assert_allclose(w.matrix, V @ np.diag(evals**-0.5) @ V.T, rtol=1e-6, atol=1e-8)


def test_whitening_helps_when_a_nuisance_direction_dominates():
    (X, y), (Xt, yt) = correlated_classes()
    plain = ic.ImprintClassifier.from_preset("qi").fit(X, y).score(Xt, yt)
    white = ic.ImprintClassifier.from_preset("qi", norm_pre="whiten", norm_inf="whiten")
    assert white.fit(X, y).score(Xt, yt) > plain + 0.1


def test_whiten_needs_both_ends_and_blocks_add_class():
    (X, y), _ = correlated_classes()
    with pytest.raises(ValueError, match="norm_pre='whiten' and norm_inf='whiten' go together"):
        ic.ImprintClassifier(norm_pre="whiten", norm_inf="l2").fit(X, y)
    with pytest.raises(ValueError, match="whiten_shrinkage must be in"):
        ic.ImprintClassifier(norm_pre="whiten", norm_inf="whiten", whiten_shrinkage=0).fit(X, y)
    clf = ic.ImprintClassifier(norm_pre="whiten", norm_inf="whiten", gen="mean").fit(X, y)
    with pytest.raises(ValueError, match="learns its transform from every class"):
        clf.add_class(X[:5], 7)


def test_whitened_head_round_trip_and_torch(tmp_path):
    torch = pytest.importorskip("torch")
    (X, y), (Xt, _) = correlated_classes()
    clf = ic.ImprintClassifier.from_preset("auto").fit(X, y)
    clf.save(tmp_path / "w.safetensors")
    back = ic.ImprintClassifier.load(tmp_path / "w.safetensors")
    np.testing.assert_allclose(back.class_scores(Xt), clf.class_scores(Xt), rtol=1e-6, atol=1e-9)
    out = clf.to_torch()(torch.tensor(Xt, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, clf.class_scores(Xt.astype(np.float32)), atol=1e-4)


def test_auto_candidates_keep_the_mean_for_small_classes():
    assert auto_candidates(15, 20) == [1]
    assert auto_candidates(20, 20) == [1, 2]
    assert auto_candidates(500, 20) == [1, 2, 3, 5, 8, 12, 20]
    assert auto_candidates(10_000, 50)[-1] == 50


def test_auto_picks_several_proxies_for_multimodal_and_one_for_unimodal():
    rng = np.random.default_rng(0)
    d = 16
    b = np.zeros(d)
    b[-1] = 6.0
    e = np.eye(d)
    # class 0: four modes around b; class 1: four modes; class 2: one tight blob
    modes0 = [b + 4 * e[0], b - 4 * e[0], b + 4 * e[3], b - 4 * e[3]]
    modes1 = [b + 4 * e[1], b - 4 * e[1], b + 4 * e[4], b - 4 * e[4]]

    def sample(n):
        X0 = np.concatenate([m + 0.7 * rng.normal(size=(n, d)) for m in modes0])
        X1 = np.concatenate([m + 0.7 * rng.normal(size=(n, d)) for m in modes1])
        X2 = b + 4 * e[2] + 0.7 * rng.normal(size=(4 * n, d))
        return np.concatenate([X0, X1, X2]), np.repeat([0, 1, 2], 4 * n)

    X, y = sample(40)
    Xt, yt = sample(40)
    clf = ic.ImprintClassifier(gen="auto", k=20).fit(X, y)
    assert clf.auto_k_[0] >= 3 and clf.auto_k_[1] >= 3
    assert clf.score(Xt, yt) > 0.97
    assert clf.score(Xt, yt) > ic.ImprintClassifier.from_preset("qi").fit(X, y).score(Xt, yt) + 0.2
    small = ic.ImprintClassifier(gen="auto").fit(X[::10], y[::10])  # 16 per class: the mean
    assert set(small.auto_k_.values()) == {1}
    np.testing.assert_array_equal(small.proxy_counts_, [1, 1, 1])


def test_auto_is_deterministic():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(120, 8)), np.repeat([0, 1, 2], 40)
    a = ic.ImprintClassifier(gen="auto", seed=3).fit(X, y)
    b = ic.ImprintClassifier(gen="auto", seed=3).fit(X, y)
    np.testing.assert_allclose(a.proxies_, b.proxies_, rtol=1e-6, atol=1e-9)
    assert a.auto_k_ == b.auto_k_
