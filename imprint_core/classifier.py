"""ImprintClassifier: the IMPRINT framework as a scikit-learn estimator on embeddings."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import aggregation, generation, normalisation, unknown
from .head_io import load_head, save_head
from .presets import DEFAULT_PRESET, preset

# The constructor's defaults ARE the default preset's options (``ImprintClassifier()`` equals
# ``from_preset(DEFAULT_PRESET)``); the paper's ``ours`` stays reachable by name.
_DEFAULT = preset(DEFAULT_PRESET)

# Heavy: torch (through torch_head) imported where used, so that importing this module stays cheap.

OPTIONS: dict[str, tuple[str, ...]] = {
    "norm_pre": tuple(normalisation.NORM_PRE),
    "gen": generation.GEN_OPTIONS,
    "norm_post": tuple(normalisation.NORM_POST),
    "norm_inf": tuple(normalisation.NORM_INF),
    "agg": aggregation.AGG_OPTIONS,
    "distance": aggregation.DISTANCE_OPTIONS,
    "weighting": aggregation.WEIGHTING_OPTIONS,
    "kmeans_impl": ("fast", "sklearn"),
}


def to_numpy(X: Any) -> Any:
    """Torch tensors (any device) become numpy arrays; everything else passes through."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        return X.detach().cpu().numpy()
    return X


def label_repr(label: Any) -> str:
    """repr of a label without numpy's type wrapper (np.str_('cat') -> 'cat')."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def _check_finite(X: np.ndarray, what: str, y: np.ndarray | None = None) -> None:
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where = f"row {row}" + (f", class {label_repr(y[row])}" if y is not None else "")
        raise ValueError(
            f"{what} contain NaN or infinity ({int(bad.sum())} rows, first at {where}); "
            "embeddings must be finite numbers"
        )


class ImprintClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Weight imprinting on frozen embeddings: NORMpre -> GEN -> NORMpost; NORMinf -> AGG.

    Each class is represented by one or more proxy vectors generated from its training
    embeddings; an input goes to the class of its best-matching proxy (Westerhoff et al.,
    TMLR 2025). The defaults are the options of ``imprint_core.DEFAULT_PRESET``:
    ``ImprintClassifier()`` equals ``ImprintClassifier.from_preset(DEFAULT_PRESET)``.
    ``from_preset`` builds the published methods exactly (``from_preset("ours")`` is the
    paper's L2 / k-means, k=20 / L2 / L2 / max). As a transformer (like
    ``LinearDiscriminantAnalysis``), ``transform`` maps embeddings into the head's own space,
    the one its proxies live in.

    Parameters
    ----------
    norm_pre : {"none", "l2", "whiten"}, default="whiten"
        Normalisation of training embeddings before proxy generation (L2 without epsilon).
        ``whiten`` (beyond the paper, with ``norm_inf="whiten"``): L2, centring on the mean of
        the training embeddings, then shrunk within-class whitening learned from them.
    gen : {"mean", "all", "random", "kmeans", "kmedoids", "fps", "cov_max", "ls", "kls", \
"auto", "sized"}, default="mean"
        How proxies are generated per class. ``ls``/``kls`` solve least squares over all
        classes; ``auto`` chooses k per class by cross-validation; ``sized`` gives a class one
        k-means proxy per ``generation.SIZED_PER_PROXY`` images (the mean below that).
    k : int, default=1
        Proxies per class for the k-methods (the upper bound for ``auto``/``sized``). For the
        paper's k-methods a class with fewer than k samples keeps all of them.
    norm_post : {"none", "l2", "quantile"}, default="l2"
        Normalisation of proxies, class by class in the order of ``classes_``; ``quantile`` maps
        a class's proxies onto the value distribution of the proxies stored before it (the first
        class stays raw), so it depends on that order.
    norm_inf : {"none", "l2", "whiten"}, default="whiten"
        Normalisation of the embeddings to classify (``whiten`` goes with ``norm_pre``).
    agg : {"max", "mnn"}, default="max"
        ``max``: the class of the best-matching proxy; ``mnn``: vote of the m nearest proxies.
    distance : {"inner_product", "cosine", "euclidean", "manhattan", "mahalanobis"}, \
default="inner_product"
        Similarity used by the aggregation; ``max`` with a distance other than the inner product
        is 1-NN under that distance (as in the reference code).
    m : int, default=1
        Neighbours that vote under ``mnn`` (clamped to the number of proxies).
    weighting : {"uniform", "distance"}, default="uniform"
        Votes per neighbour: one each, or 1 / (distance + 1e-10).
    seed : int, default=0
        Seeds every random choice (k-means init, random, fps); the same fit gives the same head.
    lambda_reg : float or None, default=None
        Ridge term of ``ls``/``kls``. None takes the backbone's recipe value when ``backbone`` is
        one of the paper's models (resnet18/50 1e-4, vit_b_16 0.1, swin_b 0.05), else 0.05.
    temperature : float, default=0.05
        ``predict_proba`` is ``softmax(class_scores / temperature)``. Class scores are the best
        inner product per class (cosines when L2-normalised), minus the nearest distance for
        1-NN, or the vote share for m-NN; 0.05 spreads cosines that differ by 0.1 by e^2.
    kmeans_impl : {"fast", "sklearn"}, default="fast"
        ``fast`` is our torch k-means (same algorithm as scikit-learn, several times faster);
        ``sklearn`` calls ``sklearn.cluster.KMeans`` exactly as the paper's code did.
    whiten_shrinkage : float in (0, 1] or {"dof", "oas", "ledoit_wolf", "cv"}, default="cv"
        Only for ``norm_pre="whiten"``: shrinkage of the within-class covariance towards a
        multiple of the identity. A name estimates it from the training embeddings (``dof``:
        d / (d + n) with n the residual degrees of freedom; Oracle Approximating Shrinkage;
        Ledoit-Wolf): close to 1 with a few images per class, small with many. ``cv`` picks
        nu / (nu + n) for nu in d, d/4, d/16 by the held-out score of the whitened class-mean
        head (10 folds, ``imprint_core.shrinkage_cv``); ``dof`` with one image per class, at
        least as many images as dimensions, or a ``gen`` other than ``mean``.
    backbone : str or None, default=None
        Name of the backbone that made the embeddings; stored in saved heads.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    proxies_ : ndarray of shape (n_proxies, n_features), float32
        Every class's proxies, class by class in the order of ``classes_``.
    proxy_labels_ : ndarray of shape (n_proxies,)
        The class label of every proxy row.
    proxy_counts_ : ndarray of shape (n_classes,), int64
        Proxies per class.
    proxy_class_index_ : ndarray of shape (n_proxies,)
        Index into ``classes_`` of every proxy row (a property).
    auto_k_ : dict
        Only after ``gen="auto"``: class label -> the number of proxies chosen.
    whitener_ : normalisation.Whitener or None
        The fitted whitening (``mean``, ``matrix``, the ``shrinkage`` used) when
        ``norm_pre="whiten"``, else None.
    unknown_model_ : unknown.UnknownModel
        What ``unknown_score`` needs ("none of these", see ``imprint_core.unknown``): the class
        means, the centre, metric and class directions of the whitened space, the scale of the
        two distances and the calibration. None for head files of an older format. Built on
        first use (this or the two attributes below, ``unknown_score``, ``is_unknown``, the
        threshold, ``save``, the ONNX export), not by ``fit``: it costs more than most fits.
    unknown_means_ : ndarray of shape (n_classes, n_features), float32
        The L2 class means of the L2-normalised training embeddings.
    unknown_calibration_ : ndarray of shape (n_training_images,), float32
        Sorted ``unknown_score`` of every training image held out from its own class (or with
        it, when it is its class's only image): the threshold's calibration.
    unknown_threshold_ : float
        The ``unknown_score`` above which ``is_unknown`` says "none of these": the 95 % quantile
        of ``unknown_calibration_`` (a property; ``unknown_threshold(q)`` for others).
    n_features_in_ : int
        Number of features seen during fit.
    metadata_ : dict
        Only on heads read by ``load``: the file's metadata (format, versions, backbone, ...).

    See Also
    --------
    sklearn.neighbors.NearestCentroid : the class mean under the Euclidean distance.

    References
    ----------
    Westerhoff, Atefi, Koddenbrock, Figueroa, Löser, Rodner, Gers. Robust Weight Imprinting:
    Insights from Neural Collapse and Proxy-Based Aggregation. TMLR 2025, arXiv 2503.14572.

    Examples
    --------
    >>> import numpy as np
    >>> from imprint_core import ImprintClassifier
    >>> X = np.array([[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 0.8]])
    >>> y = np.array(["cat", "cat", "dog", "dog"])
    >>> clf = ImprintClassifier.from_preset("qi").fit(X, y)
    >>> clf.predict([[1.0, 0.2]])
    array(['cat'], dtype='<U3')
    >>> clf.proxy_counts_
    array([1, 1])
    >>> bool(clf.is_unknown([[-1.0, -1.0]])[0])
    True
    """

    def __init__(
        self,
        norm_pre: str = _DEFAULT["norm_pre"],
        gen: str = _DEFAULT["gen"],
        k: int = _DEFAULT["k"],
        norm_post: str = _DEFAULT["norm_post"],
        norm_inf: str = _DEFAULT["norm_inf"],
        agg: str = _DEFAULT["agg"],
        distance: str = _DEFAULT["distance"],
        m: int = _DEFAULT["m"],
        weighting: str = _DEFAULT["weighting"],
        seed: int = 0,
        lambda_reg: float | None = None,
        temperature: float = 0.05,
        kmeans_impl: str = "fast",
        whiten_shrinkage: float | str = _DEFAULT.get("whiten_shrinkage", 0.3),
        backbone: str | None = None,
    ):
        self.norm_pre = norm_pre
        self.gen = gen
        self.k = k
        self.norm_post = norm_post
        self.norm_inf = norm_inf
        self.agg = agg
        self.distance = distance
        self.m = m
        self.weighting = weighting
        self.seed = seed
        self.lambda_reg = lambda_reg
        self.temperature = temperature
        self.kmeans_impl = kmeans_impl
        self.whiten_shrinkage = whiten_shrinkage
        self.backbone = backbone

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ImprintClassifier:
        """A classifier configured as a published method: qi, hosoda, janson, ours, oracle.

        Parameters
        ----------
        name : str
            A key of ``imprint_core.PRESETS``: the paper's methods (qi, hosoda, janson, ours,
            oracle) or ours beyond it (auto, adaptive).
        **overrides
            Options that replace the preset's (any constructor parameter).

        Returns
        -------
        clf : ImprintClassifier
            The unfitted classifier.

        Raises
        ------
        ValueError
            If ``name`` is not a preset.
        """
        return cls(**{**preset(name), **overrides})

    def _check_params(self) -> None:
        for name, allowed in OPTIONS.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"unknown {name} {value!r}; valid values are: {', '.join(allowed)}"
                )
        for name in ("k", "m"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                hint = " (use gen='all' to keep every sample)" if name == "k" else ""
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}{hint}")
        if not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not (isinstance(self.temperature, numbers.Real) and self.temperature > 0):
            raise ValueError(f"temperature must be a number > 0, got {self.temperature!r}")
        if ("whiten" in (self.norm_pre, self.norm_inf)) and self.norm_pre != self.norm_inf:
            raise ValueError(
                "norm_pre='whiten' and norm_inf='whiten' go together: the whitening learned "
                f"from the training embeddings must also apply to inputs (got norm_pre="
                f"{self.norm_pre!r}, norm_inf={self.norm_inf!r})"
            )
        normalisation.check_shrinkage(self.whiten_shrinkage)
        if self.lambda_reg is not None and not (
            isinstance(self.lambda_reg, numbers.Real) and self.lambda_reg >= 0
        ):
            raise ValueError(f"lambda_reg must be None or a number >= 0, got {self.lambda_reg!r}")

    def _lambda(self) -> float:
        if self.lambda_reg is not None:
            return float(self.lambda_reg)
        return generation.LS_LAMBDA.get(self.backbone or "", generation.LS_LAMBDA_DEFAULT)

    # ------------------------------------------------------------------ fitting
    def _validate_train(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = to_numpy(X), to_numpy(y)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_all_finite=False)
        check_classification_targets(y)
        _check_finite(X, "training embeddings", y)
        return X, y

    def _normalise_pre(self, X: np.ndarray, y: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        try:
            if self.norm_pre == "whiten":
                shrinkage = self.whiten_shrinkage
                if shrinkage == "cv" and self.gen != "mean":
                    # cv scores the class-mean head: on classes made of several groups it
                    # whitened the groups together, and k-means proxies lost what they gain
                    # under dof (the "merged" example: 0.917 at k = 20 under dof, 0.861 under cv)
                    shrinkage = "dof"
                self.whitener_ = normalisation.fit_whitener(X, y_idx, shrinkage)
                return self.whitener_.transform(X)
            self.whitener_ = None
            return normalisation.NORM_PRE[self.norm_pre](X)
        except ValueError:
            row = int(np.flatnonzero(np.linalg.norm(X, axis=1) == 0)[0])
            raise ValueError(
                f"training embedding {row} (class {label_repr(y[row])}) is a zero vector: norm_pre={self.norm_pre!r} "
                "cannot normalise it; remove it or use norm_pre='none'"
            ) from None

    def fit(self, X: Any, y: Any) -> ImprintClassifier:
        """Imprint a head from embeddings X (n, d) and labels y (n,) of any hashable type.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training embeddings (numpy arrays or torch tensors on any device), finite.
        y : array-like of shape (n_samples,)
            Class labels (any hashable type numpy can sort); at least two classes.

        Returns
        -------
        self : ImprintClassifier
            The fitted classifier.
        """
        self._check_params()
        X, y = self._validate_train(X, y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"ImprintClassifier needs at least 2 classes to tell apart; y has only one "
                f"class: {label_repr(classes[0])}"
            )
        Xn = self._normalise_pre(X, y, y_idx)
        class_data = [Xn[y_idx == c] for c in range(len(classes))]
        ctx = self._context()
        proxies = generation.generate(class_data, self.gen, ctx, classes)
        proxies = normalisation.normalise_post_sequential(proxies, self.norm_post)
        self.classes_ = classes
        self._fit_unknown(X, y_idx)
        self._ls_state = ctx.state.get("ls")
        if "auto_k" in ctx.state:
            self.auto_k_ = ctx.state["auto_k"]
        self._set_proxies([np.asarray(p, dtype=np.float32) for p in proxies])
        return self

    def _fit_unknown(self, X: np.ndarray, y_idx: np.ndarray) -> None:
        # The statistics cost up to ten times a fit (the within-class scatter's eigenvectors,
        # every image's held-out scores): built on first use from a copy of the embeddings
        # (the caller may change X in place), so fits that never ask "none of these" skip them.
        self.__dict__.update(_unknown_model=None, _unknown_means=None, _unknown_calibration=None)
        self._unknown_pending = unknown.Pending(np.array(X, copy=True), y_idx, len(self.classes_))

    def _set_unknown(self, model) -> None:
        self.__dict__.update(
            _unknown_model=model,
            _unknown_means=model.means,
            _unknown_calibration=model.calibration,
            _unknown_pending=None,
        )

    def _unknown_attr(self, name: str) -> Any:
        """A "none of these" attribute, building the statistics first if a fit left them to do."""
        pending = self.__dict__.get("_unknown_pending")
        if pending is not None:
            self._set_unknown(pending.build())
        try:
            return self.__dict__[f"_{name}"]
        except KeyError:  # unfitted: as a missing attribute, for check_is_fitted and getattr
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    def _set_unknown_attr(self, name: str, value: Any) -> None:
        pending = self.__dict__.get("_unknown_pending")
        if pending is not None:  # build the rest before one part changes
            self._set_unknown(pending.build())
        self.__dict__[f"_{name}"] = value

    unknown_model_ = property(
        lambda self: self._unknown_attr("unknown_model"),
        lambda self, v: self._set_unknown_attr("unknown_model", v),
        doc="The :class:`unknown.UnknownModel` (built on first use after a fit).",
    )
    unknown_means_ = property(
        lambda self: self._unknown_attr("unknown_means"),
        lambda self, v: self._set_unknown_attr("unknown_means", v),
        doc="The L2 class means of the training embeddings (built on first use after a fit).",
    )
    unknown_calibration_ = property(
        lambda self: self._unknown_attr("unknown_calibration"),
        lambda self, v: self._set_unknown_attr("unknown_calibration", v),
        doc="The sorted held-out scores (built on first use after a fit).",
    )

    def _context(self) -> generation.GenContext:
        return generation.GenContext(
            k=int(self.k),
            seed=int(self.seed),
            lambda_reg=self._lambda(),
            kmeans_impl=self.kmeans_impl,
            norm_post=self.norm_post,
            norm_inf=self.norm_inf,
            distance=self.distance,
        )

    # ------------------------------------------------------------------ incremental classes
    def add_class(self, X: Any, label: Any) -> ImprintClassifier:
        """Imprint one new class into a fitted head without refitting the others.

        Per-class generators give the new class exactly the proxies a full fit would, and
        leave every other class untouched. With ``norm_post="quantile"`` the new class is
        mapped onto the proxies of all classes already stored, so the head can differ from a
        full fit, where classes are normalised in label order. ``ls``/``kls`` keep their
        sufficient statistics (sum x x^T, class sums and counts), add the new class to them
        and re-solve every class's weights, which the joint least squares requires.
        """
        check_is_fitted(self)
        self._check_params()
        if np.any(self.classes_ == label):
            raise ValueError(
                f"class {label_repr(label)} is already in the head; add_class adds new classes "
                "(refit to change an existing one)"
            )
        X = validate_data(
            self, to_numpy(X), dtype=[np.float64, np.float32], reset=False, ensure_all_finite=False
        )
        _check_finite(X, f"embeddings of class {label_repr(label)}")
        if self.norm_pre == "whiten":
            raise ValueError(
                "norm_pre='whiten' learns its transform from every class, so a class cannot be "
                "added without refitting; refit with all training embeddings"
            )
        try:
            Xn = normalisation.NORM_PRE[self.norm_pre](X)
        except ValueError:
            raise ValueError(
                f"class {label_repr(label)} holds a zero vector: norm_pre={self.norm_pre!r} cannot normalise it"
            ) from None
        try:
            classes = np.sort(np.append(self.classes_, np.asarray([label], dtype=object)))
            classes = classes.astype(np.result_type(self.classes_, np.asarray([label])))
        except TypeError:
            raise ValueError(
                f"class {label_repr(label)} cannot be ordered with the existing classes "
                f"(labels of type {self.classes_.dtype})"
            ) from None
        ctx = self._context()
        if self.gen in generation.JOINT:
            state = getattr(self, "_ls_state", None)
            if state is None:
                raise ValueError(
                    f"gen={self.gen!r}: this head carries no least-squares statistics (it was "
                    "loaded from a file); refit it with the training embeddings to add classes"
                )
            generation.add_to_least_squares(state, Xn, label, self.gen, ctx)
            per_class = state.proxies(list(classes), ctx.lambda_reg, Xn.dtype)
            per_class = normalisation.normalise_post_sequential(per_class, self.norm_post)
        else:
            ctx.rng = generation.class_rng(ctx.seed, label)
            new = generation.generate_class(Xn, self.gen, ctx)
            new = normalisation.NORM_POST[self.norm_post](new, self.proxies_.ravel())
            old = {c: self.proxies_of(c) for c in self.classes_}
            per_class = [new if c == label else old[c] for c in classes]
        self._add_unknown(X, label, classes)
        self.classes_ = classes
        self._set_proxies([np.asarray(p, dtype=np.float32) for p in per_class])
        return self

    def _add_unknown(self, X: np.ndarray, label: Any, classes: np.ndarray) -> None:
        """The new class's means and held-out scores, in the spaces learned at fit (the centre
        and whitening stay as they were: refit to learn them again). The stored scores of earlier
        images stay as they were too (a new class can only bring them closer to a class: the
        threshold errs towards flagging fewer images)."""
        at = int(np.flatnonzero(classes == label)[0])
        pending = self.__dict__.get("_unknown_pending")
        if pending is not None:  # not built yet: added in this order when it is
            pending.added.append((np.array(X, copy=True), at))
            return
        model = getattr(self, "unknown_model_", None)
        if model is not None:
            self._set_unknown(unknown.add_class(model, X, at))
            return
        if getattr(self, "unknown_means_", None) is None:
            return
        means = np.insert(
            self.unknown_means_, at, unknown.class_means(X, np.zeros(len(X), int), 1)[0], axis=0
        )
        self.unknown_means_ = means  # a head file of the format before the combined score
        self.unknown_calibration_ = np.sort(
            np.concatenate([self.unknown_calibration_, unknown.legacy_held_out(X, at, means)])
        )

    def add_classes(self, X: Any, y: Any) -> ImprintClassifier:
        """Fit if unfitted, else imprint every class of y as a new class (see add_class).

        Not named ``partial_fit``: scikit-learn's partial_fit adds samples to existing classes,
        which k-means proxies cannot absorb without the old data.
        """
        if not hasattr(self, "classes_"):
            return self.fit(X, y)
        X, y = to_numpy(X), np.asarray(to_numpy(y))
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        for label in np.unique(y):
            self.add_class(np.asarray(X)[y == label], label)
        return self

    def _set_proxies(self, per_class: list[np.ndarray]) -> None:
        self.proxies_ = np.ascontiguousarray(np.concatenate(per_class, axis=0), dtype=np.float32)
        self.proxy_counts_ = np.array([len(p) for p in per_class], dtype=np.int64)
        self.proxy_labels_ = self.classes_[np.repeat(np.arange(len(per_class)), self.proxy_counts_)]
        self._mahalanobis_vi = None

    @property
    def proxy_class_index_(self) -> np.ndarray:
        """Index into ``classes_`` of every proxy row."""
        check_is_fitted(self)
        return np.repeat(np.arange(len(self.classes_)), self.proxy_counts_)

    def imprint_class(self, X: Any, label: Any) -> np.ndarray:
        """The proxies a fit would imprint for class ``label`` from the embeddings ``X`` alone.

        Only for per-class generators, whose proxies depend on nothing but the class's own
        embeddings and its own seeded stream; NORMpost is applied without a reference, which is
        exact for ``none`` and ``l2``. Does not change the head (leave-one-out uses it).
        """
        self._check_params()
        if self.gen not in generation.PER_CLASS_ONLY:
            raise ValueError(
                f"imprint_class needs a per-class generator; gen={self.gen!r} imprints all "
                "classes jointly"
            )
        Xn = normalisation.NORM_PRE[self.norm_pre](np.asarray(X))
        ctx = self._context()
        ctx.rng = generation.class_rng(ctx.seed, label)
        proxies = generation.generate_class(Xn, self.gen, ctx)
        return np.asarray(normalisation.NORM_POST[self.norm_post](proxies, None), np.float32)

    def proxies_of(self, label: Any) -> np.ndarray:
        """The proxy rows of one class."""
        check_is_fitted(self)
        idx = np.flatnonzero(self.classes_ == label)
        if idx.size == 0:
            known = ", ".join(label_repr(c) for c in self.classes_)
            raise ValueError(f"unknown class {label_repr(label)}; the classes are {known}")
        start = int(self.proxy_counts_[: idx[0]].sum())
        return self.proxies_[start : start + int(self.proxy_counts_[idx[0]])]

    # ------------------------------------------------------------------ inference
    def _validate_test(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(
            self, to_numpy(X), dtype=[np.float64, np.float32], reset=False, ensure_all_finite=False
        )
        _check_finite(X, "embeddings to classify")
        try:
            if self.norm_inf == "whiten":
                return self.whitener_.transform(X, "input")
            return normalisation.NORM_INF[self.norm_inf](X)
        except ValueError as exc:
            raise ValueError(f"{exc} (norm_inf='l2')") from None

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings mapped into the head's own space, where they meet ``proxies_``.

        This is NORMinf as fitted (``norm_inf``: ``none`` leaves them, ``l2`` scales them to unit
        length, ``whiten`` applies ``whitener_``: L2, centring, whitening, L2). ``class_scores``
        compares exactly these vectors with the proxies, so a map or a nearest-neighbour list
        drawn from them shows the geometry the decisions are made in.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings from the head's backbone.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            The embeddings in the head's space (float32 or float64, as X).
        """
        return self._validate_test(X)

    def distances(self, X: Any, Y: Any = None) -> np.ndarray:
        """Distances in the head's space, under its ``distance`` option.

        Both sides are mapped by :meth:`transform`; for ``inner_product`` the "distance" is minus
        the inner product, so smaller is nearer for every option (Mahalanobis uses the proxies'
        covariance, as ``class_scores`` does). With ``agg="max"`` (or ``m=1``) the class score of
        ``class_scores`` is minus the smallest distance to the class's proxies.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings to measure from.
        Y : array-like of shape (n_others, n_features), default=None
            Embeddings to measure to; None measures to the proxies.

        Returns
        -------
        D : ndarray of shape (n_samples, n_others) or (n_samples, n_proxies)
        """
        Z = self.transform(X)
        W = self.proxies_.astype(Z.dtype, copy=False) if Y is None else self.transform(Y)
        W = W.astype(Z.dtype, copy=False)
        return aggregation.pairwise(Z, W, self.distance, self._mahalanobis())

    def class_scores(self, X: Any) -> np.ndarray:
        """Per-class scores, shape (n, n_classes); ``predict`` is their argmax.

        The inputs are compared with ``proxies_`` in the head's space (:meth:`transform`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings to score against every class's proxies, made by the backbone the head
            was fitted on (mapped by :meth:`transform`, i.e. ``norm_inf``, here).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``: the best inner product with a class's proxies
            (``agg="max"``), minus the nearest distance for 1-NN under another distance, or the
            vote share under ``agg="mnn"``.
        """
        Z = self.transform(X)
        W = self.proxies_.astype(Z.dtype, copy=False)
        VI = self._mahalanobis()
        return aggregation.class_scores(
            Z,
            W,
            self.proxy_class_index_,
            len(self.classes_),
            agg=self.agg,
            distance=self.distance,
            m=int(self.m),
            weighting=self.weighting,
            VI=VI,
        )

    def _mahalanobis(self) -> np.ndarray | None:
        if self.distance != "mahalanobis":
            return None
        if getattr(self, "_mahalanobis_vi", None) is None:
            self._mahalanobis_vi = aggregation.mahalanobis_vi(self.proxies_.astype(np.float64))
        return self._mahalanobis_vi

    def unknown_score(self, X: Any) -> np.ndarray:
        """(n,) how unlike every taught class each input is: higher = farther from all of them.

        Two distances to the classes, each in units of its spread over the training images
        held out, added (see ``imprint_core.unknown``): one minus the best cosine to the L2 class
        means (far for images of another kind) and the same after centring and within-class
        whitening (far for look-alikes of a class). The same for every preset; the head keeps
        what it needs (``unknown_model_``), so loaded heads give the same scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings to score against the taught classes.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            Higher means farther from every class; compare with ``unknown_threshold_``.
        """
        check_is_fitted(self)
        X = validate_data(
            self, to_numpy(X), dtype=[np.float64, np.float32], reset=False, ensure_all_finite=False
        )
        _check_finite(X, "embeddings to score")
        model = getattr(self, "unknown_model_", None)
        if model is not None:
            return unknown.unknown_score(X, model)
        means = getattr(self, "unknown_means_", None)
        if means is not None:  # a head file of the format before the combined score
            return unknown.legacy_score(X, means)
        Z = self.transform(X)  # a head file saved before the class means were stored
        W = self.proxies_.astype(Z.dtype, copy=False)
        return unknown.nearest_proxy_distance(Z, W, self.distance, self._mahalanobis())

    def unknown_threshold(self, quantile: float | None = None) -> float:
        """The score above which :meth:`is_unknown` says "none of these".

        The ``quantile`` (default ``unknown.UNKNOWN_QUANTILE``, 0.95) of the training images'
        held-out scores ``unknown_calibration_``: an input is unknown when it lies farther from
        the classes than that share of the user's own images lie from theirs (extrapolated with
        few images; with one image per class, a normal quantile around the scores of the images
        held out with their class). ``unknown_rule_`` says which.
        """
        return self._unknown_rule(quantile)[0]

    @property
    def unknown_threshold_(self) -> float:
        """:meth:`unknown_threshold` at the default quantile."""
        return self.unknown_threshold()

    @property
    def unknown_rule_(self) -> str:
        """In words, where ``unknown_threshold_`` comes from."""
        return self._unknown_rule(None)[1]

    @property
    def unknown_held_out_(self) -> bool:
        """Whether the threshold comes from training images held out from their own class (else
        from the separation of the classes: one image per class, or an older head file)."""
        model = getattr(self, "unknown_model_", None)
        if model is not None:
            return int(model.dof[0]) > 0
        calibration = getattr(self, "unknown_calibration_", None)
        return calibration is not None and len(calibration) > 0

    def _unknown_rule(self, quantile: float | None) -> tuple[float, str]:
        check_is_fitted(self)
        quantile = unknown.UNKNOWN_QUANTILE if quantile is None else quantile
        model = getattr(self, "unknown_model_", None)
        if model is not None:
            return unknown.threshold(model, quantile)
        means = getattr(self, "unknown_means_", None)
        if means is not None:
            return unknown.legacy_threshold(self.unknown_calibration_, means, quantile)
        W = self.proxies_.astype(np.float64)
        sep = unknown.proxy_separation(
            W, self.proxy_class_index_, self.distance, self._mahalanobis()
        )
        return sep, "proxy separation (a head file saved without class means)"

    def is_unknown(self, X: Any, quantile: float | None = None) -> np.ndarray:
        """(n,) True where ``unknown_score(X) > unknown_threshold(quantile)``: unlike every
        class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings to check against the threshold.
        quantile : float or None, default=None
            Share of the training images' held-out scores below the threshold (None:
            ``unknown.UNKNOWN_QUANTILE``, 0.95).

        Returns
        -------
        unknown : ndarray of shape (n_samples,), bool
            True for inputs that look like none of the taught classes.
        """
        return self.unknown_score(X) > self.unknown_threshold(quantile)

    def decision_function(self, X: Any) -> np.ndarray:
        """scikit-learn's convention: (n, C) scores, or (n,) = score[1] - score[0] for 2 classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings for which the two-class margin (or the class scores) is wanted.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            ``class_scores(X)``; with two classes the score of ``classes_[1]`` minus that of
            ``classes_[0]`` (positive: ``classes_[1]``).
        """
        s = self.class_scores(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(class_scores / temperature), computed in float64; rows sum to 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings whose class probabilities are wanted.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), float64
            Columns in the order of ``classes_``.
        """
        s = self.class_scores(X).astype(np.float64) / float(self.temperature)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The label of the best class (ties go to the first class in ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings to label, from the backbone the head was fitted on.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self.class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, backbone: str | None = None) -> None:
        """Write the head as safetensors with its options and labels as JSON metadata.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (conventionally ``*.safetensors``).
        backbone : str or None, default=None
            Name of the backbone that made the embeddings, stored in the file (None: the
            ``backbone`` parameter).

        Returns
        -------
        None
        """
        save_head(self, path, backbone=backbone)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImprintClassifier:
        """Read a head written by :meth:`save` (never unpickles).

        Parameters
        ----------
        path : str or os.PathLike
            A head file written by :meth:`save`.

        Returns
        -------
        clf : ImprintClassifier
            The fitted classifier, with the file's metadata in ``metadata_``.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        HeadFileError
            If the file is not an IMPRINT head, is truncated, was altered after saving or
            holds invalid options.
        """
        return load_head(cls, path)

    def to_torch(self):
        """The fitted head as a ``torch.nn.Module`` mapping embeddings to class scores."""
        from .torch_head import ImprintHead

        check_is_fitted(self)
        return ImprintHead.from_classifier(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        # transform maps embeddings into the head's space (NORMinf), keeping their float type
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # Quantile-mapped proxies scored by raw inner products (Hosoda et al.) cannot reach
        # sklearn's 0.83 training-accuracy bar on its centred blobs (a mean near the origin never
        # wins an inner product): a property of the method, declared as sklearn asks.
        tags.classifier_tags.poor_score = self.norm_post == "quantile" and self.norm_inf == "none"
        return tags
