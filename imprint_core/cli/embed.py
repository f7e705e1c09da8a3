"""``imprint embed FOLDER --backbone NAME -o embeddings.npz``: embed a folder of images.

FOLDER holds one subfolder per class (labels from the folder names) or plain images (no labels).
The .npz records the embeddings, the file names (relative to FOLDER), the labels and the backbone
name; ``imprint_core.read_embeddings`` reads it back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".mpo", ".avif"}
)


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def find_images(folder: str | Path) -> tuple[list[Path], list[str] | None]:
    """Image files under ``folder`` and their labels (subfolder names), or None without classes.

    With class subfolders, images lying directly in ``folder`` are ignored (a warning says so).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"Folder {str(root)!r} does not exist or is not a folder.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = _images_in(root)
    files: list[Path] = []
    labels: list[str] = []
    for cls in classes:
        found = _images_in(cls)
        files += found
        labels += [cls.name] * len(found)
    if files:
        if loose:
            print(
                f"imprint embed: warning: ignoring {len(loose)} image(s) directly in {root}; "
                "with class subfolders, every image belongs in one.",
                file=sys.stderr,
            )
        return files, labels
    if loose:
        return loose, None
    allowed = ", ".join(sorted(IMAGE_SUFFIXES))
    raise ValueError(
        f"Folder {str(root)!r} has no images: put images ({allowed}) in it, or one subfolder "
        "of images per class."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from imprint_core.backbones import DEFAULT_BACKBONE, list_backbones

    parser.add_argument("folder", help="one subfolder of images per class, or plain images")
    parser.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help=f"one of: {', '.join(list_backbones())} (default: %(default)s)",
    )
    parser.add_argument(
        "-o", "--output", default="embeddings.npz", help="output .npz (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")


def run(args: argparse.Namespace) -> int:
    """Embed ``args.folder`` with ``args.backbone`` and write ``args.output``."""
    from tqdm.auto import tqdm

    from imprint_core.backbones import get_backbone
    from imprint_core.embeddings_io import write_embeddings

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}.")
    if not str(args.output).endswith(".npz"):
        raise ValueError(f"--output {args.output!r} must end in .npz.")
    root = Path(args.folder)
    files, labels = find_images(root)
    backbone = get_backbone(args.backbone, device=args.device)
    names = [str(f.relative_to(root)) for f in files]
    with tqdm(total=len(files), desc=f"embed {backbone.name}", unit="img") as bar:
        X = backbone.embed(files, batch_size=args.batch_size, progress=bar, names=names)
    path = write_embeddings(args.output, X, labels, names, backbone.name)
    classes = f"{len(set(labels))} classes" if labels is not None else "no classes"
    print(f"wrote {path}: {X.shape[0]} images x {X.shape[1]} dims, {classes}, {backbone.name}")
    return 0
