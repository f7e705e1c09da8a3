"""The fixed API endpoints (/imprint, /predict, /export, /load_head) for gradio_client and HTTP.

Their names, parameters and JSON shapes are the documented API (docs/app.md). Each runs in a
``Project.transaction`` (errors.api_endpoint): a refused request leaves the session as it was.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from imprint_core import session as pj

from .errors import api_endpoint

DEFAULT_BACKBONE = pj.default_backbone_name()


def api_imprint(files, labels, preset="ours", backbone=DEFAULT_BACKBONE, project=None):
    """Imprint from files and one class name per file; returns the JSON summary."""
    bb = pj.load_backbone(backbone or DEFAULT_BACKBONE)
    records = pj.records_from_labels(files or [], labels)
    project.set_settings(preset or pj.DEFAULT_PRESET)
    project.reset()
    project.import_images(records, "the request")
    project.train(bb)
    return project.summary()


def api_predict(image, project=None):
    """Classify one image file: {label, confidences} as gr.Label gives it."""
    if not image:
        raise pj.ProjectError("Send one image file as 'image'.")
    backbone = pj.load_backbone(project.backbone_name)
    # the answer has no neighbours: ranking the training images would be thrown away
    return project.predict(backbone, image, Path(image).name, n_neighbors=0)["confidences"]


def api_load_head(head, project=None):
    """Load a saved head (safetensors) into this session; returns the JSON summary."""
    if not head:
        raise pj.ProjectError("Send a saved head file as 'head'.")
    pj.load_head_file(project, head)
    return project.summary()


def api_export(project=None):
    """The imprinted head as a safetensors file (JSON metadata inside)."""
    return str(project.export_head())


def build(project: gr.State) -> None:
    """Hidden inputs/outputs and the named endpoints (outside gr.render: their ids are fixed)."""
    with gr.Row(visible=False):
        files = gr.File(file_count="multiple", label="files")
        labels = gr.JSON(label="labels")
        preset = gr.Textbox(value=pj.DEFAULT_PRESET, label="preset")
        backbone = gr.Textbox(value=DEFAULT_BACKBONE, label="backbone")
        summary = gr.JSON(label="summary")
        image = gr.File(label="image")
        label = gr.Label(label="prediction")
        head = gr.File(label="head")
        head_in = gr.File(label="head")
        load_go = gr.Button("load_head")
        imprint_go = gr.Button("imprint")
        predict_go = gr.Button("predict")
        export_go = gr.Button("export")
    imprint_go.click(
        api_endpoint(api_imprint),
        [files, labels, preset, backbone, project],
        [summary, project],
        api_name="imprint",
        concurrency_id="embed",
        concurrency_limit=pj.HEAVY_CONCURRENCY["embed"],
    )
    predict_go.click(
        api_endpoint(api_predict),
        [image, project],
        [label, project],
        api_name="predict",
        concurrency_id="predict",
        concurrency_limit=pj.HEAVY_CONCURRENCY["predict"],
    )
    export_go.click(api_endpoint(api_export), [project], [head, project], api_name="export")
    load_go.click(
        api_endpoint(api_load_head), [head_in, project], [summary, project], api_name="load_head"
    )
