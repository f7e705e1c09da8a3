"""Neural-collapse metrics of labelled embeddings (imprint-spec section 2, anchors section 6).

Everything is computed in float64 in the span of the data: when there are fewer samples than
dimensions the samples are first rotated into an n-dimensional basis (one QR), which keeps every
inner product, so d = 1280 costs no more than d = n. NC1 is evaluated exactly in the (at most
C - 1)-dimensional between-class subspace, where the pseudo-inverse of Sigma_B lives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .threads import one_thread

# Heavy: scipy imported where used, so that importing this module stays cheap.

EPS32 = float(np.finfo(np.float32).eps)  # the reference normalises with x / (||x|| + eps32)
FEW_SHOT_RATIO = 10  # smallest class * 10 < d: covariance estimates are badly under-sampled
MEAN_NOISE_LIMIT = 0.25  # share of the class-mean spread that is sampling noise before we warn
ALLCLOSE_ATOL = 1e-8  # np.allclose(Sigma_B, 0) as in the reference

# variant -> does the within-class scatter carry the reference code's extra mu_G mu_G^T term?
VARIANTS: dict[str, bool] = {"textbook": False, "reference": True}


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows divided by (norm + float32 eps), as the reference NC script does."""
    X = np.asarray(X, dtype=np.float64)
    return X / (np.linalg.norm(X, axis=-1, keepdims=True) + EPS32)


def _py(label: Any) -> Any:
    """A plain Python scalar for numpy labels (for dict keys and messages)."""
    return label.item() if isinstance(label, np.generic) else label


def _check_inputs(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"nc_metrics needs a 2-D array of embeddings (n, d); got shape {X.shape}.")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"nc_metrics needs one label per embedding: {len(X)} embeddings but labels of shape "
            f"{y.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError("nc_metrics got embeddings with NaN or infinite values.")
    return X, y


def _span_coordinates(X: np.ndarray) -> np.ndarray:
    """Coordinates of the rows in an orthonormal basis of (a space containing) their span."""
    n, d = X.shape
    if n >= d:
        return X
    _, r = np.linalg.qr(X.T)  # X^T = Q R, so X Q = R^T
    return r.T


def _eig_tol(eigs: np.ndarray, dim: int) -> float:
    """numpy.linalg.matrix_rank's default tolerance for a dim x dim symmetric matrix."""
    top = float(eigs.max()) if eigs.size else 0.0
    return top * dim * np.finfo(np.float64).eps


def _pairs_mean(mat: np.ndarray) -> float:
    iu = np.triu_indices(len(mat), k=1)
    return float(np.mean(mat[iu])) if iu[0].size else float("nan")


def _between_subspace(M: np.ndarray, C: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (rows) of Sigma_B = M^T M / C above the rank tolerance."""
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    eig = s**2 / C
    keep = eig > _eig_tol(eig, d)
    return eig[keep], vt[keep]


def _nc1_terms(
    A: np.ndarray, mu_g: np.ndarray, eig_b: np.ndarray, v_b: np.ndarray, C: int
) -> tuple[float, float]:
    """Tr(Sigma_W Sigma_B^+)/C for Sigma_W = A^T A, and the reference quirk's extra term."""
    within = ((A @ v_b.T) ** 2).sum(axis=0)
    textbook = float((within / eig_b).sum() / C)
    extra = float((((v_b @ mu_g) ** 2) / eig_b).sum() / C)
    return textbook, extra


def _within_and_vci(
    A: np.ndarray, mu_g: np.ndarray, M: np.ndarray, C: int, d: int, quirk: bool, rank_b: int
) -> tuple[int, float]:
    """rank(Sigma_W) and VCI = 1 - Tr(Sigma_B (Sigma_W + Sigma_B)^+) / rank(Sigma_B).

    The eigenvalues of Sigma_W give its rank; when it is clearly full rank the total scatter is
    invertible and Tr(Sigma_B T^-1) follows from a Cholesky factor and Woodbury in C dimensions;
    otherwise (few samples, small r) the pseudo-inverse of T is taken from its own
    eigendecomposition.
    """
    sigma_w = A.T @ A
    if quirk:
        sigma_w += np.outer(mu_g, mu_g)
    eig_w = np.linalg.eigvalsh(sigma_w)
    rank_w = int((eig_w > _eig_tol(eig_w, d)).sum())
    if rank_b == 0:
        return rank_w, float("nan")
    tol_t = (eig_w[-1] + (M**2).sum() / C) * d * np.finfo(np.float64).eps
    if eig_w[0] > 1e3 * tol_t:
        from scipy.linalg import cho_factor, cho_solve

        k = M @ cho_solve(cho_factor(sigma_w), M.T)  # M Sigma_W^-1 M^T
        # M T^-1 M^T = K - K (C I + K)^-1 K  (Woodbury with T = Sigma_W + M^T M / C)
        mtm = k - k @ np.linalg.solve(C * np.eye(C) + k, k)
        ratio = float(np.trace(mtm) / C)
    else:
        eig_t, vec_t = np.linalg.eigh(sigma_w + M.T @ M / C)
        keep = eig_t > _eig_tol(eig_t, d)
        proj = M @ vec_t[:, keep]  # (C, rank_t)
        ratio = float(((proj**2).sum(axis=0) / eig_t[keep]).sum() / C)
    return rank_w, 1.0 - ratio / rank_b


def _nc2(mu: np.ndarray) -> dict[str, Any]:
    """Simplex-ETF statistics of the class means, centred at the mean of the class means.

    Centring at the mean of the means (not the sample-weighted mu_G) keeps class imbalance from
    looking like a departure from the simplex; for balanced classes both are the same.
    """
    C = len(mu)
    centred = mu - mu.mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    unit = centred / np.maximum(norms, np.finfo(np.float64).tiny)[:, None]
    cos = unit @ unit.T
    iu = np.triu_indices(C, k=1)
    ideal = -1.0 / (C - 1)
    gram_n = cos / max(np.linalg.norm(cos), np.finfo(np.float64).tiny)
    etf = (np.eye(C) - 1.0 / C) / np.sqrt(C - 1)
    return {
        "equinorm": float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan"),
        "centred_mean_norms": norms,
        "cosine_matrix": cos,
        "equiangularity_mean": float(cos[iu].mean()),
        "equiangularity_std": float(cos[iu].std()),
        "equiangularity_deviation": float(np.abs(cos[iu] - ideal).mean()),
        "equiangularity_ideal": ideal,
        "etf_distance": float(np.linalg.norm(gram_n - etf)),
    }


def _head_metrics(
    head: Any,
    X_in: np.ndarray,
    X: np.ndarray,
    classes: np.ndarray,
    mu_x: np.ndarray,
    normalize: bool,
) -> tuple[dict[str, Any], dict[Any, dict[str, Any]], list[str]]:
    """NC4-style head / nearest-class-mean agreement and per-class proxy spread."""
    notes: list[str] = []
    pred = np.asarray(head.predict(X_in))
    sq = (X**2).sum(1)[:, None] - 2.0 * X @ mu_x.T + (mu_x**2).sum(1)[None, :]
    ncc = classes[np.argmin(sq, axis=1)]
    agreement = float(np.mean(pred == ncc))
    missing = [str(_py(c)) for c in classes if c not in set(np.asarray(head.classes_).tolist())]
    if missing:
        notes.append(
            "The head was not trained on class(es) "
            + ", ".join(repr(m) for m in missing)
            + ", so it can never agree with the nearest class mean there."
        )
    P = np.asarray(head.proxies_, dtype=np.float64)
    if normalize:
        P = l2_normalize(P)
    plab = np.asarray(head.proxy_labels_)
    per_class: dict[Any, dict[str, Any]] = {}
    for i, c in enumerate(classes):
        pc = P[plab == c]
        if len(pc) == 0:
            continue
        diff = pc[:, None, :] - pc[None, :, :]
        dist = np.sqrt((diff**2).sum(-1))
        per_class[_py(c)] = {
            "n_proxies": len(pc),
            "proxy_spread": _pairs_mean(dist) if len(pc) > 1 else 0.0,
            "proxy_to_mean": float(np.linalg.norm(pc - mu_x[i], axis=1).mean()),
        }
    return {"nc4_agreement": agreement}, per_class, notes


def nc_metrics(
    X: Any,
    y: Any,
    head: Any = None,
    *,
    variant: str = "textbook",
    normalize: bool = True,
    head_inputs: Any = None,
) -> dict[str, Any]:
    """Neural-collapse metrics of embeddings X (n, d) with labels y (n,).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings, finite.
    y : array-like of shape (n_samples,)
        Class labels; at least two classes.
    head : ImprintClassifier or None, default=None
        A fitted classifier; adds NC4 agreement and per-class proxy spread.
    variant : {"textbook", "reference"}, default="textbook"
        "textbook" centres each class at its mean; "reference" reproduces the reference code's
        within-class centring at mu_c - mu_G (Sigma_W gains mu_G mu_G^T), to match the paper.
    normalize : bool, default=True
        L2-normalise rows first (x / (||x|| + float32 eps)), as the reference does.
    head_inputs : array-like of shape (n_samples, n_features) or None, default=None
        The embeddings the head classifies when X is those embeddings mapped into another space
        (``head.transform(E)`` for the head's own space); None: X itself.

    Returns
    -------
    metrics : dict
        Floats (``nc1``, ``vci``, ``cdnv``, ...), arrays (``cdnv_matrix``, ``cosine_matrix``,
        ``centred_mean_norms``), per-class dicts under ``"per_class"``, plus ``"warnings"``
        (sentences) and ``"reliable"`` (metric -> bool) that say where a number should not be
        trusted (few samples, two classes, ...).
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown NC variant {variant!r}; allowed: {', '.join(VARIANTS)}.")
    with one_thread():
        return _nc_metrics(X, y, head, variant, normalize, head_inputs)


def _nc_metrics(
    X: Any, y: Any, head: Any, variant: str, normalize: bool, head_inputs: Any = None
) -> dict[str, Any]:
    X_in = X if head_inputs is None else head_inputs
    X, y = _check_inputs(X, y)
    classes, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    C = len(classes)
    if C < 2:
        only = repr(_py(classes[0])) if C else "none"
        raise ValueError(f"nc_metrics needs at least two classes; got only {only}.")
    if normalize:
        X = l2_normalize(X)
    n, d = X.shape

    onehot = np.zeros((n, C))
    onehot[np.arange(n), inv] = 1.0
    Z = _span_coordinates(X)
    mu = (onehot.T @ Z) / counts[:, None]
    mu_g = Z.mean(axis=0)
    M = mu - mu_g
    within = Z - mu[inv]
    A = within * np.sqrt(1.0 / (C * counts[inv]))[:, None]
    var_c = np.bincount(inv, weights=(within**2).sum(1), minlength=C) / counts

    quirk = VARIANTS[variant]
    eig_b, v_b = _between_subspace(M, C, d)
    rank_b = len(eig_b)
    trace_b = float((M**2).sum() / C)
    b_zero = float((M**2).sum(0).max() / C) <= ALLCLOSE_ATOL  # allclose(Sigma_B, 0)
    if b_zero or rank_b == 0:
        nc1_text = nc1_ref = float("inf")
    else:
        nc1_text, extra = _nc1_terms(A, mu_g, eig_b, v_b, C)
        nc1_ref = nc1_text + extra
    trace_w = float((A**2).sum() + (mu_g @ mu_g if quirk else 0.0))
    rank_w, vci = _within_and_vci(A, mu_g, M, C, d, quirk, 0 if b_zero else rank_b)

    gram = mu @ mu.T
    dist2 = np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2.0 * gram
    with np.errstate(divide="ignore", invalid="ignore"):
        cdnv = (var_c[:, None] + var_c[None, :]) / (2.0 * np.maximum(dist2, 0.0))
    np.fill_diagonal(cdnv, np.nan)
    nc2 = _nc2(mu)

    out: dict[str, Any] = {
        "variant": variant,
        "normalized": normalize,
        "n_samples": n,
        "n_classes": C,
        "dim": d,
        "classes": [_py(c) for c in classes],
        "class_sizes": counts.tolist(),
        "nc1": nc1_ref if quirk else nc1_text,
        "nc1_textbook": nc1_text,
        "nc1_reference": nc1_ref,
        "nc1_quotient": trace_w / trace_b if trace_b > 0 else float("inf"),
        "vci": vci,
        "trace_w": trace_w,
        "trace_b": trace_b,
        "rank_w": rank_w,
        "rank_b": 0 if b_zero else rank_b,
        "cdnv": _pairs_mean(cdnv),
        "cdnv_matrix": cdnv,
        **nc2,
    }
    per_class: dict[Any, dict[str, Any]] = {}
    for i, c in enumerate(classes):
        others = np.delete(cdnv[i], i)
        per_class[_py(c)] = {
            "n": int(counts[i]),
            "variance": float(var_c[i]),
            "cdnv_mean": float(others.mean()),
            "centred_mean_norm": float(nc2["centred_mean_norms"][i]),
        }
    noise = _mean_noise_fraction(var_c, counts, M)
    out["mean_noise_fraction"] = noise
    warnings, reliable = _reliability(classes, counts, d, noise, b_zero)
    if head is not None:
        mu_x = (onehot.T @ X) / counts[:, None]
        head_out, proxy_stats, notes = _head_metrics(head, X_in, X, classes, mu_x, normalize)
        out.update(head_out)
        for c, stats in proxy_stats.items():
            per_class[c].update(stats)
        warnings += notes
        reliable["nc4"] = not notes
    out["per_class"] = per_class
    out["warnings"] = warnings
    out["reliable"] = reliable
    return out


def _mean_noise_fraction(var_c: np.ndarray, counts: np.ndarray, M: np.ndarray) -> float:
    """Expected squared error of the class means over their mean squared distance to mu_G."""
    spread = float((M**2).sum(1).mean())
    noise = float(np.mean(var_c / np.maximum(counts - 1, 1) * (counts > 1)))
    return noise / spread if spread > 0 else float("inf")


def _reliability(
    classes: np.ndarray, counts: np.ndarray, d: int, noise: float, b_zero: bool
) -> tuple[list[str], dict[str, bool]]:
    """Plain-language warnings and per-metric reliability flags."""
    C = len(classes)
    warn: list[str] = []
    ok = {"nc1": True, "vci": True, "cdnv": True, "nc2": True}
    smallest = int(counts.min())
    if b_zero:
        warn.append(
            "The class means (almost) coincide, so there is no between-class spread: NC1 is "
            "infinite and VCI undefined; the classes cannot be told apart by their means."
        )
        ok.update(nc1=False, vci=False, nc2=False)
    if smallest * FEW_SHOT_RATIO < d:
        warn.append(
            f"Only {smallest} image(s) in the smallest class for {d} embedding dimensions: NC1 "
            "and VCI use pseudo-inverses of covariance matrices that are badly under-sampled "
            "here, so they are unstable (and tend to look more collapsed than the data is). "
            "Trust the per-class variances and CDNV more."
        )
        ok.update(nc1=False, vci=False)
    if noise > MEAN_NOISE_LIMIT and not b_zero:
        warn.append(
            f"With this few images per class, about {min(noise, 1.0):.0%} of the apparent spread "
            "of the class means is sampling noise: NC1 and the simplex (NC2) numbers are rough."
        )
        ok.update(nc1=False, nc2=False)
    if C == 2:
        warn.append(
            "With two classes the between-class covariance has rank 1: NC1 only measures the "
            "spread along the line joining the two class means, and the simplex numbers (NC2) "
            "are perfect by construction, so they say nothing."
        )
        ok.update(nc1=False, nc2=False)
    single = [repr(_py(c)) for c, k in zip(classes, counts, strict=True) if k == 1]
    if single:
        warn.append(
            f"Class(es) {', '.join(single)} have a single image: their spread cannot be measured "
            "(it counts as 0), which makes them look perfectly collapsed."
        )
        ok["cdnv"] = False
    return warn, ok


PRIMER = """\
**What this tab shows, in plain words**

- **Embedding**: the frozen backbone turns every image into a list of numbers, a point in a
  space with many dimensions. Similar images land close together.
- **Proxy**: a stored point that stands for a class. A new image gets the class of the proxy it
  is most similar to. One proxy per class is usually the class mean (the average point);
  k-means proxies are several points per class, one per group of similar images.
- **The map** squeezes the points into 2 or 3 dimensions so you can look at them. PCA keeps the
  directions with the most spread (the axis titles say how much of the spread each keeps);
  UMAP keeps who is next to whom, so its axes have no units and distances between far-apart
  groups mean little.
- **Neural collapse** is what a network's last layer looks like after long training on its own
  classes. **NC1** (variability collapse): all images of a class sit on almost one point; the
  number compares the spread inside the classes with the spread between them (0 = collapsed,
  above 1 = classes overlap). **VCI** says the same on a 0..1 scale (0 = collapsed).
  **NC2**: the class means are equally far from each other, like the corners of a regular
  triangle (3 classes) or tetrahedron (4): a *simplex ETF*. The heatmap compares the cosines
  between your class means with that ideal, where every pair has the same cosine -1/(C-1).
- **Why it matters here**: a backbone is collapsed on the classes it was trained on, not
  necessarily on *yours*. When a class is spread out or made of several groups (a "tops" class
  of T-shirts *and* coats), its single mean lands between the groups, and several proxies help.
  The advice below and the accuracy-vs-k curve measure that on your own images.
- With few images per class some numbers are unreliable; the readings say so.
"""


def primer() -> str:
    """A short plain-words introduction (Markdown) to the Geometry view, for a newcomer."""
    return PRIMER


def _unreliable(m: dict[str, Any], *keys: str) -> str:
    if all(m["reliable"].get(k, True) for k in keys):
        return ""
    return " Not reliable here: see the note below."


def describe_metrics(m: dict[str, Any]) -> list[str]:
    """Short plain-language readings of an nc_metrics result (for a teaching panel).

    The readings that are reliable at this number of images come first. NC1, VCI and the simplex
    numbers are always shown; when nc_metrics flags them (few images per class, noisy means, two
    classes) they follow the reliable ones, each saying so, and the warnings come last.
    """
    keyed: list[tuple[str | None, str]] = []
    if np.isfinite(m["nc1"]):
        level = "strongly" if m["nc1"] < 0.1 else "fairly" if m["nc1"] < 1 else "hardly"
        keyed.append(
            (
                "nc1",
                f"NC1 = {m['nc1']:.3g}: the classes are {level} collapsed (0 = every image sits on "
                "its class mean; above 1 = the spread inside a class exceeds the spread between "
                "them)." + _unreliable(m, "nc1"),
            )
        )
    else:
        keyed.append(
            (None, "NC1 is infinite: the class means coincide, nothing separates the classes.")
        )
    if np.isfinite(m["vci"]):
        keyed.append(
            (
                "vci",
                f"VCI = {m['vci']:.2f}: the share of the spread along the directions that separate "
                "the classes that lies inside the classes (0 = collapsed, 1 = not at all)."
                + _unreliable(m, "vci"),
            )
        )
    else:
        keyed.append((None, "VCI is undefined: the class means coincide."))
    keyed.append(
        (
            "cdnv",
            f"CDNV = {m['cdnv']:.3g}: average spread of two classes relative to the distance of "
            "their means (small = well separated)." + _unreliable(m, "cdnv"),
        )
    )
    keyed.append(
        (
            "nc2",
            f"Class means: angle cosines {m['equiangularity_mean']:.2f} +/- "
            f"{m['equiangularity_std']:.2f} (ideal simplex {m['equiangularity_ideal']:.2f}), "
            f"distance to a simplex ETF {m['etf_distance']:.2f} (0 = perfect)."
            + _unreliable(m, "nc2"),
        )
    )
    if "nc4_agreement" in m:
        keyed.append(
            (
                "nc4",
                f"The head agrees with the nearest class mean on {m['nc4_agreement']:.0%} of the "
                "images: below 100% means the extra proxies change decisions.",
            )
        )

    def reliable(key: str | None) -> bool:
        return key is None or m["reliable"].get(key, True)

    first = [line for key, line in keyed if reliable(key)]
    rough = [line for key, line in keyed if not reliable(key)]
    return first + rough + list(m["warnings"])


MAP_MIXED = 0.05  # share of a pair's dots nearer the other class's mean before a map "mixes" them


def describe_map(coords: Any, labels: Any, means: Any = None) -> str:
    """What a map of labelled points shows, in one or two sentences for a student.

    For every pair of classes, the share of their dots that lie nearer (in the map) to the other
    class's mean than to their own; the pair that mixes most is named when that share is above
    ``MAP_MIXED``, else the classes are said to form separate clouds. A map keeps 2 or 3
    dimensions of many, so the sentence says that the head, which uses all of them, can still
    tell mixed classes apart.

    Parameters
    ----------
    coords : array-like of shape (n_samples, 2 or 3)
        The map coordinates of the points.
    labels : array-like of shape (n_samples,)
        Their classes.
    means : array-like of shape (n_classes, 2 or 3), default=None
        The class means as drawn, in sorted class order; None: the means of ``coords``.

    Returns
    -------
    str
    """
    P = np.asarray(coords, dtype=np.float64)
    y = np.asarray(labels)
    classes = np.unique(y)
    if means is None:
        means = [P[y == c].mean(axis=0) for c in classes]
    centre = dict(zip(classes.tolist(), np.asarray(means, dtype=np.float64), strict=True))
    worst, share = None, 0.0
    for i, a in enumerate(classes.tolist()):
        for b in classes.tolist()[i + 1 :]:
            pair = (y == a) | (y == b)
            to_a = ((P[pair] - centre[a]) ** 2).sum(axis=1)
            to_b = ((P[pair] - centre[b]) ** 2).sum(axis=1)
            mixed = float(np.mean((to_b < to_a) != (y[pair] == b)))
            if worst is None or mixed > share:
                worst, share = (a, b), mixed
    if worst is None or share <= MAP_MIXED:
        return (
            "In the map, look for separate clouds: every class's dots lie around their own "
            "cross (class mean), nearer to it than to any other class's cross."
        )
    a, b = (repr(_py(c)) for c in worst)
    return (
        f"In the map, {a} and {b} overlap most: {share:.0%} of their dots lie nearer the other "
        "class's cross (class mean) than their own. The map keeps only a few of the embedding's "
        "dimensions; the head uses all of them, so it can tell apart more than the map shows "
        "(a held-out accuracy says how much)."
    )
