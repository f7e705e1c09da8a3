""" "None of these": AUROC of unknown_score for look-alikes and other kinds of images, and the
share of known images flagged at every number of images, on Fashion-MNIST and on photo sets.

Protocol, per data set and draw: 5 of its classes are taught with ``shots`` images each (from
the 500-per-class training pool for Fashion-MNIST, from all photos for a photo set); the known
images are the others of those classes (Fashion-MNIST: its full test split), the "near"
unknowns the images of the set's other classes, the "far" unknowns up to 2,000 images of the other
data sets given (photos of another kind). AUROC of near and of far against the known images, for
``unknown_score`` and, on the same draws, the two scores it combines as they are used alone: the
max-cosine score (``unknown_score`` before the combination; the score of head files with class
means only) and the default head's own best class score (its whitened space). The share of
known images flagged by ``is_unknown`` (mean over the taught classes: the calibration weighs each
taught image alike) against the 5 % promised, beside the rule of head format 2 (with one image
per class: the largest held-out score, the distances in units of the held-out scores' spread;
the same from two images per class on) and the rule before the combined score (max cosine; 95 %
quantile of its held-out scores, the classes' separation with one image per class). Mean and
95 % interval over ``--draws`` draws.

    python benchmarks/bench_unknown.py --fashion-mnist \
        --embeddings clothing.npz hand-signs.npz --draws 20 \
        --json benchmarks/results/unknown.json

``--embeddings`` takes files written by ``imprint embed`` (one class per folder of photos).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import imprint_core as ic
from imprint_core import unknown
from imprint_core.bench.fewshot import interval95

FAR_MAX = 2000  # far unknowns per data set (a fixed random subset)
KNOWN = 5  # classes taught per draw


def fashion_mnist(test_per_class: int | None):
    """(pool X, pool y, known-test X, known-test y) of Fashion-MNIST, embedded and cached."""
    from imprint_core.bench import default_cache_dir, embed_cached, subset_rows
    from imprint_core.bench.datasets import load_dataset

    out = []
    for split, per in (("train", 500), ("test", test_per_class)):
        ds = load_dataset("fashion-mnist", split)
        rows = subset_rows(ds.labels, per, 0) if per else np.arange(len(ds.labels))
        Z, _ = embed_cached(ds, rows, "efficientnet_lite0", default_cache_dir(), progress=False)
        out += [Z, ds.labels[rows].astype(str)]
    return tuple(out)


def photo_set(path: str):
    """(all X, all y, None, None): taught photos are drawn from all, the rest is the test."""
    from imprint_core.embeddings_io import read_embeddings

    e = read_embeddings(path)
    if e.labels is None:
        raise SystemExit(f"{path}: the embeddings have no classes (embed a class-per-folder set)")
    return e.X, e.labels.astype(str), None, None


def previous_rule(X: np.ndarray, y_idx: np.ndarray, means: np.ndarray) -> float:
    """The threshold before the combined score: 95 % quantile of the max-cosine held-out scores,
    the median distance between class means with one image per class."""
    held = np.concatenate(
        [unknown.legacy_held_out(X[y_idx == c], c, means) for c in range(len(means))]
    )
    return unknown.legacy_threshold(held, means, unknown.UNKNOWN_QUANTILE)[0]


def format2_model(X: np.ndarray, y_idx: np.ndarray, n_classes: int) -> unknown.UnknownModel:
    """The model a head of format 2 had: with one image per class, the scale from the held-out
    scores alone and no pair spread (its threshold: the largest held-out score)."""
    from dataclasses import replace

    from imprint_core.unknown_held_out import fit_spaces, unit_rows

    model = unknown.fit_unknown(X, y_idx, n_classes)
    if int(model.dof[0]) > 0:
        return model
    _, held, _ = fit_spaces(unit_rows(np.asarray(X, dtype=np.float64)), y_idx, n_classes)
    scale = unknown._scale(held)
    calibration = np.sort(unknown.combine(held, scale)).astype(np.float32)
    zero = np.zeros(1, dtype=np.float32)
    return replace(model, scale=scale.astype(np.float32), calibration=calibration, pair_spread=zero)


def one_draw(data, far, shots: int, draw: int) -> dict[str, float]:
    """Every figure of one draw: AUROC near/far per score, flagged shares."""
    from sklearn.metrics import roc_auc_score

    X, y, Xt, yt = data
    rng = np.random.default_rng([shots, draw])
    known = np.sort(rng.choice(np.unique(y), KNOWN, replace=False))
    taught = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in known]
    )
    if Xt is None:  # a photo set: the photos not taught are the test
        rest = np.setdiff1d(np.arange(len(y)), taught)
        Xt, yt = X[rest], y[rest]
    is_known = np.isin(yt, known)
    Xs, ys = X[taught], y[taught]
    clf = ic.ImprintClassifier.from_preset("qi").fit(Xs, ys)
    default = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(Xs, ys)
    before = format2_model(Xs, np.searchsorted(known, ys), KNOWN)
    scores = {
        "unknown_score": clf.unknown_score,
        "format 2": lambda Q: unknown.unknown_score(Q, before),
        "max cosine": lambda Q: unknown.legacy_score(Q, clf.unknown_means_),
        "default head": lambda Q: -default.class_scores(Q).max(axis=1),
    }
    out: dict[str, float] = {}
    for name, score in scores.items():
        s = score(Xt)
        out[f"{name}/near"] = roc_auc_score(~is_known, s)
        if far is not None:
            sf = score(far)
            labels = np.r_[np.zeros(is_known.sum()), np.ones(len(sf))]
            out[f"{name}/far"] = roc_auc_score(labels, np.r_[s[is_known], sf])
    yk = yt[is_known]
    old = unknown.legacy_score(Xt, clf.unknown_means_) > previous_rule(
        Xs, np.searchsorted(known, ys), clf.unknown_means_
    )
    new = clf.is_unknown(Xt)
    format2 = (
        unknown.unknown_score(Xt, before) > unknown.threshold(before, unknown.UNKNOWN_QUANTILE)[0]
    )
    flags = (("flagged", new), ("format 2 flagged", format2), ("previous rule flagged", old))
    for name, flagged in flags:
        out[f"{name}/known"] = float(np.mean([flagged[is_known][yk == c].mean() for c in known]))
        out[f"{name}/near"] = float(flagged[~is_known].mean())
    if far is not None:
        out["flagged/far"] = float(clf.is_unknown(far).mean())
    return out


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted({k for r in runs for k in r})
    return {
        k: dict(zip(("mean", "ci95"), interval95([r[k] for r in runs if k in r]), strict=True))
        for k in keys
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fashion-mnist", action="store_true", help="the 5-of-10 protocol")
    p.add_argument("--embeddings", nargs="*", default=[], help="photo sets (imprint embed .npz)")
    p.add_argument("--shots", default="1,2,3,5,10,20")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--test-per-class", type=int, default=None, help="Fashion-MNIST test images")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    sets = {Path(f).stem: photo_set(f) for f in args.embeddings}
    if args.fashion_mnist:
        sets = {"fashion-mnist": fashion_mnist(args.test_per_class), **sets}
    if not sets:
        raise SystemExit("nothing to measure: give --fashion-mnist and/or --embeddings")
    rng = np.random.default_rng(0)
    photos = {k: v[0][rng.permutation(len(v[0]))[:FAR_MAX]] for k, v in sets.items()}
    shots = [int(s) for s in args.shots.split(",")]
    result = {"draws": args.draws, "known_classes": KNOWN, "quantile": unknown.UNKNOWN_QUANTILE}
    result["sets"] = {}
    for name, data in sets.items():
        others = [v for k, v in photos.items() if k != name and k != "fashion-mnist"]
        far = np.concatenate(others) if others else None
        result["sets"][name] = {
            str(n): summarise([one_draw(data, far, n, d) for d in range(args.draws)]) for n in shots
        }
        print_set(name, result["sets"][name])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def print_set(name: str, by_shots: dict[str, dict]) -> None:
    cell = lambda s, k, f=1: (  # noqa: E731
        f"{f * s[k]['mean']:.3f} ± {f * s[k]['ci95']:.3f}" if k in s else "-"
    )
    top = by_shots[max(by_shots, key=int)]
    print(f"\n{name}: AUROC at {max(by_shots, key=int)} images per class")
    print("| score | near | far |\n|---|---|---|")
    for score in ("unknown_score", "format 2", "max cosine", "default head"):
        print(f"| {score} | {cell(top, score + '/near')} | {cell(top, score + '/far')} |")
    print(f"\n{name}: known images flagged (%), unknown_score's AUROC near / far")
    print("| images per class | flagged | format 2 | previous rule | AUROC near | AUROC far |")
    print("|---|---|---|---|---|---|")
    for n, s in by_shots.items():
        row = [cell(s, "flagged/known", 100), cell(s, "format 2 flagged/known", 100)]
        row += [cell(s, "previous rule flagged/known", 100)]
        row += [cell(s, "unknown_score/near"), cell(s, "unknown_score/far")]
        print(f"| {n} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
