"""Cost of the Geometry tab's proxies advice (``modes.advise_proxies``: the accuracy-vs-k curve's
k-means line under the head's settings, k by the one-standard-error rule) beside the silhouette
reading it replaced, in the same run, on real embeddings.

    python benchmarks/bench_geometry.py [--per-class 100] [--repeats 3] [--seeds 5]

Data: the shipped multi-modal example ("merged", 3 classes x 36 images) and Fashion-MNIST train
images (10 classes x --per-class), embedded once by the built-in backbone. Each repeat runs the
two advisers round-robin (the advice cache cleared first), so load from other processes hits
both alike; we report medians and the median per-repeat ratio. Then the advice for --seeds seeds,
to show how much it moves with the seed. Torch and scikit-learn are imported before timing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _data(per_class: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from PIL import Image

    import imprint_core as ic
    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.session import examples as ex

    bb = ic.get_backbone()
    train = ex.train_images("merged")
    out = {"merged": (bb.embed([str(p) for _, p in train]), np.array([c for c, _ in train]))}
    images, labels = load_fashion_mnist("train")
    rng = np.random.default_rng(0)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    )
    pil = [Image.fromarray(images[i]).convert("RGB") for i in idx]
    out[f"fashion-mnist {per_class}/class"] = (bb.embed(pil), labels[idx])
    return out


def _advisers():
    from imprint_core import modes

    def silhouette(X, y):
        return {c: modes.recommend_k(X[y == c], label=c)[0] for c in np.unique(y)}

    def curve(X, y):
        modes.clear_advice_cache()
        return modes.advise_proxies(X, y)["k"]

    return {"silhouette (old)": silhouette, "curve advice": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    import sklearn.cluster  # noqa: F401  (imports outside the timings)
    import torch  # noqa: F401

    from imprint_core import modes
    from imprint_core.kcurve import base_settings

    advisers = _advisers()
    for name, (X, y) in _data(args.per_class).items():
        times: dict[str, list[float]] = {a: [] for a in advisers}
        answers = {}
        for _ in range(args.repeats):
            for a, fn in advisers.items():
                t = time.perf_counter()
                answers[a] = fn(X, y)
                times[a].append(time.perf_counter() - t)
        print(f"\n{name}: {len(X)} embeddings x {X.shape[1]}")
        for a in advisers:
            ks = {str(c): int(k) for c, k in answers[a].items()}
            print(f"  {a:20s} median {statistics.median(times[a]):7.2f} s   k = {ks}")
        ratio = statistics.median(
            t1 / t0 for t0, t1 in zip(*(times[a] for a in advisers), strict=True)
        )
        print(f"  ratio advice / silhouette (median per repeat): {ratio:.2f}")
        for seed in range(args.seeds):
            k = modes.advise_proxies(X, y, {**base_settings(), "seed": seed})["k"]
            print(f"  seed {seed}: advice k = { {str(c): int(v) for c, v in k.items()} }")


if __name__ == "__main__":
    main()
