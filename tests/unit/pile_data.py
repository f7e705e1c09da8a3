"""Real images for the predict tests: Fashion-MNIST PNGs written from Debian's IDX files, the
example project's images (the head is imprinted on them), scikit-learn's two photos, a zip, and
files that are not images or are broken."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FASHION = {0: "T-shirt", 1: "Trouser", 7: "Sneaker"}  # Fashion-MNIST index -> example class


def photos() -> list[Path]:
    """scikit-learn's sample photos (JPEG, 640 x 427): a temple and a flower."""
    import sklearn

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    return [folder / "china.jpg", folder / "flower.jpg"]


def fit_head(path: Path):
    """The default preset imprinted on the shipped fashion3 example (30 images per class)."""
    import imprint_core as ic
    from imprint_core.config import assets_dir

    files = sorted((assets_dir() / "examples" / "fashion3" / "train").glob("*/*.png"))
    bb = ic.get_backbone()
    clf = ic.ImprintClassifier.from_preset("ours").fit(
        bb.embed(files), [f.parent.name for f in files]
    )
    clf.save(path, backbone=bb.name)
    return clf


def fashion_png(index: int) -> bytes:
    """Test image ``index`` of Fashion-MNIST as PNG bytes (28 x 28 grayscale)."""
    X, _ = _fashion()
    buf = io.BytesIO()
    Image.fromarray(X[index]).save(buf, "PNG")
    return buf.getvalue()


def fashion_indices(per_class: int, skip: int = 0) -> list[tuple[int, str]]:
    """``(index, class)`` of the first test images of each example class, after ``skip``."""
    _, y = _fashion()
    out = []
    for c, name in FASHION.items():
        out += [(int(i), name) for i in np.flatnonzero(y == c)[skip : skip + per_class]]
    return out


_CACHE: dict[str, tuple] = {}


def _fashion():
    if "test" not in _CACHE:
        from imprint_core.bench.datasets import load_fashion_mnist

        _CACHE["test"] = load_fashion_mnist("test")
    return _CACHE["test"]


def write_fashion_folder(folder: Path, per_class: int, skip: int = 0) -> dict[str, str]:
    """Fashion-MNIST PNGs under ``folder`` (half in ``a/``, half in ``a/b/``): name -> class."""
    truth = {}
    for k, (i, cls) in enumerate(fashion_indices(per_class, skip)):
        sub = folder / ("a" if k % 2 else "a/b")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{cls}-{i:05d}.png"
        path.write_bytes(fashion_png(i))
        truth[str(path)] = cls
    return truth


def example_test_folder() -> Path:
    """The shipped example's held-out images (fashion3/test/<class>/*.png, 112 px)."""
    from imprint_core.config import assets_dir

    return assets_dir() / "examples" / "fashion3" / "test"


@dataclass
class Pile:
    """The example's held-out images, a folder, a zip and a photo, with what a run must report
    about them."""

    folder: Path
    archive: Path
    photo: Path
    examples: Path = field(default_factory=example_test_folder)
    truth: dict[str, str] = field(default_factory=dict)  # Fashion-MNIST row name -> class
    errors: dict[str, str] = field(default_factory=dict)  # row name -> words its error must hold
    photos: list[str] = field(default_factory=list)  # row names of the photos
    left_out: int = 0

    @property
    def inputs(self) -> list[str]:
        return [str(self.examples), str(self.folder), str(self.archive), str(self.photo)]


def make_pile(root: Path) -> Pile:
    folder = root / "pile"
    archive = root / "mixed.zip"
    china, flower = photos()
    pile = Pile(folder, archive, china)
    pile.truth = write_fashion_folder(folder, per_class=8)
    pile.truth |= {str(p): p.parent.name for p in sorted(pile.examples.glob("*/*.png"))}
    twin = fashion_png(fashion_indices(1, skip=20)[2][0])  # a sneaker, twice, one file name
    for sub in ("a", "a/b"):
        (folder / sub / "twin.png").write_bytes(twin)
        pile.truth[str(folder / sub / "twin.png")] = "Sneaker"
    (folder / "corrupt.png").write_bytes(fashion_png(0)[:100])  # cut short
    (folder / "fake.jpg").write_text("this is not a photo\n")
    (folder / "notes.txt").write_text("left out: not an image by its extension\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    pile.errors = {
        str(folder / "corrupt.png"): "truncated",
        str(folder / "fake.jpg"): "not an image",
    }
    broken = fashion_png(fashion_indices(1, skip=30)[0][0])
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(flower, "photos/flower.jpg")
        for i, cls in fashion_indices(1, skip=40):
            zf.writestr(f"fm/{cls}-{i:05d}.png", fashion_png(i))
            pile.truth[f"{archive}/fm/{cls}-{i:05d}.png"] = cls
        zf.writestr("fm/broken.png", broken, compress_type=zipfile.ZIP_STORED)
        zf.writestr("readme.md", "left out\n")
        zf.writestr("__MACOSX/fm/._x.png", b"resource fork")
    data = bytearray(archive.read_bytes())
    at = data.find(broken) + len(broken) // 2
    data[at] ^= 0xFF  # the stored member no longer matches its CRC
    archive.write_bytes(bytes(data))
    pile.errors[f"{archive}/fm/broken.png"] = "CRC"
    pile.photos = [str(china), f"{archive}/photos/flower.jpg"]
    pile.left_out = 4  # notes.txt, .DS_Store, readme.md, __MACOSX/...
    return pile


def read_source(name: str, pile: Pile) -> bytes:
    """The bytes a row's image came from (a file, or a member of the pile's zip)."""
    prefix = f"{pile.archive}/"
    if name.startswith(prefix):
        with zipfile.ZipFile(pile.archive) as zf:
            return zf.read(name[len(prefix) :])
    return Path(name).read_bytes()


def read_csv(path: os.PathLike) -> dict[str, dict[str, str]]:
    """path -> row of a predictions CSV; fails on a repeated path."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a path appears twice"
    return by_path
