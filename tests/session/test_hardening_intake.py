"""Resource limits of the intake (issue 11 §3): a zip's entry count is refused from its end
record before zipfile parses the directory, members stream against their caps, and every request
has a pixel budget priced from the image headers (JPEGs at their draft scale)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imprint_core.images import decoded_size, load_image
from imprint_core.session import Project, ProjectError
from imprint_core.session import intake as it

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


def _png(size=(32, 32), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(size: tuple[int, int]) -> bytes:
    photo = Image.open(SKLEARN_IMAGES / "china.jpg").convert("RGB").resize(size)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _huge_directory_zip(path: Path, entries: int, claim: int | None = None) -> Path:
    """A zip whose central directory really lists ``entries`` entries (one file header repeated),
    with zip64 end records claiming ``claim`` (default: the truth)."""
    name = b"c/0.png"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    central = (
        struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
    )
    directory = central * entries
    claim = entries if claim is None else claim
    start = len(local)
    eocd64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, claim, claim, len(directory), start
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, start + len(directory), 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(local + directory + eocd64 + locator + eocd)
    return path


@pytest.fixture
def project(tmp_path):
    p = Project(workdir=tmp_path / "work", n_classes=0)
    yield p
    p.close()


def _prepared(path: Path, **options) -> list[tuple[str, str, Image.Image]]:
    """Every image of a zip, read and checked as the project stores them."""
    return [
        (c, n, it.prepare_image(m, Path(n).name, c))
        for c, n, m in it.iter_zip_images(path, **options)
    ]


def _files(project: Project) -> list[Path]:
    return sorted(p for p in project.workdir.rglob("*") if p.is_file())


# ---- entry count from the end record -------------------------------------------------------------
def test_a_million_entry_directory_is_refused_from_its_end_record(project, tmp_path):
    path = _huge_directory_zip(tmp_path / "million.zip", 1_000_000)
    assert it.zip_directory(path) == (1_000_000, 1_000_000 * 53)
    before = _files(project)
    with pytest.raises(ProjectError, match="'million.zip' holds 1,000,000 entries; a zip may hold"):
        project.import_zip(path)
    assert _files(project) == before and project.names == []


def test_a_directory_larger_than_its_claimed_count_is_refused(project, tmp_path):
    """The end record may lie about the count: the directory's size is bounded too."""
    path = _huge_directory_zip(tmp_path / "liar.zip", 200_000, claim=3)
    assert it.zip_directory(path) == (3, 200_000 * 53)
    with pytest.raises(ProjectError, match="'liar.zip' has a 10.1 MB table of contents"):
        project.import_zip(path)


def test_a_plain_zip_over_the_member_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(it, "ZIP_MAX_MEMBERS", 50)
    path = _zip(tmp_path / "many.zip", {f"c/{i}.png": b"x" for i in range(51)})
    assert it.zip_directory(path)[0] == 51
    with pytest.raises(
        ProjectError, match="'many.zip' holds 51 entries; a zip may hold at most 50"
    ):
        next(it.iter_zip_images(path))


def test_a_comment_and_a_good_zip_still_read(tmp_path):
    path = _zip(tmp_path / "ok.zip", {"a/1.png": _png(), "b/1.png": _png(colour=(0, 0, 255))})
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"a comment of 60 KB pushes the end record far from the end " * 1000
    assert it.zip_directory(path)[0] == 2
    got = _prepared(path)
    assert [(c, n) for c, n, _ in got] == [("a", "1.png"), ("b", "1.png")]
    assert all(isinstance(im, Image.Image) and im.size == (32, 32) for *_, im in got)


# ---- members are streamed, and refused before they are read -----------------------------------------
def test_declared_sizes_over_the_total_are_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(it, "ZIP_MAX_UNCOMPRESSED_BYTES", 3 * 2**20)
    members = {f"c/{i}.png": _png() + bytes(2**20) for i in range(4)}  # valid PNGs + padding
    path = _zip(tmp_path / "big.zip", members)
    with pytest.raises(ProjectError, match="'big.zip' unpacks to more than 3 MB of images"):
        next(it.iter_zip_images(path))


def test_a_member_whose_header_understates_its_size_is_not_read_past_it(tmp_path):
    data = _png() + bytes(3 * 2**20)
    path = _zip(tmp_path / "lie.zip", {"a/1.png": data, "b/1.png": _png()})
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size
        at = raw.find(signature)
        raw[at + offset : at + offset + 4] = struct.pack("<L", 1000)
    path.write_bytes(bytes(raw))
    with pytest.raises(ProjectError, match="Class 'a': '1.png' cannot be read from 'lie.zip'"):
        _prepared(path)


def test_members_are_read_only_when_stored(tmp_path):
    """The consumer gets unread members: names and counts can be checked before any read, and
    each member becomes a small RGB image when it is stored."""
    path = _zip(tmp_path / "photos.zip", {"a/1.jpg": _jpeg((2000, 1500)), "b/1.png": b"junk"})
    members = list(it.iter_zip_images(path))  # nothing read yet: the junk is not seen
    assert [(c, n) for c, n, _ in members] == [("a", "1.jpg"), ("b", "1.png")]
    assert all(isinstance(m, it.ZipMember) for *_, m in members)
    image = it.prepare_image(members[0][2], "1.jpg", "a")
    assert max(image.size) == it.STORE_MAX_SIDE and image.mode == "RGB"
    with pytest.raises(ProjectError, match="Image '1.png' in class 'b' is not an image"):
        it.prepare_image(members[1][2], "1.png", "b")


def test_a_bad_class_folder_is_refused_before_any_member_is_read(tmp_path):
    path = _zip(tmp_path / "names.zip", {"a/1.png": b"not read", "b\u202e/1.png": b"not read"})
    with pytest.raises(ProjectError, match="'names.zip': folder 'b\u202e'.*U\\+202E"):
        next(it.iter_zip_images(path))


# ---- the pixel budget -------------------------------------------------------------------------------
def test_decoded_size_prices_a_jpeg_at_its_draft_scale():
    jpeg = _jpeg((4000, 3000))
    assert decoded_size(jpeg) == (4000, 3000)
    assert decoded_size(jpeg, min_side=448) == (1000, 750)  # 1/4 keeps both sides >= 448
    assert load_image(jpeg, min_side=448).size == (1000, 750)
    png = _png((4000, 3000))
    assert decoded_size(png, min_side=448) == (4000, 3000)  # no cheaper decode for PNG


def test_a_request_over_the_pixel_budget_is_refused_from_the_headers(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"big{i}.png")
        paths[-1].write_bytes(_png((2000, 1000)))
    assert it.check_request(paths, max_pixels=6_000_000) == 6_000_000
    with pytest.raises(
        ProjectError,
        match=r"These 3 images would decode more than 5 megapixels \(Image 'big2.png' adds "
        r"2.0 to the 4.0 before it\); send fewer or smaller images",
    ):
        it.check_request(paths, max_pixels=5_000_000)
    with pytest.raises(ProjectError, match="Got 3 images; send at most 2 at a time"):
        it.check_request([{"path": str(p)} for p in paths], max_files=2)
    (tmp_path / "note.png").write_bytes(b"hello")
    with pytest.raises(ProjectError, match="Image 'note.png' is not an image"):
        it.check_request([tmp_path / "note.png"])
    with pytest.raises(ProjectError, match="'gone.png' could not be found"):
        it.check_request([tmp_path / "gone.png"])


def test_a_zip_over_the_pixel_budget_changes_nothing(project, tmp_path, monkeypatch):
    members = {f"{c}/{i}.png": _png((1000, 1000)) for c in "ab" for i in range(3)}
    path = _zip(tmp_path / "pixels.zip", members)
    assert len(_prepared(path, max_pixels=6_000_000)) == 6
    with pytest.raises(ProjectError, match="'pixels.zip' would decode more than 5 megapixels"):
        _prepared(path, max_pixels=5_000_000)
    project.add_class("kept")
    before = _files(project)
    monkeypatch.setattr(it, "MAX_REQUEST_PIXELS", 5_000_000)
    with pytest.raises(ProjectError, match="would decode more than 5 megapixels"):
        project.import_zip(path)
    assert _files(project) == before and project.names == ["kept"]


def test_prepare_image_charges_the_budget_before_decoding(tmp_path):
    budget = it.PixelBudget(2_000_000, "This upload")
    image = it.prepare_image(_jpeg((4000, 3000)), "photo.jpg", "cats", budget)
    assert max(image.size) == it.STORE_MAX_SIDE
    # charged as decoded: at 1/8 (500 x 375), which still covers its 448 x 336 fit
    assert budget.left == 2_000_000 - 500 * 375
    with pytest.raises(ProjectError, match="This upload would decode more than 2 megapixels"):
        it.prepare_image(_png((1500, 1300)), "wide.png", "cats", budget)
    assert budget.left == 2_000_000 - 500 * 375  # a refused image costs nothing


# ---- draft decoding keeps what the backbone sees ----------------------------------------------------
def test_draft_decoding_gives_the_same_embedding_as_full_decoding():
    from imprint_core.backbones import get_backbone

    bb = get_backbone()
    photos = [_jpeg((3600, 2400)), _jpeg((2400, 3200))]
    full = [it._fit(load_image(p)) for p in photos]  # decode every pixel, then downscale
    draft = [it.prepare_image(p, f"{i}.jpg") for i, p in enumerate(photos)]
    assert [im.size for im in draft] == [im.size for im in full]
    a = bb.embed(full, cache=False)
    b = bb.embed(draft, cache=False)
    cosine = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.all(cosine > 0.98), cosine
    np.testing.assert_array_equal(
        bb.classify(full).argmax(axis=1), bb.classify(draft).argmax(axis=1)
    )
