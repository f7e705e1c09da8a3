"""One state (session/state.py): versions, all-or-nothing changes (a refused request changes
nothing and leaves no file), example + Undo."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError


# ---- versions and all-or-nothing changes ---------------------------------------------------------
def stored_files(project: Project) -> set[str]:
    return {p.name for p in project.workdir.glob("*.png")}


def test_every_edit_changes_the_version_and_a_refused_one_nothing(project, fashion, tmp_path):
    train, _ = fashion
    uid = project.classes[0].uid
    v = project.version
    project.add_images(uid, train["Trouser"][:2])
    assert project.version > v
    v, before = project.version, stored_files(project)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"nonsense")
    with pytest.raises(ProjectError, match="'broken.png'"):
        project.add_images(uid, train["Trouser"][2:6] + [bad])  # four good files, then a bad one
    assert project.version == v
    assert len(project.get(uid).images) == 2
    assert stored_files(project) == before  # the four checked copies did not stay behind


def test_a_refused_import_leaves_no_file_and_no_change(project, fashion, tmp_path):
    train, _ = fashion
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    names, before = project.names, stored_files(project)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in train["Sneaker"][:5]:
            zf.write(path, f"shoes/{Path(path).name}")
        zf.writestr("bags/bad.png", b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ProjectError, match="bad.png"):
        project.import_zip(archive)
    assert project.names == names and stored_files(project) == before


def test_a_transaction_restores_everything_on_error(trained, backbone):
    head, settings, serial = trained.head, dict(trained.settings), trained.head_serial
    with pytest.raises(ProjectError):
        with trained.transaction():
            trained.reset()
            trained.set_settings("qi")
            raise ProjectError("refused")
    assert trained.head is head and trained.settings == settings
    assert trained.head_serial == serial and trained.summary()["images"] == 90


def test_example_replaces_the_project_and_undo_brings_it_back(fashion, tmp_path):
    from imprint_core.session import examples as ex

    train, _ = fashion
    p = Project(workdir=tmp_path)
    uid = p.classes[0].uid
    p.rename_class(uid, "mine")
    p.add_images(uid, train["Trouser"][:3])
    mine = stored_files(p)
    message = ex.load_example(p, "fashion3")
    assert "Undo" in message and "mine" not in p.names
    assert pj.views(p)["undo"].startswith("Undo: bring back your 3 images")
    assert mine <= stored_files(p)  # kept while an undo may need them
    p.undo_replace()
    assert p.names == ["mine", "Class 2"] and len(p.get(uid).images) == 3
    assert stored_files(p) == mine and not p.undo
    with pytest.raises(ProjectError, match="nothing to undo"):
        p.undo_replace()


def test_an_empty_project_is_replaced_without_an_undo(tmp_path):
    from imprint_core.session import examples as ex

    p = Project(workdir=tmp_path)
    assert "Undo" not in ex.load_example(p, "fashion3") and not p.undo


# ---- what a transaction restores ------------------------------------------------------------------
def test_every_attribute_of_a_project_is_state_or_named_as_not(trained, backbone, fashion):
    """A new attribute must be named in STATE (a refused change restores it) or in NOT_STATE
    (with the reason): a field that nobody listed would survive a refused change."""
    _, test = fashion
    trained.predict(backbone, str(test["Sneaker"][0]), "probe.png")
    trained.geometry("pca", 2)
    trained.export_head()
    fresh = Project(n_classes=0)
    state, not_state = set(Project.STATE), set(Project.NOT_STATE)
    assert not state & not_state and len(state) == len(Project.STATE)
    for project in (fresh, trained):  # attributes set at creation and on the way
        assert set(vars(project)) == state | not_state, set(vars(project)) ^ (state | not_state)
    fresh.close()


def test_a_refused_example_does_not_redraw_the_cards(project, fashion, tmp_path):
    """replace() resets the project (a redraw of the cards) before importing; when the import
    is refused, the cards' view must be as it was (a needless redraw replaces every card's
    event handlers, and a click meanwhile is lost)."""
    train, _ = fashion
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    cards, version = pj.views(project)["cards"], project.version
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"nonsense")
    records = [("a", "1.png", str(train["Sneaker"][0])), ("b", "broken.png", str(bad))]
    with pytest.raises(ProjectError, match="'broken.png'"):
        project.replace(records, "an example")
    assert pj.views(project)["cards"] == cards and project.version == version
