"""``imprint embed FOLDER --backbone NAME -o embeddings.npz``: embed a folder of images.

FOLDER holds one subfolder per class (labels from the folder names) or plain images (no labels).
The .npz records the embeddings, the file names (relative to FOLDER), the labels and the backbone
name; ``imprint_core.read_embeddings`` reads it back.

``--engine ray`` computes the same file with Ray Data (a pool of model actors; a local Ray, or an
existing cluster with ``--ray-address``): see docs/distributed.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imprint_core.distributed import ENGINES, embed_paths
from imprint_core.embeddings_io import write_embeddings

from .engine_options import add_engine_arguments, engine_options

# Heavy: tqdm, backbones and images (PIL) imported where used, so that importing this module stays
# cheap.


def _images_in(folder: Path) -> list[Path]:
    from imprint_core.images import IMAGE_SUFFIXES

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
    from imprint_core.images import IMAGE_SUFFIXES

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
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Embed ``args.folder`` with ``args.backbone`` and write ``args.output``."""
    from tqdm.auto import tqdm

    options = engine_options(args, ENGINES) | {"batch_size": args.batch_size}
    if not str(args.output).endswith(".npz"):
        raise ValueError(f"--output {args.output!r} must end in .npz.")
    from imprint_core.backbones import backbone_spec

    root = Path(args.folder)
    files, labels = find_images(root)
    name = backbone_spec(args.backbone).name
    names = [str(f.relative_to(root)) for f in files]
    with tqdm(total=len(files), desc=f"embed {name} ({args.engine})", unit="img") as bar:
        X = embed_paths(files, args.engine, backbone=name, names=names, progress=bar, **options)
    path = write_embeddings(args.output, X, labels, names, name)
    classes = f"{len(set(labels))} classes" if labels is not None else "no classes"
    print(f"wrote {path}: {X.shape[0]} images x {X.shape[1]} dims, {classes}, {name}")
    return 0
