"""Support augmentation (issue 10): the views, their embeddings and sources, the bench's paired
comparison, and the session (training samples grow, user-visible counts do not, evaluation holds a
held-out image's views out with it). Real backbone, images drawn by the tests or Fashion-MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

import imprint_core as ic
from imprint_core import augment as aug
from imprint_core import session as pj
from imprint_core.evaluation import evaluate
from imprint_core.session import Project, ProjectError
from imprint_core.session.settings import AUGMENT_DEFAULT, check_augment


@pytest.fixture(scope="module")
def bb():
    return ic.get_backbone()


def drawing(seed: int, size=(96, 80), symmetric: bool = False) -> Image.Image:
    """A picture of random coloured shapes (mirrored about the vertical axis if ``symmetric``)."""
    rng = np.random.default_rng(seed)
    w, h = size
    im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h - 10))
        x1, y1 = x0 + int(rng.integers(5, w // 2)), y0 + int(rng.integers(5, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = d.ellipse if rng.random() < 0.5 else d.rectangle
        shape((x0, y0, x1, y1), fill=colour)
        if symmetric:
            shape((w - 1 - x1, y0, w - 1 - x0, y1), fill=colour)
    return im


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- the views -------------------------------------------------------------------------------------
def test_views_are_deterministic_and_shaped_right():
    im = drawing(0, size=(96, 80))
    labels = aug.view_labels(aug.DEFAULT_VIEWS)
    first, again = aug.augment_image(im), aug.augment_image(im.copy())
    assert len(first) == len(labels) == 6 and labels[0] == "flip"
    for a, b in zip(first, again, strict=True):
        assert a.size == b.size and a.tobytes() == b.tobytes()
    px = np.asarray(im)
    np.testing.assert_array_equal(np.asarray(first[0]), px[:, ::-1])
    crops = dict(zip(labels[1:], first[1:], strict=True))
    cw, ch = round(96 * aug.CROP_FRACTION), round(80 * aug.CROP_FRACTION)
    assert {c.size for c in crops.values()} == {(cw, ch)}
    np.testing.assert_array_equal(np.asarray(crops["crop top-left"]), px[:ch, :cw])
    np.testing.assert_array_equal(np.asarray(crops["crop bottom-right"]), px[-ch:, -cw:])
    x0, y0 = round((96 - cw) / 2), round((80 - ch) / 2)
    np.testing.assert_array_equal(np.asarray(crops["crop centre"]), px[y0 : y0 + ch, x0 : x0 + cw])
    assert np.asarray(im).tobytes() == px.tobytes()  # the source is left as it was
    assert aug.check_views("crops,flip,flip") == ("flip", "crops")  # registry order, no repeats
    assert aug.check_views(None) == aug.check_views("none") == aug.check_views([]) == ()


@pytest.mark.parametrize("bad", ["rot90", "flip,blur", ["flip", "Flip"]])
def test_bad_view_names_say_the_option_and_what_is_allowed(bad):
    with pytest.raises(ValueError, match=r"augment got the unknown view .*allowed: flip, crops"):
        aug.check_views(bad)
    with pytest.raises(ProjectError, match="Augment training images .* allowed: flip, crops"):
        check_augment(bad)


def test_embeddings_of_views_and_their_source_indices(bb):
    images = [drawing(1), drawing(2, size=(60, 90)), drawing(3, symmetric=True)]
    Z, source = ic.embed_views(bb, images, "flip,crops", cache=False, chunk=2)
    per = len(aug.view_labels("flip,crops"))
    assert Z.shape == (3 * per, bb.dim) and Z.dtype == np.float32
    np.testing.assert_array_equal(source, np.repeat([0, 1, 2], per))
    for j, im in enumerate(images):  # each row is the embedding of that view of its source
        direct = bb.embed(aug.augment_image(im), cache=False)
        np.testing.assert_allclose(Z[source == j], direct, atol=1e-4)
    plain = bb.embed(images, cache=False)
    # the mirror of a mirror-symmetric picture is the picture: same embedding
    assert cos(Z[source == 2][0], plain[2]) > 0.9999
    # an asymmetric one's mirror is another picture, still close to the original
    assert 0.5 < cos(Z[source == 0][0], plain[0]) < 0.9999
    # arrays, paths and a stack of arrays give the same rows as PIL images
    Za, sa = ic.embed_views(bb, np.stack([np.asarray(images[0])] * 2), ("flip",), cache=False)
    np.testing.assert_allclose(Za[0], Z[0], atol=1e-4)
    np.testing.assert_array_equal(sa, [0, 1])
    empty, none = ic.embed_views(bb, images, (), cache=False)
    assert empty.shape == (0, bb.dim) and none.shape == (0,)
    X, y = ic.add_views(plain, np.array(["a", "b", "c"]), Z, source)
    assert X.shape == (3 + 3 * per, bb.dim) and list(y[3:]) == list(np.repeat(["a", "b", "c"], per))


# ---- evaluation: a held-out image takes its views with it --------------------------------------------
@pytest.fixture(scope="module")
def noise_labels(bb):
    """15 different pictures under 3 labels that carry no information (random), and their views.

    A head that may look at the held-out image's own views recognises it (its flip and crops are
    its nearest neighbours); one that may not is at chance."""
    images = [drawing(100 + i) for i in range(15)]
    y = np.array(["a", "b", "c"] * 5, dtype=object)
    X = bb.embed(images, cache=False)
    Z, source = ic.embed_views(bb, images, aug.DEFAULT_VIEWS, cache=False)
    return images, X, y, Z, source


ONE_NN = {**ic.PRESETS["qi"], "gen": "all"}  # every sample a proxy: the nearest one decides


def leaky_accuracy(X, y, Z, source) -> float:
    """Leave-one-out as a leaking evaluation would do it: image i out, its views kept in."""
    hits = 0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        Xtr = np.concatenate([X[keep], Z])
        ytr = np.concatenate([y[keep], y[source]])
        clf = ic.ImprintClassifier(**ONE_NN).fit(Xtr, ytr)
        hits += clf.predict(X[i : i + 1])[0] == y[i]
    return hits / len(y)


@pytest.mark.parametrize("scheme", ["leave-one-out", "stratified k-fold"])
def test_evaluation_holds_the_views_of_held_out_images_out(noise_labels, scheme):
    _, X, y, Z, source = noise_labels
    # the control: letting the views leak would look (almost) perfect on labels that mean nothing
    assert leaky_accuracy(X, y, Z, source) >= 0.9
    honest = evaluate(X, y, ONE_NN, scheme, views=(Z, source))
    assert honest.method == scheme and honest.n_evaluated == 15  # views are never evaluated
    assert honest.accuracy <= 0.6  # chance is 1/3
    # and the views do train: every other image's views are samples of the split
    one_image = evaluate(X, y, ONE_NN, scheme, views=(Z[source == 0], source[source == 0]))
    assert one_image.n_evaluated == 15


# ---- the session ------------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    p = Project(workdir=tmp_path / "work", n_classes=0)
    yield p
    p.close()


def fill(project: Project, tmp_path, n_per_class=(3, 3), seed=0) -> None:
    folder = tmp_path / "img"
    folder.mkdir(exist_ok=True)
    for c, n in enumerate(n_per_class):
        paths = []
        for i in range(n):
            path = folder / f"c{c}-{i}.png"
            drawing(seed + 10 * c + i).save(path)
            paths.append(path)
        project.add_images(project.add_class(f"class {c}").uid, paths)


def test_session_augmentation_grows_samples_not_counts(project, bb, tmp_path):
    fill(project, tmp_path, (3, 4))
    assert project.augment == AUGMENT_DEFAULT == ()
    project.train(bb)
    plain = project.summary()
    assert project.head.training_ == {"augment": [], "images": 7, "samples": 7}

    before = project.version
    with pytest.raises(ProjectError, match="allowed: flip, crops"):
        project.set_augment("flip,rotate")
    assert project.augment == () and project.version == before  # refused: nothing changed
    project.set_augment(True)
    assert project.augment == ("flip", "crops") and not project.is_embedded(bb.name)
    project.train(bb)
    s = project.summary()
    assert project.head.training_ == {"augment": ["flip", "crops"], "images": 7, "samples": 49}
    assert s["augment"] == ["flip", "crops"] and plain["augment"] == []
    for key in ("images", "images_per_class", "classes"):
        assert s[key] == plain[key]  # what the user sees counts their images only
    assert [c["n"] for c in project.view()["classes"]] == [3, 4]
    X, y, items = project.dataset()
    assert len(X) == len(y) == len(items) == 7
    assert s["accuracy"]["n_evaluated"] == 7 and sum(s["accuracy"]["support"].values()) == 7
    assert s["accuracy"]["method"] == "leave-one-out"
    Z, source = project.training_views(items)
    assert Z.shape == (42, bb.dim) and np.bincount(source).tolist() == [6] * 7
    # the views are cached per image: turning it off and on again embeds nothing
    project.set_augment(False)
    project.set_augment(["flip", "crops"])
    assert project.is_embedded(bb.name) and project.embed(bb) < 1.0
    # the session's views render the option, the status counts images
    assert pj.views(project)["augment"] is True


def test_session_leave_one_out_does_not_leak_views(project, bb, tmp_path):
    """Random labels: an honest leave-one-out is near chance, one that kept the held-out image's
    views would be near 100 % (1-NN finds the image's own flip or crop)."""
    fill(project, tmp_path, (4, 4, 4), seed=200)
    project.set_settings(None, gen="all", norm_pre="l2", norm_inf="l2", norm_post="l2")
    project.set_augment(True)
    project.train(bb)
    X, y, items = project.dataset()
    Z, source = project.training_views(items)
    assert leaky_accuracy(X, y, Z, source) >= 0.9  # the leak this test would catch
    ev = project.evaluation
    assert ev.method == "leave-one-out" and ev.n_evaluated == 12
    assert ev.accuracy <= 0.6  # chance is 1/3 (each class of 4 made of unrelated pictures)


def test_method_tab_checkbox_reimprints_and_a_refused_change_changes_nothing(project, bb, tmp_path):
    from imprint_core.ui import method

    def quiet(*args, **kwargs):
        return None

    fill(project, tmp_path, (2, 3), seed=300)
    project.train(bb)
    method.apply_augment(project, bb.name, True, quiet)
    assert project.augment == ("flip", "crops") and project.head.training_["samples"] == 35
    assert pj.views(project)["augment"] is True
    method.apply_augment(project, bb.name, False, quiet)
    assert project.head.training_["samples"] == 5 and pj.views(project)["augment"] is False
    project.add_class("empty")  # Imprint refuses an empty class: so does the checkbox
    before, head = project.version, project.head
    with pytest.raises(ProjectError, match="no images"):
        method.apply_augment(project, bb.name, True, quiet)
    assert project.augment == () and project.head is head and project.version == before


def test_head_file_and_project_zip_record_augmentation(project, bb, tmp_path):
    from imprint_core.head_io import read_head_metadata
    from imprint_core.session import open_project, save_project

    fill(project, tmp_path, (2, 2))
    project.set_augment(("flip",))
    project.train(bb)
    path = project.export_head(tmp_path / "out")
    meta = read_head_metadata(path)
    assert meta["training"] == {"augment": ["flip"], "images": 4, "samples": 8}
    assert "augment" not in meta["params"]  # not a classifier option
    other = Project(workdir=tmp_path / "other", n_classes=0)
    try:
        other.load_head(path)
        assert other.augment == ("flip",) and other.summary()["augment"] == ["flip"]
    finally:
        other.close()
    # a project zip keeps the option, with or without a head
    project.reset(0)
    fill(project, tmp_path, (2, 2), seed=50)
    project.set_augment(True)
    zipped = save_project(project, tmp_path / "p.zip")
    assert json.loads(__import__("zipfile").ZipFile(zipped).read("project.json"))["augment"] == [
        "flip",
        "crops",
    ]
    reopened = open_project(zipped, tmp_path / "reopened")
    try:
        assert reopened.augment == ("flip", "crops")
    finally:
        reopened.close()


# ---- the bench --------------------------------------------------------------------------------------
def test_with_views_takes_the_views_of_exactly_the_support_rows():
    from imprint_core.bench.fewshot import with_views

    owner = np.array([2, 2, 5, 5, 9, 9])  # views of pool rows 2, 5 and 9, sorted by row
    Zv = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    X = np.full((2, 3), -1, np.float32)
    Xa, ya = with_views(X, np.array([0, 1]), np.array([9, 2]), (Zv, owner))
    assert Xa[:, 0].tolist() == [-1, -1, 4, 5, 0, 1] and ya.tolist() == [0, 1, 0, 0, 1, 1]


@pytest.mark.fashion_mnist
def test_fewshot_with_augment_pairs_the_same_draws(tmp_path, capsys, bb):
    from imprint_core.bench.fewshot import FewShotConfig, run_fewshot
    from imprint_core.cli import main

    cfg = FewShotConfig(
        backbone=bb,
        shots=(1, 2),
        draws=2,
        pool_per_class=3,
        test_per_class=3,
        tasks=("short",),
        methods=tuple(ic.bench.preset_methods(["qi"])),
        simpleshot=False,
        cache_dir=tmp_path,
        progress=False,
        augment=("flip", "crops"),
    )
    result = run_fewshot(cfg)
    assert result.embeddings["views"]["cached"] is False
    runs = {(r["method"], r["augment"], r["shots"], r["draw"]): r for r in result.runs}
    assert len(runs) == len(result.runs) == 2 * 2 * 2 * 2
    for (method, augment, shots, draw), r in runs.items():
        n_classes = 3  # task "short"
        assert r["n_train"] == shots * n_classes * (7 if augment else 1)
        if augment:
            gain = r["accuracy"] - runs[(method, "", shots, draw)]["accuracy"]
            paired = next(p for p in result.paired if (p["method"], p["shots"]) == (method, shots))
            assert paired["draws"] == 2 and paired["augment"] == "flip+crops"
            assert min(gain, paired["gain"]) <= paired["gain"] <= max(gain, paired["gain"])
    names = {s["method"] for s in result.summary}
    assert names == {"qi", "qi + flip+crops", "linear probe", "linear probe + flip+crops"}
    # plain rows are the plain protocol's (same draws, same numbers)
    plain = run_fewshot(FewShotConfig(**{**cfg.__dict__, "augment": ()}))
    by_key = {(s["method"], s["shots"]): s["mean"] for s in plain.summary}
    for s in result.summary:
        if not s["augment"]:
            assert s["mean"] == pytest.approx(by_key[s["method"], s["shots"]])
    argv = [
        "bench", "--shots", "1,2", "--draws", "2", "--pool-per-class", "3",
        "--test-per-class", "3", "--tasks", "short", "--methods", "qi", "--no-simpleshot",
        "--augment", "flip,crops", "--cache-dir", str(tmp_path), "--out",
        str(tmp_path / "res"), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "qi + flip+crops (gain)" in out and "from the cache" in out  # views embedded once
    assert main(["bench", "--shots", "1", "--augment", "flip,mirror", "--no-progress"]) == 2
    assert "--augment got the unknown view 'mirror'; allowed: flip, crops" in (
        capsys.readouterr().err
    )
