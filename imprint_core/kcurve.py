"""Accuracy versus k on the user's own embeddings: the paper's Figure 6, cross-validated.

For every GEN method and k, an ImprintClassifier (NORM l2/l2/l2 by default, max aggregation with
the inner product, as in the paper's Fig. 6 config; or a head's own settings) is scored by
cross-validation, beside the class mean (preset "qi"), the least-squares oracle (preset "oracle")
and gen "auto" (k chosen per class inside every fold). Small projects are scored by leave-one-out,
larger ones by stratified k-fold with at most as many folds as the smallest class has images; the
result says which. The Geometry tab's advice (modes.advise_proxies) is the k-means line of this
curve, with the same settings, ks, folds and seed, read by modes.one_se_choice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .evaluation import evaluate
from .normalisation import reusing_whitening
from .presets import preset
from .threads import one_thread

# Heavy: torch, scikit-learn and classifier (scikit-learn) imported where used, so that importing
# this module stays cheap.

LOO_MAX = 30  # leave-one-out up to this many images
# Up to this many images every fit runs on one BLAS/OpenMP/torch thread: on a busy 2-core machine
# worker threads spin on these tiny problems (the merged example's advice: 31.9 s with the default
# threads, 4.3 s with one, identical results; load average about 6).
ONE_THREAD_MAX = 2000
N_FOLDS = 5
MIN_PER_CLASS = 2
REFERENCES = {"mean": "qi", "ls": "oracle"}  # curve reference -> preset

# The curve's configuration; modes.advise_proxies reads the curve under the same settings.
ADVICE_MAX_K = 20  # the largest k of the accuracy-vs-k curve and of the app's k-means presets
ADVICE_GEN = "kmeans"  # the curve line the advice reads, and the gen "Apply" sets
_NOT_KEPT = ("gen", "k", "lambda_reg", "kmeans_impl")  # set per point of the curve, or irrelevant


NORMS = {"l2": "l2", "none": "none"}  # value of norm_pre / norm_post / norm_inf


def base_settings(norm: str = "l2", seed: int = 0) -> dict[str, Any]:
    """The paper's Fig. 6 configuration (gen and k are set per point of the curve)."""
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}; allowed: {', '.join(NORMS)}.")
    return {
        "norm_pre": NORMS[norm],
        "gen": "kmeans",
        "k": 1,
        "norm_post": NORMS[norm],
        "norm_inf": NORMS[norm],
        "agg": "max",
        "distance": "inner_product",
        "seed": seed,
    }


def advice_settings(settings: Mapping[str, Any] | None = None, max_k: int = ADVICE_MAX_K) -> dict:
    """The settings the curve and the advice vary k under: the head's own, with k-means proxies.

    settings: the head's settings (ImprintClassifier keyword arguments) or None for the paper's
    Fig. 6 configuration (L2 / k-means / L2 / L2 / max). Its NORM (whitening and its shrinkage
    included), AGG, distance and seed options are kept; gen becomes "kmeans" and k, the largest
    k the curve tries, max_k.
    """
    from .classifier import ImprintClassifier

    known = ImprintClassifier().get_params()
    base = base_settings() if settings is None else dict(settings)
    unknown = sorted(set(base) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown classifier setting(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join(sorted(known))}."
        )
    if isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or max_k < 1:
        raise ValueError(f"max_k must be a whole number >= 1; got {max_k!r}.")
    keep = {k: v for k, v in base.items() if k not in _NOT_KEPT}
    return {**keep, "gen": ADVICE_GEN, "k": int(max_k)}


def _threads(n: int):
    """One thread for small problems (see ONE_THREAD_MAX), the libraries' default otherwise."""
    from contextlib import nullcontext

    if n > ONE_THREAD_MAX:
        return nullcontext()
    import torch  # noqa: F401  (loaded first, so that its OpenMP pool is limited too)

    return one_thread()


def _settings(base: dict[str, Any], gen: str, k: int) -> dict[str, Any]:
    return {**base, "gen": gen, "k": int(k)}


def _splits(y_idx: np.ndarray, cv: int | str | None, seed: int) -> tuple[str, list, str]:
    """(scheme name, list of (train, test) index pairs or [] for LOO, sentence)."""
    n = len(y_idx)
    smallest = int(np.bincount(y_idx).min())
    if cv == "loo" or (cv is None and n <= LOO_MAX):
        return (
            "leave-one-out",
            [],
            f"Leave-one-out over {n} images: each image was classified by a head imprinted from "
            "all the others.",
        )
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2):
        raise ValueError(f"cv must be None, 'loo' or a number of folds >= 2; got {cv!r}.")
    asked = N_FOLDS if cv is None else int(cv)
    folds = min(asked, smallest)
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y_idx, y_idx))
    capped = (
        f" (capped from {asked} by the smallest class, {smallest} images)" if folds < asked else ""
    )
    return (
        f"stratified {folds}-fold",
        splits,
        f"Stratified {folds}-fold cross-validation{capped}: each fold was classified by a head "
        "imprinted from the other folds.",
    )


def _score(X, y_idx, settings, scheme, splits) -> list[float]:
    """Accuracy per fold (LOO: one 0/1 outcome per image, via the exact fast LOO)."""
    from .classifier import ImprintClassifier

    if scheme == "leave-one-out":
        ev = evaluate(X, y_idx, settings, scheme="leave-one-out")
        return (ev.predictions == y_idx).astype(float).tolist()
    out = []
    for train, test in splits:
        clf = ImprintClassifier(**settings).fit(X[train], y_idx[train])
        out.append(float(np.mean(clf.predict(X[test]) == y_idx[test])))
    return out


def _summary(scores: list[float], scheme: str) -> tuple[float, float]:
    a = np.asarray(scores, dtype=float)
    if scheme == "leave-one-out":  # binomial standard error of the LOO accuracy
        p = float(a.mean())
        return p, float(np.sqrt(p * (1 - p) / len(a)))
    return float(a.mean()), float(a.std())


def _run(jobs, X, y_idx, scheme, splits, progress, result) -> None:
    """Score every ``(gen, k, settings)`` job into ``result``."""
    for j, (gen, k, config) in enumerate(jobs, start=1):
        # the thread limit is process-wide and locked: held per job, not while ``progress``
        # runs (a caller may wait there for other work that needs the limit too)
        with _threads(len(X)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            scores = _score(X, y_idx, config, scheme, splits)
        mean, std = _summary(scores, scheme)
        if k is None:
            ref = {"mean": mean, "std": std}
            ref.update({"settings": config} if gen == "auto" else {"preset": REFERENCES[gen]})
            result["references"][gen] = ref
        else:
            entry = result["gens"].setdefault(gen, {"mean": [], "std": [], "folds": []})
            entry["mean"].append(mean)
            entry["std"].append(std)
            entry["folds"].append(scores)
        if progress is not None:
            progress(j / len(jobs), f"{gen}" + (f", k={k}" if k else ""))


def accuracy_vs_k(
    X: Any,
    y: Any,
    ks: Sequence[int] = (1, 2, 3, 5, 10, 20),
    gens: Sequence[str] = ("kmeans", "kmedoids", "random", "fps"),
    cv: int | str | None = None,
    seed: int | None = None,
    norm: str = "l2",
    progress: Callable[[float, str], None] | None = None,
    *,
    settings: dict[str, Any] | None = None,
    auto: bool = True,
    references: bool = True,
) -> dict[str, Any]:
    """Cross-validated accuracy of each (GEN, k), plus the mean and least-squares references.

    cv: None (leave-one-out up to 30 images, else stratified 5-fold capped by the smallest
    class), "loo", or a number of folds. norm: "l2" (the paper's Fig. 6) or "none" for
    NORMpre/post/inf. settings: a head's settings to vary instead (its NORM, AGG and distance
    options are kept; gen and k vary; `norm` is then ignored). auto: also score gen="auto" with
    k up to max(ks), the per-class choice that modes.advise_proxies reports as advice, on the
    same folds. references: also score the mean and least-squares presets. seed: of the folds and
    of k-means (None: the settings' seed, else 0). progress(fraction, message) is called after
    each configuration.

    Returns {"ks", "gens": {gen: {"mean", "std", "folds"}}, "references": {"mean"|"ls"|"auto":
    {"mean", "std", "preset" | "settings"}}, "cv", "n_splits", "cv_description", "error_kind",
    "norm", "n_samples", "min_class_size", "notes"}; accuracies are fractions in [0, 1].
    """
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}; allowed: {', '.join(NORMS)}.")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"accuracy_vs_k needs embeddings (n, d) and n labels; got {X.shape}, {y.shape}."
        )
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive numbers of proxies; got {ks}.")
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError("accuracy_vs_k needs at least two classes.")
    small = [str(c) for c, n in zip(classes, counts, strict=True) if n < MIN_PER_CLASS]
    if small:
        raise ValueError(
            f"Class(es) {', '.join(repr(s) for s in small)} have fewer than {MIN_PER_CLASS} "
            "images: an image can only be held out if its class keeps another one."
        )
    if seed is None:
        seed = int((settings or {}).get("seed", 0) or 0)
    if settings is None:
        base = base_settings(norm, seed)
    else:
        base = {**advice_settings(settings), "seed": seed}
    scheme, splits, sentence = _splits(y_idx, cv, seed)

    jobs = [(g, k, _settings(base, g, k)) for g in gens for k in ks]
    if references:
        jobs += [(r, None, {**preset(p), "seed": seed}) for r, p in REFERENCES.items()]
    if auto:
        jobs.append(("auto", None, _settings(base, "auto", max(ks))))
    result: dict[str, Any] = {"ks": ks, "gens": {}, "references": {}}
    with reusing_whitening():  # a fold's whitening is the same for every gen and k
        _run(jobs, X, y_idx, scheme, splits, progress, result)
    train_min = int(counts.min()) - (1 if scheme == "leave-one-out" else 0)
    notes = []
    if max(ks) > train_min:
        notes.append(
            f"For k above about {train_min}, the smallest class has fewer training images than "
            "k and keeps all of them as proxies, so the curves flatten there."
        )
    result.update(
        cv=scheme,
        n_splits=len(y) if scheme == "leave-one-out" else len(splits),
        cv_description=sentence,
        error_kind="standard error" if scheme == "leave-one-out" else "std over folds",
        norm=norm if settings is None else "head settings",
        n_samples=len(y),
        min_class_size=int(counts.min()),
        notes=notes,
    )
    return result
