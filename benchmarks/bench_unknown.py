""" "None of these": AUROC of ``unknown_score`` for known vs unknown Fashion-MNIST classes.

Protocol (issue 10): per draw, 5 of the 10 classes are taught with ``--shots`` images each (drawn
from the bench's 500-per-class pool); the test images of all 10 classes are scored; AUROC of
"unknown" (the 5 untaught classes) against the score, and the rates at which ``is_unknown``
flags unknown (TPR) and known (FPR) images. Mean and 95 % interval over ``--draws`` draws.

Rows: ``unknown_score`` (the L2 class means stored in the head; the same for every preset, and
the max-cosine baseline of the issue) with its calibrated threshold, beside the previous rule
(nearest proxy in each head's own space, threshold = proxy separation) for ``--presets``, all on
the same draws. ``--all-subsets`` also averages the score's AUROC over all 252 choices of the 5
known classes (one image draw each), which removes the class-choice part of the spread.

    python benchmarks/bench_unknown.py --draws 10 --all-subsets \
        --json benchmarks/results/fashion-mnist-efficientnet_lite0-unknown.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

import imprint_core as ic
from imprint_core import unknown
from imprint_core.bench.fewshot import interval95


def pool_and_test(test_per_class: int | None):
    from imprint_core.bench import default_cache_dir, embed_cached, subset_rows
    from imprint_core.bench.datasets import load_dataset

    out = []
    for split, per in (("train", 500), ("test", test_per_class)):
        ds = load_dataset("fashion-mnist", split)
        rows = subset_rows(ds.labels, per, 0) if per else np.arange(len(ds.labels))
        Z, _ = embed_cached(ds, rows, "efficientnet_lite0", default_cache_dir(), progress=False)
        out.append((Z, ds.labels[rows]))
    return out


def previous_rule(clf, X: np.ndarray) -> tuple[np.ndarray, float]:
    """The rule before the class means were stored: nearest proxy in the head's own space."""
    Z = clf._validate_test(X)
    W = clf.proxies_.astype(Z.dtype)
    score = unknown.nearest_proxy_distance(Z, W, clf.distance, clf._mahalanobis())
    sep = unknown.proxy_separation(
        clf.proxies_.astype(np.float64), clf.proxy_class_index_, clf.distance
    )
    return score, sep


def teach(rng, yp, known, shots):
    return np.concatenate(
        [rng.choice(np.flatnonzero(yp == c), shots, replace=False) for c in known]
    )


def main() -> None:
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--shots", type=int, default=20)
    p.add_argument("--test-per-class", type=int, default=None, help="default: the full test set")
    p.add_argument("--presets", default=f"qi,ours,{ic.DEFAULT_PRESET}")
    p.add_argument("--all-subsets", action="store_true")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    (Xp, yp), (Xt, yt) = pool_and_test(args.test_per_class)
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name, auroc, flagged, unk):
        r = rows.setdefault(name, {"auroc": [], "tpr": [], "fpr": []})
        r["auroc"].append(float(auroc))
        r["tpr"].append(float(flagged[unk].mean()))
        r["fpr"].append(float(flagged[~unk].mean()))

    for draw in range(args.draws):
        rng = np.random.default_rng([args.shots, draw])
        known = np.sort(rng.choice(10, 5, replace=False))
        rows_taught = teach(rng, yp, known, args.shots)
        unk = ~np.isin(yt, known)
        for name in args.presets.split(","):
            clf = ic.ImprintClassifier.from_preset(name, seed=draw)
            clf.fit(Xp[rows_taught], yp[rows_taught])
            if name == args.presets.split(",")[0]:
                score = clf.unknown_score(Xt)
                add(
                    "unknown_score (any preset)", roc_auc_score(unk, score), clf.is_unknown(Xt), unk
                )
            old, sep = previous_rule(clf, Xt)
            add(f"previous rule, {name}", roc_auc_score(unk, old), old > sep, unk)
    out = {
        "shots": args.shots,
        "draws": args.draws,
        "test_images": int(len(yt)),
        "quantile": unknown.UNKNOWN_QUANTILE,
        "rows": {},
    }
    print(f"teach 5 of 10 classes x {args.shots} images, {len(yt)} test images, {args.draws} draws")
    print(f"{'score':34s} {'AUROC':>14s} {'TPR (unknown)':>15s} {'FPR (known)':>13s}")
    for name, r in rows.items():
        stats = {k: interval95(v) for k, v in r.items()}
        out["rows"][name] = {k: {"mean": m, "ci95": h} for k, (m, h) in stats.items()}
        cells = [f"{m:.3f} ± {h:.3f}" for m, h in stats.values()]
        print(f"{name:34s} {cells[0]:>14s} {cells[1]:>15s} {cells[2]:>13s}")
    if args.all_subsets:
        aurocs = []
        for i, known in enumerate(itertools.combinations(range(10), 5)):
            rng = np.random.default_rng([args.shots, 1000 + i])
            taught = teach(rng, yp, known, args.shots)
            clf = ic.ImprintClassifier.from_preset("qi").fit(Xp[taught], yp[taught])
            aurocs.append(roc_auc_score(~np.isin(yt, known), clf.unknown_score(Xt)))
        m, h = interval95(aurocs)
        out["all_subsets"] = {"subsets": len(aurocs), "auroc": {"mean": m, "ci95": h}}
        out["all_subsets"]["min"], out["all_subsets"]["max"] = min(aurocs), max(aurocs)
        print(
            f"all {len(aurocs)} choices of 5 known classes: AUROC {m:.3f} ± {h:.3f} "
            f"(from {min(aurocs):.3f} to {max(aurocs):.3f})"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
