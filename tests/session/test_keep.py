"""Work is never lost (issue 17 §3) and Try it explains what it shows (§2), in the session layer:
the Undo stack across examples, projects kept under unguessable keys, batch refusals naming
every bad file, a batch leaving the single image alone, a rename renaming the prediction, and
one rounding rule for the prediction panel and its table. Real backbone, real images."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError, keys
from imprint_core.session import examples as ex

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


def stored_files(p: Project) -> set[str]:
    return {f.name for f in p.workdir.glob("*.png")}


def own(p: Project, train, n: int = 3) -> None:
    p.rename_class(p.classes[0].uid, "mine")
    p.add_images(p.classes[0].uid, train["Trouser"][:n])


# ---- examples and Undo ---------------------------------------------------------------------------
def test_the_own_project_survives_any_number_of_examples_and_one_undo(project, fashion):
    train, _ = fashion
    own(project, train)
    mine = stored_files(project)
    assert "put aside" in ex.load_example(project, "fashion3")
    assert project.example_key == "fashion3"
    message = ex.load_example(project, "merged")  # an unchanged example is not kept
    assert "still kept" in message and len(project.undo) == 1
    ex.load_example(project, "fashion3")
    assert pj.views(project)["undo"].startswith("Undo: bring back your 3 images")
    assert mine <= stored_files(project)  # kept while an Undo may need them
    project.undo_replace()
    assert project.names == ["mine", "Class 2"] and len(project.classes[0].images) == 3
    assert project.example_key is None and not project.undo
    assert stored_files(project) == mine
    assert pj.views(project)["undo"] is None


def test_a_changed_example_is_kept_too_and_undo_goes_back_step_by_step(project, fashion):
    train, _ = fashion
    own(project, train)
    ex.load_example(project, "fashion3")
    project.add_images(project.find("Trouser").uid, [SKLEARN_IMAGES / "china.jpg"])  # made by hand
    assert "put aside" in ex.load_example(project, "merged")
    assert len(project.undo) == 2
    project.undo_replace()
    assert project.example_key == "fashion3" and len(project.find("Trouser").images) == 31
    project.undo_replace()
    assert project.names == ["mine", "Class 2"]
    with pytest.raises(ProjectError, match="nothing to undo"):
        project.undo_replace()


def test_held_out_images_belong_to_the_example_loaded(project, fashion):
    train, _ = fashion
    shown = lambda: {k: v for k, v in pj.views(project).items() if k.startswith("held_out_")}  # noqa: E731
    own(project, train)
    assert not any(shown().values())  # the user's own project: no Fashion-MNIST images
    ex.load_example(project, "merged")
    assert shown() == {"held_out_fashion3": False, "held_out_merged": True}
    project.undo_replace()
    assert not any(shown().values())


# ---- a project kept under a key ------------------------------------------------------------------
def test_a_key_finds_its_project_and_no_other_key_does():
    key, p = keys.claim(None)
    assert len(key) >= 40 and isinstance(p, Project)  # 256 random bits
    again_key, again = keys.claim(key)  # a reload
    assert again is p and again_key == key
    for forged in ("", "forged", key[:-1] + ("A" if key[-1] != "A" else "B"), 12, {"key": key}):
        other_key, other = keys.claim(forged)
        assert other is not p and other_key != key and not other.n_images
        keys.release(other)
    keys.release(p)
    assert keys.claim(key)[1] is p  # one page still holds it
    keys.release(p)
    keys.release(p)  # the last one: closed and forgotten
    gone_key, gone = keys.claim(key)
    assert gone is not p and gone_key != key
    keys.release(gone)


def test_a_released_project_deletes_its_images(fashion):
    train, _ = fashion
    key, p = keys.claim(None)  # a temporary folder, as in the app
    own(p, train)
    assert stored_files(p)
    keys.release(p)
    assert not p.workdir.exists()
    assert keys.claim(key)[0] != key


def test_opening_a_saved_project_keeps_the_key(fashion):
    train, _ = fashion
    key, old = keys.claim(None)
    own(old, train)
    new = Project()
    keys.swap(key, old, new)
    assert keys.claim(key)[1] is new
    assert not old.workdir.exists()  # nobody else held the old project
    keys.release(new)
    keys.release(new)


# ---- a batch with bad files ----------------------------------------------------------------------
def test_a_batch_with_bad_files_names_every_one_and_adds_none(project, fashion, tmp_path):
    train, _ = fashion
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    uid = project.classes[0].uid
    files = [train["Trouser"][0], notes, train["Trouser"][1], broken]
    with pytest.raises(ProjectError) as refused:
        project.add_images(uid, files)
    text = str(refused.value)
    assert text.startswith("No image was added: 2 of 4 files were refused.")
    assert "'notes.png'" in text and "'broken.jpg'" in text
    assert not project.n_images and not stored_files(project)


def test_a_zip_with_bad_members_names_every_one(project, fashion, tmp_path):
    train, _ = fashion
    path = tmp_path / "batch.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(train["Trouser"][0], "pants/1.png")
        zf.writestr("pants/bad.png", b"not an image")
        zf.write(train["Sneaker"][0], "shoes/1.png")
        zf.writestr("shoes/worse.jpg", b"\xff\xd8 nope")
    with pytest.raises(ProjectError) as refused:
        project.import_zip(path)
    text = str(refused.value)
    assert "2 of 4 files were refused" in text and "'bad.png'" in text and "'worse.jpg'" in text
    assert not project.n_images and not stored_files(project)


# ---- Try it ---------------------------------------------------------------------------------------
def test_a_batch_leaves_the_single_image_alone(trained, backbone, fashion):
    _, test = fashion
    shown = test["Trouser"][0]
    trained.predict(backbone, str(shown), shown.name)
    results = trained.predict_many(backbone, [(str(p), p.name) for p in test["Sneaker"][:2]])
    assert [r["label"] for r in results] == ["Sneaker", "Sneaker"]
    assert trained.current_prediction()["file"] == shown.name


def test_the_batch_and_the_panel_say_none_of_these(trained, backbone, fashion):
    _, test = fashion
    photo, trouser = SKLEARN_IMAGES / "china.jpg", test["Trouser"][0]
    results = trained.predict_many(backbone, [(str(photo), "china.jpg"), (str(trouser), "t")])
    rows = pj.batch_rows(["china.jpg", "t"], results)
    assert rows[0][1].startswith("None of these? (nearest: ") and rows[1][1] == "Trouser"
    panel = pj.prediction_html(results[0])
    assert panel.index("None of these?") < panel.index("Nearest class")


def test_the_panel_and_the_table_round_alike(trained, backbone, fashion):
    _, test = fashion
    trained.predict(backbone, str(test["T-shirt"][0]), "t.png")
    v = pj.views(trained)
    table = {row[0]: row[1] for row in v["evidence"]["data"]}
    panel = dict(re.findall(r'class="name">([^<]+)</span>.*?class="value">([^<]+)<', v["label"]))
    assert panel and all(table[c] == value for c, value in panel.items()), (panel, table)


def test_a_rename_renames_the_prediction_and_the_head(trained, backbone, fashion):
    _, test = fashion
    trained.predict(backbone, str(test["Trouser"][0]), "t.png")
    uid = trained.find("Trouser").uid
    serial = trained.head_serial
    try:
        trained.rename_class(uid, "pants")
        assert trained.current_prediction()["label"] == "pants"
        assert "pants" in list(trained.head.classes_) and not trained.stale
        assert trained.head_serial > serial  # exports of the old names are withdrawn
        assert "pants" in pj.views(trained)["label"]
    finally:
        trained.rename_class(uid, "Trouser")
