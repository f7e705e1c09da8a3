"""Does less centring make the default preset better at one or two images per class?

    python benchmarks/bench_oneshot_centring.py [--shots 1,2] [--draws 30] [--test-per-class 200]

At one image per class the default preset (`adaptive`: within-class whitening with shrinkage
d / (d + n - C)) has no within-class scatter, its shrinkage is 1, and it reduces to centring on
the support mean + L2. This script scores, on the same draws (the few-shot protocol's
``draw_support``) and the bench's cached Fashion-MNIST embeddings, the five paper presets and
`adaptive` with the centre multiplied by a weight w (the whitening matrix unchanged):

- ``w1``: today's `adaptive` (w = 1), ``w0``: no centring (= `qi` at one shot),
- ``wJS``: the positive-part James-Stein weight of the support mean, 1 - tr(S) / (N ||m||^2),
- ``wC``: 1 - 1/C (less centring with few classes), ``wdofc``: (n - C) / n (none without
  within-class degrees of freedom),
- ``wpool``: centred on the mean of the whole 500-per-class pool of the task (not available to a
  real head: it shows what a precise centre would give).

Writes per-draw accuracies to --out (JSON) and prints, per task and shots, each variant's mean and
its paired difference to the best paper preset (95 % Student-t interval over draws).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

PAPER = ("qi", "hosoda", "janson", "ours", "oracle")
VARIANTS = ("w1", "w0", "wJS", "wC", "wdofc", "wpool")


def _head_accuracy(Us, ys, Ut, yt, n_classes):
    from imprint_core.normalisation import l2

    P = np.stack([Us[ys == c].mean(0) for c in range(n_classes)])
    return float(((l2(Ut) @ l2(P).T).argmax(1) == yt).mean())


def score_draw(Xs, ys, Xte, yte, pool_mean, draw):
    """Accuracy of the paper presets and of every centring weight on one support draw."""
    import imprint_core as ic
    from imprint_core.normalisation import fit_whitener, l2

    rec = {}
    for p in PAPER:
        clf = ic.ImprintClassifier.from_preset(p, seed=draw).fit(Xs, ys)
        rec[p] = float((clf.predict(Xte) == yte).mean())
    n_classes = int(ys.max()) + 1
    M = fit_whitener(Xs, ys, "dof").matrix
    U = l2(Xs.astype(np.float64))
    m, n = U.mean(0), len(U)
    UM, UtM, mM = U @ M, l2(Xte.astype(np.float64)) @ M, m @ M
    spread = ((U - m) ** 2).sum() / max(n - 1, 1)
    weights = {
        "w1": 1.0,
        "w0": 0.0,
        "wJS": max(0.0, 1 - spread / (n * float(m @ m))),
        "wC": 1 - 1 / n_classes,
        "wdofc": (n - n_classes) / n,
    }
    for name, w in weights.items():
        rec[name] = _head_accuracy(l2(UM - w * mM), ys, l2(UtM - w * mM), yte, n_classes)
    pM = pool_mean @ M
    rec["wpool"] = _head_accuracy(l2(UM - pM), ys, l2(UtM - pM), yte, n_classes)
    rec["wJS_value"] = weights["wJS"]
    return rec


def main() -> None:
    from scipy.stats import t

    from imprint_core.bench.datasets import load_dataset
    from imprint_core.bench.fewshot import draw_support
    from imprint_core.bench.protocol import default_cache_dir, embed_cached, subset_rows
    from imprint_core.bench.tasks import get_task
    from imprint_core.normalisation import l2

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shots", default="1,2")
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--tasks", default="all,even,odd,short,merged")
    ap.add_argument("--pool-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument(
        "--out", default="benchmarks/results/fashion-mnist-efficientnet_lite0-fewshot-centring.json"
    )
    args = ap.parse_args()
    data = {}
    for split, per in (("train", args.pool_per_class), ("test", args.test_per_class)):
        ds = load_dataset("fashion-mnist", split)
        rows = subset_rows(ds.labels, per, 0)
        Z, _ = embed_cached(ds, rows, "efficientnet_lite0", default_cache_dir(), 64, False)
        data[split] = (Z, ds.labels[rows], ds.class_names)
    runs = []
    for name in args.tasks.split(","):
        task = get_task(name, "fashion-mnist", 10, data["train"][2])
        prow, py = task.select(data["train"][1])
        trow, ty = task.select(data["test"][1])
        Xpool, Xte = data["train"][0][prow], data["test"][0][trow]
        pool_mean = l2(Xpool.astype(np.float64)).mean(0)
        for shots in (int(s) for s in args.shots.split(",")):
            rs = []
            for draw in range(args.draws):
                pick = draw_support(py, shots, draw)
                rec = score_draw(Xpool[pick], py[pick], Xte, ty, pool_mean, draw)
                rs.append({"task": name, "shots": shots, "draw": draw, **rec})
            runs += rs
            means = {p: np.mean([r[p] for r in rs]) for p in PAPER}
            best = max(means, key=means.get)
            line = f"{name:7s} {shots:2d} best paper {best} {100 * means[best]:.1f} |"
            for v in VARIANTS:
                d = np.array([r[v] - r[best] for r in rs])
                half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                line += f" {v} {100 * np.mean([r[v] for r in rs]):.1f}"
                line += f" ({100 * d.mean():+.2f} +/- {100 * half:.2f})"
            print(line, flush=True)
    with open(args.out, "w") as fh:
        json.dump({"settings": vars(args), "runs": runs}, fh, indent=0)


if __name__ == "__main__":
    main()
