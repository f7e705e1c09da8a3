"""The project's settings, imprinting and summary (session/project.py), with the real built-in
backbone and the shipped Fashion-MNIST images."""

from __future__ import annotations

import pytest

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError


def test_a_new_project_starts_with_the_library_default_preset(project):
    import imprint_core as ic

    assert ic.DEFAULT_PRESET in ic.PRESETS and ic.DEFAULT_PRESET != "ours"
    assert project.preset == ic.DEFAULT_PRESET
    assert project.settings == {"seed": 0, **ic.PRESETS[ic.DEFAULT_PRESET]}


# ---- imprinting ------------------------------------------------------------------------------------
def test_imprint_needs_two_classes_with_images(project, fashion, backbone):
    train, _ = fashion
    project.remove_class(project.classes[1].uid)
    with pytest.raises(ProjectError, match="at least 2 classes"):
        project.train(backbone)
    project.add_class("empty one")
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    with pytest.raises(ProjectError, match="Class 'empty one' has no images"):
        project.train(backbone)


def test_summary_after_training(trained):
    s = trained.summary()
    assert s["classes"] == ["Sneaker", "T-shirt", "Trouser"]
    assert s["images_per_class"] == {"Sneaker": 30, "T-shirt": 30, "Trouser": 30}
    assert s["proxies_per_class"] == {"Sneaker": 20, "T-shirt": 20, "Trouser": 20}  # k = 20
    assert s["backbone"] == "efficientnet_lite0" and s["preset"] == "ours"
    assert s["accuracy"]["method"] == pj.evaluation_scheme(90) == "stratified k-fold"
    assert s["accuracy"]["accuracy"] >= 0.9
    assert set(s["seconds"]) == {"embed", "imprint", "evaluate"}


def test_the_summary_times_the_embedding_it_did(backbone, fashion, tmp_path):
    """The embedding time is the time embedding took (it once reported the machine's uptime: the
    chunk loop reused the timer's variable)."""
    import time

    train, _ = fashion
    p = Project(workdir=tmp_path / "work", n_classes=0)
    try:
        for cls in ("Trouser", "Sneaker"):
            p.add_images(p.add_class(cls).uid, train[cls][:3])
        start = time.perf_counter()
        p.train(backbone)
        elapsed = time.perf_counter() - start
        assert 0 < p.summary()["seconds"]["embed"] <= elapsed
    finally:
        p.close()


def test_the_head_says_when_images_changed_since_imprinting(backbone, fashion, tmp_path):
    train, _ = fashion
    p = Project(workdir=tmp_path / "work", n_classes=0)
    for cls in ("Trouser", "Sneaker"):
        p.add_images(p.add_class(cls).uid, train[cls][:4])
    p.train(backbone)
    assert not p.stale and "changed since" not in pj.status_line(p.summary())
    trousers = p.find("Trouser").uid
    p.remove_image(trousers, 0)
    s = p.summary()
    assert p.stale and s["stale"]
    assert s["images_per_class"] == {"Sneaker": 4, "Trouser": 4}  # what the head was built from
    assert "changed since: press **Imprint**" in pj.status_line(s)
    p.train(backbone)
    assert not p.stale and p.summary()["images_per_class"]["Trouser"] == 3
    p.rename_class(trousers, "pants")  # the same images imprinted again under the new name
    assert not p.stale and p.summary()["classes"] == ["Sneaker", "pants"]
    p.add_class()  # an empty class changes nothing the head is imprinted from
    assert not p.stale
    p.remove_image(trousers, 0)
    p.rename_class(trousers, "Trouser")  # stale already: the new name waits for Imprint too
    assert p.stale and p.summary()["classes"] == ["Sneaker", "pants"]
    p.close()


def test_changing_settings_reimprints_without_embedding(trained, backbone):
    calls = []

    class Counting:  # the real backbone, counting embed calls
        name = backbone.name

        def embed(self, *args, **kwargs):
            calls.append(1)
            return backbone.embed(*args, **kwargs)

    trained.set_settings("qi")
    s = trained.imprint()
    assert s["preset"] == "qi" and set(s["proxies_per_class"].values()) == {1}
    trained.set_settings(None, gen="kmeans", k=3)
    assert trained.preset is None and trained.imprint()["proxies_per_class"]["Trouser"] == 3
    assert trained.embed(Counting()) >= 0 and calls == []  # everything was cached
    trained.set_settings("ours")
    trained.imprint()


def test_presets_keep_the_seed_and_are_recognised(project):
    assert project.preset == pj.DEFAULT_PRESET and project.settings["seed"] == 0
    project.set_settings("ours")
    project.set_settings(None, seed=7)
    assert project.preset == "ours"  # the seed is not part of a preset
    s = project.set_settings("qi")
    assert s["seed"] == 7 and project.preset == "qi"
    assert set(s) >= {"norm_pre", "gen", "k", "norm_post", "norm_inf", "agg", "distance", "m"}
    project.set_settings(None, k=3)
    assert project.preset is None
    project.set_settings(None, gen="kmeans", k=20)
    assert project.preset == "ours"


def test_bad_settings_are_refused(project):
    before = dict(project.settings)
    with pytest.raises(ProjectError, match="Unknown preset 'best'"):
        project.set_settings("best")
    with pytest.raises(ProjectError, match="gen"):
        project.set_settings(None, gen="magic")
    assert project.settings == before  # unchanged


@pytest.mark.parametrize("side", ["norm_pre", "norm_inf"])
def test_whiten_on_one_side_sets_the_other_and_says_so(project, side):
    other = {"norm_pre": "norm_inf", "norm_inf": "norm_pre"}[side]
    project.set_settings("ours")  # both sides l2
    settings = project.set_settings(None, **{side: "whiten"})
    assert settings["norm_pre"] == settings["norm_inf"] == "whiten"
    assert f"{other} was set to whiten too" in project.settings_note
    settings = project.set_settings(None, **{side: "l2"})  # and back together
    assert settings["norm_pre"] == settings["norm_inf"] == "l2"


def test_one_evaluation_scheme_for_every_preset(backbone, fashion, tmp_path):
    """Issue 9: leave-one-out for some presets and k-fold for others made accuracies that
    could not be compared."""
    train, _ = fashion
    p = Project(workdir=tmp_path, n_classes=0)
    for cls in ("Trouser", "Sneaker"):
        p.add_images(p.add_class(cls).uid, train[cls][:20])
    p.embed(backbone)
    methods = set()
    for preset in ("ours", "qi", "oracle", "auto"):
        p.set_settings(preset)
        methods.add(p.imprint()["accuracy"]["method"])
    assert methods == {pj.evaluation_scheme(40)} == {"stratified k-fold"}
