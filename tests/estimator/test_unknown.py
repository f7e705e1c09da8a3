""" "None of these": unknown_score / is_unknown / unknown_threshold_ (imprint_core.unknown).

The score against its definition (two distances, the second in the default head's whitened
space, each in units of its held-out spread), the closed-form held-out scores against refitting
without each image, the threshold's rules, the share of known images flagged at every number of
images on synthetic clusters, saved heads and the older head formats, and the AUROC protocol on
real embeddings of the built-in backbone.
"""

import numpy as np
import pytest

import imprint_core as ic
from imprint_core import unknown
from imprint_core.unknown import UnknownModel
from imprint_core.unknown_held_out import HELD_OUT_MAX, _more_images, fit_spaces, held_out_rows

E = np.eye(3)
# the default head's space, spelled out: the whitened class mean with the shrinkage d / (d + n - C)
WHITENED_MEAN = dict(
    norm_pre="whiten", gen="mean", k=1, norm_post="l2", norm_inf="whiten", whiten_shrinkage="dof"
)


def blobs(seed=2, n=20, d=8, classes=3, noise=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) + 2
    X = np.repeat(centres, n, axis=0) + rng.normal(size=(classes * n, d)) * noise
    return X, np.repeat(np.arange(classes), n), rng.normal(size=(9, d)) + 2


def clusters(rng, classes, per, d=64, sep=0.5, decay=0.25):
    """Embedding-like clusters: positive features around a common part, class centres apart by
    ``sep``, noise with a decaying spectrum in a random basis (one image per class is classified
    right about as often as with real photos: 55-65 %)."""
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sd = np.arange(1, d + 1) ** -decay
    centres = 1.0 + rng.normal(size=(classes, d)) * sep / np.sqrt(d)
    noise = (rng.normal(size=(classes * per, d)) * sd / np.linalg.norm(sd)) @ basis.T
    return np.repeat(centres, per, axis=0) + noise, np.repeat(np.arange(classes), per)


def test_score_adds_the_two_distances_in_units_of_their_held_out_spread():
    X, y, Q = blobs()
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    means = np.stack(
        [(X[y == c] / np.linalg.norm(X[y == c], axis=1, keepdims=True)).mean(0) for c in range(3)]
    )
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    raw = 1 - (Qn @ means.T).max(1)
    white = 1 - ic.ImprintClassifier(**WHITENED_MEAN).fit(X, y).class_scores(Q).max(1)
    scale = clf.unknown_model_.scale.astype(np.float64)
    expected = (raw - scale[0, 0]) / scale[0, 1] + (white - scale[1, 0]) / scale[1, 1]
    np.testing.assert_allclose(clf.unknown_score(Q), expected, atol=1e-4)
    # the scale is the held-out scores' own: their standardised sum has mean 0
    assert clf.unknown_calibration_.shape == (60,)
    assert abs(clf.unknown_calibration_.mean()) < 1e-4
    np.testing.assert_allclose(clf.unknown_means_, means, atol=1e-6)


@pytest.mark.parametrize("preset", ["ours", "janson", "hosoda", "oracle", "auto", "adaptive"])
def test_score_does_not_depend_on_the_head_options(preset):
    X, y, Q = blobs()
    qi = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    other = ic.ImprintClassifier.from_preset(preset).fit(X, y)
    np.testing.assert_allclose(other.unknown_score(Q), qi.unknown_score(Q), atol=1e-6)
    assert other.unknown_threshold_ == pytest.approx(qi.unknown_threshold_, abs=1e-6)


def _refit_without(U, y, i, C):
    """Held-out distances of image i by refitting the spaces without it (the brute force)."""
    keep = np.arange(len(y)) != i
    classes = np.unique(y[keep])  # an image alone in its class leaves with its class
    space, _, _ = fit_spaces(U[keep], np.searchsorted(classes, y[keep]), len(classes))
    model = UnknownModel(
        **space,
        scale=np.array([[0.0, 1.0], [0.0, 1.0]]),
        calibration=np.zeros(1),
        dof=np.array([1]),
    )
    return unknown.base_scores(U[i : i + 1], model)[0]


@pytest.mark.parametrize("d", [6, 40])  # more images than dimensions, and fewer
def test_held_out_scores_are_those_of_refitting_without_each_image(d):
    """Plain leave-one-out in closed form (centre, whitening, shrinkage and class mean without
    the image): the raw distance exactly, the whitened within 0.03 (the other images' weights
    are kept from the fit). Classes of 1, 2 and 5 images: the lone image is held out with its
    class."""
    rng = np.random.default_rng(d)
    y = np.array([0] * 5 + [1] * 2 + [2] + [3] * 5)
    X = rng.normal(size=(len(y), d)) + 3 + rng.normal(size=(4, d))[y]
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    _, held, own = fit_spaces(U, y, 4, as_new=False)
    np.testing.assert_array_equal(own, y != 2)
    brute = np.array([_refit_without(U, y, i, 4) for i in range(len(y))])
    np.testing.assert_allclose(held[:, 0], brute[:, 0], atol=1e-9)
    np.testing.assert_allclose(held[:, 1], brute[:, 1], atol=0.03)
    assert np.corrcoef(held[:, 1], brute[:, 1])[0, 1] > 0.99


def test_held_out_cosine_is_turned_into_that_of_a_class_with_one_image_more():
    """Unit vectors with equal pairwise cosines rho: the cosine of a new one to the mean of k is
    rho sqrt(k / (1 + (k - 1) rho)); the factor maps k - 1 to k exactly."""
    for rho, k in ((0.3, 2), (0.3, 5), (0.8, 3), (0.05, 20)):
        # k + 1 vectors with pairwise cosine rho: a common part and orthogonal parts
        V = np.hstack([np.full((k + 1, 1), np.sqrt(rho)), np.sqrt(1 - rho) * np.eye(k + 1)])
        new, members = V[0], V[1:]
        mean = members.sum(0) / np.linalg.norm(members.sum(0))
        fewer = members[1:].sum(0) / np.linalg.norm(members[1:].sum(0))
        sum2 = float(members.sum(0) @ members.sum(0))
        factor = _more_images(np.array([sum2]), np.array([k]))[0]
        assert new @ fewer * factor == pytest.approx(new @ mean, abs=1e-12)


def test_many_images_hold_out_a_seeded_sample_of_every_class():
    """Beyond HELD_OUT_MAX images the calibration holds out the same share of every class."""
    y = np.repeat([0, 1, 2], [3000, 990, 10])
    rows = held_out_rows(y)
    assert len(rows) == HELD_OUT_MAX == 2000 and np.all(np.diff(rows) > 0)
    assert np.bincount(y[rows]).tolist() == [1500, 495, 5]
    rng = np.random.default_rng(6)
    X = rng.normal(size=(len(y), 6)) + 3 * rng.normal(size=(3, 6))[y] + 5
    first = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    again = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    assert first.unknown_calibration_.shape == (2000,)
    assert int(first.unknown_model_.dof[0]) == 2000 - 3
    np.testing.assert_array_equal(first.unknown_calibration_, again.unknown_calibration_)


def test_threshold_rules():
    X, y, _ = blobs(n=20)  # 60 held-out scores: the conformal quantile between two of them
    model = ic.ImprintClassifier.from_preset("qi").fit(X, y).unknown_model_
    cal = np.sort(model.calibration.astype(np.float64))
    rank = 0.95 * 61  # 57.95: between the 57th and 58th smallest
    value, rule = unknown.threshold(model, 0.95)
    assert value == pytest.approx(cal[56] + 0.95 * (cal[57] - cal[56]), abs=1e-9)
    assert rule == "held-out training images (95% score lower)" and rank < 58
    assert unknown.threshold(model, 1.0)[0] == pytest.approx(cal[-1])
    # 3 classes x 3 images: beyond the largest of 9, Student's t with the 6 degrees of freedom
    X, y, _ = blobs(n=3)
    model = ic.ImprintClassifier.from_preset("qi").fit(X, y).unknown_model_
    assert int(model.dof[0]) == 9 - 3
    from scipy.stats import t

    cal = model.calibration.astype(np.float64)
    bound = cal.mean() + t.ppf(0.95, 5) * cal.std(ddof=1) * np.sqrt(1 + 1 / 6)
    assert unknown.threshold(model, 0.95)[0] == pytest.approx(max(bound, cal.max()), abs=1e-9)
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\], got 1.5"):
        unknown.threshold(model, 1.5)


def test_one_image_per_class_is_held_out_with_its_class():
    """Each image against the other classes only; the threshold is a normal's quantile around
    those scores with the spread of every image's score against every other class."""
    X = np.array([[1.0, 0, 0], [np.cos(1.0), np.sin(1.0), 0], [0, 0, 1]])
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, ["a", "b", "c"])
    model = clf.unknown_model_
    assert clf.unknown_calibration_.shape == (3,) and int(model.dof[0]) == 0
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    off = ~np.eye(3, dtype=bool)
    raw_pairs = 1 - (U @ U.T)[off]  # the raw distance of every image to every other class
    scale = model.scale.astype(np.float64)
    assert scale[0, 1] == pytest.approx(raw_pairs.std(ddof=1), rel=1e-5)
    pairs = unknown.combine(unknown.pair_distances(U, _space(model)), scale)
    assert float(model.pair_spread[0]) == pytest.approx(pairs.std(ddof=1), rel=1e-5)
    expected = clf.unknown_calibration_.mean() + 1.6449 * unknown.ONE_SHOT_SD * pairs.std(ddof=1)
    assert clf.unknown_threshold_ == pytest.approx(expected, rel=1e-3)
    assert unknown.threshold(model, 1.0)[0] == pytest.approx(clf.unknown_calibration_.max())
    assert clf.unknown_rule_.startswith("other classes") and not clf.unknown_held_out_
    assert not clf.is_unknown(X).any()  # a taught image is on its class


def _space(model):
    return {k: getattr(model, k) for k in ("means", "center", "metric", "white_means")}


def test_one_image_per_class_flags_about_the_promised_share_of_alike_classes():
    """5 classes closer than above (one image per class classifies 46 % of new images right):
    the largest of the 5 class-out scores, the rule before, flagged 11.9 % of new images of the
    taught classes here (8.3 % of known hand-sign photos, where the classes are alike too)."""
    flagged = []
    for draw in range(60):
        rng = np.random.default_rng([5, 1, draw])
        X, y = clusters(rng, 5, 201, sep=0.4)
        taught = np.array([np.flatnonzero(y == c)[0] for c in range(5)])
        new = np.setdiff1d(np.arange(len(y)), taught)
        clf = ic.ImprintClassifier.from_preset("qi").fit(X[taught], y[taught])
        flagged.append(clf.is_unknown(X[new]).mean())
    assert 0.03 <= np.mean(flagged) <= 0.07


@pytest.mark.parametrize("shots", [1, 2, 3, 5, 10, 20])
def test_known_images_flagged_at_about_the_promised_share_at_every_number_of_images(shots):
    """5 % of new images of the taught classes are "none of these" (3-7 % over 40 draws) from
    1 to 20 images per class, on clusters where one image per class is classified right about
    as often as with photos. The class-separation rule of one image per class flagged about a
    third of them here (31.6 % and 39.3 % of known photos in the measurements that led to it)."""
    flagged = []
    for draw in range(40):
        rng = np.random.default_rng([8, shots, draw])
        X, y = clusters(rng, 8, shots + 200)
        taught = np.concatenate([np.flatnonzero(y == c)[:shots] for c in range(8)])
        new = np.setdiff1d(np.arange(len(y)), taught)
        clf = ic.ImprintClassifier.from_preset("qi").fit(X[taught], y[taught])
        flagged.append(clf.is_unknown(X[new]).mean())
    assert 0.03 <= np.mean(flagged) <= 0.07


def test_add_class_places_the_new_class_in_the_spaces_of_the_fit():
    X, y, Q = blobs(seed=3, n=10, noise=0.5)
    full = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    grown = ic.ImprintClassifier.from_preset("qi").fit(X[y != 1], y[y != 1])
    grown.add_class(X[y == 1], 1)
    np.testing.assert_allclose(grown.unknown_means_, full.unknown_means_, atol=1e-6)
    assert grown.unknown_calibration_.shape == full.unknown_calibration_.shape
    assert np.all(np.diff(grown.unknown_calibration_) >= 0)
    assert int(grown.unknown_model_.dof[0]) == int(full.unknown_model_.dof[0])
    # the new class's images are its own now: held-out images of it are not "none of these"
    rng = np.random.default_rng(9)
    more = X[y == 1].mean(0) + rng.normal(size=(40, X.shape[1])) * 0.5
    assert grown.is_unknown(more).mean() < 0.2
    before = ic.ImprintClassifier.from_preset("qi").fit(X[y != 1], y[y != 1])
    assert before.is_unknown(more).mean() > 0.8


def test_saved_head_scores_and_thresholds_the_same(tmp_path):
    X, y, Q = blobs(seed=1)
    for name in ("ours", "auto", ic.DEFAULT_PRESET):
        clf = ic.ImprintClassifier.from_preset(name).fit(X, y)
        clf.save(tmp_path / f"{name}.safetensors")
        back = ic.ImprintClassifier.load(tmp_path / f"{name}.safetensors")
        np.testing.assert_allclose(back.unknown_score(Q), clf.unknown_score(Q), atol=1e-6)
        assert back.unknown_threshold_ == pytest.approx(clf.unknown_threshold_, abs=1e-6)
        for field in UnknownModel.names():
            np.testing.assert_array_equal(
                getattr(back.unknown_model_, field), getattr(clf.unknown_model_, field)
            )


def _rewrite(path, drop=(), replace=None, meta_update=None):
    """The head file with tensors dropped or replaced, its metadata kept (or updated)."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="np") as fh:
        meta = fh.metadata()
    if meta_update:
        inner = json.loads(meta["imprint"])
        inner.update(meta_update)
        meta = {"imprint": json.dumps(inner)}
    tensors = {k: v for k, v in load_file(str(path)).items() if k not in drop}
    tensors.update(replace or {})
    save_file(tensors, str(path), metadata=meta)


def _older_format(path, means, calibration):
    """Rewrite a head file as the format before the combined score wrote it: class means and
    max-cosine held-out scores, their checksum, format version 1."""
    from imprint_core.head_io import _digest_bytes

    means = np.ascontiguousarray(means, dtype=np.float32)
    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    _rewrite(
        path,
        drop=[f"unknown_{k}" for k in UnknownModel.names()],
        replace={"unknown_means": means, "unknown_calibration": calibration},
        meta_update={"format_version": 1, "sha256_unknown": _digest_bytes(means, calibration)},
    )


def test_head_of_the_older_format_keeps_its_rule(tmp_path):
    """Max-cosine score, a quantile of its held-out scores; with one image per class, the
    classes' separation."""
    path = tmp_path / "older.safetensors"
    X, y, Q = blobs(seed=4, n=10)
    clf = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(X, y)
    clf.save(path)
    calibration = np.linspace(0.01, 0.2, 30)
    _older_format(path, clf.unknown_means_, calibration)
    old = ic.ImprintClassifier.load(path)
    assert old.unknown_model_ is None
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    expected = 1 - (Qn @ clf.unknown_means_.astype(np.float64).T).max(1)
    np.testing.assert_allclose(old.unknown_score(Q), expected, atol=1e-6)
    assert old.unknown_threshold_ == pytest.approx(np.quantile(calibration, 0.95), abs=1e-6)
    assert old.unknown_rule_ == "held-out training images (95% score lower)"
    np.testing.assert_array_equal(
        old.is_unknown(Q), old.unknown_score(Q) > np.quantile(calibration, 0.95)
    )
    # re-saved as it is, and one image per class: the separation of the classes
    old.save(path)
    np.testing.assert_allclose(ic.ImprintClassifier.load(path).unknown_score(Q), expected, 1e-6)
    X1 = np.array([[1.0, 0, 0], [np.cos(1.0), np.sin(1.0), 0], [0, 0, 1]])
    ic.ImprintClassifier.from_preset("qi").fit(X1, ["a", "b", "c"]).save(path)
    _older_format(path, E, np.zeros(0))
    one = ic.ImprintClassifier.load(path)
    assert one.unknown_rule_.startswith("class separation") and not one.unknown_held_out_
    assert one.unknown_threshold_ == pytest.approx(1.0, abs=1e-6)


def test_head_of_format_2_keeps_the_largest_held_out_score_with_one_image(tmp_path):
    """Heads saved before the one-image rule (no ``unknown_pair_spread``) keep their threshold."""
    from imprint_core.head_io import _digest_bytes

    path = tmp_path / "two.safetensors"
    X = np.array([[1.0, 0, 0], [np.cos(1.0), np.sin(1.0), 0], [0, 0, 1]])
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, ["a", "b", "c"])
    clf.save(path)
    from safetensors.numpy import load_file

    kept = [f"unknown_{k}" for k in UnknownModel.names() if k != "pair_spread"]
    digest = _digest_bytes(*(load_file(str(path))[k] for k in kept))
    _rewrite(
        path,
        drop=["unknown_pair_spread"],
        meta_update={"format_version": 2, "sha256_unknown": digest},
    )
    two = ic.ImprintClassifier.load(path)
    assert float(two.unknown_model_.pair_spread[0]) == 0
    assert two.unknown_threshold_ == pytest.approx(two.unknown_calibration_.max(), abs=1e-6)
    assert two.unknown_rule_.endswith("the largest held-out score)")
    np.testing.assert_allclose(two.unknown_score(X), clf.unknown_score(X), atol=1e-6)


def test_head_saved_without_means_scores_by_its_nearest_proxy(tmp_path):
    """Head files written before the means were stored still load and score (oldest rule)."""
    X = np.array([E[0], E[0] * 2, E[1], E[1] * 3])
    path = tmp_path / "old.safetensors"
    ic.ImprintClassifier.from_preset("ours").fit(X, ["a", "a", "b", "b"]).save(path)
    _rewrite(path, drop=[f"unknown_{k}" for k in UnknownModel.names()])
    old = ic.ImprintClassifier.load(path)
    assert old.unknown_means_ is None and old.unknown_model_ is None
    np.testing.assert_allclose(old.unknown_score([[0, 0, 1.0]]), [1.0], atol=1e-6)
    assert old.unknown_threshold_ == pytest.approx(1.0, abs=1e-6)  # orthogonal proxies
    assert old.unknown_rule_.startswith("proxy separation")


def test_altered_or_malformed_unknown_tensors_are_refused(tmp_path):
    from imprint_core.head_io import HeadFileError

    X, y, _ = blobs(seed=5, n=4)
    path = tmp_path / "h.safetensors"
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    for tensor in ("unknown_calibration", "unknown_scale", "unknown_metric"):
        clf.save(path)
        value = getattr(clf.unknown_model_, tensor.removeprefix("unknown_"))
        _rewrite(path, replace={tensor: (value + 1).astype(value.dtype)})
        with pytest.raises(HeadFileError, match="'h.safetensors' was altered after saving"):
            ic.ImprintClassifier.load(path)
    clf.save(path)
    _rewrite(path, drop=("unknown_white_means",))
    with pytest.raises(HeadFileError, match="lacks the tensor 'unknown_white_means'"):
        ic.ImprintClassifier.load(path)


def test_unknown_needs_a_fitted_head_and_checks_inputs():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ic.ImprintClassifier().unknown_score(np.ones((1, 3)))
    clf = ic.ImprintClassifier.from_preset("qi").fit(*blobs(d=3)[:2])
    with pytest.raises(ValueError, match="3 features"):
        clf.unknown_score(np.ones((1, 4)))


def test_degenerate_classes_give_finite_scores():
    """Two classes of one image each (the whitened space has one direction), exact copies."""
    two = ic.ImprintClassifier.from_preset("qi").fit([[1.0, 0, 0], [0, 1.0, 0]], ["a", "b"])
    copies = ic.ImprintClassifier.from_preset("qi").fit(np.repeat(E, 3, axis=0), np.arange(9) // 3)
    Q = np.array([[1.0, 1, 0], [0, 0, 1], [1, 0, 0]])
    for clf in (two, copies):
        assert np.isfinite(clf.unknown_score(Q)).all() and np.isfinite(clf.unknown_threshold_)
    assert copies.is_unknown(Q[:1])[0]  # between two classes of exact copies


@pytest.mark.fashion_mnist
def test_auroc_known_vs_unknown_on_fashion_mnist():
    """Teach 5 of the 10 classes with 10 images each; held-out images of the taught classes
    must mostly score lower than images of the 5 others (a small draw: AUROC > 0.75; the full
    protocol is benchmarks/bench_unknown.py)."""
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
    unknown_rows = ~np.isin(labels[probe], known)
    clf = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(Xs, labels[teach])
    score = clf.unknown_score(Xq)
    assert roc_auc_score(unknown_rows, score) > 0.75
    flagged = clf.is_unknown(Xq)
    np.testing.assert_array_equal(flagged, score > clf.unknown_threshold_)
    # calibrated on held-out training images (95 %): few known images are flagged, more unknown
    assert flagged[~unknown_rows].mean() < 0.2 < flagged[unknown_rows].mean()


def test_the_sentence_names_the_rule_that_set_the_threshold():
    """Try it's sentence: held-out images when the head has them, else the other classes."""
    from imprint_core.session import unknown_note

    held = {"unknown": True, "score": 3.1, "threshold": 2.0, "held_out": True}
    assert "than 95 % of your own images are from their class" in unknown_note(held)
    one_each = ic.ImprintClassifier.from_preset("qi").fit(np.eye(3), ["a", "b", "c"])
    assert not one_each.unknown_held_out_  # nothing held out from its own class
    fallback = {**held, "held_out": False, "threshold": one_each.unknown_threshold_}
    note = unknown_note(fallback, "The frame")
    assert note.startswith("**None of these?** The frame is farther from every class")
    assert "than your images typically are from the other classes" in note
    assert unknown_note({**held, "unknown": False}) == "" and unknown_note(None) == ""


def test_statistics_are_built_on_first_use_once_and_as_they_would_be_at_fit(monkeypatch, tmp_path):
    """fit leaves the statistics (an eigendecomposition, every image's held-out scores) to the
    first use; a class added before that use and the caller's array changed in place after fit
    give what building them at once gives."""
    X, y, Q = blobs(seed=4, n=12)
    eager = ic.ImprintClassifier.from_preset("qi").fit(X[y != 2], y[y != 2])
    assert (
        eager.unknown_model_ is not None
    )  # built now, then the class is added in the spaces of the fit
    eager.add_class(X[y == 2], 2)

    calls = []
    real = unknown.fit_unknown
    monkeypatch.setattr(unknown, "fit_unknown", lambda *a: calls.append(1) or real(*a))
    Xc = X.copy()
    lazy = ic.ImprintClassifier.from_preset("qi").fit(Xc[y != 2], y[y != 2])
    lazy.add_class(Xc[y == 2], 2)
    Xc[:] = 0.0  # the caller's array changes: the statistics are of what was fitted
    assert calls == []
    np.testing.assert_allclose(lazy.unknown_score(Q), eager.unknown_score(Q), atol=1e-5)
    assert lazy.unknown_threshold_ == pytest.approx(eager.unknown_threshold_, abs=1e-5)
    for name in UnknownModel.names():
        np.testing.assert_allclose(
            getattr(lazy.unknown_model_, name), getattr(eager.unknown_model_, name), atol=1e-5
        )
    lazy.is_unknown(Q)
    lazy.save(tmp_path / "h.safetensors")
    assert calls == [1]  # built once, kept
    lazy.fit(X, y)  # a refit starts again
    assert calls == [1]
    np.testing.assert_allclose(lazy.unknown_means_, unknown.class_means(X, y, 3), atol=1e-6)
    assert calls == [1, 1]
    back = ic.ImprintClassifier.load(tmp_path / "h.safetensors")
    np.testing.assert_allclose(back.unknown_score(Q), eager.unknown_score(Q), atol=1e-5)
