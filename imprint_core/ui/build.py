"""The page: a header, one tab per module, the API endpoints, and every event wired."""

from __future__ import annotations

import gradio as gr

from imprint_core import session as pj

from . import api, export, geometry, method, result, sort, teach, try_it
from .views import Views

INTRO = (
    "# IMPRINT: teach an image classifier with a few examples\n"
    "Add classes, drop a few images into each, press **Imprint**. A frozen foundation "
    "model embeds the images and each class is *imprinted* as proxy vectors: its mean by "
    "default, or several k-means proxies (Westerhoff et al., TMLR 2025). No training loop, "
    "no GPU."
)


# The browser keeps only the key to its project (session.keys), in localStorage, encrypted with
# a secret made at each start: a key from before a restart reads as none (a new project).
KEY_STORAGE = "imprint-project"


def _release(project) -> None:
    """A page session ended (a closed tab after an hour, or idle): the project goes when no
    other page holds it."""
    pj.release_project(project)


def _restore(views: Views):
    """The page's load event: the project kept under the browser's key (a reload, or a tab
    reopened while the session lives), or a new one under a new key; every view is shown."""

    def restore(project, key):
        fresh = project if isinstance(project, pj.Project) else None
        key, project = pj.claim_project(key, fresh)
        return (project, *views.show(project), key)

    return restore


def build_app() -> gr.Blocks:
    with gr.Blocks(
        title="IMPRINT: few-shot image classification",
        delete_cache=(1800, pj.quotas.UPLOAD_CACHE_AGE_S),
    ) as demo:
        project = gr.State(None, time_to_live=pj.SESSION_TTL_S, delete_callback=_release)
        key = gr.BrowserState("", storage_key=KEY_STORAGE)
        views = Views(project, key)
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
            with gr.Tab("Sort images", id="sort"):
                sort_ui = sort.build(views)
            with gr.Tab("Geometry", id="geometry") as geometry_tab:
                geometry_ui = geometry.build(views)
            with gr.Tab("Export", id="export"):
                export_ui = export.build(views)
        api.build(project)

        # every view component exists now: wire the events (each outputs every view)
        demo.load(_restore(views), [project, key], [*views.outputs, key], api_visibility="private")
        teach.wire(views, teach_ui, method_ui.backbone, [method_ui.imprint])
        method.wire(views, method_ui)
        try_it.wire(views, try_ui)
        sort.wire(views, sort_ui)
        geometry.wire(views, geometry_ui, geometry_tab, method_ui)
        export.wire(views, export_ui)
    return demo
