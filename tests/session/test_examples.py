"""The shipped example projects: real Fashion-MNIST images, small, licensed, and they teach what
they claim (k-means proxies beat one mean per class on the multi-modal example)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import examples as ex


def test_assets_are_small_licensed_pngs():
    files = [p for p in ex.ASSETS_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    licence = (ex.ASSETS_DIR / "LICENSE-fashion-mnist.txt").read_text()
    assert "MIT" in licence and "Zalando" in licence
    pngs = [p for p in files if p.suffix == ".png"]
    assert len(pngs) >= 200
    with Image.open(pngs[0]) as im:
        assert im.format == "PNG" and im.size == (112, 112)


@pytest.mark.parametrize(
    ("key", "classes", "per_class"),
    [
        ("fashion3", ["Sneaker", "T-shirt", "Trouser"], 30),
        ("merged", ["footwear", "other", "tops"], 36),
    ],
)
def test_examples_have_train_and_held_out_images(key, classes, per_class):
    train, test = ex.train_images(key), ex.test_images(key)
    assert sorted({c for c, _ in train}) == classes
    assert all(sum(1 for c2, _ in train if c2 == c) == per_class for c in classes)
    assert sorted({c for c, _ in test}) == classes
    assert not {p.name for _, p in train} & {p.name for _, p in test}


def test_merged_classes_mix_several_fashion_classes():
    kinds = {}
    for cls, path in ex.train_images("merged"):
        kinds.setdefault(cls, set()).add(path.name.split("-")[0])
    assert kinds == {
        "tops": {"tshirt", "pullover", "coat", "shirt"},
        "footwear": {"sandal", "sneaker", "ankleboot"},
        "other": {"trouser", "dress", "bag"},
    }


def test_load_example_replaces_the_project(tmp_path):
    project = pj.Project(workdir=tmp_path)
    project.rename_class(project.classes[0].uid, "mine")
    message = ex.load_example(project, "fashion3")
    assert project.names == ["Sneaker", "T-shirt", "Trouser"]
    assert message.startswith("Loaded the example 'Fashion-MNIST: T-shirt, trouser, sneaker'")
    with pytest.raises(ValueError, match="unknown example 'nope'"):
        ex.load_example(project, "nope")


def test_manifest_records_the_choice():
    manifest = json.loads((ex.EXAMPLES_DIR / "manifest.json").read_text())
    merged = manifest["merged"]
    assert merged["chosen"]["ours"]["loo"] > merged["chosen"]["qi"]["loo"]
    assert merged["chosen"]["ours"]["test"] > merged["chosen"]["qi"]["test"]
    assert len(merged["draws"]) >= 10


@pytest.mark.slow
def test_kmeans_proxies_beat_the_mean_on_the_merged_example(tmp_path):
    """What the app shows after one click on the example: IMPRINT's k-means vs one mean."""
    project = pj.Project(workdir=tmp_path)
    ex.load_example(project, "merged")
    project.embed(pj.load_backbone(None))
    project.set_settings("qi")
    qi = project.imprint()["accuracy"]
    project.set_settings("ours")
    ours = project.imprint()["accuracy"]
    # the app evaluates every preset the same way, so the two figures compare
    assert qi["method"] == ours["method"] == pj.evaluation_scheme(project.n_images)
    assert ours["accuracy"] > qi["accuracy"]
    # the example was chosen by leave-one-out (manifest.json): the margin holds there
    from imprint_core.evaluation import evaluate
    from imprint_core.presets import PRESETS

    X, y, _ = project.dataset()
    loo = {p: evaluate(X, y, dict(PRESETS[p]), "leave-one-out").accuracy for p in ("qi", "ours")}
    assert loo["ours"] >= loo["qi"] + 0.03
