"""Plotly figures for the geometry of a project: map, ETF heatmap, dispersion, accuracy vs k.

Plain functions from arrays / metric dicts to ``plotly.graph_objects.Figure``. Every figure colours
a class with ``class_colors`` (position of the class in the sorted class list), so one class has
one colour everywhere. Plotly is imported inside the functions (``import imprint_core`` stays
cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Tableau 10, then ten of Kelly's colours of maximum contrast: 20 distinguishable classes.
PALETTE = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
    "#0067A5", "#BE0032", "#008856", "#F6A600", "#604E97",
    "#882D17", "#8DB600", "#2B3D26", "#A1CAF1", "#E25822",
)  # fmt: skip
SIZES = {  # marker sizes (2-D, 3-D)
    "sample": (7, 4),
    "proxy": (17, 10),
    "mean": (15, 7),
    "test": (15, 7),
}
SYMBOLS = {  # marker symbols (2-D, 3-D); 3-D offers fewer shapes
    "sample": ("circle", "circle"),
    "proxy": ("diamond", "diamond"),
    "mean": ("x", "x"),
    "test": ("star", "cross"),
}
TEST_COLOR = "#222222"


def _key(label: Any) -> str:
    return str(label.item() if isinstance(label, np.generic) else label)


def class_colors(classes: Sequence[Any]) -> dict[str, str]:
    """{str(label): colour} by position in `classes` (pass the same sorted list everywhere)."""
    return {_key(c): PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}


def _classes(*label_arrays: Any, classes: Sequence[Any] | None = None) -> list[str]:
    if classes is not None:
        return [_key(c) for c in classes]
    found = [np.asarray(a) for a in label_arrays if a is not None and len(a)]
    return [_key(c) for c in np.unique(np.concatenate(found))] if found else []


def _scatter(coords: np.ndarray, **kw: Any):
    import plotly.graph_objects as go

    coords = np.atleast_2d(np.asarray(coords, dtype=float))
    if coords.shape[1] == 3:
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **kw)
    return go.Scatter(x=coords[:, 0], y=coords[:, 1], **kw)


def _marker(kind: str, dim: int, color: Any, outline: bool = False) -> dict[str, Any]:
    i = 1 if dim == 3 else 0
    marker: dict[str, Any] = {"size": SIZES[kind][i], "symbol": SYMBOLS[kind][i], "color": color}
    if outline:
        marker["line"] = {"width": 2 if dim == 2 else 1, "color": "#111111"}
    return marker


def _hover_data(names: Sequence[Any] | None, thumbs: Sequence[Any] | None, idx: np.ndarray):
    names_ = [str(names[i]) for i in idx] if names is not None else [f"#{i}" for i in idx]
    thumbs_ = [str(thumbs[i] or "") for i in idx] if thumbs is not None else [""] * len(idx)
    return np.array([names_, thumbs_], dtype=object).T


def embedding_map(
    coords: Any,
    labels: Any,
    *,
    proxies: Any = None,
    proxy_labels: Any = None,
    means: Any = None,
    mean_labels: Any = None,
    test_points: Any = None,
    test_labels: Any = None,
    names: Sequence[Any] | None = None,
    test_names: Sequence[Any] | None = None,
    thumbnails: Sequence[Any] | None = None,
    classes: Sequence[Any] | None = None,
    title: str | None = None,
):
    """The map: samples by class, proxies as large class-coloured diamonds, means, test points.

    coords (n, 2|3) and the other point sets are map coordinates (see projections.project).
    Traces: one per class (name = class), one "<class> proxies" per class with proxies, then
    "class means" and "test images" when given, and legend keys "proxies". Hover shows the file
    name; customdata[:, 1] carries an optional thumbnail (a data-URI) for a client-side hook,
    since Plotly's own hover label cannot draw images.
    """
    import plotly.graph_objects as go

    coords = np.asarray(coords, dtype=float)
    labels = np.array([_key(v) for v in np.asarray(labels).ravel()])
    if coords.ndim != 2 or coords.shape[1] not in (2, 3) or len(coords) != len(labels):
        raise ValueError(
            f"embedding_map needs coordinates (n, 2) or (n, 3) and n labels; got {coords.shape} "
            f"and {len(labels)} labels."
        )
    dim = coords.shape[1]
    order = _classes(labels, proxy_labels, mean_labels, classes=classes)
    colors = class_colors(order)
    fig = go.Figure()
    for c in order:
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        fig.add_trace(
            _scatter(
                coords[idx],
                mode="markers",
                name=c,
                legendgroup=c,
                marker={**_marker("sample", dim, colors[c]), "opacity": 0.75},
                customdata=_hover_data(names, thumbnails, idx),
                hovertemplate=f"<b>%{{customdata[0]}}</b><br>class {c}<extra></extra>",
            )
        )
    if proxies is not None and len(proxies):
        P = np.asarray(proxies, dtype=float)
        plab = np.array([_key(v) for v in np.asarray(proxy_labels).ravel()])
        if len(plab) != len(P):
            raise ValueError(f"{len(P)} proxies but {len(plab)} proxy labels.")
        for c in order:
            idx = np.flatnonzero(plab == c)
            if len(idx):
                fig.add_trace(
                    _scatter(
                        P[idx],
                        mode="markers",
                        name=f"{c} proxies",
                        legendgroup=c,
                        showlegend=False,
                        marker=_marker("proxy", dim, colors[c], outline=True),
                        hovertemplate=f"proxy of class {c}<extra></extra>",
                    )
                )
        fig.add_trace(_legend_key("proxies", "proxy", dim))
    if means is not None and len(means):
        Mu = np.asarray(means, dtype=float)
        mlab = [_key(v) for v in (mean_labels if mean_labels is not None else order)]
        fig.add_trace(
            _scatter(
                Mu,
                mode="markers",
                name="class means",
                marker=_marker("mean", dim, [colors.get(c, TEST_COLOR) for c in mlab], True),
                text=mlab,
                hovertemplate="mean of class %{text}<extra></extra>",
            )
        )
    if test_points is not None and len(test_points):
        T = np.asarray(test_points, dtype=float)
        tlab = None if test_labels is None else [_key(v) for v in test_labels]
        color = TEST_COLOR if tlab is None else [colors.get(c, TEST_COLOR) for c in tlab]
        idx = np.arange(len(T))
        fig.add_trace(
            _scatter(
                T,
                mode="markers",
                name="test images",
                marker=_marker("test", dim, color, outline=True),
                customdata=_hover_data(test_names, None, idx),
                text=tlab if tlab is not None else [""] * len(T),
                hovertemplate="<b>%{customdata[0]}</b><br>predicted %{text}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        template="plotly_white",
        legend={"itemsizing": "constant"},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return fig


def _legend_key(name: str, kind: str, dim: int):
    """A legend-only entry explaining a marker shape."""
    nan = np.full((1, dim), np.nan)
    return _scatter(
        nan, mode="markers", name=name, marker=_marker(kind, dim, "#888888", True), hoverinfo="skip"
    )


def _centred_cosines(means: np.ndarray) -> np.ndarray:
    centred = means - means.mean(axis=0)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def cosine_heatmap(means: Any, labels: Sequence[Any] | None = None):
    """Cosines of the centred class means (left) beside the ideal simplex ETF (right).

    The ideal has 1 on the diagonal and -1/(C-1) elsewhere: every pair of classes equally far
    apart. Traces: "your classes", "ideal simplex ETF".
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    M = np.asarray(means, dtype=float)
    if M.ndim != 2 or len(M) < 2:
        raise ValueError(f"cosine_heatmap needs the means of at least two classes; got {M.shape}.")
    C = len(M)
    names = [_key(v) for v in labels] if labels is not None else [str(i) for i in range(C)]
    ideal = np.full((C, C), -1.0 / (C - 1))
    np.fill_diagonal(ideal, 1.0)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Your classes (centred means)", f"Ideal simplex ETF (-1/{C - 1})"),
        horizontal_spacing=0.12,
    )
    for col, (name, z) in enumerate(
        [("your classes", _centred_cosines(M)), ("ideal simplex ETF", ideal)], start=1
    ):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=names,
                y=names,
                name=name,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                showscale=col == 2,
                texttemplate="%{z:.2f}" if C <= 12 else None,
                hovertemplate="%{y} vs %{x}: cosine %{z:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


DISPERSION_KINDS = {
    "variance": (
        "variance",
        "Within-class variance<br><sup>mean squared distance to the class mean</sup>",
    ),
    "cdnv": ("cdnv_mean", "CDNV<br><sup>class spread / distance to the other classes</sup>"),
}


def dispersion_bars(metrics: dict[str, Any], kind: str = "both"):
    """Per-class dispersion bars from an nc_metrics result: "variance", "cdnv" or "both"."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = list(DISPERSION_KINDS) if kind == "both" else [kind]
    if any(k not in DISPERSION_KINDS for k in kinds):
        raise ValueError(f"Unknown dispersion kind {kind!r}; allowed: variance, cdnv, both.")
    per_class = metrics["per_class"]
    order = [_key(c) for c in per_class]
    colors = class_colors(metrics.get("classes", list(per_class)))
    fig = make_subplots(
        rows=1, cols=len(kinds), subplot_titles=[DISPERSION_KINDS[k][1] for k in kinds]
    )
    for col, k in enumerate(kinds, start=1):
        field = DISPERSION_KINDS[k][0]
        fig.add_trace(
            go.Bar(
                x=order,
                y=[per_class[c][field] for c in per_class],
                name=k,
                marker_color=[colors.get(c, TEST_COLOR) for c in order],
                customdata=[per_class[c]["n"] for c in per_class],
                hovertemplate="%{x}: %{y:.3g} (%{customdata} images)<extra>" + k + "</extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


REFERENCE_STYLE = {  # curve["references"] key -> (legend name, dash)
    "mean": ("mean (Qi et al.)", "dash"),
    "ls": ("least squares (oracle)", "dot"),
}


def accuracy_vs_k_figure(curve: dict[str, Any]):
    """Cross-validated accuracy vs k per GEN method, with the mean and least-squares lines.

    `curve` is the result of kcurve.accuracy_vs_k. Traces: one per GEN method (name = method),
    then one horizontal line per reference.
    """
    import plotly.graph_objects as go

    ks = list(curve["ks"])
    fig = go.Figure()
    for i, (gen, res) in enumerate(curve["gens"].items()):
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=100 * np.asarray(res["mean"], dtype=float),
                error_y={"type": "data", "array": 100 * np.asarray(res["std"], dtype=float)},
                mode="lines+markers",
                name=gen,
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate=f"{gen}, k=%{{x}}: %{{y:.1f}}%<extra></extra>",
            )
        )
    for key, ref in curve.get("references", {}).items():
        name, dash = REFERENCE_STYLE.get(key, (key, "dashdot"))
        fig.add_trace(
            go.Scatter(
                x=[min(ks), max(ks)],
                y=[100 * ref["mean"]] * 2,
                mode="lines",
                name=name,
                line={"dash": dash, "color": "#555555" if key == "mean" else "#000000"},
                hovertemplate=f"{name}: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        template="plotly_white",
        xaxis={"title": "k (proxies per class)", "type": "log", "tickvals": ks},
        yaxis={"title": "accuracy (%)"},
        title=curve.get("cv_description"),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def confusion_matrix_figure(cm: Any, labels: Sequence[Any], normalize: bool = True):
    """Confusion matrix (rows: true class, columns: predicted); colour = share of the row."""
    import plotly.graph_objects as go

    cm = np.asarray(cm)
    names = [_key(v) for v in labels]
    if cm.ndim != 2 or cm.shape != (len(names), len(names)):
        raise ValueError(
            f"confusion matrix of shape {cm.shape} does not match {len(names)} labels."
        )
    rows = cm.sum(axis=1, keepdims=True)
    z = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) if normalize else cm
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=cm,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            name="confusion",
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        template="plotly_white",
        xaxis={"title": "predicted"},
        yaxis={"title": "true", "autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig
