""" "None of these": AUROC of ``unknown_score`` for known vs unknown Fashion-MNIST classes.

Protocol (issue 10): per draw, 5 of the 10 classes are taught with ``--shots`` images each (drawn
from the bench's 500-per-class pool); the test images of all 10 classes are scored; AUROC of
"unknown" (the 5 untaught classes) against the score, and the rates at which ``is_unknown``
flags unknown (TPR) and known (FPR) images. Mean and 95 % interval over ``--draws`` draws, per
preset (``qi`` is the max-cosine baseline). Uses the bench's embedding cache (``imprint bench
--shots ...`` fills it).

    python benchmarks/bench_unknown.py --draws 10 --json benchmarks/results/unknown.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import imprint_core as ic
from imprint_core.bench.fewshot import interval95


def pool_and_test(test_per_class: int | None):
    from imprint_core.bench import default_cache_dir, embed_cached, subset_rows
    from imprint_core.bench.datasets import load_dataset

    out = []
    for split, per in (("train", 500), ("test", test_per_class)):
        ds = load_dataset("fashion-mnist", split)
        rows = subset_rows(ds.labels, per, 0)
        Z, _ = embed_cached(ds, rows, "efficientnet_lite0", default_cache_dir(), progress=False)
        out.append((Z, ds.labels[rows]))
    return out


def main() -> None:
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--shots", type=int, default=20)
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--presets", default=f"qi,ours,auto,{ic.DEFAULT_PRESET}")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    (Xp, yp), (Xt, yt) = pool_and_test(args.test_per_class)
    names = args.presets.split(",")
    rows: dict[str, dict[str, list[float]]] = {
        n: {"auroc": [], "tpr": [], "fpr": []} for n in names
    }
    for draw in range(args.draws):
        rng = np.random.default_rng([args.shots, draw])
        known = np.sort(rng.choice(10, 5, replace=False))
        teach = np.concatenate(
            [rng.choice(np.flatnonzero(yp == c), args.shots, replace=False) for c in known]
        )
        unknown = ~np.isin(yt, known)
        for name in names:
            clf = ic.ImprintClassifier.from_preset(name, seed=draw).fit(Xp[teach], yp[teach])
            score = clf.unknown_score(Xt)
            flagged = score > clf.unknown_threshold_
            rows[name]["auroc"].append(float(roc_auc_score(unknown, score)))
            rows[name]["tpr"].append(float(flagged[unknown].mean()))
            rows[name]["fpr"].append(float(flagged[~unknown].mean()))
    out = {"shots": args.shots, "draws": args.draws, "test_images": int(len(yt)), "presets": {}}
    print(f"teach 5 of 10 classes x {args.shots} images, {len(yt)} test images, {args.draws} draws")
    print(f"{'preset':10s} {'AUROC':>14s} {'TPR (unknown)':>15s} {'FPR (known)':>13s}")
    for name in names:
        stats = {k: interval95(v) for k, v in rows[name].items()}
        out["presets"][name] = {k: {"mean": m, "ci95": h} for k, (m, h) in stats.items()}
        cells = [f"{m:.3f} ± {h:.3f}" for m, h in stats.values()]
        print(f"{name:10s} {cells[0]:>14s} {cells[1]:>15s} {cells[2]:>13s}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
