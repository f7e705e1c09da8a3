"""Geometry: the embedding map (samples, proxies, class means, the last image tried), the
neural-collapse readings, the advice on proxies per class and the accuracy-vs-k curve.

Everything shown is a view of the current head: the map is drawn for the options last asked
for and redrawn when the head or images change; the curve is dropped when the images change.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj

from .views import Views


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Accordion("New to this? What the map and the numbers mean", open=False):
        gr.Markdown(pj.geometry_primer())
    gr.Markdown(
        "Each dot is one training image, drawn by default in the head's own space (where it "
        "compares images with proxies; the map's title names it) and projected to 2-D or 3-D; "
        "diamonds are the proxies, crosses the class means, the star the last image you tried. "
        "A class whose dots form several groups is multi-modal: one mean falls between the "
        "groups, several proxies do not."
    )
    with gr.Row():
        ui.method = gr.Radio([("PCA", "pca"), ("UMAP", "umap")], value="pca", label="Map")
        ui.dim = gr.Radio([("2-D", 2), ("3-D", 3)], value=2, label="Dimensions")
        ui.space = gr.Radio(
            pj.map_space_choices(), value=pj.MAP_SPACE_DEFAULT, label="Space", elem_id="map-space"
        )
    views.add("map", gr.Plot(label="Embedding map", elem_id="geometry-map"))
    views.add("geometry_text", gr.Markdown(elem_id="geometry-text"))
    with gr.Row():
        views.add(
            "cosines",
            gr.Plot(label="Class-mean cosines beside the ideal simplex", elem_id="cosines"),
        )
        views.add("dispersion", gr.Plot(label="Spread of each class", elem_id="dispersion"))
    ui.use_auto = gr.Button(
        "Apply the advice: the advised number of proxies per class",
        elem_id="use-auto",
    )
    gr.Markdown(
        "**Accuracy against the number of proxies** on your own images, "
        "cross-validated (the paper's Figure 6 for your project; takes a few seconds)."
    )
    ui.k_curve = gr.Button("Compute the accuracy-vs-k curve", elem_id="k-curve-btn")
    views.add("kcurve", gr.Plot(label="Accuracy vs k", elem_id="k-curve"))
    views.add("kcurve_text", gr.Markdown(elem_id="k-curve-text"))
    return ui


def wire(views: Views, ui: SimpleNamespace, tab: gr.Tab, method_ui: SimpleNamespace) -> None:
    """The Geometry tab's events; ``method_ui`` holds the Method tab's backbone and option
    widgets, which "Apply the advice" reads."""
    heavy = {"concurrency_id": "predict", "concurrency_limit": pj.HEAVY_CONCURRENCY["predict"]}
    # always_last: a setting changed while the map is being drawn is drawn next (the controls
    # stay usable meanwhile; Gradio's default, "once", dropped the change and the map no longer
    # matched them)
    for trigger in (tab.select, ui.method.input, ui.dim.input, ui.space.input):
        views.on(trigger, draw, [ui.method, ui.dim, ui.space], trigger_mode="always_last", **heavy)
    views.on(ui.k_curve.click, k_curve, **heavy)
    views.on(ui.use_auto.click, apply_advice, [method_ui.backbone, *method_ui.widgets])


def apply_advice(project, backbone_name, *values) -> None:
    """The advice applied: the advised gen and k, the options shown otherwise kept."""
    pj.apply_advice(project, backbone_name, dict(zip(pj.OPTION_ORDER, values, strict=True)))


def draw(project, method, dim, space) -> None:
    if project.head is not None and project.head_source == "imprinted" and not project.stale:
        project.geometry(method, int(dim), space)


def k_curve(project, progress=gr.Progress()) -> None:
    project.k_curve(progress=lambda f, msg="": progress(f, desc=msg))
