"""How good is the head on the user's own images? Leave-one-out, k-fold or hold-out, stated.

Every image is classified by a head imprinted *without* it, so the estimate is honest. The scheme
depends on the data size (see ``choose_scheme``) and is named in the result.

Leave-one-out is exact and fast for the order-independent settings (a per-class generator, each
class with its own random stream, and NORMpost ``none``/``l2``): leaving image i out changes only
the proxies of i's own class, so only that class is regenerated while the others keep the proxies
of the full fit. Other settings (least squares, quantile NORMpost, Mahalanobis distance, which
look at every class, and fitted normalisations such as whitening) are refitted from scratch for
each split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import aggregation, normalisation
from .generation import PER_CLASS_ONLY
from .normalisation import NORM_INF, NORM_PRE
from .threads import one_thread

# Heavy: scikit-learn and classifier (scikit-learn) imported where used, so that importing this
# module stays cheap.

MIN_PER_CLASS = 2  # an image can only be held out if its class keeps at least one other
LOO_MAX_FAST = 400  # leave-one-out with the per-class shortcut up to this many images
LOO_MAX_REFIT = 30  # leave-one-out by full refits only for tiny projects
KFOLD_MAX = 600  # stratified k-fold up to this many images, a single hold-out beyond
N_FOLDS = 5
HOLDOUT_FRACTION = 0.2

FAST_NORM_POST = frozenset({"none", "l2"})  # per-proxy; quantile looks at earlier classes


@dataclass
class Evaluation:
    """Cross-validated quality: which scheme, overall and per-class accuracy, confusion matrix."""

    method: str  # "leave-one-out" | "stratified k-fold" | "stratified hold-out" | "none"
    description: str
    labels: list[str]
    accuracy: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)
    support: dict[str, int] = field(default_factory=dict)
    confusion: np.ndarray | None = None  # rows: true class, columns: predicted, in `labels` order
    n_evaluated: int = 0
    n_splits: int = 0
    predictions: np.ndarray | None = None  # the held-out prediction of each evaluated image

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "description": self.description,
            "accuracy": None if self.accuracy is None else round(float(self.accuracy), 4),
            "per_class": {k: round(float(v), 4) for k, v in self.per_class.items()},
            "support": dict(self.support),
            "n_evaluated": self.n_evaluated,
            "n_splits": self.n_splits,
            "labels": list(self.labels),
            "confusion": None if self.confusion is None else self.confusion.tolist(),
        }


def fast_loo_applies(settings: dict[str, Any]) -> bool:
    """Whether leaving one image out only changes its own class's proxies (exactly)."""
    fitted = {n for n in (*NORM_PRE, *NORM_INF) if n not in ("none", "l2")}  # e.g. whitening
    return (
        settings.get("gen", "kmeans") in PER_CLASS_ONLY
        and settings.get("norm_pre", "l2") not in fitted
        and settings.get("norm_inf", "l2") not in fitted
        and settings.get("norm_post") in FAST_NORM_POST
        and settings.get("distance") != "mahalanobis"  # its covariance spans every proxy
    )


def choose_scheme(n_images: int, settings: dict[str, Any]) -> str:
    """The evaluation scheme for this many images under these settings (deterministic)."""
    if n_images <= (LOO_MAX_FAST if fast_loo_applies(settings) else LOO_MAX_REFIT):
        return "leave-one-out"
    return "stratified k-fold" if n_images <= KFOLD_MAX else "stratified hold-out"


def evaluate(
    X: np.ndarray,
    y: np.ndarray,
    settings: dict[str, Any],
    scheme: str | None = None,
    views: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evaluation:
    """Estimate accuracy on (X, y) with a head built from ``settings`` (ImprintClassifier kwargs).

    ``views``: ``(Z, source)``, training-only samples (augmented views, ``imprint_core.augment``),
    row j a view of image ``source[j]`` with its label. A view trains exactly the heads whose
    training split holds its source image: a held-out image takes its views with it. Views are
    never evaluated.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    labels, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    names = [str(c) for c in labels]
    small = [n for n, c in zip(names, counts, strict=True) if c < MIN_PER_CLASS]
    if len(labels) < 2 or small:
        why = (
            f"class {', '.join(repr(s) for s in small)} has fewer than {MIN_PER_CLASS} images"
            if small
            else "there is only one class"
        )
        return Evaluation(
            "none", f"No accuracy estimate: {why} (each class needs {MIN_PER_CLASS}+).", names
        )
    if views is not None:
        views = (np.asarray(views[0], dtype=np.float32), np.asarray(views[1], dtype=np.int64))
        if len(views[0]) != len(views[1]) or (len(views[1]) and views[1].max() >= len(y)):
            raise ValueError("views must be (Z, source) with one source row of X per view")
    if scheme is None:  # with views, leave-one-out refits (the per-class shortcut has no views)
        scheme = choose_scheme(len(y), {} if views is not None else settings)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown evaluation scheme {scheme!r}; choose one of {list(SCHEMES)}")
    # Many small fits: multi-threaded BLAS/OpenMP spins against other processes on a busy
    # machine and is far slower than one thread here (measured 2 ms vs up to 0.5 s per k-means).
    # Not waiting when another thread holds the limit (a k-curve step): BLAS is limited then.
    with one_thread(wait=False):
        pred_idx, mask, n_splits, description = SCHEMES[scheme](X, y, y_idx, settings, views)
    return _summarise(scheme, description, names, y_idx, pred_idx, mask, n_splits)


# ---- schemes: each returns (predicted class index per image, evaluated mask, splits, sentence) ---
def _classifier(settings: dict[str, Any]):
    from .classifier import ImprintClassifier

    return ImprintClassifier(**settings)


def _loo(X: np.ndarray, y: np.ndarray, y_idx: np.ndarray, settings: dict[str, Any], views=None):
    n = len(y_idx)
    text = (
        f"Leave-one-out: each of the {n} images was classified by a head imprinted from the "
        f"other {n - 1}."
    )
    if views is None and fast_loo_applies(settings):
        return _loo_per_class(X, y, y_idx, settings), np.ones(n, bool), n, text
    pred = np.empty(n, dtype=np.int64)
    for i in range(n):
        keep = np.flatnonzero(np.arange(n) != i)
        pred[i] = _fit_predict(X, y, keep, X[i : i + 1], settings, np.unique(y), views)[0]
    return pred, np.ones(n, bool), n, text


def _loo_per_class(X, y, y_idx, settings: dict[str, Any]) -> np.ndarray:
    """Exact leave-one-out that regenerates only the held-out image's class.

    ``ImprintClassifier.imprint_class`` gives the held-out image's class exactly the proxies a
    fit without that image would; every other class keeps its proxies.
    """
    clf = _classifier(settings).fit(X, y)
    labels = clf.classes_
    Z = normalisation.NORM_INF[clf.norm_inf](X)
    per_class = [clf.proxies_of(c) for c in labels]
    n_classes = len(labels)
    pred = np.empty(len(y_idx), dtype=np.int64)
    for i in range(len(y_idx)):
        c = int(y_idx[i])
        own = np.flatnonzero(y_idx == c)
        P = clf.imprint_class(X[own[own != i]], labels[c])
        blocks = per_class[:c] + [P] + per_class[c + 1 :]
        W = np.concatenate(blocks, axis=0)
        owner = np.repeat(np.arange(n_classes), [len(b) for b in blocks])
        scores = aggregation.class_scores(
            Z[i : i + 1].astype(W.dtype),
            W,
            owner,
            n_classes,
            agg=clf.agg,
            distance=clf.distance,
            m=int(clf.m),
            weighting=clf.weighting,
        )
        pred[i] = int(np.argmax(scores[0]))
    return pred


def _fit_predict(X, y, train, X_te, settings, labels, views=None) -> np.ndarray:
    """Indices into ``labels`` (all classes, sorted) predicted by a head fitted on the rows
    ``train`` and the views of exactly those rows."""
    X_tr, y_tr = X[train], y[train]
    if views is not None:
        Z, source = views
        own = np.isin(source, train)
        X_tr = np.concatenate([X_tr, Z[own]])
        y_tr = np.concatenate([y_tr, y[source[own]]])
    clf = _classifier(settings).fit(X_tr, y_tr)
    return np.searchsorted(labels, clf.predict(X_te)).astype(np.int64)


def _kfold(X: np.ndarray, y: np.ndarray, y_idx: np.ndarray, settings: dict[str, Any], views=None):
    from sklearn.model_selection import StratifiedKFold

    folds = N_FOLDS
    pred = np.empty(len(y_idx), dtype=np.int64)
    # A class smaller than the number of folds is spread over distinct folds, so every training
    # split keeps at least one image of every class (classes have >= MIN_PER_CLASS images).
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only n members"
        splits = list(splitter.split(X, y_idx))
    for train, test in splits:
        pred[test] = _fit_predict(X, y, train, X[test], settings, np.unique(y), views)
    text = (
        f"Stratified {folds}-fold cross-validation: the {len(y_idx)} images were split into "
        f"{folds} class-balanced folds and each fold was classified by a head imprinted from "
        "the other four."
    )
    return pred, np.ones(len(y_idx), bool), folds, text


def _holdout(X: np.ndarray, y: np.ndarray, y_idx: np.ndarray, settings: dict[str, Any], views=None):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y_idx))
    train, test = train_test_split(idx, test_size=HOLDOUT_FRACTION, stratify=y_idx, random_state=0)
    pred = np.full(len(y_idx), -1, dtype=np.int64)
    pred[test] = _fit_predict(X, y, train, X[test], settings, np.unique(y), views)
    mask = np.zeros(len(y_idx), bool)
    mask[test] = True
    text = (
        f"Stratified hold-out: {len(test)} of the {len(y_idx)} images "
        f"({HOLDOUT_FRACTION:.0%}, class-balanced) were held out and classified by a head "
        f"imprinted from the other {len(train)}."
    )
    return pred, mask, 1, text


SCHEMES = {"leave-one-out": _loo, "stratified k-fold": _kfold, "stratified hold-out": _holdout}


def _summarise(scheme, description, names, y_idx, pred_idx, mask, n_splits) -> Evaluation:
    C = len(names)
    t, p = y_idx[mask], pred_idx[mask]
    cm = np.zeros((C, C), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    support = cm.sum(axis=1)
    per_class = {names[c]: float(cm[c, c] / support[c]) for c in range(C) if support[c] > 0}
    predictions = np.full(len(y_idx), -1, dtype=np.int64)
    predictions[mask] = p
    return Evaluation(
        method=scheme,
        description=description,
        labels=names,
        accuracy=float(np.trace(cm) / max(cm.sum(), 1)),
        per_class=per_class,
        support={names[c]: int(support[c]) for c in range(C)},
        confusion=cm,
        n_evaluated=int(mask.sum()),
        n_splits=n_splits,
        predictions=predictions,
    )
