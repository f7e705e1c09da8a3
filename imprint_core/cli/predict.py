"""``imprint predict HEAD.safetensors INPUT... -o predictions.csv``: sort a pile of images.

INPUT is image files, folders (searched recursively) and .zip archives (members named
``archive.zip/member/path``); with ``--engine ray`` also object-storage URIs Ray Data reads. One CSV
row per image (``imprint_core.predictions_csv``); an image that cannot be read gets an error row
and the run goes on. ``--sort-into DIR`` also writes each image into ``DIR/<class>/`` or
``DIR/none-of-these/`` (copies, or hard links with ``--link``; the originals stay where they are).
``--resume`` continues a stopped run after the rows its CSV already holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .engine_options import add_engine_arguments

    parser.add_argument("head", help="a head saved by ImprintClassifier.save or the app")
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders (recursive) and .zip archives; with --engine ray also "
        "object-storage URIs (s3://bucket/photos)",
    )
    parser.add_argument(
        "-o", "--output", default="predictions.csv", help="output .csv (default: %(default)s)"
    )
    parser.add_argument(
        "--sort-into",
        metavar="DIR",
        default=None,
        help="also put a copy of every image into DIR/<class>/ or DIR/none-of-these/",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="with --sort-into: hard links instead of copies (copies across file systems)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue after the rows OUTPUT already holds (give the same INPUTs)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    parser.add_argument(
        "--backbone", default=None, help="the head's backbone (default: the one the head records)"
    )
    add_engine_arguments(parser)


def _check_output(args: argparse.Namespace) -> Path:
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--output {args.output!r} must end in .csv.")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues OUTPUT and --overwrite replaces it: choose one.")
    if out.is_dir():
        raise ValueError(f"--output {args.output!r} is a folder; name a .csv file.")
    if out.exists() and not (args.resume or args.overwrite):
        raise ValueError(
            f"{args.output!r} exists: --resume continues it, --overwrite replaces it, or choose "
            "another --output."
        )
    if args.link and not args.sort_into:
        raise ValueError("--link goes with --sort-into DIR.")
    return out


def _check_sort_into(target: str, prediction) -> None:
    if prediction.inputs.uris:
        raise ValueError(
            "--sort-into writes copies of local files; it cannot copy object-storage URIs "
            f"such as {prediction.inputs.uris[0]!r}."
        )
    where = Path(target).resolve()
    for folder in prediction.inputs.folders:
        if where == folder.resolve() or folder.resolve() in where.parents:
            raise ValueError(
                f"--sort-into {target!r} is inside the input folder {str(folder)!r}; choose a "
                "folder outside it (its copies would be read as input next time)."
            )


def run(args: argparse.Namespace) -> int:
    """Predict ``args.inputs`` with ``args.head``; write ``args.output`` (and the sorted copies)."""
    from contextlib import nullcontext

    from tqdm.auto import tqdm

    from imprint_core.head_io import HeadFileError
    from imprint_core.predict import ENGINES, predict_files
    from imprint_core.predictions_csv import PredictionWriter, Tally, read_predictions
    from imprint_core.sorting import Sorter

    from .engine_options import engine_options

    options = engine_options(args, ENGINES)
    out = _check_output(args)
    resuming = args.resume and out.exists()
    done = read_predictions(out) if resuming else []
    try:
        prediction = predict_files(
            args.head,
            args.inputs,
            backbone=args.backbone,
            batch_size=args.batch_size,
            engine=args.engine,
            skip={r["path"] for r in done},
            **options,
        )
    except HeadFileError as exc:
        raise ValueError(str(exc)) from None
    if prediction.total == 0 and not prediction.skipped:
        from imprint_core.images import IMAGE_SUFFIXES

        raise ValueError(
            f"No images in {', '.join(map(repr, args.inputs))}: give image files, folders or zips "
            f"holding images ({', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    if args.sort_into:
        _check_sort_into(args.sort_into, prediction)
    if resuming:
        read_predictions(out, repair=True)  # drop a line the stopped run left unfinished
    tally = Tally(done)
    sorter = (
        Sorter(args.sort_into, prediction.head.classes_, link=args.link, resume=args.resume)
        if args.sort_into
        else nullcontext()
    )
    total = None if prediction.total is None else prediction.total + len(done)
    desc = f"predict {prediction.backbone} ({args.engine})"
    try:
        with (
            tqdm(total=total, initial=len(done), desc=desc, unit="img") as bar,
            PredictionWriter(out, append=resuming) as writer,
            sorter,
        ):
            for row in prediction:
                if args.sort_into:
                    sorter.place(row)  # before the CSV row: a row in the CSV has its copy
                tally.add(writer.write(row))
                bar.update(1)
    except KeyboardInterrupt:
        print(f"stopped after {tally.images:,} rows; the same command with --resume goes on.")
        return 130
    new = tally.images - len(done)
    earlier = f", {len(done):,} from the earlier run" if done else ""
    print(f"wrote {out}: {tally.images:,} images ({new:,} new{earlier}): {tally.line()}")
    if prediction.ignored:
        n = prediction.ignored
        files = "1 file that is not an image" if n == 1 else f"{n:,} files that are not images"
        print(f"left out {files} (by the extension)")
    if args.sort_into:
        how = "hard links" if args.link else "copies"
        print(f"sorted into {args.sort_into} ({how}): one folder per class and none-of-these/")
    return 0
