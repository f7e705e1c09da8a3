"""Export: one column per download of ``session.DOWNLOADS`` (the head with a Python snippet, the
standalone ONNX model with an onnxruntime snippet, the project zip), then loading a saved head and
opening a saved project. A download is shown only while the session holds what it was made of.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj

from .actions import HEAVY, wire_download
from .errors import session
from .views import Views


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace(downloads={})
    with gr.Row():
        exports = {k: d for k, d in pj.DOWNLOADS.items() if d.tab == "export"}
        for i, (kind, d) in enumerate(exports.items()):
            with gr.Column():
                ui.downloads[kind] = gr.Button(
                    d.button,
                    variant="primary" if i == 0 else "secondary",
                    elem_id=f"{kind}-download",
                )
                file_count = "multiple" if d.multiple else "single"
                views.add(
                    f"{kind}_file",
                    gr.File(label=d.label, file_count=file_count, elem_id=f"{kind}-file"),
                )
                views.add(f"{kind}_note", gr.Markdown(elem_id=f"{kind}-note"))
                if d.code is not None:
                    views.add(f"{kind}_code", gr.Code(language="python", label=d.code_label))
    with gr.Row():
        with gr.Column():
            ui.upload = gr.File(
                label=f"Load a saved head (.safetensors, at most {pj.MAX_HEAD_MB} MB)",
                file_types=[".safetensors"],
                elem_id="head-upload",
            )
            ui.message = gr.Markdown(elem_id="load-msg")
        with gr.Column():
            ui.open = gr.File(
                label=f"Open a saved project (.zip, at most {pj.MAX_UPLOAD_MB} MB): "
                "replaces the classes, images and head of this session",
                file_types=[".zip"],
                elem_id="project-upload",
            )
            ui.open_message = gr.Markdown(elem_id="open-msg")
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    for kind, button in ui.downloads.items():
        wire_download(views, kind, button)
    views.on(
        ui.upload.upload,
        load_head,
        [ui.upload],
        extra=[ui.message, ui.upload],
        refused=lambda project, file: ("", None),
    )
    ui.open.upload(
        _open_event(views),
        [views.project, views.key, ui.open],
        [*views.outputs, ui.open_message, ui.open],
        api_visibility="private",
        **HEAVY,
    )


def load_head(project, file):
    if not file:
        return gr.skip(), gr.skip()
    pj.load_head_file(project, file)
    return f"Head '{pj.escape_md(project.head_source)}' loaded: go to **Try it**.", None


def _open_event(views: Views):
    """Open a saved zip as the session's project. Not a ``views.on`` event: the result is a new
    ``Project`` that replaces the state (the wrapper keeps the one it was given), and the
    browser's key then names the opened project."""

    def open_saved(project, key, file):
        project = session(project)
        if not file:
            return (project, *views.show(project), gr.skip(), gr.skip())
        try:
            backbone = pj.load_backbone(project.backbone_name)  # None: the built-in one
            opened = pj.open_project(file, backbone=backbone)
        except pj.ProjectError as exc:  # the old project is untouched
            gr.Warning(pj.escape_html(exc))
            return (project, *views.show(project), "", None)
        pj.swap_project(key, project, opened)  # the old one is closed unless another page holds it
        text = f"Opened '{pj.escape_md(Path(file).name)}': {len(opened.classes)} classes."
        return (opened, *views.show(opened), text, None)

    return open_saved
