"""Where the time of a typical app session goes: add images, decode, embed, fit, evaluate, figures.

    python benchmarks/bench_session.py [--sizes 100 1000] [--classes 4]

A ``Project`` (the app's session state, no Gradio) gets ``n`` JPEG photos (640 x 427, crops of
scikit-learn's sample photos, spread over ``--classes`` classes), then runs what the Imprint and
Geometry tabs run: ``add_images`` (validation + stored copies), ``embed`` (decode + preprocess +
forward with the default backbone), ``imprint`` (fit with the default preset, then its
evaluation) and ``geometry`` (the map and the neural-collapse figures). Decoding alone is timed
separately on the same files (``Backbone.preprocess``) to split the embedding step.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _photos(folder: Path, n: int) -> list[Path]:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = [load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
    out = []
    for i in range(n):
        arr = np.roll(photos[i % 2], shift=(7 * i) % 400, axis=1 + (i // 2) % 2)
        arr[:8, : 8 * 16] = (((i >> np.arange(16)) & 1) * 255).repeat(8)[None, :, None]
        image = Image.fromarray(arr)  # the 16-bit stripe makes every image distinct
        path = folder / f"img{i:05d}.jpg"
        image.save(path, format="JPEG", quality=90)
        out.append(path)
    return out


def session(n: int, classes: int, bb) -> dict[str, float]:
    from imprint_core.session.project import Project

    with tempfile.TemporaryDirectory() as tmp:
        files = _photos(Path(tmp), n)
        project = Project(workdir=Path(tmp) / "work", n_classes=classes)
        times = {}
        t = time.perf_counter()
        assert len({p.read_bytes() for p in files}) == n, "duplicate images"
        for c, entry in enumerate(project.classes):
            project.add_images(entry.uid, files[c::classes])
        times["add images (checks + stored copies)"] = time.perf_counter() - t
        stored = [str(i.path) for c in project.classes for i in c.images]
        assert len(stored) == n, f"the project kept {len(stored)} of {n} images"
        t = time.perf_counter()
        for s in range(0, len(stored), 32):
            bb.preprocess(stored[s : s + 32])
        times["  decode + preprocess alone"] = time.perf_counter() - t
        times["embed (decode + preprocess + forward)"] = project.embed(bb)
        project.imprint()
        times["fit (imprint)"] = project.seconds["imprint"]
        times["evaluate"] = project.seconds["evaluate"]
        t = time.perf_counter()
        project.geometry()
        times["figures (geometry tab)"] = time.perf_counter() - t
        return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--classes", type=int, default=4)
    args = ap.parse_args()
    from imprint_core.backbones import get_backbone

    bb = get_backbone()
    bb.embed(_photos(Path(tempfile.mkdtemp()), 2), cache=False)  # warm-up
    for n in args.sizes:
        times = session(n, args.classes, bb)
        total = sum(v for k, v in times.items() if not k.startswith("  "))
        print(
            f"\n{n} images, {args.classes} classes, {bb.runtime}; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine):"
        )
        for k, v in times.items():
            print(f"  {k:42s} {v:7.2f} s  {100 * v / total:5.1f}%")
        print(f"  {'total':42s} {total:7.2f} s")


if __name__ == "__main__":
    main()
