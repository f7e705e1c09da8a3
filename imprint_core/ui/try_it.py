"""Try it: classify an image with the current head, with its evidence (nearest proxy of each
class, nearest training images); classify several images at once.

The prediction is a view: the last image's embedding is kept and explained by whatever head is
current, so a preset change or a new imprint updates it, and a replaced project clears it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj
from imprint_core.session import examples as ex

from .views import Views


def _held_out(key: str) -> list:
    try:
        return ex.test_images(key)
    except FileNotFoundError:
        return []


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row():
        with gr.Column():
            ui.image = gr.Image(
                sources=["upload", "webcam", "clipboard"],
                type="filepath",
                label="An image to classify",
                elem_id="try-image",
                height=300,
            )
            for key, example in ex.EXAMPLES.items():
                held_out = [[str(p)] for _, p in _held_out(key)]
                if held_out:
                    gr.Examples(
                        held_out,
                        [ui.image],
                        label=f"Held-out images: {example.title}",
                        examples_per_page=12,
                    )
        with gr.Column():
            views.add(
                "label", gr.Label(num_top_classes=5, label="Prediction", elem_id="prediction")
            )
            views.add(
                "evidence",
                gr.Dataframe(
                    headers=["class", "confidence", "nearest proxy", "cosine similarity"],
                    label="Evidence: the nearest proxy of each class",
                    interactive=False,
                    elem_id="evidence",
                ),
            )
            views.add(
                "neighbours",
                gr.Gallery(
                    label="Nearest training images",
                    columns=3,
                    height="auto",
                    fit_columns=False,
                    elem_id="neighbours",
                ),
            )
            views.add("try_note", gr.Markdown(elem_id="try-note"))
    with gr.Accordion(
        f"Classify several images (at most {pj.MAX_PREDICT_FILES} at a time)", open=False
    ):
        ui.many = gr.File(file_count="multiple", file_types=["image"], label="Images")
        ui.many_out = gr.Dataframe(headers=["file", "label", "confidence"], interactive=False)
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    heavy = {"concurrency_id": "predict", "concurrency_limit": pj.HEAVY_CONCURRENCY["predict"]}
    views.on(ui.image.change, predict, [ui.image], **heavy)
    views.on(
        ui.many.upload,
        predict_many,
        [ui.many],
        extra=[ui.many_out, ui.many],
        refused=lambda project, files: (None, None),
        **heavy,
    )


def predict(project, image) -> None:
    if not image:  # the image was cleared: so is the prediction
        project.last_test = None
        return
    project.predict(pj.load_backbone(project.backbone_name), image, Path(image).name)


def predict_many(project, files):
    if not files:
        return None, gr.skip()
    backbone = pj.load_backbone(project.backbone_name)
    results = project.predict_many(backbone, [(f, Path(f).name) for f in files])
    rows = [
        [Path(f).name, r["label"], pj.percent(r["confidences"][r["label"]])]
        for f, r in zip(files, results, strict=True)
    ]
    return rows, gr.skip()
