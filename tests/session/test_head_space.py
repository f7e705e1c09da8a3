"""The evidence and the map are measured where the head decides (issue 17 section 1): Try it's
scores rank like the decision under every preset and for random heads, the nearest training
images follow the head's own geometry, and the Geometry map draws points, class means and
proxies in one space (the head's by default, named on the plot). Real backbone, the shipped
fashion3 example."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import Delaunay

from imprint_core import DEFAULT_PRESET, PRESETS, ImprintClassifier
from imprint_core import session as pj
from imprint_core.session import Project


@pytest.fixture(scope="module")
def default_project(backbone, fashion, tmp_path_factory):
    """fashion3's training images under the app's default preset."""
    train, _ = fashion
    p = Project(workdir=tmp_path_factory.mktemp("default"), n_classes=0)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths)
    p.train(backbone)
    yield p
    p.close()


@pytest.fixture(scope="module")
def probes(default_project, backbone, fashion):
    """The held-out images' embeddings and blends of two training images (close calls, where
    a measure taken in another space than the head's disagrees with the head)."""
    _, test = fashion
    held_out = backbone.embed([str(p) for paths in test.values() for p in paths])
    X, _, _ = default_project.dataset()
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(X), 40), rng.integers(0, len(X), 40)
    blends = [(1 - t) * X[i] + t * X[j] for t in (0.35, 0.5, 0.65)]
    return np.concatenate([held_out, *blends]).astype(np.float32)


def shown_table(value) -> tuple[list[str] | None, list[list]]:
    """(header, rows) of the evidence view as Gradio takes it: {"headers", "data"} or rows."""
    if isinstance(value, dict):
        return value["headers"], value["data"]
    return None, value


def check_ranks_as_decided(project, probes: np.ndarray, n_neighbors: int = 0) -> None:
    """For every probe, the evidence table as shown ranks the classes as the head decides: the
    top row is the predicted class and the score column is ordered the same way; its header
    names the score the head compares."""
    head = project.head
    header, results = None, []
    for z in probes:
        result = project.explain(z, n_neighbors=n_neighbors)
        label = str(head.predict(z[None, :])[0])
        header, rows = shown_table(pj.evidence_rows(result))
        assert rows[0][0] == result["label"] == label  # the top row is the decision
        smallest_wins = header is not None and "smallest wins" in header[3]
        numbers = [float(r[3]) for r in rows]
        assert numbers == sorted(numbers, reverse=not smallest_wins), (label, rows)
        results.append((rows, result))
    assert header is not None and ("the head's space" in header[3] or "votes" in header[3])
    for rows, result in results:  # the rows follow the head's class scores, highest first
        assert [r[0] for r in rows] == [c["class"] for c in result["classes"]]
        scores = [c["score"] for c in result["classes"]]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_evidence_ranks_as_the_decision_under_every_preset(default_project, probes, preset):
    """Under the default (whitened class means) the raw cosine shown before ranked 'T-shirt'
    above the class the head chose on some blends; the table now shows the head's own score."""
    default_project.set_settings(preset)
    default_project.imprint()
    try:
        check_ranks_as_decided(default_project, probes)
    finally:
        default_project.set_settings(DEFAULT_PRESET)
        default_project.imprint()


@st.composite
def random_heads(draw):
    """Option combinations of the framework (whitening in pairs, as fit requires) and data."""
    norm_pre, norm_inf = draw(
        st.sampled_from(
            [("none", "none"), ("l2", "l2"), ("l2", "none"), ("none", "l2"), ("whiten", "whiten")]
        )
    )
    options = dict(
        norm_pre=norm_pre,
        norm_inf=norm_inf,
        gen=draw(st.sampled_from(["mean", "kmeans", "all", "random", "fps", "ls"])),
        k=draw(st.integers(1, 4)),
        norm_post=draw(st.sampled_from(["none", "l2", "quantile"])),
        agg=draw(st.sampled_from(["max", "mnn"])),
        distance=draw(
            st.sampled_from(["inner_product", "cosine", "euclidean", "manhattan", "mahalanobis"])
        ),
        m=draw(st.integers(1, 5)),
        weighting=draw(st.sampled_from(["uniform", "distance"])),
    )
    n_classes, per_class, dim = (
        draw(st.integers(2, 4)),
        draw(st.integers(2, 5)),
        draw(st.integers(3, 10)),
    )
    seed = draw(st.integers(0, 2**16))
    return options, n_classes, per_class, dim, seed


@pytest.mark.filterwarnings("ignore:m=.* is larger than the")  # m-NN clamps m, and says so
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_heads())
def test_evidence_ranks_first_the_predicted_class_for_random_heads(case):
    """Whatever the options and data: the class the evidence ranks first is the predicted one,
    and the score column is ordered as the decision (a head file loaded into a session)."""
    options, n_classes, per_class, dim, seed = case
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 2
    y = np.repeat([f"c{i}" for i in range(n_classes)], per_class)
    X = centres[np.repeat(np.arange(n_classes), per_class)] + rng.normal(size=(len(y), dim))
    head = ImprintClassifier(**options, backbone="efficientnet_lite0").fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        head.save(Path(tmp) / "head.safetensors")
        project = Project(workdir=Path(tmp) / "work", n_classes=0)
        try:
            project.load_head(Path(tmp) / "head.safetensors")
            probes = np.concatenate([rng.normal(size=(8, dim)) * 3, X]).astype(np.float32)
            check_ranks_as_decided(project, probes, n_neighbors=6)
        finally:
            project.close()


def test_neighbours_follow_the_heads_geometry(default_project, probes):
    """The nearest training images are ranked by the cosine of the head's whitened vectors
    (computed here from the fitted whitening itself), not by the raw embeddings' cosine."""
    head = default_project.head
    assert head.norm_inf == "whiten"  # the default preset
    X, _, items = default_project.dataset()
    Xh = head.whitener_.transform(np.asarray(X, dtype=np.float64))
    differs = 0
    for z in probes:
        zh = head.whitener_.transform(z[None, :].astype(np.float64))[0]
        expected = [items[i].name for i in np.argsort(-(Xh @ zh), kind="stable")[:6]]
        result = default_project.explain(z)
        assert [n["file"] for n in result["neighbours"]] == expected
        cosines = [n["shown"] for n in result["neighbours"]]
        assert cosines == pytest.approx(np.sort(Xh @ zh)[::-1][:6], abs=1e-4)
        raw = np.asarray(X, dtype=np.float64)
        raw_cos = (raw / np.linalg.norm(raw, axis=1, keepdims=True)) @ (z / np.linalg.norm(z))
        differs += expected != [items[i].name for i in np.argsort(-raw_cos, kind="stable")[:6]]
    assert differs > 0  # the head's geometry is not the raw one: the test tells them apart


def _inside_hull(points: np.ndarray, point: np.ndarray) -> bool:
    return bool(Delaunay(points).find_simplex(point[None, :])[0] >= 0)


def _traces(figure) -> dict[str, np.ndarray]:
    return {t.name: np.c_[np.asarray(t.x, float), np.asarray(t.y, float)] for t in figure.data}


def test_map_draws_means_inside_their_clouds_in_the_heads_space(default_project):
    """Default view (PCA, 2-D, the head's space): every class mean lies inside the convex hull
    of its own images (before, the L2-normalised mean of raw embeddings was drawn beside
    whitened proxies, and 'Sneaker''s cross fell outside its cloud); the title names the space;
    the proxies are drawn. The paper's spaces stay available, labelled, without proxies that do
    not live there."""
    head = default_project.head
    g = default_project.geometry()
    traces = _traces(g["figure"])
    means = traces["class means"]
    for i, c in enumerate(head.classes_):
        assert _inside_hull(traces[str(c)], means[i]), c
    title = g["figure"].layout.title.text
    assert "head's space" in title and "centred, whitened, L2" in title
    assert sum(len(traces[f"{c} proxies"]) for c in head.classes_) == len(head.proxies_)
    for space, named in (("l2", "L2-normalised embeddings"), ("raw", "raw embeddings")):
        g = default_project.geometry("pca", 2, space)
        assert named in g["figure"].layout.title.text
        assert "not the head's space" in g["figure"].layout.title.text
        traces = _traces(g["figure"])
        assert not any(name.endswith(" proxies") for name in traces)
        for i, c in enumerate(head.classes_):
            assert _inside_hull(traces[str(c)], traces["class means"][i]), (space, c)
    default_project.geometry()  # the default view again, for the tests that follow


def test_readings_lead_with_what_to_see_and_the_reliable_numbers(default_project):
    """30 images per class for 1280 dimensions: NC1 and VCI are flagged; the readings start
    with what the map shows and the reliable numbers, and the flagged ones come after."""
    g = default_project.geometry()
    readings = g["readings"]
    assert readings[0].startswith("In the map, ")
    flagged = [i for i, r in enumerate(readings) if "Not reliable here" in r]
    assert flagged, "NC1 and VCI are not reliable with 30 images per class"
    numbers = [i for i, r in enumerate(readings) if r.startswith(("NC1", "VCI", "CDNV", "Class"))]
    reliable = [i for i in numbers if i not in flagged]
    assert reliable and max(reliable) < min(flagged)
    assert "separate clouds" in readings[0]  # three well-separated classes in the head's space
