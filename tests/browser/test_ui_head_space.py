"""The page explains the head in the head's own space (issue 17 section 1), in Chromium under the
default preset: Try it's evidence table ranks the classes as the prediction, with a score column
named for what the head compares; the Geometry map draws each class's mean inside its own cloud
and names the space on the plot."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import sklearn.datasets
from browser_app import MARKS, events_run, hold_first_event, teach_and_imprint, wait_held, wait_text
from scipy.spatial import Delaunay

pytestmark = MARKS
PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # not clothing


def evidence(page) -> tuple[list[str], list[list[str]]]:
    """The evidence table as shown: its header cells and its rows of cells."""
    return page.evaluate(
        """() => {
            const root = document.querySelector('#evidence');
            const text = els => [...els].map(c => c.innerText.trim());
            const head = text(root.querySelectorAll('th[role=columnheader]'));
            const rows = [...root.querySelectorAll('div[role=row]')]
                .map(r => text(r.querySelectorAll('[role=gridcell]')));
            return [head, rows];
        }"""
    )


def values(v) -> np.ndarray:
    """A Plotly trace's coordinates: a list, or Plotly's typed-array form {dtype, bdata}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float)
    return np.asarray(v, dtype=float)


def test_try_it_evidence_ranks_as_the_prediction(page, images):
    train, test = images
    teach_and_imprint(page, train)  # the default preset: whitened class means
    page.get_by_role("tab", name="Try it").click()
    for image in (test["Trouser"][0], test["Sneaker"][1], str(PHOTO)):
        page.locator("#try-image input[type=file]").set_input_files(image)
        wait_text(page, "#try-note", f"'{Path(image).name}' as the current head sees it")
        page.wait_for_function(  # the table of this image, not a progress overlay
            "() => !/\\d(\\.\\d+)?s\\b/.test(document.querySelector('#evidence').innerText)"
        )
        label = page.locator("#prediction .headline").inner_text().strip()
        if label == "None of these?":  # the photo: the nearest class is the prediction
            label = page.locator("#prediction .nearest").inner_text().split(":", 1)[1].strip()
        head, rows = evidence(page)
        assert rows[0][0] == label, (label, rows)  # the top row is the predicted class
        scores = [float(r[3]) for r in rows]
        assert scores == sorted(scores, reverse=True), rows  # ranked as the decision
        assert head[3] == "cosine in the head's space", head
        note = page.locator("#try-note").inner_text()
        assert "its own space (centred, whitened, L2)" in note


def test_geometry_map_draws_means_inside_their_clouds_and_names_its_space(page, images):
    train, _ = images
    teach_and_imprint(page, train, n=10)
    page.get_by_role("tab", name="Geometry").click()
    page.wait_for_selector("#geometry-map .js-plotly-plot", timeout=60_000)
    plot = page.evaluate(
        """() => {
            const p = document.querySelector('#geometry-map .js-plotly-plot');
            return {title: (p.layout.title || {}).text || '',
                    traces: p.data.map(t => ({name: t.name, x: t.x, y: t.y}))};
        }"""
    )
    traces = {t["name"]: np.c_[values(t["x"]), values(t["y"])] for t in plot["traces"]}
    means = traces["class means"]
    for i, name in enumerate(["sneakers", "trousers"]):  # the head's classes, sorted
        cloud = Delaunay(traces[name])
        assert cloud.find_simplex(means[i][None, :])[0] >= 0, (name, means[i])
    assert "head's space (centred, whitened, L2)" in plot["title"], plot["title"]
    assert "sneakers proxies" in traces and "trousers proxies" in traces
    assert page.locator("#geometry-text").inner_text().strip().split("\n")[0]
    wait_text(page, "#geometry-text", "In the map, ")


def test_a_map_setting_changed_while_the_map_is_drawn_is_drawn_next(page, url, images):
    """A map setting changed while the map is still being drawn is drawn right after it, and the
    map ends as the controls say: Gradio's default for `input` ("once") dropped the change, and
    the map stayed in 3-D under a "2-D" choice. The first drawing is made slow here by holding
    its request to Gradio's queue until the setting has been changed back."""
    train, _ = images
    teach_and_imprint(page, train, n=3)
    page.get_by_role("tab", name="Geometry").click()
    page.wait_for_selector("#geometry-map .js-plotly-plot")
    page.wait_for_timeout(1000)  # the tab's own drawing has ended
    held = hold_first_event(page, "draw")  # answered once the setting is changed back
    before = events_run(url, "draw")
    page.get_by_label("3-D").check()
    first_drawing = wait_held(page, held)
    page.get_by_label("2-D").check()
    page.wait_for_timeout(300)  # the second `input` has come and found the first pending
    first_drawing.continue_()
    for _ in range(600):  # without the fix only the 3-D drawing ever runs
        if events_run(url, "draw") - before >= 2:
            break
        page.wait_for_timeout(100)
    assert events_run(url, "draw") - before == 2, "each change drawn once"
    page.wait_for_function("() => !document.querySelector('#geometry-map .pending')")
    kinds = page.evaluate(
        "() => document.querySelector('#geometry-map .js-plotly-plot').data.map(t => t.type)"
    )
    assert "scatter3d" not in kinds, kinds
