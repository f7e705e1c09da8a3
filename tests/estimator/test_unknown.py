""" "None of these": unknown_score / is_unknown / unknown_threshold_ (imprint_core.unknown).

Closed-form cases on hand-made embeddings, saved heads, and the AUROC protocol (teach 5 of the
10 Fashion-MNIST classes, score images of all 10) on real embeddings of the built-in backbone.
"""

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.normalisation import l2

E = np.eye(3)


def two_axes():
    """Class 'a' on the x axis, class 'b' on the y axis (two exact copies each)."""
    X = np.array([E[0], E[0] * 2, E[1], E[1] * 3])
    return X, np.array(["a", "a", "b", "b"])


def fan(theta: float, phi: float):
    """Class 'a': two unit vectors at +-theta around the x axis; 'b': at +-phi around y."""
    a = [[np.cos(theta), np.sin(theta), 0], [np.cos(theta), -np.sin(theta), 0]]
    b = [[np.sin(phi), np.cos(phi), 0], [-np.sin(phi), np.cos(phi), 0]]
    return np.array(a + b) * [[1], [2], [3], [0.5]], np.array(["a", "a", "b", "b"])


def test_score_is_one_minus_the_best_cosine_to_the_class_means():
    X, y = two_axes()
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    np.testing.assert_allclose(clf.unknown_means_, E[:2], atol=1e-7)
    t = np.linspace(0, np.pi / 2, 7)
    Q = np.stack([np.cos(t), np.zeros_like(t), np.sin(t)], axis=1)  # from x towards z
    np.testing.assert_allclose(clf.unknown_score(Q * 5), 1 - np.cos(t), atol=1e-6)
    # opposite both classes: best cosine is -1/sqrt(2)
    np.testing.assert_allclose(clf.unknown_score([[-1, -1, 0]]), [1 + 2**-0.5], atol=1e-6)


@pytest.mark.parametrize("preset", ["ours", "janson", "hosoda", "oracle", "auto", "adaptive"])
def test_score_does_not_depend_on_the_head_options(preset):
    """The same L2 class means whatever GEN / NORM / AGG the head uses (imprint_core.unknown
    says why), so a whitened default scores like the max-cosine baseline."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(60, 8)) + 1, np.repeat([0, 1, 2], 20)
    Q = rng.normal(size=(9, 8))
    qi = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    other = ic.ImprintClassifier.from_preset(preset).fit(X, y)
    np.testing.assert_allclose(other.unknown_score(Q), qi.unknown_score(Q), atol=1e-6)
    assert other.unknown_threshold_ == pytest.approx(qi.unknown_threshold_, abs=1e-6)


def test_threshold_is_a_quantile_of_the_held_out_training_scores():
    """Each image against its class mean without it: for the fan, the other image of its own
    class, at 1 - cos(2 theta) (nearer than any other class here)."""
    theta, phi = 0.1, 0.15
    X, y = fan(theta, phi)
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    held = np.sort([1 - np.cos(2 * theta)] * 2 + [1 - np.cos(2 * phi)] * 2)
    np.testing.assert_allclose(clf.unknown_calibration_, held, atol=1e-6)
    for q in (0.5, 0.95, 1.0):
        assert clf.unknown_threshold(q) == pytest.approx(np.quantile(held, q), abs=1e-6)
    assert clf.unknown_threshold_ == pytest.approx(np.quantile(held, 0.95), abs=1e-6)
    assert "held-out training images (95% score lower)" == clf.unknown_rule_
    # a query between the two classes' means, farther than the threshold: unknown
    z = [[np.cos(np.pi / 4), np.sin(np.pi / 4), 0]]
    assert clf.unknown_score(z)[0] == pytest.approx(1 - np.cos(np.pi / 4), abs=1e-6)
    assert clf.is_unknown(z)[0] and clf.is_unknown(z, quantile=1.0)[0]
    assert not clf.is_unknown([[1.0, 0.05, 0]])[0]
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\], got 1.5"):
        clf.unknown_threshold(1.5)


def test_held_out_score_uses_another_class_when_it_is_nearer():
    """An image of 'a' pointing at class 'b' is held out: its nearest mean is then b's."""
    X = np.array([[1.0, 0, 0], [0.2, 1, 0], [0, 1, 0], [0, 1, 0.1]])
    y = np.array(["a", "a", "b", "b"])
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    u = l2(X[1:2])[0]
    mean_b = l2(l2(X[2:]).sum(0, keepdims=True))[0]
    expected = 1 - max(u @ E[0], u @ mean_b)  # its own class without it is just [1, 0, 0]
    assert expected == pytest.approx(1 - u @ mean_b)
    # and no other image scores that (a's first image is held out against [0.2, 1, 0], b's
    # images against each other)
    assert np.isclose(clf.unknown_calibration_, expected, atol=1e-6).sum() == 1


def test_one_image_per_class_falls_back_to_the_separation_of_the_classes():
    X = np.array([[1.0, 0, 0], [np.cos(1.0), np.sin(1.0), 0], [0, 0, 1]])
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, ["a", "b", "c"])
    assert clf.unknown_calibration_.shape == (0,)
    # nearest other mean: 1 - cos(1) for a and b, 1 for c; the median is 1 - cos(1)
    assert clf.unknown_threshold_ == pytest.approx(1 - np.cos(1.0), abs=1e-6)
    assert clf.unknown_rule_.startswith("class separation")


def test_add_class_extends_the_means_and_the_calibration():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(30, 5)) + 2, np.repeat([0, 1, 2], 10)
    full = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    grown = ic.ImprintClassifier.from_preset("qi").fit(X[y != 1], y[y != 1])
    grown.add_class(X[y == 1], 1)
    np.testing.assert_allclose(grown.unknown_means_, full.unknown_means_, atol=1e-6)
    assert grown.unknown_calibration_.shape == full.unknown_calibration_.shape
    # the new class's images are scored exactly as in a full fit
    np.testing.assert_allclose(
        np.sort(grown.unknown_calibration_), grown.unknown_calibration_, atol=0
    )
    Q = rng.normal(size=(6, 5))
    np.testing.assert_allclose(grown.unknown_score(Q), full.unknown_score(Q), atol=1e-6)


def test_saved_head_scores_and_thresholds_the_same(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 8)) + 1, np.repeat([0, 1, 2], 20)
    Q = rng.normal(size=(10, 8))
    for name in ("ours", "auto", ic.DEFAULT_PRESET):
        clf = ic.ImprintClassifier.from_preset(name).fit(X, y)
        clf.save(tmp_path / f"{name}.safetensors")
        back = ic.ImprintClassifier.load(tmp_path / f"{name}.safetensors")
        np.testing.assert_allclose(back.unknown_score(Q), clf.unknown_score(Q), atol=1e-6)
        assert back.unknown_threshold_ == pytest.approx(clf.unknown_threshold_, abs=1e-6)
        np.testing.assert_array_equal(back.unknown_calibration_, clf.unknown_calibration_)


def _rewrite(path, drop=(), replace=None):
    """The head file with tensors dropped or replaced, its metadata kept as it is."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="np") as fh:
        meta = fh.metadata()
    tensors = {k: v for k, v in load_file(str(path)).items() if k not in drop}
    tensors.update(replace or {})
    save_file(tensors, str(path), metadata=meta)


def test_head_saved_without_means_scores_by_its_nearest_proxy(tmp_path):
    """Head files written before the means were stored still load and score (older rule)."""
    X, y = two_axes()
    path = tmp_path / "old.safetensors"
    ic.ImprintClassifier.from_preset("ours").fit(X, y).save(path)
    _rewrite(path, drop=("unknown_means", "unknown_calibration"))
    old = ic.ImprintClassifier.load(path)
    assert old.unknown_means_ is None
    np.testing.assert_allclose(old.unknown_score([[0, 0, 1.0]]), [1.0], atol=1e-6)
    assert old.unknown_threshold_ == pytest.approx(1.0, abs=1e-6)  # orthogonal proxies
    assert old.unknown_rule_.startswith("proxy separation")


def test_altered_or_malformed_unknown_tensors_are_refused(tmp_path):
    from imprint_core.head_io import HeadFileError

    X, y = fan(0.3, 0.5)
    path = tmp_path / "h.safetensors"
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    clf.save(path)
    _rewrite(path, replace={"unknown_calibration": np.zeros(4, dtype=np.float32)})
    with pytest.raises(HeadFileError, match="'h.safetensors' was altered after saving"):
        ic.ImprintClassifier.load(path)
    clf.save(path)
    _rewrite(path, drop=("unknown_calibration",))
    with pytest.raises(HeadFileError, match="lacks the tensor 'unknown_calibration'"):
        ic.ImprintClassifier.load(path)


def test_unknown_needs_a_fitted_head_and_checks_inputs():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ic.ImprintClassifier().unknown_score(np.ones((1, 3)))
    clf = ic.ImprintClassifier.from_preset("qi").fit(*two_axes())
    with pytest.raises(ValueError, match="3 features"):
        clf.unknown_score(np.ones((1, 4)))


@pytest.mark.fashion_mnist
def test_auroc_known_vs_unknown_on_fashion_mnist():
    """Teach 5 of the 10 classes with 10 images each; held-out images of the taught classes
    must mostly score lower than images of the 5 others (a small draw: AUROC > 0.75; the full
    protocol with 20 images and 10 draws is benchmarks/bench_unknown.py)."""
    from sklearn.metrics import roc_auc_score

    from imprint_core.backbones import get_backbone
    from imprint_core.bench.datasets import load_dataset

    ds = load_dataset("fashion-mnist", "train")
    labels = ds.labels
    rng = np.random.default_rng(0)
    known = np.array([0, 1, 5, 7, 8])  # T-shirt, Trouser, Sandal, Sneaker, Bag
    teach = np.concatenate([rng.choice(np.flatnonzero(labels == c), 10, False) for c in known])
    rest = np.setdiff1d(np.arange(len(labels)), teach)
    probe = np.concatenate([rng.choice(rest[labels[rest] == c], 8, False) for c in range(10)])
    bb = get_backbone()
    Z = bb.embed(ds.images(np.concatenate([teach, probe])))
    Xs, Xq = Z[: len(teach)], Z[len(teach) :]
    unknown = ~np.isin(labels[probe], known)
    clf = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(Xs, labels[teach])
    auroc = roc_auc_score(unknown, clf.unknown_score(Xq))
    assert auroc > 0.75
    score = clf.unknown_score(Xq)
    flagged = clf.is_unknown(Xq)
    np.testing.assert_array_equal(flagged, score > clf.unknown_threshold_)
    # calibrated on held-out training images (95 %): few known images are flagged (the rule of
    # the previous version flagged about 70 % of them for mean heads), more unknown ones
    assert flagged[~unknown].mean() < 0.2 < flagged[unknown].mean()


def test_the_sentence_names_the_rule_that_set_the_threshold():
    """Try it's sentence: held-out images when the head has them, else the classes' separation."""
    from imprint_core.session import unknown_note

    held = {"unknown": True, "score": 0.31, "threshold": 0.2, "held_out": True}
    assert "than 95 % of your own images are from their class" in unknown_note(held)
    one_each = ic.ImprintClassifier.from_preset("qi").fit(np.eye(3), ["a", "b", "c"])
    assert one_each.unknown_calibration_.size == 0  # nothing to hold out
    fallback = {**held, "held_out": False, "threshold": one_each.unknown_threshold_}
    note = unknown_note(fallback, "The frame")
    assert note.startswith("**None of these?** The frame is farther from every class")
    assert "than the classes are from each other (1.00)" in note
    assert unknown_note({**held, "unknown": False}) == "" and unknown_note(None) == ""
