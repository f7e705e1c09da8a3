""" "None of these": how unlike every taught class an input is, from the head alone.

Two distances, each good at one kind of stranger, are put on one scale and added:

- ``raw``: one minus the best cosine to the L2 class means of the training embeddings (the
  max-cosine score of Qi et al.'s imprinted weights). Images of another domain are far from every
  class here (AUROC 0.99-1.00 on photos), look-alikes of a taught class much less (0.73-0.80).
- ``white``: the same in the space centred on the training mean and whitened by the shrunk
  within-class covariance (the default head's space: shrinkage ``d / (d + n - C)``). Directions
  in which the taught classes vary are damped, so a look-alike that differs where the classes
  do not stands out (0.81 on photos), while images of another domain are judged less well (0.90).

Each distance is standardised by its held-out training scores (minus their mean, over their
standard deviation), and the score is the sum: a far image is extreme in ``raw``, a look-alike
in ``white``, and both count in the same units. Measured in docs/benchmarks.md ("None of these").

Held-out scores: every training image is scored as a new image would be, without itself
(``imprint_core.unknown_held_out``, closed form): its class mean without it, the whitening and the
centre refitted without it. An image whose class has no other image is held out with its class and
scored against the other classes only, an upper bound of what a new image of its class would score.
Beyond 2,000 images a seeded sample of every class is held out. The sorted sums of the held-out
images are the calibration (``calibration``): an input is "none of these" when it scores above the
95 % quantile of them (``UNKNOWN_QUANTILE``), i.e. farther from the classes than 95 % of the user's
own images are from theirs. With few images the quantile lies beyond the largest held-out score and
is extrapolated with Student's t (``threshold``). With one image per class nothing measures how
far a new image lies from its class's one image, and the largest of the C class-out scores is
exceeded by up to 1 / (C + 1) of new images (8 % of known hand-sign photos, 12 % of alike
synthetic classes): the distances are then in units of the spread of every image's distances to
every other class (``pair_distances``), and the threshold is the 95 % quantile of a normal around
the class-out scores' mean whose spread is ``ONE_SHOT_SD`` of the pair scores' spread, a share
measured on Fashion-MNIST and photos (``pair_spread``).

The head stores all of it (``UnknownModel``: safetensors tensors, ``imprint_core.head_io``), so a
saved and loaded head, and its ONNX export, score and threshold exactly as the fitted one. Head
files written before this score keep their rule: the max-cosine score with a quantile of its
held-out scores (files with class means, ``legacy_*``), or the nearest proxy in the head's own
space (files without).

Building the model costs more than most fits (the within-class scatter's eigenvectors and every
held-out image's scores: about 1 s of CPU for 5,000 x 1,280 against 0.1 s for a ``qi`` fit), so
``ImprintClassifier.fit`` keeps what it needs (``Pending``) and the model is built on first use:
``unknown_score``, ``is_unknown``, the threshold, saving the head or exporting it to ONNX.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .aggregation import pairwise
from .unknown_held_out import class_sums, fit_spaces, unit_rows

UNKNOWN_QUANTILE = 0.95  # share of held-out training images below the threshold
SCORES = ("raw", "white")  # the distances that are standardised and added, in this order
SPREAD_FLOOR = 1e-3  # smallest spread of a distance (cosine distances of real images: 0.02-0.2)
# One image per class: a new image's score, as a normal around the class-out scores' mean, spreads
# this share of the spread of the pair scores (every image against every other class). Measured,
# not derived: 5 % of new images scored above 0.72-0.9 of that spread on Fashion-MNIST and two
# photo sets, 0.55-0.6 on the synthetic clusters of the tests; 1.645 x 0.41 = 0.67 keeps both
# within 3-7 % (docs/benchmarks.md, "None of these").
ONE_SHOT_SD = 0.41


@dataclass(frozen=True)
class UnknownModel:
    """What a head keeps to score "none of these" (every array is saved with the head).

    ``means`` (C, d): L2 class means; ``center`` (d,): mean of the L2-normalised training
    embeddings; ``metric`` (d, r): ``F`` with ``I - F F^T`` proportional to the inverse of the
    shrunk within-class covariance; ``white_means`` (C, d): the class directions in that metric
    (``<v, white_means_c> / |v|_W`` is the whitened cosine of ``v = x - center``); ``scale``
    (2, 2): location and spread of the held-out ``raw`` and ``white`` scores; ``calibration``
    (m,): the sorted held-out scores; ``dof`` (1,): degrees of freedom of the held-out scores
    (images held out from their class minus the classes they belong to; 0 when every class has
    one image); ``pair_spread`` (1,): with one image per class, the standard deviation of the
    score of every image against every other class (``pair_distances``), else 0 (and in heads of
    format 2, whose threshold with one image per class is the largest held-out score).
    """

    means: np.ndarray
    center: np.ndarray
    metric: np.ndarray
    white_means: np.ndarray
    scale: np.ndarray
    calibration: np.ndarray
    dof: np.ndarray
    pair_spread: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.float32))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.names()}


def class_means(X: np.ndarray, y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, d) float32: the L2-normalised mean of every class's L2-normalised embeddings."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    return unit_rows(class_sums(U, y_idx, n_classes)).astype(np.float32)


def fit_unknown(X: np.ndarray, y_idx: np.ndarray, n_classes: int) -> UnknownModel:
    """The :class:`UnknownModel` of training embeddings X (n, d) with class indices y_idx."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    space, held, own = fit_spaces(U, y_idx, n_classes)
    counts = np.bincount(y_idx, minlength=n_classes)
    dof = int(own.sum() - np.count_nonzero(counts >= 2))
    scale = _scale(held)
    pair_spread = 0.0
    if dof == 0 and len(U) >= 3:  # one image per class: in units of the distances between them
        pairs = pair_distances(U, space)
        scale[:, 1] = _scale(pairs)[:, 1]
        pair_spread = float(combine(pairs, scale).std(ddof=1))
    calibration = np.sort(combine(held, scale))
    return UnknownModel(
        **{k: v.astype(np.float32) for k, v in space.items()},
        scale=scale.astype(np.float32),
        calibration=calibration.astype(np.float32),
        dof=np.array([dof], dtype=np.int64),
        pair_spread=np.array([pair_spread], dtype=np.float32),
    )


@dataclass
class Pending:
    """What a fit leaves for the :class:`UnknownModel` until it is first needed: the training
    embeddings ``X`` (n, d), their class indices, the number of classes and the classes added
    since (``(X_c, at)`` in order), so that building it later gives what building it at once
    would have."""

    X: np.ndarray
    y_idx: np.ndarray
    n_classes: int
    added: list = field(default_factory=list)

    def build(self) -> UnknownModel:
        model = fit_unknown(self.X, self.y_idx, self.n_classes)
        for X, at in self.added:
            model = add_class(model, X, at)
        return model


def add_class(model: UnknownModel, X: np.ndarray, at: int) -> UnknownModel:
    """``model`` with a new class of embeddings X inserted at index ``at``: its class means in
    the spaces of the fit (centre, metric and scale unchanged), its images' held-out scores
    (from their class without them; with one image, against the other classes) added to the
    calibration."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    F = model.metric.astype(np.float64)
    V = U - model.center.astype(np.float64)
    VF = V @ F
    norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", V, V) - np.einsum("ij,ij->i", VF, VF), 1e-30))
    t = (V / norm[:, None]).sum(axis=0)
    Kt = t - F @ (F.T @ t)
    t_norm = np.sqrt(max(float(t @ Kt), 1e-30))
    s = U.sum(axis=0)
    cos_raw = U @ model.means.astype(np.float64).T
    cos_white = (V @ model.white_means.astype(np.float64).T) / norm[:, None]
    k = len(U)
    if k >= 2:  # the class without the image, seen as a class of k images (unknown_held_out)
        share = k / (k - 1)
        own_raw = (U @ s - 1.0) * share / np.linalg.norm(s)
        own_white = (V @ Kt - norm) * share / (norm * t_norm)
        cos_raw = np.column_stack([cos_raw, own_raw])
        cos_white = np.column_stack([cos_white, own_white])
    held = np.stack([1.0 - cos_raw.max(axis=1), 1.0 - cos_white.max(axis=1)], axis=1)
    calibration = np.concatenate([model.calibration, combine(held, model.scale)])
    return UnknownModel(
        means=np.insert(model.means, at, unit_rows(s[None])[0], axis=0).astype(np.float32),
        center=model.center,
        metric=model.metric,
        white_means=np.insert(model.white_means, at, Kt / t_norm, axis=0).astype(np.float32),
        scale=model.scale,
        calibration=np.sort(calibration).astype(np.float32),
        dof=model.dof + max(k - 1, 0),
        pair_spread=model.pair_spread if k < 2 else np.zeros(1, dtype=np.float32),
    )


def pair_distances(U: np.ndarray, space: dict[str, np.ndarray]) -> np.ndarray:
    """(C (C - 1), 2) the raw and white distances of every training image to every other class
    (one image per class). A class-out score is the smallest of C - 1 of them and spreads less
    than a new image's score does where the classes are alike (hand signs); the spread of all of
    them follows it more closely in every set measured (docs/benchmarks.md)."""
    space = {k: np.asarray(v, dtype=np.float64) for k, v in space.items()}
    raw = 1.0 - U @ space["means"].T
    V = U - space["center"]
    VF = V @ space["metric"]
    norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", V, V) - np.einsum("ij,ij->i", VF, VF), 1e-30))
    white = 1.0 - (V @ space["white_means"].T) / norm[:, None]
    off = ~np.eye(len(U), dtype=bool)
    return np.stack([raw[off], white[off]], axis=1)


def _scale(held: np.ndarray) -> np.ndarray:
    """(2, 2) rows (location, spread) of the held-out scores of each distance. The spread falls
    back to the location when it cannot be measured (fewer than 3 scores, or all equal, as with
    two classes of one image each), i.e. the distance then counts relative to its mean; it is
    never below ``SPREAD_FLOOR`` (exact copies in a class would otherwise give a zero spread)."""
    loc = held.mean(axis=0)
    spread = held.std(axis=0, ddof=1) if len(held) >= 3 else np.zeros_like(loc)
    spread = np.where(spread <= 1e-6 * np.abs(loc), np.abs(loc), spread)
    return np.stack([loc, np.maximum(spread, SPREAD_FLOOR)], axis=1)


def base_scores(X: np.ndarray, model: UnknownModel) -> np.ndarray:
    """(n, 2) the ``raw`` and ``white`` distances of every row of X (see the module docstring)."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    raw = 1.0 - (U @ model.means.astype(np.float64).T).max(axis=1)
    V = U - model.center.astype(np.float64)
    F = model.metric.astype(np.float64)
    VF = V @ F
    norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", V, V) - np.einsum("ij,ij->i", VF, VF), 1e-30))
    white = 1.0 - ((V @ model.white_means.astype(np.float64).T) / norm[:, None]).max(axis=1)
    return np.stack([raw, white], axis=1)


def combine(base: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n,) the sum over the distances of ``(distance - location) / spread``."""
    scale = scale.astype(np.float64)
    return ((base - scale[:, 0]) / scale[:, 1]).sum(axis=1)


def unknown_score(X: np.ndarray, model: UnknownModel) -> np.ndarray:
    """(n,) "none of these" score: higher = farther from every taught class."""
    return combine(base_scores(X, model), model.scale)


def threshold(model: UnknownModel, quantile: float) -> tuple[float, str]:
    """The score above which an input is "none of these", and the rule that gave it in words.

    With ``m`` held-out scores, ``quantile * (m + 1)``-th smallest of them (interpolated), whose
    expected share of new known images above it is ``1 - quantile`` when the held-out scores are
    exchangeable with new ones (split conformal prediction). Beyond the largest (fewer than 19
    scores at 95 %) it is extrapolated: mean + Student-t quantile x standard deviation x
    sqrt(1 + 1/dof), with the held-out scores' degrees of freedom (the images of a class share
    their class mean, so 2 images in each of 5 classes count as 5, not 10). With one image per
    class every image was held out with its class: the mean of those scores + the normal
    quantile x ``ONE_SHOT_SD`` x ``pair_spread`` (the largest of them at quantile 1 and in heads
    of format 2).
    """
    _check_quantile(quantile)
    cal = np.sort(model.calibration.astype(np.float64))
    dof = int(model.dof[0])
    spread = float(model.pair_spread[0])
    if dof <= 0 and (spread <= 0 or quantile == 1):
        return float(cal[-1]), "other classes (one image per class: the largest held-out score)"
    if dof <= 0:
        from statistics import NormalDist  # the standard library's: scipy is slow to import

        z = NormalDist().inv_cdf(quantile) * ONE_SHOT_SD
        rule = f"other classes (one image per class: their mean + {z:.2f} spreads of the pairs)"
        return float(cal.mean() + z * spread), rule
    rule = f"held-out training images ({quantile:.0%} score lower)"
    m = len(cal)
    rank = quantile * (m + 1)
    if rank <= m or quantile == 1:
        return float(np.interp(min(rank, m), np.arange(1, m + 1), cal)), rule
    from scipy.stats import t  # scipy is heavy to import; only needed with few images

    df = max(dof, 2)
    bound = cal.mean() + t.ppf(quantile, df - 1) * cal.std(ddof=1) * np.sqrt(1 + 1 / df)
    return float(max(bound, cal[-1])), rule


def _check_quantile(quantile: float) -> None:
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")


# ---- head files written before the combined score -----------------------------------------------
def legacy_score(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(n,) ``1 - max_c cos(x, mean_c)``: the score of head files with class means only."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    return 1.0 - (U @ means.astype(np.float64).T).max(axis=1)


def legacy_threshold(
    calibration: np.ndarray, means: np.ndarray, quantile: float
) -> tuple[float, str]:
    """Their threshold: a quantile of their held-out scores, else the classes' separation."""
    _check_quantile(quantile)
    if len(calibration):
        value = float(np.quantile(calibration.astype(np.float64), quantile))
        return value, f"held-out training images ({quantile:.0%} score lower)"
    return class_separation(means), "class separation (one image per class: nothing held out)"


def legacy_held_out(X: np.ndarray, at: int, means: np.ndarray) -> np.ndarray:
    """Held-out max-cosine scores of the images X of class ``at`` (a new class of a head file
    with class means only): each against its class without it and the other classes' means."""
    U = unit_rows(np.asarray(X, dtype=np.float64))
    if len(U) < 2:
        return np.zeros(0, dtype=np.float32)
    s = U.sum(axis=0)
    cos = U @ means.astype(np.float64).T
    dot = U @ s - 1.0
    norm = np.sqrt(np.maximum(s @ s - 2 * (U @ s) + 1.0, 0.0))
    cos[:, at] = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 1e-12)
    return (1.0 - cos.max(axis=1)).astype(np.float32)


def class_separation(means: np.ndarray) -> float:
    """Median over class means of ``1 - cos`` to the nearest other class mean."""
    M = means.astype(np.float64)
    D = 1.0 - M @ M.T
    np.fill_diagonal(D, np.inf)
    return float(np.median(D.min(axis=1))) if len(M) > 1 else float("inf")


def nearest_proxy_distance(
    Z: np.ndarray, W: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> np.ndarray:
    """(n,) distance of every row of Z to its nearest proxy row of W in the head's own space
    (``1 - inner product`` for the inner product). Only for head files saved before the class
    means were stored (format 1 without ``unknown_means``)."""
    if distance == "inner_product":
        return 1.0 - (Z @ W.T).max(axis=1)
    return pairwise(Z, W, distance, VI).min(axis=1)


def proxy_separation(
    W: np.ndarray, proxy_class: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> float:
    """The oldest heads' threshold: median over proxies of the distance to the nearest proxy of
    another class."""
    D = 1.0 - W @ W.T if distance == "inner_product" else pairwise(W, W, distance, VI)
    D = np.where(proxy_class[:, None] == proxy_class[None, :], np.inf, D)
    nearest = D.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(nearest)) if nearest.size else float("inf")
