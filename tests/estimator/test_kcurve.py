"""Accuracy versus k, cross-validated, with the mean and least-squares references."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core.figures import accuracy_vs_k_figure
from imprint_core.kcurve import accuracy_vs_k


def xor_classes(per_mode, seed=0, d=12):
    """Two classes of two opposite modes each around a common offset: the class means nearly
    coincide (one proxy fails), one proxy per mode classifies perfectly."""
    rng = np.random.default_rng(seed)
    e = 3.0 * np.eye(d)
    modes = 5.0 * np.eye(d)[0] + np.array([e[1], -e[1], e[2], -e[2]])
    lab = np.repeat(np.arange(4), per_mode)
    X = (modes[lab] + 0.3 * rng.standard_normal((len(lab), d))).astype(np.float32)
    return X, np.where(lab < 2, "tops", "shoes")


def test_multimodal_classes_need_several_proxies():
    X, y = xor_classes(per_mode=20)  # 80 images: stratified 5-fold
    curve = accuracy_vs_k(X, y, ks=(1, 2, 5), gens=("kmeans", "fps"), seed=0)
    assert curve["cv"] == "stratified 5-fold" and curve["n_splits"] == 5
    assert "5-fold" in curve["cv_description"]
    assert curve["error_kind"] == "std over folds"
    assert curve["ks"] == [1, 2, 5]
    km = curve["gens"]["kmeans"]
    assert len(km["mean"]) == len(km["std"]) == 3 and len(km["folds"][0]) == 5
    mean_ref = curve["references"]["mean"]
    assert mean_ref["preset"] == "qi" and curve["references"]["ls"]["preset"] == "oracle"
    # one proxy is no better than the class mean; one per mode is (nearly) perfect
    assert km["mean"][0] == pytest.approx(mean_ref["mean"], abs=0.05)
    assert mean_ref["mean"] < 0.8
    assert km["mean"][1] > 0.97 and km["mean"][2] > 0.97
    assert curve["gens"]["fps"]["mean"][2] > 0.9
    # gen=auto, re-chosen inside every training fold, finds the modes
    auto = curve["references"]["auto"]
    assert auto["settings"]["gen"] == "auto" and auto["settings"]["k"] == 5
    assert auto["settings"]["norm_pre"] == "l2" and auto["mean"] > 0.95
    fig = accuracy_vs_k_figure(curve)
    assert [t.name for t in fig.data] == [
        "kmeans",
        "fps",
        "mean (Qi et al.)",
        "least squares (oracle)",
        "gen=auto, k chosen per class in each fold",
    ]


def test_tiny_projects_use_leave_one_out_and_report_progress():
    X, y = xor_classes(per_mode=4, seed=1)  # 16 images
    seen = []
    curve = accuracy_vs_k(
        X, y, ks=(1, 2, 10), gens=("kmeans", "random"), progress=lambda f, m: seen.append((f, m))
    )
    assert curve["cv"] == "leave-one-out" and curve["n_splits"] == 16
    assert curve["error_kind"] == "standard error"
    assert len(curve["gens"]["random"]["folds"][0]) == 16  # one 0/1 outcome per image
    assert curve["gens"]["kmeans"]["mean"][1] == pytest.approx(1.0)
    # k = 10 exceeds the 7 training images of a class: all of them become proxies
    assert curve["notes"] and "keeps all of them" in curve["notes"][0]
    assert len(seen) == 2 * 3 + 3 and seen[-1][0] == pytest.approx(1.0)  # + mean, ls, auto


def test_folds_are_capped_by_the_smallest_class():
    X, y = xor_classes(per_mode=20, seed=2)
    keep = np.r_[np.flatnonzero(y == "tops"), np.flatnonzero(y == "shoes")[:3]]
    curve = accuracy_vs_k(X[keep], y[keep], ks=(1,), gens=("kmeans",), cv=5)
    assert curve["cv"] == "stratified 3-fold" and curve["n_splits"] == 3
    assert "capped from 5" in curve["cv_description"]
    assert accuracy_vs_k(X, y, ks=(1,), gens=("kmeans",), cv="loo")["cv"] == "leave-one-out"


def test_the_curve_follows_the_heads_settings():
    """With a head's settings the points vary gen and k only: here Euclidean distance without
    normalisation, where the curve must equal a direct evaluation of the same settings."""
    from imprint_core.evaluation import evaluate

    X, y = xor_classes(per_mode=4, seed=3)  # 16 images: leave-one-out
    head = {"norm_pre": "none", "norm_post": "none", "norm_inf": "none", "agg": "max",
            "distance": "euclidean", "gen": "mean", "k": 1}  # fmt: skip
    curve = accuracy_vs_k(X, y, ks=(1, 2), gens=("kmeans",), settings=head, auto=False)
    assert "auto" not in curve["references"] and curve["norm"] == "head settings"
    y_idx = np.unique(y, return_inverse=True)[1]
    for i, k in enumerate((1, 2)):
        settings = {**head, "gen": "kmeans", "k": k, "seed": 0}
        ev = evaluate(X, y_idx, settings, scheme="leave-one-out")
        assert curve["gens"]["kmeans"]["mean"][i] == pytest.approx(ev.accuracy)
    with pytest.raises(ValueError, match="Unknown classifier setting.*'colour'"):
        accuracy_vs_k(X, y, ks=(1,), gens=("kmeans",), settings={"colour": "red"})


def test_bad_input():
    X, y = xor_classes(per_mode=3)
    with pytest.raises(ValueError, match="'lonely'"):
        accuracy_vs_k(np.vstack([X, X[:1]]), np.r_[y, ["lonely"]], ks=(1,), gens=("kmeans",))
    with pytest.raises(ValueError, match="norm"):
        accuracy_vs_k(X, y, norm="quantile")
    with pytest.raises(ValueError, match="cv"):
        accuracy_vs_k(X, y, cv=1)
    with pytest.raises(ValueError, match="two classes"):
        accuracy_vs_k(X, np.zeros(len(X)))
