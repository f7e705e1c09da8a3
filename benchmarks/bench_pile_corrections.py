"""Sort a pile, correct the least-sure images (issue 19 §2): how many corrections from the
"least sure" list does it take to reach the accuracy of 20 random images per class, against the
same number of random additions?

Input: embeddings written by ``imprint embed`` (a folder with one sub-folder per class), e.g. the
clothing photos of alexeygrigorev/clothing-dataset-small (CC0) and the hand signs of
ardamavi/Sign-Language-Digits-Dataset (Apache-2.0), both embedded with the built-in backbone.

Protocol, per draw (``--draws``, seeds 0..draws-1): a stratified ``--test-fraction`` of the images
is held out; the rest is the pile. The head (``--preset``, the app's default) starts from 2
random pile images per class. A click adds one pile image with its true class and imprints
again, as the app's "Add to <class>" does:

- least sure: the first image of the current head's least-sure list over the pile's untaught
  images (``least_sure_order``: "none of these" first, then the smallest margin between the two
  best classes), the same ordering the Sort images tab shows;
- random: a random untaught pile image.

Both start from the same 2 images per class and see the same held-out images. The baseline is
20 random pile images per class (the draw's own). Accuracy on the held-out images after 0, 5,
10, ... clicks, mean and 95 % interval over the draws. Also timed: re-sorting a pile of 2,000
kept embeddings under a re-imprinted head (``score_embeddings``, what the tab does after every
imprint) against embedding images again with the backbone (per image, times 2,000), medians.

    python benchmarks/bench_pile_corrections.py EMB.npz [EMB.npz ...] --draws 10 \
        --json benchmarks/results/pile-corrections.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import imprint_core as ic  # noqa: E402
from imprint_core.bench.fewshot import interval95  # noqa: E402
from imprint_core.embeddings_io import read_embeddings  # noqa: E402
from imprint_core.prediction_rows import least_sure_order, score_embeddings  # noqa: E402
from imprint_core.threads import one_thread  # noqa: E402


def machine() -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        "unknown",
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()]}


def split(y: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(pile, test) indices, stratified."""
    pile, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * len(members)))
        test += list(members[:k])
        pile += list(members[k:])
    return np.array(pile), np.array(test)


def per_class(y: np.ndarray, rows: np.ndarray, k: int, rng) -> list[int]:
    return [int(i) for c in np.unique(y) for i in rng.choice(rows[y[rows] == c], k, replace=False)]


def fit(preset: str, X, y, taught: list[int]):
    return ic.ImprintClassifier.from_preset(preset).fit(X[taught], y[taught])


def curve(X, y, pile, test, start, clicks, checkpoints, preset, strategy, rng) -> list[float]:
    """Held-out accuracy at every checkpoint of ``clicks`` additions by ``strategy``."""
    taught = list(start)
    out = []
    for step in range(clicks + 1):
        clf = fit(preset, X, y, taught)
        if step in checkpoints:
            out.append(float(np.mean(clf.predict(X[test]) == y[test])))
        if step == clicks:
            break
        left = np.setdiff1d(pile, taught)
        if strategy == "least sure":
            s = score_embeddings(clf, X[left])
            margin = s["top_probability"][:, 0] - s["top_probability"][:, 1]
            taught.append(int(left[least_sure_order(margin, s["unknown"])[0]]))
        else:
            taught.append(int(rng.choice(left)))
    return out


def run_set(path: str, args) -> dict:
    emb = read_embeddings(path)
    X, y = np.asarray(emb.X, dtype=np.float32), np.asarray(emb.labels)
    classes = np.unique(y)
    clicks = (args.baseline_per_class - 2) * len(classes)
    checkpoints = sorted({*range(0, clicks + 1, args.every), clicks})
    rows = {"least sure": [], "random": []}
    baseline = []
    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        pile, test = split(y, args.test_fraction, rng)
        start = per_class(y, pile, 2, rng)
        for strategy in rows:
            rows[strategy].append(
                curve(X, y, pile, test, start, clicks, set(checkpoints), args.preset, strategy, rng)
            )
        clf = fit(args.preset, X, y, per_class(y, pile, args.baseline_per_class, rng))
        baseline.append(float(np.mean(clf.predict(X[test]) == y[test])))
        print(f"  {Path(path).stem} draw {draw}: done", flush=True)
    base_mean, base_hw = interval95(baseline)
    result = {
        "images": len(y),
        "classes": len(classes),
        "clicks": checkpoints,
        "baseline": {"per_class": args.baseline_per_class, "mean": base_mean, "ci95": base_hw},
        "curves": {},
    }
    for strategy, curves in rows.items():
        A = np.array(curves)
        stats = [interval95(A[:, j]) for j in range(A.shape[1])]
        reached = [
            next((c for c, a in zip(checkpoints, run, strict=True) if a >= base_mean), None)
            for run in curves
        ]
        result["curves"][strategy] = {
            "mean": [m for m, _ in stats],
            "ci95": [h for _, h in stats],
            "clicks_to_baseline": reached,
        }
    return result


def timing(path: str, preset: str, repeats: int) -> dict:
    """Re-sorting 2,000 kept embeddings vs embedding images again (per image x 2,000)."""
    from imprint_core.config import assets_dir

    emb = read_embeddings(path)
    X, y = np.asarray(emb.X, dtype=np.float32), np.asarray(emb.labels)
    rng = np.random.default_rng(0)
    pile = X[rng.choice(len(X), min(2000, len(X)), replace=False)]
    clf = fit(preset, X, y, per_class(y, np.arange(len(y)), 4, rng))
    rescore = []
    for _ in range(repeats):
        with one_thread():
            start = time.perf_counter()
            score_embeddings(clf, pile)
            rescore.append(time.perf_counter() - start)
    files = sorted((assets_dir() / "examples" / "fashion3" / "train").glob("*/*.png"))[:64]
    bb = ic.get_backbone()
    bb.embed(files[:8], cache=False)  # warm
    embed = []
    for _ in range(repeats):
        start = time.perf_counter()
        bb.embed(files, cache=False)
        embed.append((time.perf_counter() - start) / len(files))
    per_image = float(np.median(embed))
    return {
        "pile": len(pile),
        "rescore_s_median": float(np.median(rescore)),
        "embed_s_per_image_median": per_image,
        "embed_pile_s_estimate": per_image * len(pile),
        "ratio": per_image * len(pile) / float(np.median(rescore)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("embeddings", nargs="+", help="npz files written by imprint embed")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--preset", default=ic.DEFAULT_PRESET)
    ap.add_argument("--baseline-per-class", type=int, default=20)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--every", type=int, default=10, help="clicks between accuracy readings")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/pile-corrections.json"))
    args = ap.parse_args()
    # the sets by their names only: no machine paths in the results
    out: dict = {"before": machine(), "args": {**vars(args), "embeddings": None, "json": None}}
    out["sets"] = {}
    with one_thread():  # small fits, one after another: BLAS threads only spin on a busy CPU
        for path in args.embeddings:
            out["sets"][Path(path).stem] = run_set(path, args)
    out["timing"] = timing(args.embeddings[0], args.preset, args.repeats)
    out["after"] = machine()
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    for name, r in out["sets"].items():
        b = r["baseline"]
        print(f"\n{name}: {r['images']} images, {r['classes']} classes")
        print(f"  20 random per class: {b['mean']:.3f} +- {b['ci95']:.3f}")
        print("  clicks  " + "  ".join(f"{c:>13}" for c in r["clicks"]))
        for strategy, c in r["curves"].items():
            cells = "  ".join(
                f"{m:.3f}+-{h:.3f}" for m, h in zip(c["mean"], c["ci95"], strict=True)
            )
            print(f"  {strategy:>10}  {cells}")
            print(f"  {'':>10}  clicks to the baseline per draw: {c['clicks_to_baseline']}")
    t = out["timing"]
    print(
        f"\nre-sort {t['pile']} embeddings: {t['rescore_s_median'] * 1000:.0f} ms (median); "
        f"embedding them again: ~{t['embed_pile_s_estimate']:.0f} s "
        f"({t['ratio']:.0f}x); load {out['before']['load']} -> {out['after']['load']}"
    )


if __name__ == "__main__":
    main()
