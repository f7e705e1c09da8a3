"""Method: the backbone, the preset and every option of the IMPRINT framework.

A settings change re-imprints from cached embeddings when the head was imprinted here. A
refused combination is one sentence under the options (the widgets go back to the settings in
use, and stay usable); options that go together move together, and the sentence says so.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj

from .actions import embedding_progress, warn
from .views import Views

PRESET_LABELS = {
    "adaptive": "Few-shot default: whitened class mean",
    "ours": "IMPRINT k-means (ours)",
    "qi": "Qi et al. 2018: mean",
    "hosoda": "Hosoda et al. 2024: quantile",
    "janson": "Janson et al. 2022: nearest mean",
    "oracle": "Least-squares oracle",
    "auto": "Beyond the paper: whitened, k per class",
}
CHOICES = pj.option_choices()  # option -> allowed values, from the classifier's registry
OPTION_WIDGETS = {  # option -> (factory, one-line explanation)
    "norm_pre": (
        partial(gr.Radio, CHOICES["norm_pre"]),
        "NORMpre: l2 = scale training embeddings to unit length before proxies are made; "
        "whiten (beyond the paper, with NORMinf whiten) = damp directions classes vary in.",
    ),
    "gen": (
        partial(gr.Dropdown, CHOICES["gen"]),
        "GEN: how each class's proxies are made: mean = classic imprinting, kmeans = IMPRINT, "
        "ls = least-squares oracle.",
    ),
    "k": (
        partial(gr.Slider, 1, 50, step=1),
        "Proxies per class for the k-methods; a class with fewer images keeps every image.",
    ),
    "norm_post": (
        partial(gr.Radio, CHOICES["norm_post"]),
        "NORMpost: normalise proxies: l2 = unit length; quantile = match earlier classes' values.",
    ),
    "norm_inf": (
        partial(gr.Radio, CHOICES["norm_inf"]),
        "NORMinf: how the embedding of the image to classify is normalised (l2 = unit length).",
    ),
    "agg": (
        partial(gr.Radio, CHOICES["agg"]),
        "AGG: max = the class of the best-matching proxy; mnn = the m nearest proxies vote.",
    ),
    "distance": (
        partial(gr.Dropdown, CHOICES["distance"]),
        "How an image is compared with proxies (inner product = cosine once both are l2).",
    ),
    "m": (partial(gr.Slider, 1, 25, step=1), "mnn only: how many nearest proxies vote."),
    "weighting": (
        partial(gr.Radio, CHOICES["weighting"]),
        "mnn only: one vote per proxy, or closer proxies weigh more (1 / distance).",
    ),
    "seed": (
        partial(gr.Number, precision=0),
        "Seeds k-means, random and fps proxies, so the same images give the same head.",
    ),
}
OPTIONS = list(pj.OPTION_ORDER)


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row():
        ui.backbone = views.add(
            "backbone",
            gr.Dropdown(
                pj.backbone_names(),
                value=pj.default_backbone_name(),
                label="Backbone (frozen foundation model)",
                info="The built-in EfficientNet-Lite0 works offline; others download "
                "their weights on first use (if they cannot, the built-in one is kept).",
                elem_id="backbone",
            ),
        )
        ui.preset = views.add(
            "preset",
            gr.Radio(
                [(PRESET_LABELS.get(k, k), k) for k in pj.preset_names()] + [("Custom", "custom")],
                value=pj.DEFAULT_PRESET,
                label="Method preset",
                elem_id="preset",
            ),
        )
    views.add("preset_text", gr.Markdown(pj.preset_description(pj.DEFAULT_PRESET)))
    defaults = pj.default_settings()
    with gr.Accordion("Advanced: every option of the IMPRINT framework", open=False):
        ui.widgets = []
        for pair in range(0, len(OPTIONS), 2):
            with gr.Row():
                for name in OPTIONS[pair : pair + 2]:
                    factory, info = OPTION_WIDGETS[name]
                    widget = factory(
                        value=defaults.get(name, 0), label=name, info=info, elem_id=f"opt-{name}"
                    )
                    ui.widgets.append(views.add(name, widget))
        ui.augment = views.add("augment", gr.Checkbox(**AUGMENT_WIDGET))
        views.add("method_note", gr.Markdown(elem_id="method-note"))
    ui.imprint = gr.Button("Imprint", variant="primary", elem_id="imprint-method")
    views.add("status", gr.Markdown(elem_id="status-method"))
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    for trigger in (ui.preset.input, *(w.input for w in ui.widgets)):
        views.on(trigger, apply_settings, [ui.backbone, ui.preset, *ui.widgets])
    views.on(
        ui.augment.input,
        apply_augment,
        [ui.backbone, ui.augment],
        concurrency_id="embed",
        concurrency_limit=pj.HEAVY_CONCURRENCY["embed"],
    )
    # select, not input: Gradio 6's dropdown sends input twice for one choice (two loads, two
    # identical toasts when the backbone cannot load)
    views.on(
        ui.backbone.select,
        change_backbone,
        [ui.backbone],
        concurrency_id="embed",
        concurrency_limit=pj.HEAVY_CONCURRENCY["embed"],
    )


def apply_settings(project, backbone_name, preset, *values) -> None:
    """A preset or an option changed (the session decides what that does)."""
    pj.apply_settings(project, backbone_name, preset, dict(zip(OPTIONS, values, strict=True)))


# ---- support augmentation (issue 10): a checkbox, re-imprints ------------------------------------
AUGMENT_WIDGET = {
    "value": bool(pj.AUGMENT_DEFAULT),
    "label": "Augment training images: flip + crops",
    "info": "Adds a mirrored copy and five crops of every training image as extra samples "
    "(7x the embedding time). Off by default: on Fashion-MNIST it changed the default "
    "method's accuracy by +0.1 / -0.3 / -0.4 points at 1 / 5 / 20 images per class (within "
    "the noise of 10 draws); it mostly helps a linear probe at 1 image (+15 points).",
    "elem_id": "opt-augment",
}


def apply_augment(project, backbone_name, on, progress=gr.Progress()) -> None:
    """Augmentation turned on or off: embed the views if needed and re-imprint, all or nothing."""
    pj.apply_augment(project, backbone_name, on, embedding_progress(progress), warn)


def change_backbone(project, backbone_name, progress=gr.Progress()) -> None:
    """Backbone changed: re-embed and re-imprint if a head was imprinted here before."""
    pj.change_backbone(project, backbone_name, embedding_progress(progress), warn)
