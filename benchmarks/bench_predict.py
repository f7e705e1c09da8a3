"""Prediction with a big head: 1,000 classes x 20 proxies (d = 1,280) on 10,000 queries.

    python benchmarks/bench_predict.py [--classes 1000] [--proxies 20] [--queries 10000] [--repeats 5]

The head is an ``ImprintClassifier`` (gen="all" on 20 points per class: 20,000 proxies). Timed in
one run, round-robin: ``clf.predict`` (validation + L2 + chunked float32 scoring + argmax), the
scoring alone in chunks (``aggregation.CHUNK_BYTES``), the scoring in one block, and one block in
float64 (the obvious alternative). Medians, ratios to the float64 block, and the peak memory each
allocates (tracemalloc sees numpy's buffers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--proxies", type=int, default=20)
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import imprint_core as ic
    from imprint_core import aggregation

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.classes, args.dim)).astype(np.float32)
    y = np.repeat(np.arange(args.classes), args.proxies)
    X = centres[y] + rng.normal(scale=2.0, size=(len(y), args.dim)).astype(np.float32)
    yq = rng.integers(0, args.classes, args.queries)
    Q = centres[yq] + rng.normal(scale=2.0, size=(args.queries, args.dim)).astype(np.float32)
    t = time.perf_counter()
    clf = ic.ImprintClassifier(gen="all").fit(X, y)
    fit_s = time.perf_counter() - t
    W = clf.proxies_
    Zn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    pc, C = clf.proxy_class_index_, len(clf.classes_)

    def block(dtype, chunk_bytes):
        Z, Wd = Zn.astype(dtype), W.astype(dtype)
        return lambda: aggregation.class_scores(Z, Wd, pc, C, chunk_bytes=chunk_bytes).argmax(1)

    variants = {
        "clf.predict (float32, chunked)": lambda: clf.predict(Q),
        "scoring, float32, chunked": block(np.float32, aggregation.CHUNK_BYTES),
        "scoring, float32, one block": block(np.float32, 2**62),
        "scoring, float64, one block": block(np.float64, 2**62),
    }
    peaks, times = {}, {k: [] for k in variants}
    ref = variants["scoring, float64, one block"]()
    for name, f in variants.items():
        tracemalloc.start()
        out = f()
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        agree = np.mean(np.asarray(out) == (clf.classes_[ref] if "clf" in name else ref))
        assert agree > 0.999, (name, agree)
    for _ in range(args.repeats):
        for name, f in variants.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    base = times["scoring, float64, one block"]
    print(
        f"{args.classes} classes x {args.proxies} proxies (P = {len(W)}), d = {args.dim}, "
        f"{args.queries} queries; fit (gen='all') {fit_s:.1f} s; {args.repeats} rounds; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)"
    )
    print(f"{'variant':34s} {'median s':>9s} {'x float64':>10s} {'peak MB':>8s}")
    for name, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, ts, strict=True))
        print(f"{name:34s} {statistics.median(ts):9.3f} {ratio:10.2f} {peaks[name]:8.0f}")
    acc = np.mean(clf.predict(Q) == yq)
    print(f"accuracy on the synthetic queries: {acc:.3f} (sanity check)")


if __name__ == "__main__":
    main()
