"""Figure builders return Plotly figures with the expected traces, colours and sizes."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from imprint_core import figures as fg
from imprint_core.collapse import nc_metrics


def test_palette_is_consistent_and_distinct():
    colors = fg.class_colors(["bags", "shoes", "tops"])
    assert colors == {"bags": fg.PALETTE[0], "shoes": fg.PALETTE[1], "tops": fg.PALETTE[2]}
    assert len(set(fg.PALETTE)) == 20
    assert fg.class_colors(np.array([3, 7])) == {"3": fg.PALETTE[0], "7": fg.PALETTE[1]}


def map_inputs(dim):
    rng = np.random.default_rng(0)
    labels = np.repeat(["cat", "dog", "fox"], [5, 4, 3])
    coords = rng.standard_normal((12, dim))
    return dict(
        coords=coords,
        labels=labels,
        proxies=rng.standard_normal((6, dim)),
        proxy_labels=["cat", "cat", "cat", "dog", "fox", "fox"],
        means=rng.standard_normal((3, dim)),
        mean_labels=["cat", "dog", "fox"],
        test_points=rng.standard_normal((2, dim)),
        test_labels=["dog", "fox"],
        names=[f"img_{i}.jpg" for i in range(12)],
        test_names=["new1.png", "new2.png"],
        thumbnails=["data:image/png;base64,AAAA"] * 12,
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_embedding_map_traces(dim):
    fig = fg.embedding_map(**map_inputs(dim))
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == [
        "cat",
        "dog",
        "fox",
        "proxies",
        "cat proxies",
        "dog proxies",
        "fox proxies",
        "class means",
        "test images",
    ]
    kind = go.Scatter3d if dim == 3 else go.Scatter
    assert all(isinstance(t, kind) for t in fig.data)
    by = {t.name: t for t in fig.data}
    assert [len(by[c].x) for c in ("cat", "dog", "fox")] == [5, 4, 3]
    assert [len(by[f"{c} proxies"].x) for c in ("cat", "dog", "fox")] == [3, 1, 2]
    colors = fg.class_colors(["cat", "dog", "fox"])
    for c in ("cat", "dog", "fox"):
        assert by[c].marker.color == colors[c]
        proxies = by[f"{c} proxies"]
        assert proxies.marker.color == colors[c]  # proxies in their class colour
        # small and see-through, so that they do not bury the samples under them
        assert by[c].marker.size < proxies.marker.size < 2 * by[c].marker.size
        assert proxies.marker.opacity < 0.7
        # one legend entry ("proxies") shows or hides every proxy trace
        assert proxies.legendgroup == by["proxies"].legendgroup == "proxies"
        assert proxies.showlegend is False and proxies.visible is True
    assert list(by["class means"].marker.color) == [colors[c] for c in ("cat", "dog", "fox")]
    assert by["class means"].marker.symbol == "x"
    assert list(by["test images"].marker.color) == [colors["dog"], colors["fox"]]
    # hover: the file name, and the thumbnail data-URI in customdata for a client-side hook
    assert by["dog"].customdata[0][0] == "img_5.jpg"
    assert by["dog"].customdata[0][1].startswith("data:image/png")
    assert "%{customdata[0]}" in by["dog"].hovertemplate
    assert by["test images"].customdata[1][0] == "new2.png"
    assert list(by["cat proxies"].customdata[:, 0]) == ["1 of 3", "2 of 3", "3 of 3"]


@pytest.mark.parametrize("dim", [2, 3])
def test_proxies_can_start_hidden(dim):
    fig = fg.embedding_map(**map_inputs(dim), show_proxies=False)
    group = [t for t in fig.data if t.legendgroup == "proxies"]
    assert len(group) == 4 and all(t.visible == "legendonly" for t in group)
    assert all(t.visible is not False for t in fig.data if t.legendgroup != "proxies")


def test_map_axis_titles():
    from imprint_core.projections import project

    assert fg.map_axis_titles("pca", (0.3412, 0.125), 2) == [
        "PC1 (34 % of variance)",
        "PC2 (12 % of variance)",
    ]
    assert fg.map_axis_titles("umap", (), 3) == ["UMAP 1 (no units)"] + [
        f"UMAP {i} (no units)" for i in (2, 3)
    ]
    with pytest.raises(ValueError, match="map method 'tsne'"):
        fg.map_axis_titles("tsne")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 6)) * [5, 2, 1, 1, 1, 1]
    p = project(X, "pca", dim=2)
    fig = fg.embedding_map(p.coords, np.repeat(["a", "b"], 10), projection=p)
    title = fig.layout.xaxis.title.text
    assert title.startswith("PC1 (") and title.endswith("% of variance)")
    assert f"{100 * p.explained_variance[0]:.0f} %" in title
    p3 = project(X, "pca", dim=3)
    fig3 = fg.embedding_map(p3.coords, np.repeat(["a", "b"], 10), projection=p3)
    assert fig3.layout.scene.zaxis.title.text.startswith("PC3 (")
    custom = fg.embedding_map(p.coords, np.repeat(["a", "b"], 10), axis_titles=["u", "v"])
    assert custom.layout.yaxis.title.text == "v"


HOSTILE = "<b>tops</b> & <i>co</i> %{x}"


@pytest.mark.parametrize(
    "title",
    [
        "PCA of the head's space (centred, whitened, L2): where images meet proxies",
        "UMAP of L2-normalised embeddings (not the head's space: no proxies)",
    ],
)
def test_a_long_map_title_wraps_to_fit_a_phone_and_keeps_names_whole(title):
    """Plotly never wraps a title: a long one ran off a phone's screen. Lines of at most
    TITLE_CHARS, never broken inside the parentheses that name the space."""
    fig = fg.embedding_map(**map_inputs(2), title=title)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and " ".join(lines) == title
    assert all(len(line) <= fg.TITLE_CHARS for line in lines), lines
    named = re.search(r"\(.*\)", title).group()
    assert any(named in line for line in lines), lines
    assert fig.layout.margin.t >= 2 * fig.layout.title.font.size  # room for both lines


def test_plot_text_escapes_markup():
    assert fg.plot_text(HOSTILE) == "&lt;b&gt;tops&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt; %{x}"
    assert fg.plot_text("a&lt;b") == "a&amp;lt;b"  # shown as typed: "a&lt;b"
    assert fg.plot_text(np.int64(3)) == "3"


def _strings(fig) -> list[str]:
    """Every string a figure hands to Plotly (trace names, text, customdata, categories)."""
    out = []
    for t in fig.data:
        out.append(t.name or "")
        for field in ("text", "customdata", "x", "y"):
            values = getattr(t, field, None)
            if values is not None:
                out += [v for v in np.asarray(values, dtype=object).ravel() if isinstance(v, str)]
    return out


def test_user_strings_reach_every_figure_escaped():
    """Class and file names are shown as text: no raw '<' or '&' in any figure, and the user
    string never sits in a hovertemplate, where '%{x}' would be substituted."""
    rng = np.random.default_rng(2)
    labels = np.repeat([HOSTILE, "plain"], 5)
    X = rng.standard_normal((10, 4)) + np.repeat(np.eye(4)[:2] * 3, 5, axis=0)
    m = nc_metrics(X, labels)
    escaped = fg.plot_text(HOSTILE)
    figs = [
        fg.embedding_map(
            rng.standard_normal((10, 2)),
            labels,
            proxies=rng.standard_normal((2, 2)),
            proxy_labels=[HOSTILE, "plain"],
            means=rng.standard_normal((2, 2)),
            mean_labels=[HOSTILE, "plain"],
            test_points=rng.standard_normal((1, 2)),
            test_labels=[HOSTILE],
            names=[f"<img src=x onerror=alert(1)>{i}.png" for i in range(10)],
            test_names=["<script>.png"],
        ),
        fg.cosine_heatmap(np.eye(2), [HOSTILE, "plain"]),
        fg.dispersion_bars(m),
        fg.confusion_matrix_figure(np.eye(2, dtype=int), [HOSTILE, "plain"]),
    ]
    for fig in figs:
        strings = _strings(fig)
        assert any(escaped in s for s in strings), strings
        for s in strings:
            assert "<" not in s and ">" not in s, s
            assert "&" not in re.sub(r"&(amp|lt|gt);", "", s), s  # every & starts an entity
        for t in fig.data:
            assert "tops" not in (t.hovertemplate or "")
    names = [t.name for t in figs[0].data]
    assert escaped in names and f"{escaped} proxies" in names
    assert "&lt;img src=x onerror=alert(1)&gt;0.png" in _strings(figs[0])


def test_embedding_map_minimal_and_errors():
    fig = fg.embedding_map(np.zeros((3, 2)), [1, 1, 2])
    assert [t.name for t in fig.data] == ["1", "2"]
    assert fig.data[0].customdata[1][0] == "#1"  # no names: the row number
    with pytest.raises(ValueError, match="coordinates"):
        fg.embedding_map(np.zeros((3, 4)), [1, 1, 2])
    with pytest.raises(ValueError, match="proxy labels"):
        fg.embedding_map(np.zeros((2, 2)), [0, 1], proxies=np.zeros((2, 2)), proxy_labels=[0])


def test_cosine_heatmap_beside_ideal_etf():
    C = 4
    vertices = (np.eye(C) - 1.0 / C) * 3.0 + 5.0  # a simplex ETF around a common offset
    fig = fg.cosine_heatmap(vertices, labels=["a", "b", "c", "d"])
    assert [t.name for t in fig.data] == ["your classes", "ideal simplex ETF"]
    assert all(isinstance(t, go.Heatmap) for t in fig.data)
    observed, ideal = (np.asarray(t.z) for t in fig.data)
    np.testing.assert_allclose(observed, ideal, atol=1e-12)  # centred: exactly the ETF
    assert ideal[0, 1] == pytest.approx(-1 / 3) and ideal[2, 2] == pytest.approx(1.0)
    assert list(fig.data[0].x) == ["a", "b", "c", "d"]
    # stacked with a shared class axis: titles have the full width and never meet
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]
    with pytest.raises(ValueError, match="two classes"):
        fg.cosine_heatmap(np.zeros((1, 3)))


def test_dispersion_bars_use_class_colours():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 5)) + np.repeat(np.eye(5)[:3] * 4, 10, axis=0)
    y = np.repeat(["x", "y", "z"], 10)
    m = nc_metrics(X, y)
    fig = fg.dispersion_bars(m)
    assert [t.name for t in fig.data] == ["variance", "cdnv"]
    var, cdnv = fig.data
    assert list(var.x) == ["x", "y", "z"]
    np.testing.assert_allclose(var.y, [m["per_class"][c]["variance"] for c in "xyz"])
    np.testing.assert_allclose(cdnv.y, [m["per_class"][c]["cdnv_mean"] for c in "xyz"])
    assert list(var.marker.color) == list(fg.PALETTE[:3])
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]  # rows, shared class axis
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].endswith("(variance)") and titles[1].endswith("(CDNV)")
    assert [t.name for t in fg.dispersion_bars(m, kind="cdnv").data] == ["cdnv"]
    with pytest.raises(ValueError, match="dispersion kind"):
        fg.dispersion_bars(m, kind="entropy")


def test_accuracy_vs_k_figure():
    curve = {
        "ks": [1, 2, 5],
        "gens": {
            "kmeans": {"mean": [0.6, 0.8, 0.9], "std": [0.1, 0.05, 0.02]},
            "fps": {"mean": [0.5, 0.7, 0.85], "std": [0.1, 0.1, 0.1]},
        },
        "references": {
            "mean": {"mean": 0.62, "std": 0.0},
            "ls": {"mean": 0.95, "std": 0.0},
            "auto": {"mean": 0.88, "std": 0.0},
        },
        "cv": "stratified 5-fold",
        "cv_description": "Stratified 5-fold cross-validation: each fold was classified ...",
    }
    fig = fg.accuracy_vs_k_figure(curve)
    assert [t.name for t in fig.data] == [
        "kmeans",
        "fps",
        "mean (Qi et al.)",
        "least squares (oracle)",
        "gen=auto, k chosen per class in each fold",
    ]
    assert fig.layout.title.text == "Accuracy vs k (stratified 5-fold)"  # short: fits a phone
    np.testing.assert_allclose(fig.data[0].y, [60, 80, 90])
    np.testing.assert_allclose(fig.data[0].error_y.array, [10, 5, 2])
    assert list(fig.data[3].x) == [1, 5] and list(fig.data[3].y) == [95, 95]  # horizontal
    assert fig.layout.xaxis.type == "log"


def test_confusion_matrix_figure():
    cm = np.array([[3, 1], [0, 4]])
    fig = fg.confusion_matrix_figure(cm, ["cat", "dog"])
    (hm,) = fig.data
    assert isinstance(hm, go.Heatmap)
    np.testing.assert_allclose(hm.z, [[0.75, 0.25], [0, 1]])
    np.testing.assert_array_equal(hm.text, cm)
    assert list(hm.x) == ["cat", "dog"] and fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="does not match"):
        fg.confusion_matrix_figure(cm, ["cat"])


def test_figures_render_to_json():
    """Every figure serialises (what Gradio's gr.Plot sends to the browser)."""
    figs = [
        fg.embedding_map(**map_inputs(2)),
        fg.embedding_map(**map_inputs(3)),
        fg.cosine_heatmap(np.eye(3)),
        fg.confusion_matrix_figure(np.eye(2, dtype=int), [0, 1]),
    ]
    for fig in figs:
        assert fig.to_json().startswith("{")
