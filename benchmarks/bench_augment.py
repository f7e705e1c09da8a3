"""Support augmentation's embedding cost: seconds per training image with and without the views.

The app's path: the stored PNG copies (photos at the session's 448 px, and 28 px Fashion-MNIST
images) embedded by the built-in backbone as ``Project.embed`` does (batch ``EMBED_BATCH``, no
process cache), then, with augmentation, their ``flip`` + ``crops`` views through
``imprint_core.embed_views``. Median over ``--repeats`` of each, and the ratio.

    python benchmarks/bench_augment.py --images 24 --repeats 3 \\
        --json benchmarks/results/augment-cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

import imprint_core as ic
from imprint_core.augment import DEFAULT_VIEWS, view_labels
from imprint_core.session.limits import EMBED_BATCH, STORE_MAX_SIDE


def photos(n: int, folder: Path) -> list[str]:
    """``n`` distinct 448-px PNGs cut from scikit-learn's two sample photos (as the app stores)."""
    from sklearn.datasets import load_sample_images

    sources = [Image.fromarray(a) for a in load_sample_images().images]
    paths = []
    for i in range(n):
        im = sources[i % 2]
        dx = (i // 2) * 7
        im = im.crop((dx, 0, dx + 560, 420))
        im.thumbnail((STORE_MAX_SIDE, STORE_MAX_SIDE))
        paths.append(str(folder / f"photo{i}.png"))
        im.save(paths[-1])
    return paths


def fashion(n: int, folder: Path) -> list[str]:
    from imprint_core.bench.datasets import load_dataset

    ds = load_dataset("fashion-mnist", "train")
    paths = []
    for i, im in enumerate(ds.images(np.arange(n))):
        paths.append(str(folder / f"fm{i}.png"))
        im.save(paths[-1])
    return paths


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=24, help="training images per kind")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    bb = ic.get_backbone()
    per = len(view_labels(DEFAULT_VIEWS))
    out = {"backbone": bb.name, "runtime": bb.runtime, "views": list(DEFAULT_VIEWS)}
    out.update(views_per_image=per, images=args.images, repeats=args.repeats, kinds={})
    with tempfile.TemporaryDirectory() as tmp:
        kinds = {
            f"photos ({STORE_MAX_SIDE} px PNG)": photos(args.images, Path(tmp)),
            "Fashion-MNIST (28 px PNG)": fashion(args.images, Path(tmp)),
        }
        bb.embed(kinds["Fashion-MNIST (28 px PNG)"][:4], cache=False)  # warm-up
        for kind, paths in kinds.items():
            plain, views = [], []
            embed = partial(bb.embed, paths, batch_size=EMBED_BATCH, cache=False)
            views_of = partial(
                ic.embed_views, bb, paths, DEFAULT_VIEWS, batch_size=EMBED_BATCH, cache=False
            )
            for _ in range(args.repeats):  # interleaved: both see the same machine load
                plain.append(timed(embed))
                views.append(timed(views_of))
            n = len(paths)
            without = statistics.median(plain) / n
            extra = statistics.median(views) / n
            row = {
                "s_per_image_plain": without,
                "s_per_image_views": extra,
                "s_per_image_augmented": without + extra,
                "ratio": (without + extra) / without,
            }
            out["kinds"][kind] = row
            print(
                f"{kind}: {without * 1e3:.1f} ms per image plain, {(without + extra) * 1e3:.1f} ms "
                f"with {per} views ({row['ratio']:.2f}x), median of {args.repeats}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
