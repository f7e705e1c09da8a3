"""Size and speed of the standalone ONNX model (backbone + head) beside the library, same run.

    python benchmarks/bench_onnx.py [--threads 2] [--repeats 7] [--batch 32]

The head is the default preset fitted on Fashion-MNIST embeddings (10 classes x 20 images).
Both paths start from the same decoded photos (distinct 480 x 360 crops of scikit-learn's china.jpg
and flower.jpg)
and end in class probabilities:

- ``onnx``: the documented PIL preprocessing, then ``InferenceSession.run`` (onnxruntime only,
  its default session options as in the snippet; ``onnx_no_spin`` turns thread spinning off as
  the library's own engine does);
- ``library``: ``Backbone.embed(images, cache=False)`` then ``ImprintClassifier.predict_proba``.

They run round-robin so that load from other processes hits them alike; we print the median
images/s of each and the median of the per-round ratios, for a batch and for single images.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _pixels(image):
    """The preprocessing the export documents (onnx_export.preprocessing_lines), on a PIL image."""
    from PIL import Image

    w, h = image.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    image = image.resize(size, Image.BICUBIC)
    left, top = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
    return np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import onnxruntime as ort
    import torch
    from PIL import Image

    import imprint_core as ic
    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.onnx_export import backbone_graph, export_onnx

    torch.set_num_threads(args.threads)  # the library's ONNX Runtime engine follows it
    X, y = load_fashion_mnist("test")
    rows = np.concatenate([np.flatnonzero(y == c)[:20] for c in range(10)])
    bb = ic.get_backbone()
    Z = bb.embed([Image.fromarray(X[i]) for i in rows], cache=False)
    head = ic.ImprintClassifier.from_preset("ours").fit(Z, y[rows])

    photos = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"
    decoded = [Image.open(photos / n).convert("RGB") for n in ("china.jpg", "flower.jpg")]
    # distinct images (crops at different offsets): the library embeds identical ones only once
    images = [
        decoded[i % 2].crop((4 * i, 2 * i, 4 * i + 480, 2 * i + 360)) for i in range(args.batch)
    ]

    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        path = export_onnx(head, Path(folder) / "classifier.onnx")
        export_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        backbone_mb = len(backbone_graph(bb.name)[0]) / 2**20
        sessions = {}
        for spin in ("1", "0"):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
            # the library's own engine turns spinning off (busy-waiting threads lose on a shared CPU)
            opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
            sessions[spin] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )

    def run(session, batch):
        return session.run(["probabilities"], {"pixels": np.stack([_pixels(i) for i in batch])})[0]

    def onnx_path(batch):  # onnxruntime's defaults, as in the documented snippet
        return run(sessions["1"], batch)

    def onnx_no_spin(batch):
        return run(sessions["0"], batch)

    def library_path(batch):
        return head.predict_proba(bb.embed(batch, cache=False))

    paths = {"onnx": onnx_path, "onnx_no_spin": onnx_no_spin, "library": library_path}
    agree = np.abs(onnx_path(images) - library_path(images)).max()
    results = {}
    for label, batch in (("batch", images), ("single", images[:1])):
        rates: dict[str, list[float]] = {k: [] for k in paths}
        for fn in paths.values():  # warm-up
            fn(batch)
        for _ in range(args.repeats):
            for name, fn in paths.items():
                t0 = time.perf_counter()
                fn(batch)
                rates[name].append(len(batch) / (time.perf_counter() - t0))
        results[label] = {
            "images": len(batch),
            **{f"{k}_img_per_s": round(statistics.median(v), 2) for k, v in rates.items()},
        }
        for k in ("onnx", "onnx_no_spin"):
            ratios = [a / b for a, b in zip(rates[k], rates["library"], strict=True)]
            results[label][f"{k}_over_library_median_ratio"] = round(statistics.median(ratios), 3)
    report = {
        "model_mb": round(size_mb, 2),
        "backbone_graph_mb": round(backbone_mb, 2),
        "export_seconds_first": round(export_s, 2),
        "threads": args.threads,
        "load_average": list(os.getloadavg()),
        "repeats": args.repeats,
        "max_abs_probability_difference": float(agree),
        "onnxruntime": ort.__version__,
        **results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
