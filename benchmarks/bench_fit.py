"""Fit cost of the default preset against the least-squares oracle, in the same run.

The goal (issue 10): ``DEFAULT_PRESET`` fits 5,000 x 1,280 embeddings (Fashion-MNIST, 500 per
class, built-in backbone) in at most 3x the time of the ``oracle`` preset. ``auto`` (k by
cross-validation) and ``ours`` are timed beside them. Every preset is fitted once untimed
(imports, torch start-up), then ``--repeats`` times in rotation; medians and ratios to the
oracle are printed and, with ``--json``, written.

Wall and CPU time (``time.process_time``: this process's own, so that a loaded machine stretches
it less) are both recorded. ``--then-unknown`` also times a fit followed by the first
``unknown_threshold_`` (where the "none of these" statistics are built when ``fit`` leaves them).

Uses the bench's embedding cache (``imprint bench --per-class 500`` fills it); ``--random``
times Gaussian embeddings of the same shape instead, without any embedding.

    python benchmarks/bench_fit.py --repeats 5 --json benchmarks/results/fit.json

``--per-class N`` times fits on N seeded images per class of the same set (the few-shot cost);
a preset may carry overrides, ``adaptive:whiten_shrinkage=dof``, to time a variant beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import imprint_core as ic


def fashion_mnist_500() -> tuple[np.ndarray, np.ndarray]:
    from imprint_core.bench import default_cache_dir, embed_cached, subset_rows
    from imprint_core.bench.datasets import load_dataset

    ds = load_dataset("fashion-mnist", "train")
    rows = subset_rows(ds.labels, 500, 0)
    Z, _ = embed_cached(ds, rows, "efficientnet_lite0", default_cache_dir(), progress=False)
    return Z, ds.labels[rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--presets", default=f"oracle,{ic.DEFAULT_PRESET},auto,ours")
    p.add_argument("--random", action="store_true", help="Gaussian embeddings, no dataset")
    p.add_argument("--per-class", type=int, help="fit on this many images per class (seeded)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument(
        "--then-unknown",
        action="store_true",
        help="also time each fit followed by its first unknown_threshold_ (as PRESET+unknown)",
    )
    args = p.parse_args()
    if args.random:
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(5000, 1280)).astype(np.float32), np.repeat(np.arange(10), 500)
    else:
        X, y = fashion_mnist_500()
    if args.per_class:
        rng = np.random.default_rng(0)
        rows = [rng.choice(np.flatnonzero(y == c), args.per_class, replace=False) for c in set(y)]
        keep = np.sort(np.concatenate(rows))
        X, y = X[keep], y[keep]
    names = args.presets.split(",")
    for name in names:  # untimed warm-up
        make(name).fit(X[:300], y[:300])
    runs = [(n, False) for n in names] + [(n, True) for n in names if args.then_unknown]
    times: dict[str, list[float]] = {label(*r): [] for r in runs}
    cpu: dict[str, list[float]] = {label(*r): [] for r in runs}
    for _ in range(args.repeats):
        for name, then_unknown in runs:
            clf = make(name)
            t, c = time.perf_counter(), time.process_time()
            clf.fit(X, y)
            if then_unknown:
                clf.unknown_threshold()
            times[label(name, then_unknown)].append(time.perf_counter() - t)
            cpu[label(name, then_unknown)].append(time.process_time() - c)
    base = statistics.median(times["oracle"]) if "oracle" in times else None
    out = {"shape": list(X.shape), "repeats": args.repeats, "presets": {}}
    print(f"fit of {X.shape[0]} x {X.shape[1]} embeddings, median of {args.repeats}")
    for key in times:
        med, med_cpu = statistics.median(times[key]), statistics.median(cpu[key])
        ratio = med / base if base else float("nan")
        out["presets"][key] = {
            "median_s": med,
            "ratio_to_oracle": ratio,
            "all_s": times[key],
            "median_cpu_s": med_cpu,
            "all_cpu_s": cpu[key],
        }
        print(f"  {key:18s} {med:8.3f} s   {ratio:6.2f} x oracle   CPU {med_cpu:8.3f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


def make(spec: str) -> ic.ImprintClassifier:
    """A preset by name, with ``:key=value`` overrides (``adaptive:whiten_shrinkage=dof``)."""
    from imprint_core.bench import parse_grid

    name, _, extra = spec.partition(":")
    overrides = parse_grid(extra)[0].params if extra else {}
    return ic.ImprintClassifier.from_preset(name, **overrides)


def label(name: str, then_unknown: bool) -> str:
    return f"{name}+unknown" if then_unknown else name


if __name__ == "__main__":
    main()
