"""Intake keeps what the user sent and decodes it once (session/uploads.py, session/intake.py,
session/embedding.py): the stored original embeds as the PNG copy intake used to store did, with
the real built-in backbone, on phone-sized JPEGs (one with an EXIF rotation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from phone_photos import phone_jpeg
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import ProjectError


def _phone_jpeg(path: Path, source: str, seed: int, orientation: int = 1) -> Path:
    """A 2,400 x 1,800 JPEG upscaled from a real photo, with sensor-like noise."""
    return phone_jpeg(path, source, seed, (2400, 1800), orientation)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phone")
    return [
        _phone_jpeg(folder / "a.jpg", "china.jpg", 0),
        _phone_jpeg(folder / "b.jpg", "flower.jpg", 1, orientation=6),
        _phone_jpeg(folder / "c.jpg", "china.jpg", 2, orientation=3),
        _phone_jpeg(folder / "d.jpg", "flower.jpg", 3),
    ]


def _previous_path(photos, backbone, folder: Path) -> np.ndarray:
    """What intake stored before (a PNG of the decoded, downscaled picture), embedded."""
    copies = []
    for i, photo in enumerate(photos):
        copy = folder / f"copy{i}.png"
        picture = pj.prepare_image(str(photo), photo.name)
        copy.write_bytes(pj.intake.png_bytes(picture))
        copies.append(str(copy))
    return backbone.embed(copies, cache=False)


def _embedded(project, backbone) -> np.ndarray:
    project.embed(backbone)
    X, _, _ = project.dataset(backbone.name)
    return X


def test_the_original_is_kept_and_embeds_as_the_png_copy_did(project, backbone, photos, tmp_path):
    uid_a, uid_b = (c.uid for c in project.classes)
    assert project.add_images(uid_a, photos[:2]) == 2
    assert project.add_images(uid_b, photos[2:]) == 2
    items = [i for c in project.classes for i in c.images]
    for item, photo in zip(items, photos, strict=True):
        assert item.path.read_bytes() == photo.read_bytes()  # no re-encoding
        assert item.path.suffix == ".jpg"
    assert len(project._decoded) == 4  # decoded once at intake, kept for the embedding
    X = _embedded(project, backbone)
    assert len(project._decoded) == 0  # embedded: dropped
    before = _previous_path(photos, backbone, tmp_path)
    assert np.abs(X - before).max() < 1e-4
    cos = np.sum(X * before, axis=1) / np.linalg.norm(X, axis=1) / np.linalg.norm(before, axis=1)
    assert cos.min() > 0.99999
    # decoded again from the stored originals (the kept pictures are gone): the same embeddings
    project._embeddings.clear()
    assert np.abs(_embedded(project, backbone) - X).max() < 1e-4


def test_the_rotated_photo_is_decoded_upright(project, photos):
    project.add_images(project.classes[0].uid, [photos[1]])
    item = project.classes[0].images[0]
    picture = project._decode([item])[0]
    assert picture.size == (336, 448)  # orientation 6 applied: portrait
    with Image.open(photos[1]) as raw:
        assert raw.size == (2400, 1800)  # stored as sent: the rotation is still in its EXIF


def test_a_refused_upload_keeps_no_file_and_no_picture(project, photos, tmp_path):
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(photos[0].read_bytes()[:40_000])  # a truncated JPEG
    uid = project.classes[0].uid
    with pytest.raises(ProjectError, match=r"'cut.jpg' in class 'Class 1' is truncated"):
        project.add_images(uid, [*photos, bad])
    assert project.classes[0].images == []
    assert list(project.workdir.iterdir()) == []
    assert len(project._decoded) == 0


def test_the_decoded_pictures_kept_are_bounded():
    kept = pj.uploads.DecodedImages(max_mb=1)
    pictures = [Image.new("RGB", (448, 336), (i, 0, 0)) for i in range(4)]  # 0.43 MB each
    for i, picture in enumerate(pictures):
        kept.put(str(i), picture)
    assert len(kept) == 2 and kept.get("0") is None and kept.get("3") is pictures[3]
    kept.put("big", Image.new("RGB", (1000, 1000)))  # larger than the bound: not kept
    assert kept.get("big") is None and len(kept) == 2


def test_a_project_zip_keeps_the_originals(project, photos, tmp_path):
    import zipfile

    project.add_images(project.classes[0].uid, photos[:2])
    project.add_images(project.classes[1].uid, photos[2:])
    saved = pj.bundle.write_project(project, tmp_path / "p.zip")
    with zipfile.ZipFile(saved) as zf:
        members = sorted(n for n in zf.namelist() if n.startswith("images/"))
        assert members == [f"images/0{c}/000{j}.jpg" for c in (0, 1) for j in (0, 1)]
        assert zf.read(members[0]) == photos[0].read_bytes()
    opened = pj.Project(workdir=tmp_path / "opened", n_classes=0)
    try:
        pj.bundle.read_project(opened, saved)
        stored = [i.path.read_bytes() for c in opened.classes for i in c.images]
        assert stored == [p.read_bytes() for p in photos]
    finally:
        opened.close()
