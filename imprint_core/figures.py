"""Plotly figures for the geometry of a project: map, ETF heatmap, dispersion, accuracy vs k.

Plain functions from arrays / metric dicts to ``plotly.graph_objects.Figure``. Every figure colours
a class with ``class_colors`` (position of the class in the sorted class list), so one class has
one colour everywhere. Plotly is imported inside the functions (``import imprint_core`` stays
cheap).

Every user-supplied string (class names, file names) goes through ``plot_text`` exactly once,
here: Plotly renders a subset of HTML in legends, hover labels and tick labels, so a class called
``<b>x</b>`` would otherwise be drawn bold. Callers pass raw strings. User strings never enter a
hovertemplate (where ``%{...}`` would be substituted): they travel in ``customdata`` / ``text``.
Subplots are stacked in rows with a shared x axis, so their titles have the full width and never
meet each other or another subplot's tick labels, even on a phone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from .normalisation import l2

# Tableau 10, then ten of Kelly's colours of maximum contrast: 20 distinguishable classes.
PALETTE = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
    "#0067A5", "#BE0032", "#008856", "#F6A600", "#604E97",
    "#882D17", "#8DB600", "#2B3D26", "#A1CAF1", "#E25822",
)  # fmt: skip
SIZES = {  # marker sizes (2-D, 3-D); proxies and means only a little larger than a sample
    "sample": (7, 4),
    "proxy": (11, 6),
    "mean": (12, 6),
    "test": (15, 7),
}
PROXY_OPACITY = 0.55  # the samples under a proxy stay visible
SAMPLE_OPACITY = 0.75
PROXY_GROUP = "proxies"  # one legend entry toggles every proxy trace
# At the figure's foot, not a fraction of the plot's height below it: on a phone (a short plot,
# the legend in three rows) that fraction put the legend over the x axis' title.
LEGEND = {
    "orientation": "h",
    "yref": "container",
    "yanchor": "bottom",
    "y": 0,
    "x": 0,
    "itemsizing": "constant",
}
TITLE_FONT = {"size": 13}
TITLE_CHARS = 48  # a line of a title at TITLE_FONT that fits a phone (Plotly never wraps one)
SYMBOLS = {  # marker symbols (2-D, 3-D); 3-D offers fewer shapes
    "sample": ("circle", "circle"),
    "proxy": ("diamond", "diamond"),
    "mean": ("x", "x"),
    "test": ("star", "cross"),
}
TEST_COLOR = "#222222"


def _key(label: Any) -> str:
    return str(label.item() if isinstance(label, np.generic) else label)


def plot_text(value: Any) -> str:
    """A user string as Plotly text, not markup: escapes ``&``, ``<`` and ``>``.

    Plotly turns ``&amp;``, ``&lt;`` and ``&gt;`` back into the characters on screen, so the
    user sees exactly what they typed.
    """
    return _key(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def map_axis_titles(method: str, explained_variance: Sequence[float] = (), dim: int = 2):
    """Axis titles of a map: "PC1 (34 % of variance)" for PCA, "UMAP 1 (no units)" for UMAP."""
    if method == "pca":
        ev = list(explained_variance) + [float("nan")] * dim
        return [
            f"PC{i + 1} ({100 * ev[i]:.0f} % of variance)" if np.isfinite(ev[i]) else f"PC{i + 1}"
            for i in range(dim)
        ]
    if method == "umap":
        return [f"UMAP {i + 1} (no units)" for i in range(dim)]
    raise ValueError(f"Unknown map method {method!r}; allowed: pca, umap.")


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
        marker["line"] = {"width": 1, "color": "#111111"}
    return marker


def _hover_data(names: Sequence[Any] | None, thumbs: Sequence[Any] | None, idx: np.ndarray):
    names_ = [plot_text(names[i]) for i in idx] if names is not None else [f"#{i}" for i in idx]
    thumbs_ = [str(thumbs[i] or "") for i in idx] if thumbs is not None else [""] * len(idx)
    return np.array([names_, thumbs_], dtype=object).T


def _axis_layout(dim: int, titles: Sequence[str] | None) -> dict[str, Any]:
    if titles is None:
        return {}
    axes = {f"{a}axis": {"title": {"text": t}} for a, t in zip("xyz", titles, strict=False)}
    return {"scene": axes} if dim == 3 else axes


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
    projection: Any = None,
    axis_titles: Sequence[str] | None = None,
    show_proxies: bool = True,
):
    """The map: samples by class, proxies (small, see-through diamonds), means, test points.

    coords (n, 2|3) and the other point sets are map coordinates (see projections.project).
    Traces: one per class (name = class), one "<class> proxies" per class with proxies, all in
    the legend group "proxies" with one legend entry that shows or hides them together
    (show_proxies=False starts them hidden), then "class means" and "test images" when given.
    projection: the projections.Projection the coordinates come from, for axis titles with the
    explained variance (PCA) or "no units" (UMAP); axis_titles overrides them. Labels and names
    are raw user strings (escaped here). Hover shows the file name; customdata[:, 1] carries an
    optional thumbnail (a data-URI) for a client-side hook, since Plotly's hover label cannot
    draw images.
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
    if axis_titles is None and projection is not None:
        axis_titles = map_axis_titles(projection.method, projection.explained_variance, dim)
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
                name=plot_text(c),
                legendgroup=f"class {c}",
                marker={**_marker("sample", dim, colors[c]), "opacity": SAMPLE_OPACITY},
                customdata=_hover_data(names, thumbnails, idx),
                text=[plot_text(c)] * len(idx),
                hovertemplate="<b>%{customdata[0]}</b><br>class %{text}<extra></extra>",
            )
        )
    if proxies is not None and len(proxies):
        P = np.asarray(proxies, dtype=float)
        _add_proxies(fig, P, proxy_labels, order, colors, dim, show_proxies)
    if means is not None and len(means):
        Mu = np.asarray(means, dtype=float)
        mlab = [_key(v) for v in (mean_labels if mean_labels is not None else order)]
        fig.add_trace(
            _scatter(
                Mu,
                mode="markers",
                name="class means",
                marker=_marker("mean", dim, [colors.get(c, TEST_COLOR) for c in mlab], True),
                text=[plot_text(c) for c in mlab],
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
                text=[plot_text(c) for c in tlab] if tlab is not None else [""] * len(T),
                hovertemplate="<b>%{customdata[0]}</b><br>predicted %{text}<extra></extra>",
            )
        )
    lines = _title_lines(title or "")
    fig.update_layout(
        title={"text": "<br>".join(lines), "font": TITLE_FONT} if title else None,
        template="plotly_white",
        legend=LEGEND,
        margin={"l": 10, "r": 10, "t": 22 + 18 * len(lines) if title else 10, "b": 10},
        **_axis_layout(dim, axis_titles),
    )
    return fig


def _title_lines(title: str) -> list[str]:
    """``title`` in lines of at most TITLE_CHARS, never broken inside parentheses (where a
    space's name is, which a reader and the tests look for whole)."""
    kept = re.sub(r"\([^)]*\)", lambda m: m.group().replace(" ", "\0"), title)
    return [line.replace("\0", " ") for line in textwrap.wrap(kept, TITLE_CHARS)]


def _add_proxies(fig, P, proxy_labels, order, colors, dim, show: bool) -> None:
    """Proxy traces per class in one legend group, after a grey legend key that toggles them."""
    plab = np.array([_key(v) for v in np.asarray(proxy_labels).ravel()])
    if len(plab) != len(P):
        raise ValueError(f"{len(P)} proxies but {len(plab)} proxy labels.")
    visible = True if show else "legendonly"
    fig.add_trace(_legend_key("proxies", "proxy", dim, PROXY_GROUP, visible))
    for c in order:
        idx = np.flatnonzero(plab == c)
        if len(idx) == 0:
            continue
        number = [f"{i + 1} of {len(idx)}" for i in range(len(idx))]
        fig.add_trace(
            _scatter(
                P[idx],
                mode="markers",
                name=f"{plot_text(c)} proxies",
                legendgroup=PROXY_GROUP,
                showlegend=False,
                visible=visible,
                marker={**_marker("proxy", dim, colors[c], outline=True), "opacity": PROXY_OPACITY},
                customdata=np.array([number, [plot_text(c)] * len(idx)], dtype=object).T,
                hovertemplate="proxy %{customdata[0]} of class %{customdata[1]}<extra></extra>",
            )
        )


def _legend_key(name: str, kind: str, dim: int, group: str | None = None, visible: Any = True):
    """A legend-only entry explaining a marker shape (and toggling its legend group)."""
    nan = np.full((1, dim), np.nan)
    return _scatter(
        nan,
        mode="markers",
        name=name,
        legendgroup=group,
        visible=visible,
        marker=_marker(kind, dim, "#888888", True),
        hoverinfo="skip",
    )


def _centred_cosines(means: np.ndarray) -> np.ndarray:
    centred = means - means.mean(axis=0)
    unit = l2(centred)
    return unit @ unit.T


def _row_height(n_labels: int) -> int:
    return max(170, 26 * n_labels)


def cosine_heatmap(means: Any, labels: Sequence[Any] | None = None):
    """Cosines of the centred class means (top) above the ideal simplex ETF (bottom).

    The ideal has 1 on the diagonal and -1/(C-1) elsewhere: every pair of classes equally far
    apart. Traces: "your classes", "ideal simplex ETF". Rows share the x axis, so the class names
    are written once, under the bottom map, and the titles have the full width.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    M = np.asarray(means, dtype=float)
    if M.ndim != 2 or len(M) < 2:
        raise ValueError(f"cosine_heatmap needs the means of at least two classes; got {M.shape}.")
    C = len(M)
    names = [plot_text(v) for v in labels] if labels is not None else [str(i) for i in range(C)]
    ideal = np.full((C, C), -1.0 / (C - 1))
    np.fill_diagonal(ideal, 1.0)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=("Your classes (centred means)", f"Ideal simplex ETF (-1/{C - 1} apart)"),
    )
    for row, (name, z) in enumerate(
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
                showscale=row == 1,
                colorbar={"title": {"text": "cosine"}, "len": 0.9},
                texttemplate="%{z:.2f}" if C <= 12 else None,
                hovertemplate="%{y} vs %{x}: cosine %{z:.3f}<extra>" + name + "</extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(autorange="reversed", row=row, col=1)
    fig.update_annotations(font=TITLE_FONT)
    fig.update_layout(
        template="plotly_white",
        height=2 * _row_height(C) + 140,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


DISPERSION_KINDS = {  # kind -> (per-class field, subplot title, y axis title)
    "variance": ("variance", "Spread inside each class (variance)", "variance"),
    "cdnv": ("cdnv_mean", "Spread / distance to the other classes (CDNV)", "CDNV"),
}


def dispersion_bars(metrics: dict[str, Any], kind: str = "both"):
    """Per-class dispersion bars from an nc_metrics result: "variance", "cdnv" or "both".

    Variance: mean squared distance of a class's images to their mean. CDNV: the class's spread
    relative to its distance from the other classes (mean over them; small = well separated).
    "both" stacks the two in rows that share the class axis.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = list(DISPERSION_KINDS) if kind == "both" else [kind]
    if any(k not in DISPERSION_KINDS for k in kinds):
        raise ValueError(f"Unknown dispersion kind {kind!r}; allowed: variance, cdnv, both.")
    per_class = metrics["per_class"]
    keys = [_key(c) for c in per_class]
    shown = [plot_text(c) for c in keys]
    colors = class_colors(metrics.get("classes", list(per_class)))
    fig = make_subplots(
        rows=len(kinds),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.16,
        subplot_titles=[DISPERSION_KINDS[k][1] for k in kinds],
    )
    for row, k in enumerate(kinds, start=1):
        field, _, axis = DISPERSION_KINDS[k]
        fig.add_trace(
            go.Bar(
                x=shown,
                y=[per_class[c][field] for c in per_class],
                name=k,
                marker_color=[colors.get(c, TEST_COLOR) for c in keys],
                customdata=[per_class[c]["n"] for c in per_class],
                hovertemplate="%{x}: %{y:.3g} (%{customdata} images)<extra>" + k + "</extra>",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=axis, row=row, col=1)
    fig.update_annotations(font=TITLE_FONT)
    fig.update_layout(
        template="plotly_white",
        height=240 * len(kinds) + 80,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


REFERENCE_STYLE = {  # curve["references"] key -> (legend name, dash, colour)
    "mean": ("mean (Qi et al.)", "dash", "#555555"),
    "ls": ("least squares (oracle)", "dot", "#000000"),
    "auto": ("gen=auto, k chosen per class in each fold", "dashdot", "#B07AA1"),
}


def accuracy_vs_k_figure(curve: dict[str, Any]):
    """Cross-validated accuracy vs k per GEN method, with the reference lines.

    `curve` is the result of kcurve.accuracy_vs_k. Traces: one per GEN method (name = method),
    then one horizontal line per reference (mean, least squares, gen=auto). The title names the
    evaluation scheme in a few words; curve["cv_description"] is the full sentence to show
    beside the figure.
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
        name, dash, color = REFERENCE_STYLE.get(key, (key, "dashdot", "#888888"))
        fig.add_trace(
            go.Scatter(
                x=[min(ks), max(ks)],
                y=[100 * ref["mean"]] * 2,
                mode="lines",
                name=name,
                line={"dash": dash, "color": color},
                hovertemplate=f"{name}: %{{y:.1f}}%<extra></extra>",
            )
        )
    scheme = curve.get("cv")
    fig.update_layout(
        template="plotly_white",
        xaxis={"title": {"text": "k (proxies per class)"}, "type": "log", "tickvals": ks},
        yaxis={"title": {"text": "held-out accuracy (%)"}},
        title={
            "text": f"Accuracy vs k ({scheme})" if scheme else "Accuracy vs k",
            "font": TITLE_FONT,
        },
        legend=LEGEND,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def confusion_matrix_figure(cm: Any, labels: Sequence[Any], normalize: bool = True):
    """Confusion matrix (rows: true class, columns: predicted); colour = share of the row."""
    import plotly.graph_objects as go

    cm = np.asarray(cm)
    names = [plot_text(v) for v in labels]
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
        xaxis={"title": {"text": "predicted"}},
        yaxis={"title": {"text": "true"}, "autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig
