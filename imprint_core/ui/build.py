"""The page: a header, one tab per module, the API endpoints, and every event wired."""

from __future__ import annotations

import gradio as gr

from imprint_core import session as pj

from . import api, export, geometry, method, result, teach, try_it
from .views import Views

INTRO = (
    "# IMPRINT: teach an image classifier with a few examples\n"
    "Add classes, drop a few images into each, press **Imprint**. A frozen foundation "
    "model embeds the images and each class is *imprinted* as proxy vectors: its mean by "
    "default, or several k-means proxies (Westerhoff et al., TMLR 2025). No training loop, "
    "no GPU."
)


def _close(project) -> None:
    if isinstance(project, pj.Project):
        project.close()


def _fresh(project) -> None:
    """The page's load event: the wrapper makes the session's project; every view is shown."""


def build_app() -> gr.Blocks:
    with gr.Blocks(
        title="IMPRINT: few-shot image classification", delete_cache=(1800, 3600)
    ) as demo:
        project = gr.State(None, time_to_live=pj.SESSION_TTL_S, delete_callback=_close)
        views = Views(project)
        gr.Markdown(INTRO)
        # "wrap": on a phone the tabs take two rows instead of hiding behind a menu
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs"):
            with gr.Tab("Teach", id="teach"):
                teach_ui = teach.build(views)
            with gr.Tab("Method", id="method"):
                method_ui = method.build(views)
            with gr.Tab("Result", id="result"):
                result.build(views)
            with gr.Tab("Try it", id="try"):
                try_ui = try_it.build(views)
            with gr.Tab("Geometry", id="geometry") as geometry_tab:
                geometry_ui = geometry.build(views)
            with gr.Tab("Export", id="export"):
                export_ui = export.build(views)
        api.build(project)

        # every view component exists now: wire the events (each outputs every view)
        views.on(demo.load, _fresh)
        teach.wire(views, teach_ui, method_ui.backbone, [method_ui.imprint])
        method.wire(views, method_ui)
        try_it.wire(views, try_ui)
        geometry.wire(views, geometry_ui, geometry_tab, method_ui)
        export.wire(views, export_ui)
    return demo
