"""Figure builders return Plotly figures with the expected traces, colours and sizes."""

from __future__ import annotations

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
        "cat proxies",
        "dog proxies",
        "fox proxies",
        "proxies",
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
        assert by[f"{c} proxies"].marker.color == colors[c]  # proxies in their class colour
        assert by[f"{c} proxies"].marker.size > 2 * by[c].marker.size  # and large
        assert by[f"{c} proxies"].legendgroup == c
    assert list(by["class means"].marker.color) == [colors[c] for c in ("cat", "dog", "fox")]
    assert by["class means"].marker.symbol == "x"
    assert list(by["test images"].marker.color) == [colors["dog"], colors["fox"]]
    # hover: the file name, and the thumbnail data-URI in customdata for a client-side hook
    assert by["dog"].customdata[0][0] == "img_5.jpg"
    assert by["dog"].customdata[0][1].startswith("data:image/png")
    assert "%{customdata[0]}" in by["dog"].hovertemplate
    assert by["test images"].customdata[1][0] == "new2.png"


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
    assert ideal[0, 1] == pytest.approx(-1 / 3) and ideal[2, 2] == 1.0
    assert list(fig.data[0].x) == ["a", "b", "c", "d"]
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
        "references": {"mean": {"mean": 0.62, "std": 0.0}, "ls": {"mean": 0.95, "std": 0.0}},
        "cv_description": "Stratified 5-fold cross-validation.",
    }
    fig = fg.accuracy_vs_k_figure(curve)
    assert [t.name for t in fig.data] == [
        "kmeans",
        "fps",
        "mean (Qi et al.)",
        "least squares (oracle)",
    ]
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
