"""Display thumbnails (session/thumbnails.py): the class cards and Try it's neighbours show small
JPEGs made at intake, while the stored originals (the 12-megapixel photos as sent) stay what
embedding and the project zip read. Real photos upscaled to phone size, the real backbone."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from phone_photos import phone_jpeg
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError, QuotaError, open_project, save_project
from imprint_core.session.disk import MB, session_bytes
from imprint_core.session.limits import THUMB_MAX_SIDE

MAX_THUMB_BYTES = 40_000  # a 256-px JPEG of a noisy photo is ~10-20 kB; the photo is ~4 MB


def _phone_jpeg(path: Path, source: str, seed: int, orientation: int = 1) -> Path:
    """A 12-megapixel JPEG upscaled from a real photo, with sensor-like noise."""
    return phone_jpeg(path, source, seed, (4000, 3000), orientation)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phone")
    return [
        _phone_jpeg(folder / "china1.jpg", "china.jpg", 0),
        _phone_jpeg(folder / "flower1.jpg", "flower.jpg", 1, orientation=6),
        _phone_jpeg(folder / "china2.jpg", "china.jpg", 2),
        _phone_jpeg(folder / "flower2.jpg", "flower.jpg", 3),
    ]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _check_small(path: str | Path) -> tuple[int, int]:
    path = Path(path)
    assert path.stat().st_size <= MAX_THUMB_BYTES, (path, path.stat().st_size)
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= THUMB_MAX_SIDE and min(image.size) >= 64
        return image.size


def test_cards_show_small_thumbnails_and_keep_the_originals(project, photos):
    uid_a, uid_b = (c.uid for c in project.classes)
    project.add_images(uid_a, [photos[0], photos[2]])
    project.add_images(uid_b, [photos[1], photos[3]])
    for card, sent in zip(project.view()["classes"], [photos[::2], photos[1::2]], strict=True):
        assert len(card["thumbs"]) == 2
        sizes = [_check_small(t) for t in card["thumbs"]]
        items = project.get(card["uid"]).images
        # the stored originals are the bytes sent (several MB), not the thumbnails
        assert [i.path.read_bytes() for i in items] == [p.read_bytes() for p in sent]
        assert all(i.path.stat().st_size > 1_000_000 for i in items)
        assert [Path(t).parent for t in card["thumbs"]] == [project.workdir] * 2
        if card["uid"] == uid_b:  # the turned photo's thumbnail is upright, as the model sees it
            assert sizes[0][1] > sizes[0][0] and sizes[1][0] > sizes[1][1]
    # a thumbnail is a picture of its image: close to the original at the same size
    item = project.get(uid_a).images[0]
    with Image.open(item.thumb) as thumb, Image.open(item.path) as photo:
        small = np.asarray(photo.convert("RGB").resize(thumb.size), dtype=float)
        assert np.abs(np.asarray(thumb, dtype=float) - small).mean() < 12


def test_deleting_a_thumbnail_copy_removes_its_image_and_files(project, photos, tmp_path):
    uid = project.classes[0].uid
    project.add_images(uid, photos[:3])
    thumbs = project.card(uid)["thumbs"]
    target = project.get(uid).images[1]
    # the gallery hands back a copy of what it showed, under the same base name
    copy = tmp_path / "gradio" / "abc" / Path(thumbs[1]).name
    copy.parent.mkdir(parents=True)
    shutil.copy(thumbs[1], copy)
    assert project.remove_image_file(uid, str(copy)) == target.name == photos[1].name
    assert [i.name for i in project.get(uid).images] == [photos[0].name, photos[2].name]
    assert not target.path.exists() and not target.thumb.exists()
    assert all(i.path.exists() and i.thumb.exists() for i in project.get(uid).images)
    assert len(_files(project.workdir)) == 4  # two originals, two thumbnails


def test_a_drop_onto_the_thumbnails_adds_only_the_new_images(project, photos, tmp_path):
    uid = project.classes[0].uid
    project.add_images(uid, photos[:2])
    # what the gallery sends after a drop: copies of its thumbnails, then the dropped file
    copies = []
    for i, thumb in enumerate(project.card(uid)["thumbs"]):
        copy = tmp_path / f"cache{i}" / Path(thumb).name
        copy.parent.mkdir()
        copies.append(str(shutil.copy(thumb, copy)))
    assert project.add_gallery_images(uid, [*copies, str(photos[2])]) == 1
    assert [i.name for i in project.get(uid).images] == [p.name for p in photos[:3]]
    assert project.get(uid).images[-1].path.read_bytes() == photos[2].read_bytes()


def test_a_refused_upload_leaves_no_thumbnail(project, photos, tmp_path):
    uid_a, uid_b = (c.uid for c in project.classes)
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ProjectError, match="notes.png"):
        project.add_images(uid_a, [photos[0], bad])
    assert _files(project.workdir) == []
    project.add_images(uid_b, [photos[1]])
    with pytest.raises(ProjectError, match="notes.png"):
        project.add_images(uid_a, [photos[0], bad])
    kept = project.get(uid_b).images[0]
    assert _files(project.workdir) == sorted([kept.path.name, kept.thumb.name])


def test_clearing_and_removing_classes_delete_the_thumbnails(project, photos):
    uid_a, uid_b = (c.uid for c in project.classes)
    project.add_images(uid_a, photos[:2])
    project.add_images(uid_b, photos[1:3])  # photos[1] is stored once, for both classes
    assert len(_files(project.workdir)) == 6
    project.clear_images(uid_a)
    assert len(_files(project.workdir)) == 4 and project.card(uid_b)["thumbs"]
    project.remove_class(uid_b)
    assert _files(project.workdir) == []


def test_undo_of_an_example_brings_back_the_thumbnails(project, photos, fashion3):
    uid = project.classes[0].uid
    project.add_images(uid, photos[:2])
    before = project.card(uid)["thumbs"]
    train, _ = fashion3
    records = [(cls, Path(p).name, str(p)) for cls, paths in train.items() for p in paths[:3]]
    project.replace(records, "the example", example="fashion3")
    for card in project.view()["classes"]:
        assert len(card["thumbs"]) == 3 and all(Path(t).exists() for t in card["thumbs"])
    project.undo_replace()
    assert project.card(project.classes[0].uid)["thumbs"] == before
    assert all(Path(t).exists() for t in before)


def test_a_missing_thumbnail_is_made_again_from_the_stored_image(project, photos):
    uid = project.classes[0].uid
    project.add_images(uid, photos[1:2])
    item = project.get(uid).images[0]
    size = _check_small(item.thumb)
    item.thumb.unlink()
    assert project.card(uid)["thumbs"] == [str(item.thumb)]
    assert _check_small(item.thumb) == size


def test_an_opened_project_shows_thumbnails_but_its_zip_holds_none(project, photos, tmp_path):
    uid_a, uid_b = (c.uid for c in project.classes)
    project.add_images(uid_a, [photos[0], photos[2]])
    project.add_images(uid_b, [photos[1], photos[3]])
    path = save_project(project, tmp_path / "phone project.zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert not any("thumb" in n for n in names) and len(names) == 5  # 4 images + project.json
    opened = open_project(path, workdir=tmp_path / "opened")
    try:
        for a, b in zip(opened.view()["classes"], project.view()["classes"], strict=True):
            assert [Path(t).parent for t in a["thumbs"]] == [tmp_path / "opened"] * 2
            assert [_check_small(t) for t in a["thumbs"]] == [_check_small(t) for t in b["thumbs"]]
    finally:
        opened.close()


def test_neighbours_show_thumbnails_and_embedding_reads_the_originals(photos, tmp_path):
    backbone = pj.load_backbone(None)
    project = Project(workdir=tmp_path / "work", n_classes=0)
    try:
        for name, pair in (("china", photos[::2]), ("flower", photos[1::2])):
            project.add_images(project.add_class(name).uid, pair)
        project.train(backbone)
        result = project.predict(backbone, str(photos[0]))
        assert result["label"] == "china"
        for n in result["neighbours"]:
            item = next(i for c in project.classes for i in c.images if str(i.path) == n["path"])
            assert n["thumb"] == str(item.thumb)
            _check_small(n["thumb"])
        shown = pj.views(project)["neighbours"]
        assert [t for t, _ in shown] == [n["thumb"] for n in result["neighbours"]]
        # the embedding reads the stored originals, never the thumbnails: with every thumbnail
        # grey and the caches emptied, the images embed as before
        X, _, items = project.dataset()
        for item in items:
            Image.new("RGB", (THUMB_MAX_SIDE, THUMB_MAX_SIDE), (128, 128, 128)).save(item.thumb)
        project._embeddings.clear()
        project.embed(backbone)
        assert np.abs(project.dataset()[0] - X).max() < 1e-4
    finally:
        project.close()


def test_a_thumbnail_counts_against_the_disk_quota(project, photos, monkeypatch):
    """A quota with room for the photo but not its thumbnail refuses the upload, leaving no file;
    with room for both it is added, and the session's bytes are the two files'."""
    uid = project.classes[0].uid
    size = photos[0].stat().st_size
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", str((size + 100) / MB))
    with pytest.raises(QuotaError, match="at most"):
        project.add_images(uid, photos[:1])
    assert _files(project.workdir) == [] and not project.get(uid).images
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", str((size + MAX_THUMB_BYTES) / MB))
    project.add_images(uid, photos[:1])
    item = project.get(uid).images[0]
    assert session_bytes(project) == size + item.thumb.stat().st_size
