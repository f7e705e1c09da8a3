"""A page event sends a page only the groups of views that changed since it was sent them (issue
20: every event re-sent, and the browser drew again, the confusion matrix and every other view)."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio.context import LocalContext

from imprint_core import session as pj
from imprint_core.session import examples as ex
from imprint_core.ui.views import SKIPPABLE, Views


@pytest.fixture(scope="module")
def trained():
    project = pj.Project(n_classes=0)
    ex.load_example(project, "fashion3")
    project.train(pj.load_backbone(None))
    yield project
    project.close()


@pytest.fixture
def on_page():
    """Run as an event of the page (Gradio session) named by the call."""
    tokens = []

    def page(session_hash: str) -> None:
        tokens.append(LocalContext.request.set(gr.Request(session_hash=session_hash)))

    yield page
    for token in reversed(tokens):
        LocalContext.request.reset(token)


def _sent(views: Views, values: list) -> set[str]:
    return {n for (n, _, _), v in zip(views._order(), values, strict=True) if v != gr.skip()}


def test_a_page_is_sent_only_the_views_that_changed(trained, fashion3, on_page):
    _, test = fashion3
    with gr.Blocks():
        views = Views(gr.State(None))
        for name in pj.VIEWS:
            views.add(name, gr.JSON())
    groups = pj.view_groups(trained)
    showing = {n for g in SKIPPABLE for n in groups[g]}
    everything = set(pj.VIEWS)
    on_page("page-a")
    assert _sent(views, views.changed(trained)) == everything  # its first event
    assert _sent(views, views.changed(trained)) == everything - showing
    trained.predict(pj.load_backbone(None), str(test["Sneaker"][0]), "probe.png")
    sent = _sent(views, views.changed(trained))
    assert set(groups["prediction"]) <= sent and "try_note" in sent  # Try it, and...
    assert not sent & set(groups["confusion"]) and "summary" not in sent  # ...not the Result
    on_page("page-b")  # another page (a second tab on the same project) was sent nothing yet
    assert _sent(views, views.changed(trained)) == everything
    on_page("page-a")
    assert _sent(views, views.show(trained)) == everything  # a page load: everything


def test_an_event_of_some_groups_outputs_and_records_only_those(trained, fashion3, on_page):
    """Try it's event outputs only the views an image tried can change; what it sent is added
    to the page's record, so the next full event still sends only what changed."""
    _, test = fashion3
    with gr.Blocks():
        project = gr.State(None)
        views = Views(project)
        for name in pj.VIEWS:
            views.add(name, gr.JSON())
    tried = pj.TRIED_IMAGE_GROUPS
    names = pj.group_views(tried)
    assert views.outputs_of(tried) == [project, *(views.components[n][0][0] for n in names)]
    assert views.outputs_of(()) == [project]
    on_page("page-c")
    views.changed(trained)  # the page's first event: everything
    trained.predict(pj.load_backbone(None), str(test["Trouser"][0]), "probe-c.png")
    values = views.changed(trained, tried)
    assert len(values) == len(names)
    sent = {n for n, v in zip(names, values, strict=True) if v != gr.skip()}
    assert set(pj.group_views(["prediction"])) <= sent
    assert all(v == gr.skip() for v in views.changed(trained, tried))  # nothing new since
    # a full event next: the prediction was recorded as sent, the other groups were not lost
    showing = {n for g in SKIPPABLE for n in pj.group_views([g])}
    assert _sent(views, views.changed(trained)) == set(pj.VIEWS) - showing
