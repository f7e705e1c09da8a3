"""Images into a project (session/uploads.py, session/intake.py): stored copies, bad files, size,
pixel and count limits, zips, folders. Real images (the shipped Fashion-MNIST examples,
scikit-learn's sample photos)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import ProjectError

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


# ---- images and their limits -----------------------------------------------------------------------
def test_add_images_keeps_the_files_bytes_and_skips_duplicates(project, fashion, tmp_path):
    """A still JPEG/PNG is stored as the bytes sent (no PNG re-encoding), named by its content's
    hash with the suffix of its format as read from the content, not from its name."""
    train, _ = fashion
    uid = project.classes[0].uid
    assert project.add_images(uid, train["Trouser"][:3]) == 3
    assert project.add_images(uid, train["Trouser"][:2]) == 0  # same files again
    big = tmp_path / "china.png"  # a JPEG under a PNG's name
    big.write_bytes((SKLEARN_IMAGES / "china.jpg").read_bytes())
    assert project.add_images(uid, [big]) == 1
    items = project.classes[0].images
    assert [i.name for i in items][-1] == "china.png"
    sources = [*train["Trouser"][:3], big]
    for item, source in zip(items, sources, strict=True):
        assert item.path.parent == project.workdir
        assert item.path.read_bytes() == Path(source).read_bytes()
        assert item.key == hashlib.sha256(item.path.read_bytes()).hexdigest()
    assert [i.path.suffix for i in items] == [".png"] * 3 + [".jpg"]


def test_formats_a_browser_cannot_show_are_stored_as_png_copies(project, tmp_path):
    """TIFF (and animations) are stored as a PNG of the decoded picture, at most
    STORE_MAX_SIDE on a side, as before."""
    photo = Image.open(SKLEARN_IMAGES / "flower.jpg")
    tif = tmp_path / "flower.tif"
    photo.save(tif, format="TIFF")
    frames = [photo.crop((0, 0, 300, 200)), photo.crop((100, 100, 400, 300))]
    gif = tmp_path / "moving.webp"
    frames[0].save(gif, format="WEBP", save_all=True, append_images=frames[1:])
    uid = project.classes[0].uid
    assert project.add_images(uid, [tif, gif]) == 2
    for item in project.classes[0].images:
        assert item.path.suffix == ".png"
        with Image.open(item.path) as im:
            assert im.format == "PNG" and max(im.size) <= pj.STORE_MAX_SIDE and im.mode == "RGB"


def test_a_corrupt_file_names_class_and_file_and_adds_nothing(project, fashion, tmp_path):
    train, _ = fashion
    project.rename_class(project.classes[0].uid, "shoes")
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not the rest of a png")
    with pytest.raises(ProjectError) as err:
        project.add_images(project.classes[0].uid, [*train["Sneaker"][:2], bad])
    assert "'holiday.png'" in str(err.value) and "'shoes'" in str(err.value)
    assert project.classes[0].images == []


def test_a_text_file_is_not_an_image(project, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ProjectError, match=r"'notes.txt' in class 'Class 1' is not an image"):
        project.add_images(project.classes[0].uid, [notes])


def test_a_heic_photo_and_a_tiny_image_are_refused_with_sentences(project, fashion, tmp_path):
    """Dropped with good images: a sentence naming the file and the rule, and nothing added."""
    from imprint_core.session.intake import check_request

    train, _ = fashion
    uid = project.classes[0].uid
    heic = tmp_path / "IMG_0042.heic"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(heic, format="JPEG")  # a JPEG named .heic
    pixel = tmp_path / "pixel.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(pixel)
    with pytest.raises(ProjectError) as err:
        project.add_images(uid, [*train["Sneaker"][:2], heic])
    assert "'IMG_0042.heic' in class 'Class 1' is a HEIC photo" in str(err.value)
    assert "HEIC photos are not supported yet: export as JPEG" in str(err.value)
    with pytest.raises(ProjectError) as err:
        project.add_images(uid, [*train["Sneaker"][:2], pixel])
    assert (
        "'pixel.png' in class 'Class 1' is 1 x 1 pixels, too small to learn from: an image must "
        "be at least 8 pixels on each side." in str(err.value)
    )
    assert project.classes[0].images == []
    with pytest.raises(ProjectError, match=r"'pixel.png' is 1 x 1 pixels, too small"):
        check_request([str(pixel)])


def test_file_size_limit(project, tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as fh:
        fh.truncate(pj.MAX_IMAGE_BYTES + 1)
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_IMAGE_MB} MB"):
        project.add_images(project.classes[0].uid, [huge])


def test_pixel_limit_is_checked_before_decoding(project, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (8000, 6000)).save(bomb)  # 48 MP of one colour: a tiny file
    assert bomb.stat().st_size < pj.MAX_IMAGE_BYTES
    with pytest.raises(ProjectError, match="megapixels"):
        project.add_images(project.classes[0].uid, [bomb])


def test_images_per_class_and_total_limits(project, fashion, monkeypatch):
    train, _ = fashion
    monkeypatch.setattr(pj.uploads, "MAX_IMAGES_PER_CLASS", 3)
    with pytest.raises(ProjectError, match="would have 4 images; a class may have at most 3"):
        project.add_images(project.classes[0].uid, train["Trouser"][:4])
    monkeypatch.setattr(pj.uploads, "MAX_IMAGES_TOTAL", 5)
    project.add_images(project.classes[0].uid, train["Trouser"][:3])
    with pytest.raises(ProjectError, match="would have 6 images; at most 5"):
        project.add_images(project.classes[1].uid, train["Sneaker"][:3])


# ---- bulk import -----------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_import_one_folder_per_class(project, fashion, tmp_path):
    train, _ = fashion
    members = {f"my data/trousers/{p.name}": p.read_bytes() for p in train["Trouser"][:4]}
    members |= {f"my data/sneakers/{p.name}": p.read_bytes() for p in train["Sneaker"][:3]}
    members |= {
        "my data/sneakers/readme.txt": b"ignored: not an image",
        "__MACOSX/my data/sneakers/._x.png": b"resource fork",
        "my data/.DS_Store": b"finder",
        "my data/trousers/.hidden.png": b"dotfile",
    }
    message = project.import_zip(_zip(tmp_path / "set.zip", members))
    assert message == "Imported 7 images into 2 classes from 'set.zip'."
    assert project.names == ["trousers", "sneakers"]  # the empty default classes were dropped
    assert [len(c.images) for c in project.classes] == [4, 3]


def test_zip_import_merges_into_an_existing_class(project, fashion, tmp_path):
    train, _ = fashion
    project.rename_class(project.classes[0].uid, "Trousers")
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    members = {f"trousers/{p.name}": p.read_bytes() for p in train["Trouser"][2:4]}
    project.import_zip(_zip(tmp_path / "more.zip", members))
    assert project.names == ["Trousers"] and len(project.classes[0].images) == 4


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil/x.png": b"x"}, "unsafe path"),
        ({"/abs/x.png": b"x"}, "unsafe path"),
        ({"x.png": b"x"}, "not inside a class folder"),
        ({"docs/readme.txt": b"x"}, "holds no images"),
        ({"cats/broken.png": b"\x89PNG broken"}, "'broken.png' in class 'cats'"),
    ],
)
def test_zip_import_errors(project, tmp_path, members, message):
    with pytest.raises(ProjectError, match=message):
        project.import_zip(_zip(tmp_path / "bad.zip", members))
    assert project.n_images == 0


def test_zip_bomb_is_capped_while_reading(project, tmp_path, monkeypatch):
    monkeypatch.setattr(pj.intake, "ZIP_MAX_UNCOMPRESSED_BYTES", 2 * 2**20)
    path = _zip(tmp_path / "bomb.zip", {f"c/{i}.png": bytes(1536 * 1024) for i in range(3)})
    assert path.stat().st_size < 100_000  # 4.5 MB of zeros compress to almost nothing
    with pytest.raises(ProjectError, match="unpacks to more than 2 MB"):
        project.import_zip(path)


def test_zip_member_count_is_capped(project, tmp_path, monkeypatch):
    monkeypatch.setattr(pj.intake, "ZIP_MAX_MEMBERS", 5)
    path = _zip(tmp_path / "many.zip", {f"c/{i}.png": b"x" for i in range(6)})
    with pytest.raises(ProjectError, match="holds 6 entries; a zip may hold at most 5"):
        project.import_zip(path)


def test_not_a_zip(project, tmp_path):
    fake = tmp_path / "photos.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(ProjectError, match="'photos.zip' is not a readable zip file"):
        project.import_zip(fake)


def test_folder_import(project, fashion, tmp_path):
    train, _ = fashion
    for cls in ("Trouser", "Sneaker"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for p in train[cls][:2]:
            (tmp_path / "data" / cls / p.name).write_bytes(p.read_bytes())
    (tmp_path / "data" / ".git").mkdir()
    (tmp_path / "data" / ".git" / "x.png").write_bytes(b"ignored")
    assert "4 images into 2 classes" in project.import_folder(tmp_path / "data")
    assert sorted(project.names) == ["Sneaker", "Trouser"]


def test_a_folder_uploaded_by_a_browser(project, fashion, tmp_path):
    """The browser sends bare files (Gradio stores each under its name) plus each file's path
    inside the picked folder, in the same order."""
    train, _ = fashion
    files, rel = [], []
    for n, (cls, paths) in enumerate(
        (("Trouser", train["Trouser"][:2]), ("Sneaker", train["Sneaker"][:3]))
    ):
        for i, p in enumerate(paths):
            copy = tmp_path / f"upload{n}{i}" / "1.png"  # same bare name in both classes
            copy.parent.mkdir()
            copy.write_bytes(p.read_bytes())
            files.append(str(copy))
            rel.append(f"my-set/{cls.lower()}s/1-{i}.png")
    files.append(str(tmp_path / "upload00" / "1.png"))
    rel.append("my-set/.DS_Store/1.png")  # ignored like in a zip
    message = project.import_uploaded_folder(files, rel)
    assert message == "Imported 5 images into 2 classes from 'my-set'."
    assert {c.name: len(c.images) for c in project.classes} == {"trousers": 2, "sneakers": 3}


@pytest.mark.parametrize(
    ("files", "rel", "message"),
    [
        (["a.png"], ["set/cat/a.png", "set/dog/b.png"], "sent 1 files but the paths of 2"),
        (
            ["a.png", "b.jpg"],
            ["set/cat/a.png", "set/dog/b.png"],
            "do not match \\('set/dog/b.png'\\)",
        ),
        (["a.png"], ["a.png"], "'a.png' is not inside a class folder"),
        (["a.txt"], ["set/cat/a.txt"], "holds no images in class folders"),
    ],
)
def test_uploaded_folder_errors(project, files, rel, message):
    with pytest.raises(ProjectError, match=message):
        project.import_uploaded_folder(files, rel)
    assert project.n_images == 0


# ---- the /imprint API's records ------------------------------------------------------------------
def test_records_from_labels_errors():
    with pytest.raises(ProjectError, match="2 files but 1 labels"):
        pj.records_from_labels(["a.png", "b.png"], ["x"])
    with pytest.raises(
        ProjectError, match=r"Label 2 \(for 'b.png'\): A class name cannot be blank"
    ):
        pj.records_from_labels(["a.png", "b.png"], ["x", " "])
    with pytest.raises(ProjectError, match="'cat' and 'Cat' differ only in case"):
        pj.records_from_labels(["a.png", "b.png"], ["cat", "Cat"])
    with pytest.raises(ProjectError, match="list of class names"):
        pj.records_from_labels(["a.png"], "cat")
    assert pj.records_from_labels([{"path": "/x/a.png"}], [" cat "]) == [
        ("cat", "a.png", "/x/a.png")
    ]


def test_png_roundtrip_keeps_pixels(fashion):
    train, _ = fashion
    src = train["Trouser"][0]
    img = pj.prepare_image(str(src), src.name)
    back = Image.open(io.BytesIO(pj.intake.png_bytes(img)))
    assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(img))
