"""The Geometry tab's proxies advice, its accuracy-vs-k curve and its "Apply" button rest on one
piece of evidence: the curve's k-means line under the head's own settings, folds and seed, read by
the one-standard-error rule (modes.one_se_choice)."""

from __future__ import annotations

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.kcurve import accuracy_vs_k
from imprint_core.modes import advise_proxies, curve_agreement, one_se_choice


def test_the_one_standard_error_rule_on_known_numbers():
    ks = [1, 2, 5]
    # k = 5 beats k = 1 by 10 points in every fold (paired standard error 0): more proxies; k = 2
    # is 0.5 points below k = 5 with a paired standard error of 0.65, so the rule picks 2
    folds = [[0.80, 0.81, 0.79, 0.80], [0.90, 0.89, 0.90, 0.89], [0.90, 0.91, 0.89, 0.90]]
    rule = one_se_choice(ks, folds)
    assert rule["best_k"] == 5 and rule["k"] == 2
    assert rule["gain"] == pytest.approx(0.10) and rule["se"] == pytest.approx(0.0)
    # a gain smaller than its own noise keeps the mean
    noisy = [[0.7, 0.9, 0.8, 0.8], [0.9, 0.7, 0.8, 0.85], [0.8, 0.8, 0.8, 0.8]]
    rule = one_se_choice(ks, noisy)
    assert rule["best_k"] == 2 and rule["k"] == 1
    assert 0 < rule["gain"] <= rule["se"]
    # ties go to fewer proxies
    assert one_se_choice(ks, [[0.5, 0.6]] * 3)["k"] == 1
    with pytest.raises(ValueError, match="increasing"):
        one_se_choice([2, 1], [[1.0], [1.0]])
    with pytest.raises(ValueError, match="same number"):
        one_se_choice([1, 2], [[1.0, 0.5], [1.0]])


def test_advice_is_the_rule_applied_to_the_curve_line_and_says_so():
    """Two classes of which one has two modes straddling the other: the curve's k-means line
    gains clearly from two proxies, and the advice reads exactly that line."""
    rng = np.random.default_rng(0)
    e = np.eye(16)
    a = np.vstack([e[0] + e[1], e[0] - e[1]])[np.arange(40) % 2] + 0.1 * rng.standard_normal(
        (40, 16)
    )
    b = e[0] + 0.1 * rng.standard_normal((40, 16))
    X, y = np.vstack([a, b]).astype(np.float32), np.array(["a"] * 40 + ["b"] * 40)
    settings = {**ic.PRESETS["qi"], "seed": 3}
    advice = advise_proxies(X, y, settings)
    curve = accuracy_vs_k(X, y, settings=settings)  # the full curve, as the app computes it
    line = curve["gens"]["kmeans"]
    assert advice["evidence"]["mean"] == pytest.approx(line["mean"], abs=1e-12)
    assert advice["evidence"]["cv"] == curve["cv"] == "stratified 5-fold"
    assert advice["k_shared"] == one_se_choice(curve["ks"], line["folds"])["k"] > 1
    assert set(advice["k"].values()) == {advice["k_shared"]}
    assert advice["settings"] == {
        **{k: v for k, v in settings.items() if k not in ("gen", "k")},
        "gen": "kmeans",
        "k": advice["k_shared"],
    }
    assert "accuracy-vs-k curve" in advice["summary"] and "one standard error" in advice["summary"]
    assert "is this curve's k by the same rule" in curve_agreement(advice, curve)
    # a curve made under other settings is named as such, not passed off as agreement
    other = accuracy_vs_k(X, y, ks=(1, 2, 3), gens=("kmeans",), norm="none", seed=1)
    other["gens"]["kmeans"]["folds"] = [[1.0] * 5, [0.0] * 5, [0.0] * 5]
    assert "recompute both" in curve_agreement(advice, other)


@pytest.fixture(scope="module")
def merged_project(tmp_path_factory):
    from imprint_core import session as pj
    from imprint_core.session import examples as ex

    project = pj.Project(workdir=tmp_path_factory.mktemp("merged"))
    ex.load_example(project, "merged")
    assert project.preset == ic.DEFAULT_PRESET
    project.embed(pj.load_backbone(None))
    project.imprint()
    yield project
    project.close()


@pytest.mark.slow
def test_merged_example_advice_curve_and_apply_agree_under_the_default(merged_project):
    """Under the default preset (whitened class means) the advice said 1 proxy per class for the
    multi-modal example while its accuracy-vs-k curve gained +5.7 +/- 4.1 points at k = 20 (the
    advice came from gen=auto's own 3-fold split and candidates capped at 3, the curve from 5
    folds up to 20), and "Apply" set gen=auto with the current k = 1, i.e. the mean again."""
    from imprint_core.session.texts import kcurve_text

    project = merged_project
    g = project.geometry("pca", 2)
    advised = project.advised_settings()
    _, curve = project.k_curve()
    line = curve["gens"]["kmeans"]
    rule = one_se_choice(curve["ks"], line["folds"])
    # the curve favours more proxies beyond its noise, and the advice says so, with the same k
    assert rule["gain"] > rule["se"] and rule["k"] > 1
    assert set(g["recommended_k"].values()) == {rule["k"]}
    assert advised == {"gen": "kmeans", "k": rule["k"]}
    assert g["advice_raw"]["evidence"]["mean"] == pytest.approx(line["mean"], abs=1e-12)
    assert "whiten" in g["advice_summary"] and "More proxies help" in g["advice_summary"]
    assert "is this curve's k by the same rule" in kcurve_text(curve, g["advice_raw"])
    # "Apply" sets exactly the advised k: every class gets that many proxies
    project.set_settings(None, **{**project.settings, **advised})
    project.imprint()
    assert project.head.gen == "kmeans"
    assert project.head.proxy_counts_.tolist() == [rule["k"]] * 3
    # and the advice for the applied head is the same (its gen and k do not enter the evidence)
    assert project.advised_settings() == advised
