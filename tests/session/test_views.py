"""Every view as a function of the project (session/views.py, session/texts.py): texts for the app,
views following the head, user strings kept as text."""

from __future__ import annotations

from imprint_core import session as pj
from imprint_core.session import Project


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
