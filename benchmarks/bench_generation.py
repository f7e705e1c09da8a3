"""GEN time: IMPRINT's k-means beside scikit-learn's KMeans on the same embeddings, same run.

    python benchmarks/bench_generation.py [--repeats 5] [--n-per-class 6000] [--dim 1280]

Data: 10 classes of realistic clustered embeddings (60,000 x 1,280 float32 by default), made
with a fixed seed: each class is a mixture of 4-12 modes, each mode an anisotropic Gaussian
(a random rank-24 factor with decaying scales plus isotropic noise) around a class centre,
passed through a ReLU like pooled CNN features. Not uniform noise.

Per repeat r (seed r) and class, ``imprint_core.kmeans.kmeans`` (k=20) and
``sklearn.cluster.KMeans(n_clusters=20, init="k-means++", n_init=1, tol=1e-4, random_state=r)``
run back to back on the same class (which one goes first alternates), so load from other
processes hits both alike. We report, over the repeats, the median GEN time of the whole task
(sum over classes), the median of the per-repeat speed ratios, and per class the inertia ratio
ours / sklearn (median over the seeds: single k-means++ runs land in different local optima).
Then, if ``imprint_core.classifier`` is importable, ``ImprintClassifier(...).fit(X, y)`` with
gen = mean, kmeans (k=20) and ls on the whole task (no normalisation). Results go to
benchmarks/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_embeddings(n_per_class: int, dim: int, n_classes: int = 10, seed: int = 0):
    """Clustered, non-negative float32 embeddings (post-ReLU-like) and their labels."""
    rng = np.random.default_rng(seed)
    X = np.empty((n_per_class * n_classes, dim), np.float32)
    base = rng.gamma(1.0, 0.5, size=dim).astype(np.float32)  # shared positive activation profile
    rank = min(24, dim)
    for c in range(n_classes):
        class_centre = base + rng.normal(0, 0.6, dim).astype(np.float32)
        n_modes = int(rng.integers(4, 13))
        counts = rng.multinomial(n_per_class, rng.dirichlet(np.full(n_modes, 2.0)))
        parts = []
        for m in range(n_modes):
            mode_centre = class_centre + rng.normal(0, 0.35, dim).astype(np.float32)
            scales = 0.5 / np.sqrt(np.arange(1, rank + 1))
            factor = (rng.normal(0, 1, (rank, dim)) * scales[:, None]).astype(np.float32)
            z = rng.standard_normal((counts[m], rank), dtype=np.float32)
            noise = rng.standard_normal((counts[m], dim), dtype=np.float32) * 0.25
            parts.append(mode_centre + z @ factor + noise)
        block = np.maximum(np.concatenate(parts), 0)
        X[c * n_per_class : (c + 1) * n_per_class] = block[rng.permutation(n_per_class)]
    return X, np.repeat(np.arange(n_classes), n_per_class)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_kmeans(X, y, k: int, repeats: int) -> dict:
    """Our k-means and sklearn's per class, interleaved; raw times and inertias per repeat."""
    from sklearn.cluster import KMeans

    from imprint_core.kmeans import kmeans

    classes = np.unique(y)
    blocks = [np.ascontiguousarray(X[y == c]) for c in classes]

    def ours(Xc, seed):
        r = kmeans(Xc, k, seed=seed, tol=1e-4)
        return r.inertia, r.n_iter

    def sk(Xc, seed):
        km = KMeans(n_clusters=k, init="k-means++", n_init=1, tol=1e-4, random_state=seed)
        km.fit(Xc)
        return float(km.inertia_), int(km.n_iter_)

    ours(blocks[0][:500], 0), sk(blocks[0][:500], 0)  # warm up imports and thread pools
    runs = []
    for rep in range(repeats):
        order = [("ours", ours), ("sklearn", sk)]
        if rep % 2:
            order.reverse()
        per = {name: {"time": [], "inertia": [], "n_iter": []} for name, _ in order}
        for Xc in blocks:
            for name, fn in order:
                dt, (inertia, n_iter) = _timed(lambda fn=fn, Xc=Xc, s=rep: fn(Xc, s))
                per[name]["time"].append(dt)
                per[name]["inertia"].append(inertia)
                per[name]["n_iter"].append(n_iter)
        runs.append({"seed": rep, **per})
        t_o, t_s = sum(per["ours"]["time"]), sum(per["sklearn"]["time"])
        print(f"  repeat {rep}: ours {t_o:.3f} s, sklearn {t_s:.3f} s, ratio {t_s / t_o:.2f}")
    return {"classes": [int(c) for c in classes], "runs": runs}


def summarise_kmeans(res: dict) -> dict:
    runs = res["runs"]
    tot = {m: [sum(r[m]["time"]) for r in runs] for m in ("ours", "sklearn")}
    per_class = []
    for i, c in enumerate(res["classes"]):
        io = [r["ours"]["inertia"][i] for r in runs]
        isk = [r["sklearn"]["inertia"][i] for r in runs]
        per_class.append(
            {
                "class": c,
                "ours_s": statistics.median(r["ours"]["time"][i] for r in runs),
                "sklearn_s": statistics.median(r["sklearn"]["time"][i] for r in runs),
                "ours_iters": statistics.median(r["ours"]["n_iter"][i] for r in runs),
                "sklearn_iters": statistics.median(r["sklearn"]["n_iter"][i] for r in runs),
                "inertia_ratio": statistics.median(io) / statistics.median(isk),
                "inertia_ratio_per_seed": [a / b for a, b in zip(io, isk, strict=True)],
            }
        )
    ratios = [p["inertia_ratio"] for p in per_class]
    seeds = [x for p in per_class for x in p["inertia_ratio_per_seed"]]
    pooled = sum(sum(r["ours"]["inertia"]) for r in runs) / sum(
        sum(r["sklearn"]["inertia"]) for r in runs
    )
    return {
        "ours_total_s_median": statistics.median(tot["ours"]),
        "sklearn_total_s_median": statistics.median(tot["sklearn"]),
        "speed_ratio_of_medians": statistics.median(tot["sklearn"])
        / statistics.median(tot["ours"]),
        "speed_ratio_median_per_repeat": statistics.median(
            s / o for s, o in zip(tot["sklearn"], tot["ours"], strict=True)
        ),
        "ours_total_s": tot["ours"],
        "sklearn_total_s": tot["sklearn"],
        "inertia_ratio_max": max(ratios),
        "inertia_ratio_min": min(ratios),
        "inertia_ratio_mean": float(np.mean(ratios)),
        "inertia_ratio_pooled": pooled,  # total inertia over all classes and seeds
        "inertia_ratio_single_runs": [min(seeds), max(seeds)],
        "single_runs_within_1pct": float(np.mean(np.abs(np.array(seeds) - 1) <= 0.01)),
        "per_class": per_class,
    }


def bench_classifier(X, y, repeats: int) -> dict:
    """ImprintClassifier.fit on the whole task, GEN variants round-robin; seconds per repeat."""
    try:
        from imprint_core.classifier import ImprintClassifier
    except ImportError:
        print("skipped: classifier not available")
        return {"skipped": "classifier not available"}
    variants = {"mean": {"gen": "mean", "k": 1}, "kmeans k=20": {"gen": "kmeans", "k": 20}}
    variants["ls"] = {"gen": "ls", "k": 1}
    try:  # the reference path through the classifier, when it offers the switch
        ImprintClassifier(gen="kmeans", kmeans_impl="sklearn")
        variants["kmeans k=20 (sklearn impl)"] = {
            "gen": "kmeans",
            "k": 20,
            "kmeans_impl": "sklearn",
        }
    except TypeError:
        pass
    norms = {"norm_pre": "none", "norm_post": "none", "norm_inf": "none"}

    def fit(kw):
        return ImprintClassifier(**kw, **norms).fit(X, y)

    for kw in variants.values():  # warm-up on a slice
        ImprintClassifier(**kw, **norms).fit(X[::50], y[::50])
    times = {name: [] for name in variants}
    for rep in range(repeats):
        for name, kw in variants.items():
            dt, _ = _timed(lambda kw=kw, s=rep: fit({**kw, "seed": s}))
            times[name].append(dt)
        print("  repeat", rep, ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()))
    return {name: {"median_s": statistics.median(t), "runs_s": t} for name, t in times.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-per-class", type=int, default=6000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--no-classifier", action="store_true", help="skip ImprintClassifier.fit")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generation.json"))
    args = ap.parse_args(argv)

    import sklearn
    import torch

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    X, y = make_embeddings(args.n_per_class, args.dim, args.classes, seed=0)
    print(f"data: {X.shape} float32 in {args.classes} classes ({time.perf_counter() - t0:.1f} s)")
    print(f"k-means k={args.k}, {args.repeats} repeats (seeds 0..{args.repeats - 1}):")
    raw = bench_kmeans(X, y, args.k, args.repeats)
    summary = summarise_kmeans(raw)
    clf = {"skipped": "--no-classifier"}
    if not args.no_classifier:
        print("ImprintClassifier.fit (norm none/none/none):")
        clf = bench_classifier(X, y, args.repeats)
    report = {
        "config": vars(args) | {"out": Path(args.out).name, "shape": list(X.shape)},
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": load0,
            "loadavg_end": os.getloadavg(),
        },
        "kmeans": summary,
        "kmeans_raw": raw,
        "classifier_fit": clf,
    }
    _print_table(summary, clf)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return report


def _print_table(s: dict, clf: dict) -> None:
    print("\nper class (medians over repeats)")
    print(f"{'class':>5} {'ours s':>8} {'sklearn s':>9} {'ratio':>6} {'iters':>11} {'inertia':>8}")
    for p in s["per_class"]:
        ratio = p["sklearn_s"] / p["ours_s"]
        iters = f"{p['ours_iters']:g}/{p['sklearn_iters']:g}"
        print(
            f"{p['class']:>5} {p['ours_s']:>8.3f} {p['sklearn_s']:>9.3f} {ratio:>6.2f} "
            f"{iters:>11} {p['inertia_ratio']:>8.4f}"
        )
    print(
        f"\nwhole task: ours {s['ours_total_s_median']:.3f} s, sklearn "
        f"{s['sklearn_total_s_median']:.3f} s (medians); speed ratio "
        f"{s['speed_ratio_of_medians']:.2f}x (median per-repeat ratio "
        f"{s['speed_ratio_median_per_repeat']:.2f}x); inertia ours/sklearn per class "
        f"{s['inertia_ratio_min']:.4f}..{s['inertia_ratio_max']:.4f} "
        f"(mean {s['inertia_ratio_mean']:.4f}); all classes and seeds pooled "
        f"{s['inertia_ratio_pooled']:.4f}; single runs {s['inertia_ratio_single_runs'][0]:.3f}.."
        f"{s['inertia_ratio_single_runs'][1]:.3f} ({100 * s['single_runs_within_1pct']:.0f} % "
        "within 1 %)"
    )
    if "skipped" in clf:
        return
    print("\nImprintClassifier.fit, whole task (median s):")
    for name, v in clf.items():
        print(f"  {name:<28} {v['median_s']:.3f}")


if __name__ == "__main__":
    main()
