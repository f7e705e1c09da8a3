"""How many proxies should a class get? Two readings of a class's embeddings.

``advise_proxies`` / ``recommend_k_per_class`` give THE advice: the number of k-means proxies per
class that GEN ``auto`` (the app's "Apply gen=auto") chooses, i.e. the k with the best 3-fold
cross-validated accuracy on the user's own images, under the same settings as the head (default:
the L2 / k-means / L2 / L2 / max configuration of the accuracy-vs-k curve). So the advice, the
button and the curve rest on one kind of evidence: held-out accuracy on the same images.

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
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .normalisation import l2

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

    from .collapse import one_thread

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


ADVICE_MAX_K = 20  # the largest k of the accuracy-vs-k curve and of the app's k-means presets
ADVICE_DEFAULT_GEN = "auto"  # heads whose gen has no rule of its own get auto's evidence
_ADVICE_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()
_ADVICE_CACHE_SIZE = 16
_ADVICE_LOCK = threading.Lock()
_NOT_KEPT = ("gen", "k", "lambda_reg", "kmeans_impl")  # set by the adviser, or irrelevant here


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
    """The classifier settings whose own choice of k per class is the advice.

    settings: the head's settings (ImprintClassifier keyword arguments) or None for the
    accuracy-vs-k curve's configuration (L2 / k-means / L2 / L2 / max). Its NORM, AGG, distance
    and seed options are kept; gen stays when it chooses k per class itself (a key of ADVISERS:
    "auto", and "sized" when available), else becomes "auto"; k, the cap, becomes max_k.
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
    gen = base.get("gen") if base.get("gen") in advisers() else ADVICE_DEFAULT_GEN
    keep = {k: v for k, v in base.items() if k not in _NOT_KEPT}
    return {**keep, "gen": gen, "k": int(max_k)}


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


# ----------------------------------------------------------------------- advisers (one per gen)
def _auto_k(X, y, settings, head) -> dict[Any, int]:
    """auto's cross-validated choice; a head fitted with the same settings already holds it."""
    from .classifier import ImprintClassifier

    chosen = getattr(head, "auto_k_", None)
    if chosen is not None:
        params = head.get_params()
        if any(params.get(k) != v for k, v in settings.items()):
            chosen = None
    if chosen is None:
        chosen = ImprintClassifier(**settings).fit(X, y).auto_k_
    return {_py(c): int(k) for c, k in chosen.items()}


def _auto_reason(label: Any, k: int, n: int, k_max: int) -> str:
    from .generation import AUTO_FOLDS, AUTO_MIN_PER_PROXY, auto_candidates

    cands = auto_candidates(n, k_max)
    if cands == [1]:
        return (
            f"'{label}': 1 proxy (the class mean). Its {n} image(s) are too few for a second "
            f"proxy (each proxy needs at least {AUTO_MIN_PER_PROXY} images), and the mean is "
            "best when images are few."
        )
    tried = ", ".join(map(str, cands))
    if k == 1:
        return (
            f"'{label}': 1 proxy (the class mean). Cross-validation on your images (as gen=auto "
            f"does) tried k = {tried}; more proxies did not raise the {AUTO_FOLDS}-fold held-out "
            "accuracy."
        )
    return (
        f"'{label}': {k} proxies. Cross-validation on your images (as gen=auto does) tried "
        f"k = {tried}; {k} gave the best {AUTO_FOLDS}-fold held-out accuracy."
    )


def _auto_summary(settings: Mapping[str, Any]) -> str:
    from .generation import AUTO_FOLDS

    return (
        "Where this comes from: gen=auto (what 'Apply gen=auto' uses) tries, for each class, "
        f"k-means with k = 1, 2, 3, 5, ... up to {settings['k']} (each proxy needs enough images) "
        f"and keeps the k with the best {AUTO_FOLDS}-fold cross-validated accuracy on your "
        f"images, with the head's other settings ({settings_line(settings)}). The "
        "accuracy-vs-k curve measures the same held-out accuracy, for one k shared by all "
        "classes."
    )


def _sized_k(X, y, settings, head) -> dict[Any, int]:
    from .generation import sized_k

    classes, counts = np.unique(y, return_counts=True)
    return {_py(c): sized_k(int(n), settings["k"]) for c, n in zip(classes, counts, strict=True)}


def _sized_reason(label: Any, k: int, n: int, k_max: int) -> str:
    from .generation import SIZED_PER_PROXY

    if k == 1:
        return (
            f"'{label}': 1 proxy (the class mean). With {n} image(s) it has fewer than "
            f"{2 * SIZED_PER_PROXY}, and the rule gives one proxy per {SIZED_PER_PROXY} images."
        )
    capped = f" (capped at k = {k_max})" if k == k_max else ""
    return f"'{label}': {k} proxies: one per {SIZED_PER_PROXY} of its {n} images{capped}."


def _sized_summary(settings: Mapping[str, Any]) -> str:
    from .generation import SIZED_PER_PROXY

    return (
        f"Where this comes from: the head's gen=sized rule, one k-means proxy per "
        f"{SIZED_PER_PROXY} images of a class (the mean below that, at most {settings['k']}), "
        "a rule measured on Fashion-MNIST draws rather than on your images. The accuracy-vs-k "
        "curve shows what more proxies would do on your own images."
    )


def advisers() -> dict[str, tuple[Callable, Callable, Callable]]:
    """gen -> (k per class, reason per class, summary): gens that choose k per class themselves.

    "sized" is listed only when imprint_core.generation provides it.
    """
    from . import generation

    found = {"auto": (_auto_k, _auto_reason, _auto_summary)}
    if hasattr(generation, "sized_k") and hasattr(generation, "SIZED_PER_PROXY"):
        found["sized"] = (_sized_k, _sized_reason, _sized_summary)
    return found


def advise_proxies(
    X: Any,
    y: Any,
    settings: Mapping[str, Any] | None = None,
    *,
    max_k: int = ADVICE_MAX_K,
    head: Any = None,
) -> dict[str, Any]:
    """How many proxies each class should get, from the evidence the head's own gen uses.

    X (n, d), y (n,): the project's embeddings. settings: the head's settings (None: the
    accuracy-vs-k curve's L2 configuration); see advice_settings for which gen decides (auto's
    cross-validation unless the head's gen has a rule of its own). head: a fitted head, whose own
    auto choice is reused when it was fitted with the same settings (no refit).

    Returns {"k": {label: k}, "reasons": {label: sentence}, "summary": where the advice comes
    from, "gen", "settings"}. Cached (LRU keyed by a hash of X, y and the settings).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"advise_proxies needs embeddings (n, d) and n labels; got {X.shape} and {y.shape}."
        )
    chosen = advice_settings(settings, max_k)
    key = _advice_key(X, y, chosen)
    with _ADVICE_LOCK:
        if key in _ADVICE_CACHE:
            _ADVICE_CACHE.move_to_end(key)
            return _ADVICE_CACHE[key]
    choose, reason, summary = advisers()[chosen["gen"]]
    ks = choose(X, y, chosen, head)
    classes, counts = np.unique(y, return_counts=True)
    labels = [_py(c) for c in classes]
    result = {
        "k": {c: ks[c] for c in labels},
        "reasons": {
            c: reason(c, ks[c], int(n), chosen["k"]) for c, n in zip(labels, counts, strict=True)
        },
        "summary": summary(chosen),
        "gen": chosen["gen"],
        "settings": chosen,
    }
    with _ADVICE_LOCK:
        _ADVICE_CACHE[key] = result
        while len(_ADVICE_CACHE) > _ADVICE_CACHE_SIZE:
            _ADVICE_CACHE.popitem(last=False)
    return result


def settings_line(settings: Mapping[str, Any]) -> str:
    """NORMpre / NORMpost / NORMinf / AGG / distance in one short phrase."""
    return (
        f"norm_pre {settings.get('norm_pre')}, norm_post {settings.get('norm_post')}, "
        f"norm_inf {settings.get('norm_inf')}, agg {settings.get('agg')}, "
        f"distance {settings.get('distance')}"
    )


def recommend_k_per_class(
    X: Any, y: Any, settings: Mapping[str, Any] | None = None, *, max_k: int = ADVICE_MAX_K
) -> dict[Any, tuple[int, str]]:
    """{label: (k, reason)} in sorted label order: the advice of ``advise_proxies``."""
    advice = advise_proxies(X, y, settings, max_k=max_k)
    return {c: (advice["k"][c], advice["reasons"][c]) for c in advice["k"]}


def curve_agreement(
    advice: Mapping[str, Any], curve: Mapping[str, Any], gen: str = "kmeans"
) -> str:
    """One sentence comparing the advice with an accuracy-vs-k curve of the same images.

    Uses the curve's `gen` line (k-means by default): the gain of its best k over k = 1 counts
    as clear when it exceeds twice its paired standard error (the same folds or held-out images
    score both k, so their difference is compared fold by fold).
    """
    line = curve["gens"].get(gen) or next(iter(curve["gens"].values()))
    ks = list(curve["ks"])
    if 1 not in ks:
        raise ValueError(f"curve_agreement needs the curve's k = 1 point; its ks are {ks}.")
    acc = np.asarray(line["mean"], dtype=float)
    folds = [np.asarray(f, dtype=float) for f in line["folds"]]
    one, best = ks.index(1), int(np.argmax(acc))
    diff = folds[best] - folds[one]
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    gain = float(acc[best] - acc[one])
    more = [str(c) for c, k in advice["k"].items() if k > 1]
    text = (
        f"On the curve, one proxy per class scores {acc[one]:.1%}; the best shared k is "
        f"{ks[best]} ({acc[best]:.1%}, a gain of {100 * gain:+.1f} +/- {100 * se:.1f} points)."
    )
    auto = curve.get("references", {}).get("auto")
    if auto is not None:
        text += f" gen=auto, choosing k again inside every fold, scores {auto['mean']:.1%}."
    clear = ks[best] > 1 and gain > 2 * se
    if clear and more:
        tail = f"Both say more proxies help: the advice gives more than one to {', '.join(more)}."
    elif clear:
        tail = (
            "The curve gains clearly from extra proxies, but the advice keeps one per class: "
            "its rule did not see enough evidence for any single class."
        )
    elif more:
        tail = (
            f"The advice gives more than one proxy to {', '.join(more)}; the curve agrees in "
            "direction, but its gain is within twice its standard error, so expect a small "
            "difference."
            if gain > 0
            else f"The advice gives more than one proxy to {', '.join(more)}, but on the curve "
            "no shared k beats one proxy per class."
        )
    elif ks[best] > 1 and gain > 0:
        tail = (
            "The advice keeps one proxy per class; the curve's best k does a little better, but "
            "within twice its standard error, so the evidence for more proxies is weak."
        )
    else:
        tail = "Both say one proxy per class (the mean) is enough here."
    return f"{text} {tail}"
