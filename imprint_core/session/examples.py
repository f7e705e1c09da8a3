"""One-click example projects from real images shipped in ``assets/examples`` (Fashion-MNIST, MIT).

Each example has ``train/<class>/*.png`` (what the project is taught) and ``test/<class>/*.png``
(held-out images for "Try it"). ``scripts/make_assets.py`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import assets_dir

ASSETS_DIR = assets_dir()
EXAMPLES_DIR = ASSETS_DIR / "examples"


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    description: str

    @property
    def folder(self) -> Path:
        return EXAMPLES_DIR / self.key


EXAMPLES: dict[str, Example] = {
    "fashion3": Example(
        "fashion3",
        "Fashion-MNIST: T-shirt, trouser, sneaker",
        "Three Fashion-MNIST classes, 30 training images each.",
    ),
    "merged": Example(
        "merged",
        "Tops / footwear / other (multi-modal)",
        "Each class merges several Fashion-MNIST classes (tops: T-shirt, pullover, coat, shirt; "
        "footwear: sandal, sneaker, ankle boot; other: trouser, dress, bag). One mean per class "
        "blurs the sub-groups; k-means proxies keep them apart.",
    ),
}


def get_example(key: str) -> Example:
    try:
        return EXAMPLES[key]
    except KeyError:
        raise ValueError(f"unknown example {key!r}; choose one of: {', '.join(EXAMPLES)}") from None


def _images(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"example images missing in {folder}: run `python scripts/make_assets.py`"
        )
    return [
        (cls.name, path)
        for cls in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(cls.glob("*.png"))
    ]


def train_images(key: str) -> list[tuple[str, Path]]:
    """``(class, path)`` of the example's training images, class by class."""
    return _images(get_example(key).folder / "train")


def test_images(key: str) -> list[tuple[str, Path]]:
    """``(class, path)`` of the example's held-out images (never part of the project)."""
    return _images(get_example(key).folder / "test")


def load_example(project, key: str) -> str:
    """Replace the project's classes and images with the example's; returns a summary sentence.

    The project as it was can be brought back with ``project.undo_replace()``."""
    example = get_example(key)
    records = [(cls, path.name, str(path)) for cls, path in train_images(key)]
    kept = len(project.undo)
    project.replace(records, f"the example '{example.title}'", example=key)
    counts = ", ".join(f"{c.name} ({len(c.images)})" for c in project.classes)
    message = f"Loaded the example '{example.title}': {counts}."
    if len(project.undo) > kept:
        message += " Your own classes were put aside: **Undo** brings them back."
    elif project.undo:
        message += " Your own classes are still kept: **Undo** brings them back."
    return message
