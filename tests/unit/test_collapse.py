"""Neural-collapse metrics on synthetic data whose geometry is known."""

from __future__ import annotations

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.classifier import ImprintClassifier
from imprint_core.collapse import (
    describe_metrics,
    l2_normalize,
    nc_metrics,
    primer,
)
from imprint_core.threads import one_thread


def simplex_etf_data(C=5, d=40, per=30, noise=0.0, seed=0):
    """Points around the vertices of a randomly rotated simplex ETF (unit vertices, centred)."""
    rng = np.random.default_rng(seed)
    vertices = (np.eye(C) - 1.0 / C) * np.sqrt(C / (C - 1))  # unit norm, pairwise -1/(C-1)
    rot, _ = np.linalg.qr(rng.standard_normal((d, C)))
    means = vertices @ rot.T
    y = np.repeat(np.arange(C), per)
    X = means[y] + noise * rng.standard_normal((len(y), d)) / np.sqrt(d)
    return X, y


def brute_force(X, y, quirk):
    """The reference formulas with explicit d x d matrices and pseudo-inverses."""
    X = l2_normalize(X)
    classes = np.unique(y)
    C = len(classes)
    mu_g = X.mean(0)
    mus = np.array([X[y == c].mean(0) for c in classes])
    M = mus - mu_g
    sigma_b = M.T @ M / C
    sigma_w = np.zeros_like(sigma_b)
    for i, c in enumerate(classes):
        D = X[y == c] - (M[i] if quirk else mus[i])
        sigma_w += D.T @ D / len(D)
    sigma_w /= C
    pinv_b = np.linalg.pinv(sigma_b, hermitian=True)
    return {
        "nc1": np.trace(sigma_w @ pinv_b) / C,
        "vci": 1
        - np.trace(sigma_b @ np.linalg.pinv(sigma_w + sigma_b, hermitian=True))
        / np.linalg.matrix_rank(sigma_b),
        "trace_w": np.trace(sigma_w),
        "trace_b": np.trace(sigma_b),
        "rank_w": np.linalg.matrix_rank(sigma_w),
        "rank_b": np.linalg.matrix_rank(sigma_b),
        "gap": mu_g @ pinv_b @ mu_g / C,
    }


def test_exported_from_package_root():
    assert ic.nc_metrics is nc_metrics


def test_simplex_etf_is_collapsed():
    C = 5
    m = nc_metrics(*simplex_etf_data(C=C, noise=1e-3))
    assert m["nc1"] < 1e-4
    assert m["vci"] < 1e-3
    assert m["equiangularity_ideal"] == pytest.approx(-1 / (C - 1))
    assert m["equiangularity_mean"] == pytest.approx(-1 / (C - 1), abs=1e-3)
    assert m["equiangularity_std"] < 1e-3
    assert m["etf_distance"] < 1e-3
    assert m["equinorm"] < 1e-3
    assert m["rank_b"] == C - 1
    assert m["cdnv"] < 1e-5


def test_noisy_classes_are_far_from_etf():
    m = nc_metrics(*simplex_etf_data(C=5, noise=6.0))
    assert m["nc1"] > 1
    assert m["etf_distance"] > 0.05


def test_nc1_grows_monotonically_with_within_class_noise():
    rng = np.random.default_rng(3)
    X0, y = simplex_etf_data(C=4, d=30, per=40)
    eps = rng.standard_normal(X0.shape) / np.sqrt(X0.shape[1])
    for normalize in (True, False):
        nc1 = [
            nc_metrics(X0 + s * eps, y, normalize=normalize)["nc1"]
            for s in (0.01, 0.1, 0.3, 0.6, 1.0, 2.0)
        ]
        assert np.all(np.diff(nc1) > 0), nc1
        cdnv = [nc_metrics(X0 + s * eps, y, normalize=normalize)["cdnv"] for s in (0.1, 0.5, 1.0)]
        assert np.all(np.diff(cdnv) > 0), cdnv


@pytest.mark.parametrize("n,d,C", [(60, 40, 4), (30, 100, 3), (200, 25, 5), (12, 300, 2)])
@pytest.mark.parametrize("variant", ["textbook", "reference"])
def test_matches_explicit_pseudo_inverse_formulas(n, d, C, variant):
    rng = np.random.default_rng(n + d)
    X = rng.standard_normal((n, d)) + 1.5
    y = np.arange(n) % C
    rng.shuffle(y)
    m = nc_metrics(X, y, variant=variant)
    with one_thread():
        ref = brute_force(X, y, quirk=variant == "reference")
    for key in ("nc1", "vci", "trace_w", "trace_b"):
        assert m[key] == pytest.approx(ref[key], rel=1e-8, abs=1e-10), key
    assert m["rank_w"] == ref["rank_w"]
    assert m["rank_b"] == ref["rank_b"]


def test_reference_variant_adds_the_documented_term():
    """Reference NC1 - textbook NC1 = mu_G^T Sigma_B^+ mu_G / C (spec section 2)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((90, 20)) + 2.0  # a large common mean, as with CLIP embeddings
    y = np.arange(90) % 3
    text = nc_metrics(X, y, variant="textbook")
    ref = nc_metrics(X, y, variant="reference")
    gap = brute_force(X, y, quirk=False)["gap"]
    assert gap > 0.1
    assert ref["nc1"] - text["nc1"] == pytest.approx(gap, rel=1e-8)
    assert ref["nc1_textbook"] == text["nc1"] and text["nc1_reference"] == ref["nc1"]
    # the quirk puts ||mu_G||^2 into Sigma_W: for unit vectors and balanced classes the traces
    # add up to 1, as in the paper's stored results (0.869763 + 0.130237)
    assert ref["trace_w"] + ref["trace_b"] == pytest.approx(1.0, abs=1e-5)
    assert text["trace_w"] + text["trace_b"] < 0.9


def test_normalisation_option():
    X, y = simplex_etf_data(C=3, d=10, per=20, noise=0.5)
    scale = np.random.default_rng(0).uniform(0.5, 4.0, size=(len(X), 1))
    a = nc_metrics(X, y)
    b = nc_metrics(X * scale, y)
    assert a["nc1"] == pytest.approx(b["nc1"], rel=1e-5)
    raw = nc_metrics(X * scale, y, normalize=False)
    assert raw["nc1"] != pytest.approx(a["nc1"], rel=1e-3)
    assert raw["normalized"] is False


def test_cdnv_per_pair_formula():
    # class 0: points 0 and 2 on the x-axis (mean 1, variance 1); class 1: 10 and 12 (mean 11)
    X = np.array([[0.0, 0], [2, 0], [10, 0], [12, 0], [0, 5], [0, 7]])
    y = np.array(["a", "a", "b", "b", "c", "c"])
    m = nc_metrics(X, y, normalize=False)
    cd = m["cdnv_matrix"]
    assert cd[0, 1] == pytest.approx((1 + 1) / (2 * 100))
    assert cd[0, 2] == pytest.approx((1 + 1) / (2 * (1 + 36)))
    assert np.isnan(cd[0, 0])
    assert m["cdnv"] == pytest.approx(np.mean([cd[0, 1], cd[0, 2], cd[1, 2]]))
    assert m["per_class"]["a"]["variance"] == pytest.approx(1.0)
    assert m["per_class"]["b"]["cdnv_mean"] == pytest.approx((cd[1, 0] + cd[1, 2]) / 2)


def test_few_shot_warning_when_samples_per_class_are_far_below_dimension():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15, 1280)).astype(np.float32)
    X[5:10] += 0.3
    y = np.repeat(["cats", "dogs", "birds"], 5)
    m = nc_metrics(X, y)
    assert m["reliable"]["nc1"] is False and m["reliable"]["vci"] is False
    assert any("Only 5 image(s)" in w and "1280" in w for w in m["warnings"])
    readings = describe_metrics(m)
    assert any("5 image" in line for line in readings)
    # NC1 and VCI are still shown, each with its reliability note
    nc1 = next(r for r in readings if r.startswith("NC1 = "))
    vci = next(r for r in readings if r.startswith("VCI = "))
    assert nc1.endswith("Not reliable here: see the note below.")
    assert vci.endswith("Not reliable here: see the note below.")
    # plenty of samples for the dimension: no such warning
    X, y = simplex_etf_data(C=3, d=16, per=200, noise=0.3)
    m = nc_metrics(X, y)
    assert m["warnings"] == []
    assert all(m["reliable"].values())
    readings = describe_metrics(m)
    assert [r[:5] for r in readings[:3]] == ["NC1 =", "VCI =", "CDNV "]
    assert not any("Not reliable" in r for r in readings)
    assert f"VCI = {m['vci']:.2f}" in readings[1]


def test_two_classes_warn_that_nc2_is_trivial():
    X, y = simplex_etf_data(C=2, d=8, per=50, noise=0.3)
    m = nc_metrics(X, y)
    assert m["rank_b"] == 1
    assert m["equiangularity_mean"] == pytest.approx(-1.0)
    assert m["reliable"]["nc2"] is False and m["reliable"]["nc1"] is False
    assert any("two classes" in w for w in m["warnings"])


def test_coinciding_means_give_infinite_nc1():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((10, 6))
    X = np.vstack([A, A])  # both classes have the same points, hence the same mean
    y = np.repeat([0, 1], 10)
    m = nc_metrics(X, y)
    assert m["nc1"] == np.inf
    assert np.isnan(m["vci"])
    assert m["reliable"]["nc1"] is False
    readings = describe_metrics(m)
    assert readings[0].startswith("NC1 is infinite") and readings[1].startswith("VCI is undefined")
    assert any("coincide" in w for w in m["warnings"])


def test_primer_explains_the_terms_in_plain_words():
    text = primer()
    for term in ("Embedding", "Proxy", "PCA", "UMAP", "no units", "NC1", "VCI", "NC2"):
        assert term in text, term
    assert "simplex ETF" in text and "-1/(C-1)" in text
    assert len(text.split()) < 450  # short enough to read on the tab


def test_single_image_class_is_flagged():
    X, y = simplex_etf_data(C=3, d=6, per=20, noise=0.2)
    X, y = X[:41], y[:41]  # class 2 keeps one image
    m = nc_metrics(X, y)
    assert m["per_class"][2]["n"] == 1
    assert m["per_class"][2]["variance"] == pytest.approx(0.0, abs=1e-12)
    assert m["reliable"]["cdnv"] is False


@pytest.mark.parametrize(
    "X,y,message",
    [
        (np.zeros((4, 3)), np.zeros(4), "at least two classes"),
        (np.zeros((4, 3)), np.zeros(3), "one label per embedding"),
        (np.zeros(4), np.zeros(4), "2-D"),
        (np.array([[np.nan, 1.0], [1.0, 0.0]]), np.array([0, 1]), "NaN"),
    ],
)
def test_bad_input_gives_a_sentence(X, y, message):
    with pytest.raises(ValueError, match=message):
        nc_metrics(X, y)
    with pytest.raises(ValueError, match="variant"):
        nc_metrics(np.eye(4), [0, 0, 1, 1], variant="paper")


def multimodal_data(seed=0):
    """Two classes of 3 separated modes each, arranged so that the class means mislead.

    Class 0 sits at +-e1 and +e3, class 1 at +-e2 and -e3 (around a common offset): the means
    differ only along e3, so nearest-class-mean is guessing for the +-e1 / +-e2 modes.
    """
    rng = np.random.default_rng(seed)
    d = 12
    e = 3.0 * np.eye(d)
    base = 5.0 * np.eye(d)[0]
    modes = base + np.array([e[1], -e[1], e[3], e[2], -e[2], -e[3]])
    lab = np.repeat(np.arange(6), 20)
    X = (modes[lab] + 0.3 * rng.standard_normal((len(lab), d))).astype(np.float32)
    return X, lab // 3


def test_head_agreement_with_nearest_class_mean():
    X, y = multimodal_data()
    # Janson et al. = nearest class mean under Euclidean distance: agrees exactly on raw data
    janson = ImprintClassifier.from_preset("janson").fit(X, y)
    m = nc_metrics(X, y, janson, normalize=False)
    assert m["nc4_agreement"] == pytest.approx(1.0)
    assert m["reliable"]["nc4"] is True
    assert m["per_class"][0]["n_proxies"] == 1
    assert m["per_class"][0]["proxy_spread"] == pytest.approx(0.0, abs=1e-12)
    # three k-means proxies per class follow the modes, not the mean: decisions differ
    km = ImprintClassifier(gen="kmeans", k=3).fit(X, y)
    m = nc_metrics(X, y, km)
    assert m["nc4_agreement"] < 0.95
    for c in (0, 1):
        stats = m["per_class"][c]
        assert stats["n_proxies"] == 3
        assert stats["proxy_spread"] > 0.5  # the proxies sit on different modes
        assert stats["proxy_to_mean"] > 0.1
