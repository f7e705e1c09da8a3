"""How many proxies should a class get? Two readings of a class's embeddings.

``advise_proxies`` / ``recommend_k_per_class`` give THE advice, read from the accuracy-vs-k curve
(``kcurve.accuracy_vs_k``) of the user's own images: its k-means line, computed under the head's
own settings (for the default preset: whitened, shrinkage "cv") on the curve's folds, and a stated
rule (``one_se_choice``: the smallest k within one paired standard error of the best k). The
Geometry tab's curve is computed with the same settings, ks, folds and seeds, so it shows exactly
the evidence the advice read, and "Apply" sets exactly the advised k (gen=kmeans, or the mean).

``recommend_k`` only describes the *shape* of one class: for k = 2..max_k its L2-normalised
embeddings are clustered with k-means and scored with the silhouette, against a single Gaussian
blob of the same shape (a silhouette alone is fooled by one elongated blob). Visible groups do
not imply that more proxies classify better (the mean may already be closer to its own images than
any other class is), so this reading is not used as advice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .kcurve import ADVICE_GEN, ADVICE_MAX_K, accuracy_vs_k, advice_settings
from .normalisation import l2
from .threads import one_thread

# Heavy: scikit-learn imported where used, so that importing this module stays cheap.

MIN_PER_CLUSTER = 5  # a proxy needs at least this many images behind it
MAX_SAMPLES = 400  # larger classes are subsampled (seeded): enough to see the groups
KMEANS_DIMS = 64  # k-means runs in the top principal directions; silhouettes use all of them
N_INIT = 3  # k-means restarts per k
SIL_MIN = 0.2  # below this the groups are not "well separated" (Kaufman & Rousseeuw: < 0.25 weak)
GAP_MIN = 0.1  # required gain over a single Gaussian blob of the same shape
N_NULL = 2  # Gaussian reference draws averaged per k


def _kmeans_labels(Y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Labels of the best of N_INIT k-means runs.

    scikit-learn's Cython k-means: the data here are small (<= MAX_SAMPLES x KMEANS_DIMS), where it
    is fast and, unlike torch's thread pool, does not slow down badly on a busy 2-core machine.
    """
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(Y).labels_


def _silhouettes(Y: np.ndarray, ks: list[int], seed: int, min_size: int) -> np.ndarray:
    """Silhouette of the k-means solution for each k (NaN where a group is below min_size)."""
    from sklearn.metrics import silhouette_score

    sq = (Y**2).sum(1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * Y @ Y.T, 0.0))
    np.fill_diagonal(D, 0.0)
    Yk = Y[:, :KMEANS_DIMS].astype(np.float32)
    out = np.full(len(ks), np.nan)
    for i, k in enumerate(ks):
        labels = _kmeans_labels(Yk, k, seed)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() >= min_size:
            out[i] = silhouette_score(D, labels, metric="precomputed")
    return out


def _py(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _name(label: Any) -> str:
    return "This class" if label is None else f"'{label}'"


def recommend_k(X_c: Any, *, max_k: int = 10, seed: int = 0, label: Any = None) -> tuple[int, str]:
    """The recommended number of proxies for one class's embeddings, and why, in words."""
    import sklearn.cluster  # noqa: F401  (load its OpenMP runtime before limiting it)
    import sklearn.metrics  # noqa: F401

    # tiny problems (<= MAX_SAMPLES points): worker threads only spin on a busy machine (100x)
    with one_thread():
        return _recommend_k(X_c, max_k=max_k, seed=seed, label=label)


def _recommend_k(X_c: Any, *, max_k: int, seed: int, label: Any) -> tuple[int, str]:
    X = np.asarray(X_c, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(
            f"recommend_k needs a 2-D array (n, d) of embeddings; got shape {X.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError(
            f"The embeddings of {_name(label)} contain NaN or infinite values.".replace(
                "This class", "this class"
            )
        )
    X = l2(X)
    n = len(X)
    need = 2 * MIN_PER_CLUSTER
    if n < need or max_k < 2:
        why = (
            f"has only {n} image(s): too few to see sub-groups (at least {need} needed)"
            if n < need
            else "is limited to one proxy (max_k < 2)"
        )
        return (
            1,
            f"{_name(label)} {why}; use 1 proxy (the class mean), which is best with few samples.",
        )
    rng = np.random.default_rng(seed)
    if n > MAX_SAMPLES:
        X = X[rng.choice(n, MAX_SAMPLES, replace=False)]
    centred = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(centred, full_matrices=False)
    Y = U * S  # exact coordinates (distances unchanged) in the principal directions
    ks = list(range(2, min(max_k, len(X) // MIN_PER_CLUSTER) + 1))
    sil = _silhouettes(Y, ks, seed, MIN_PER_CLUSTER)
    scale = S / np.sqrt(len(X))  # the Gaussian with the class's covariance spectrum
    null = np.mean(
        [_silhouettes(rng.standard_normal(Y.shape) * scale, ks, seed, 2) for _ in range(N_NULL)],
        axis=0,
    )
    gap = sil - null
    if np.all(np.isnan(gap)):
        return 1, (
            f"{_name(label)}: k-means only finds groups of fewer than "
            f"{MIN_PER_CLUSTER} images, so there are no clear sub-groups; use 1 proxy (the mean)."
        )
    clear = (sil >= SIL_MIN) & (gap >= GAP_MIN)
    best = int(np.nanargmax(np.where(clear, gap, np.nan) if clear.any() else gap))
    k, s, g = ks[best], float(sil[best]), float(gap[best])
    if clear[best]:
        return k, (
            f"{_name(label)} splits into {k} well-separated groups (silhouette "
            f"{s:.2f}, against {s - g:.2f} for a single blob of the same shape): use {k} proxies."
        )
    return 1, (
        f"{_name(label)} shows no clear sub-groups (best silhouette {s:.2f} at "
        f"k={k}, a single blob of the same shape scores {s - g:.2f}): 1 proxy (the mean) is a "
        "safe choice; with many images, more k-means proxies can still help a little."
    )


ADVICE_KS = (1, 2, 3, 5, 10, 20)  # the curve's points (kcurve.accuracy_vs_k's default ks)
_ADVICE_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()
_ADVICE_CACHE_SIZE = 16
_ADVICE_LOCK = threading.Lock()


def advice_ks(max_k: int = ADVICE_MAX_K) -> list[int]:
    """The k the advice compares: the curve's points up to max_k."""
    return [k for k in ADVICE_KS if k <= max_k] or [1]


def clear_advice_cache() -> None:
    """Forget every cached advice (benchmarks measure the cold cost)."""
    with _ADVICE_LOCK:
        _ADVICE_CACHE.clear()


def _advice_key(X: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{X.shape}{X.dtype.str}".encode())
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(repr(y.tolist()).encode())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()


def one_se_choice(ks: Sequence[int], folds: Sequence[Sequence[float]]) -> dict[str, Any]:
    """THE rule of the advice, applied to one line of an accuracy-vs-k curve.

    folds[i]: the held-out scores of k = ks[i] (one accuracy per fold, or one 0/1 outcome per
    image under leave-one-out), on the same folds for every k. The best k has the highest mean;
    the advised k is the smallest k whose mean is at most one paired standard error below it
    (the one-standard-error rule, Breiman et al. 1984; the error of a difference between two k
    is computed fold by fold, since the same folds score both). So more proxies are advised
    exactly when the curve's gain over fewer proxies is larger than its own noise.

    Returns {"k", "best_k", "mean" (per k), "gain" (best over k=ks[0]), "se" (paired standard
    error of that gain), "se_k" (paired standard error of best minus advised)}.
    """
    ks = [int(k) for k in ks]
    if not ks or ks != sorted(set(ks)):
        raise ValueError(f"ks must be distinct and increasing; got {ks}.")
    F = [np.asarray(f, dtype=float) for f in folds]
    if len(F) != len(ks) or len({len(f) for f in F}) != 1 or len(F[0]) == 0:
        raise ValueError("folds must hold the same number of held-out scores for every k.")
    mean = np.array([f.mean() for f in F])
    best = int(np.argmax(mean))  # ties go to the smaller k

    def paired_se(i: int) -> float:
        diff = F[best] - F[i]
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")

    pick = next(i for i in range(len(ks)) if mean[best] - mean[i] <= paired_se(i))
    return {
        "k": ks[pick],
        "best_k": ks[best],
        "mean": mean.tolist(),
        "gain": float(mean[best] - mean[0]),
        "se": paired_se(0),
        "se_k": paired_se(pick),
    }


def advise_proxies(
    X: Any,
    y: Any,
    settings: Mapping[str, Any] | None = None,
    *,
    max_k: int = ADVICE_MAX_K,
    curve: Mapping[str, Any] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """How many k-means proxies per class, read from the accuracy-vs-k curve of these images.

    X (n, d), y (n,): the project's embeddings. settings: the head's settings (None: the paper's
    Fig. 6 L2 configuration). The evidence is the curve's k-means line, computed with
    ``kcurve.accuracy_vs_k`` under the head's own settings (whitening included) and the curve's
    folds, for k in ADVICE_KS up to max_k; the advised k is ``one_se_choice`` of that line, one k
    shared by all classes (a class with fewer images keeps all of them as proxies). curve: an
    accuracy-vs-k result of the same images and settings to read instead of computing one.
    progress: passed to ``accuracy_vs_k`` (called after each k of the curve).

    Returns {"k": {label: k}, "k_shared", "reasons": {label: sentence}, "summary", "gen",
    "settings" (what "Apply" sets: gen and k included), "evidence" (the rule's numbers, the ks,
    the cv scheme)}. Cached (LRU keyed by a hash of X, y and the settings).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"advise_proxies needs embeddings (n, d) and n labels; got {X.shape} and {y.shape}."
        )
    chosen = advice_settings(settings, max_k)
    ks = advice_ks(max_k)
    key = _advice_key(X, y, {**chosen, "ks": tuple(ks)}) if curve is None else None
    if key is not None:
        with _ADVICE_LOCK:
            if key in _ADVICE_CACHE:
                _ADVICE_CACHE.move_to_end(key)
                return _ADVICE_CACHE[key]
    if curve is None:
        curve = accuracy_vs_k(
            X,
            y,
            ks=ks,
            gens=(ADVICE_GEN,),
            settings=chosen,
            auto=False,
            references=False,
            progress=progress,
        )
    line = curve["gens"][ADVICE_GEN]
    rule = one_se_choice(curve["ks"], line["folds"])
    k = rule["k"]
    classes, counts = np.unique(y, return_counts=True)
    labels = [_py(c) for c in classes]
    evidence = {
        **rule,
        "ks": list(curve["ks"]),
        "cv": curve["cv"],
        "cv_description": curve["cv_description"],
    }
    apply = {**chosen, "gen": "mean" if k == 1 else ADVICE_GEN, "k": k}
    result = {
        "k": {c: k for c in labels},
        "k_shared": k,
        "reasons": {c: _reason(c, k, int(n), rule) for c, n in zip(labels, counts, strict=True)},
        "summary": _summary(chosen, evidence),
        "gen": apply["gen"],
        "settings": apply,
        "evidence": evidence,
    }
    if key is not None:
        with _ADVICE_LOCK:
            _ADVICE_CACHE[key] = result
            while len(_ADVICE_CACHE) > _ADVICE_CACHE_SIZE:
                _ADVICE_CACHE.popitem(last=False)
    return result


def _reason(label: Any, k: int, n: int, rule: Mapping[str, Any]) -> str:
    what = "1 proxy (the class mean)" if k == 1 else f"{k} k-means proxies"
    if k > 1 and n <= k:
        return f"'{label}': {what}; with {n} image(s) it keeps every image as a proxy."
    return f"'{label}': {what}, the number the curve's rule gives every class ({n} images)."


def _summary(settings: Mapping[str, Any], ev: Mapping[str, Any]) -> str:
    ks, mean = ev["ks"], ev["mean"]
    at = {k: m for k, m in zip(ks, mean, strict=True)}
    head = (
        "Where this comes from: the accuracy-vs-k curve of your own images (its k-means line, "
        f"k = {', '.join(map(str, ks))}), held out as the curve is ({ev['cv']}), with the head's "
        f"settings ({settings_line(settings)}). Rule: the smallest k within one standard error "
        "of the best k (errors of differences taken fold by fold). "
    )
    if ev["k"] == 1 and ev["best_k"] == 1:
        tail = f"One proxy per class scores best ({at[1]:.1%}): keep the class mean."
    elif ev["k"] == 1:
        tail = (
            f"The best k is {ev['best_k']} ({at[ev['best_k']]:.1%} against {at[1]:.1%} for one "
            f"proxy, {100 * ev['gain']:+.1f} +/- {100 * ev['se']:.1f} points): within the noise, "
            "so one proxy per class (the mean) is advised."
        )
    else:
        tail = (
            f"More proxies help: one proxy per class scores {at[1]:.1%}, the best k is "
            f"{ev['best_k']} ({at[ev['best_k']]:.1%}, {100 * ev['gain']:+.1f} +/- "
            f"{100 * ev['se']:.1f} points), and k = {ev['k']} ({at[ev['k']]:.1%}) is the "
            "smallest k within one standard error of it."
        )
    return head + tail


def settings_line(settings: Mapping[str, Any]) -> str:
    """NORMpre / NORMpost / NORMinf / AGG / distance in one short phrase (whitening named)."""
    pre = settings.get("norm_pre")
    if pre == "whiten":
        pre = f"whiten (shrinkage {settings.get('whiten_shrinkage')})"
    return (
        f"norm_pre {pre}, norm_post {settings.get('norm_post')}, "
        f"norm_inf {settings.get('norm_inf')}, agg {settings.get('agg')}, "
        f"distance {settings.get('distance')}"
    )


def recommend_k_per_class(
    X: Any, y: Any, settings: Mapping[str, Any] | None = None, *, max_k: int = ADVICE_MAX_K
) -> dict[Any, tuple[int, str]]:
    """{label: (k, reason)} in sorted label order: the advice of ``advise_proxies``."""
    advice = advise_proxies(X, y, settings, max_k=max_k)
    return {c: (advice["k"][c], advice["reasons"][c]) for c in advice["k"]}


def curve_agreement(advice: Mapping[str, Any], curve: Mapping[str, Any]) -> str:
    """One sentence relating the advice to an accuracy-vs-k curve of the same images.

    The advice is the one-standard-error rule applied to the curve's k-means line; the same rule
    is applied to this curve's line. They agree when the curve was computed with the advice's
    settings and folds; the sentence says which k both give, or why they differ.
    """
    line = curve["gens"].get(ADVICE_GEN)
    ks = list(curve["ks"])
    if line is None or 1 not in ks:
        raise ValueError(
            f"curve_agreement needs the curve's {ADVICE_GEN} line with k = 1; it has "
            f"{sorted(curve['gens'])} at k = {ks}."
        )
    here = one_se_choice(ks, line["folds"])
    at = dict(zip(ks, here["mean"], strict=True))
    text = (
        f"On the curve, one proxy per class scores {at[1]:.1%}; the best shared k is "
        f"{here['best_k']} ({at[here['best_k']]:.1%}, {100 * here['gain']:+.1f} +/- "
        f"{100 * here['se']:.1f} points over one proxy)."
    )
    auto = curve.get("references", {}).get("auto")
    if auto is not None:
        text += f" gen=auto, choosing k per class inside every fold, scores {auto['mean']:.1%}."
    advised = advice.get("k_shared")
    ev = advice.get("evidence", {})
    if advised == here["k"] and ev.get("ks") == ks[: len(ev.get("ks", []))]:
        tail = (
            f"The advice ({advised} proxies per class) is this curve's k by the same rule: "
            "the smallest k within one standard error of the best."
            if advised > 1
            else "The advice (one proxy per class) is this curve's k by the same rule: no k "
            "beats one proxy by more than one standard error."
        )
    else:
        tail = (
            f"By the advice's rule this curve gives k = {here['k']}, but the advice says "
            f"{advised}: it was computed with other settings, folds or k ({ev.get('cv')}, "
            f"k = {ev.get('ks')}); recompute both with the current head."
        )
    return f"{text} {tail}"
