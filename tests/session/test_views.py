"""Every view as a function of the project (session/views.py, session/texts.py): texts for the app,
views following the head, user strings kept as text."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from imprint_core import session as pj
from imprint_core.session import Project
from imprint_core.session.memo import same
from imprint_core.session.views import GROUPS, ViewGroup


def test_text_for_the_app(trained):
    s = trained.summary()
    assert pj.status_line(s).startswith("Imprinted 3 classes from 90 images (60 proxies) in ")
    assert "(stratified k\\-fold)" in pj.status_line(s)  # Markdown-escaped
    assert "| **total** | **90** | **60** |" in pj.summary_markdown(s)
    assert pj.accuracy_markdown(s).startswith("### Accuracy on your own images: ")
    rows = pj.per_class_rows(s)
    assert [r[0] for r in rows] == ["Sneaker", "T-shirt", "Trouser"] and rows[0][1] == 30
    empty = Project(n_classes=2).summary()
    assert pj.per_class_rows(empty) is None and "press **Imprint**" in pj.status_line(empty)


def test_views_follow_the_head(trained, backbone, fashion):
    """Try it, Geometry, Export are views of the current head: a new head updates or clears
    them (issue 9: Try it kept "nearest proxy 1 of 4" after the preset changed to Qi)."""
    _, test = fashion
    trained.set_settings("ours")
    trained.imprint()
    trained.predict(backbone, str(test["Sneaker"][0]), "probe.png")
    trained.geometry("pca", 2)
    trained.export_head()
    zipped = pj.save_project(trained, trained.workdir / "saved" / "p.zip")
    v = pj.views(trained)
    assert v["evidence"]["data"][0][2].endswith("of 20") and v["map"] is not None
    assert v["head_file"] and "probe" in v["try_note"]
    assert v["project_file"] == str(zipped) and v["project_note"] == ""
    trained.set_settings("qi")
    trained.imprint()
    v = pj.views(trained)
    assert all(row[2] == "1 of 1" for row in v["evidence"]["data"])  # Qi: one proxy per class
    proxies = [t for t in v["map"].data if (t.name or "").endswith(" proxies")]  # per class
    assert sum(len(t.x) for t in proxies) == 3
    assert v["head_file"] is None and "download it again" in v["head_note"]
    # the saved zip held the k-means head: withdrawn too (it was left on the page before)
    assert v["project_file"] is None and "save it again" in v["project_note"]
    trained.set_settings("ours")
    trained.imprint()


def test_user_strings_are_text_in_every_text_builder():
    hostile = "<img src=http://127.0.0.1:1/x> [Log in](http://evil) *b* | c"
    s = {
        "classes": [hostile],
        "accuracy": None,
        "head": "<b>head</b>.safetensors",
        "backbone": "efficientnet_lite0",
        "preset": "custom",
        "settings": {"gen": "kmeans"},
        "images_per_class": {},
        "proxies_per_class": {hostile: 2},
        "images": 0,
        "proxies": 2,
        "seconds": {},
    }
    for text in (pj.summary_markdown(s), pj.status_line(s)):
        assert "<img" not in text and "<b>" not in text and "](" not in text
        assert "&lt;img" in text or "&lt;b&gt;" in text
    assert "\\|" in pj.summary_markdown(s)  # a '|' in a name cannot end its table cell
    assert pj.escape_html("<a href=x>") == "&lt;a href=x&gt;"


# ---- views computed again only when what they read changed (issue 20) -----------------------------
def _counting(calls: Counter, name: str, compute):
    def counted(project):
        calls[name] += 1
        return compute(project)

    return counted


@pytest.fixture
def counted(monkeypatch) -> Counter:
    """How many times each group of views is computed (each still computes for real)."""
    calls: Counter = Counter()
    for name, group in list(GROUPS.items()):
        if group.reads is None:  # declared as computed at every event (the Sort images panel)
            continue
        counting = ViewGroup(group.reads, _counting(calls, name, group.compute), group.names)
        monkeypatch.setitem(GROUPS, name, counting)
    return calls


def test_views_are_computed_again_only_when_what_they_read_changed(
    trained, backbone, fashion, counted
):
    _, test = fashion
    seed = trained.settings["seed"]
    trained.predict(backbone, str(test["Sneaker"][0]), "probe.png")
    pj.views(trained)
    assert counted["prediction"] == counted["confusion"] == 1
    counted.clear()
    pj.views(trained)  # nothing changed: nothing is computed
    assert not counted
    uid = trained.add_class("Empty").uid  # a class without images: the cards only
    pj.views(trained)
    # (and the saved project's download, when there is one: it no longer holds this project)
    assert counted["cards"] == 1 and set(counted) <= {"cards", "downloads"}
    trained.remove_class(uid)
    counted.clear()
    trained.set_settings(seed=seed + 1)  # a setting not imprinted yet: Method and the status
    pj.views(trained)
    assert counted["method"] == counted["summary"] == 1
    assert counted["prediction"] == counted["confusion"] == counted["geometry"] == 0
    counted.clear()
    trained.predict(backbone, str(test["Trouser"][0]), "probe-2.png")  # another image: Try it
    v = pj.views(trained)
    assert counted["prediction"] == 1 and "probe\\-2" in v["try_note"]
    assert counted["confusion"] == counted["summary"] == counted["method"] == 0
    counted.clear()
    trained.set_settings(seed=seed)
    trained.imprint()  # a new head: its result and what it says about the image
    pj.views(trained)
    assert counted["confusion"] == counted["summary"] == counted["prediction"] == 1
    assert counted["cards"] == 0


def test_an_image_tried_is_explained_once(trained, backbone, fashion, monkeypatch):
    """Try it explained every upload twice: predict, then the views again (issue 20)."""
    _, test = fashion
    calls = []
    explain = Project.explain

    def counting(self, z, n_neighbors=6):
        calls.append(n_neighbors)
        return explain(self, z, n_neighbors=n_neighbors)

    monkeypatch.setattr(Project, "explain", counting)
    result = trained.predict(backbone, str(test["T-shirt"][0]), "shirt.png")
    v = pj.views(trained)
    assert len(calls) == 1 and result["label"] == "T-shirt" and "shirt\\.png" in v["try_note"]
    uid = trained.add_class("Empty").uid  # the image stays explained
    pj.views(trained)
    trained.remove_class(uid)
    pj.views(trained)
    assert len(calls) == 1
    trained.imprint()  # a new head explains it anew, once
    pj.views(trained)
    pj.views(trained)
    assert len(calls) == 2


def _plain(value):
    """A view's value with figures as their JSON (to compare two computations of it)."""
    if hasattr(value, "to_plotly_json"):
        return _plain(value.to_plotly_json())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    return value


def test_memoised_views_equal_views_computed_afresh(trained, backbone, fashion):
    _, test = fashion
    trained.predict(backbone, str(test["Sneaker"][1]), "probe.png")
    trained.geometry("pca", 2)
    pj.views(trained)
    trained.rename_class(trained.find("Sneaker").uid, "Sneakers")  # some views kept, some not
    kept = pj.views(trained)
    trained._views, trained._explanation, trained._geometry = {}, None, None
    fresh = pj.views(trained)
    trained.rename_class(trained.find("Sneakers").uid, "Sneaker")
    assert set(fresh) == set(pj.VIEWS) and len(fresh) == len(pj.VIEWS)
    assert _plain(fresh) == _plain(kept)


def test_memo_keys_compare_values_and_objects_by_identity():
    head, other = object(), object()
    z = np.zeros(3)
    assert same((head, "a", {"k": [1, 2.5]}, z), (head, "a", {"k": [1, 2.5]}, z))
    assert not same((head,), (other,))
    assert not same((z,), (np.zeros(3),))  # an array: the same object, or not the same state
    assert not same({"k": 1}, {"k": 1, "j": 2}) and not same([1], (1,))


# ---- what trying an image can change (issue 20: Try it's event outputs only those views) -------
def test_each_view_is_in_one_group_and_each_group_computes_its_views(trained):
    named = [n for g in GROUPS.values() for n in g.names]
    assert sorted(named) == sorted(pj.VIEWS)  # each view in exactly one group
    for name, values in pj.view_groups(trained).items():
        assert set(values) == set(GROUPS[name].names), name
    assert pj.group_views(["prediction"]) == ("label", "evidence", "neighbours", "try_note")


def test_trying_or_clearing_an_image_changes_only_the_groups_that_read_it(
    trained, backbone, fashion
):
    _, test = fashion
    trained.geometry("pca", 2)  # a map drawn: its star is the image tried
    for step in ("try", "another", "clear"):
        before = pj.view_groups(trained)
        if step == "clear":
            trained.last_test = None  # as Try it's cleared image does
        else:
            path = test["Sneaker" if step == "try" else "Trouser"][0]
            trained.predict(backbone, str(path), f"{step}.png")
        after = pj.view_groups(trained)
        changed = {g for g in GROUPS if after[g] is not before[g] and after[g] != before[g]}
        assert changed == set(pj.TRIED_IMAGE_GROUPS), (step, changed)
    trained.geometry_inputs = None


def test_without_a_map_trying_an_image_leaves_the_geometry_views_as_they_are(
    trained, backbone, fashion
):
    _, test = fashion
    trained.geometry_inputs = None
    before = pj.view_groups(trained)["geometry"]
    trained.predict(backbone, str(test["Sneaker"][2]), "probe.png")
    assert pj.view_groups(trained)["geometry"] is before
