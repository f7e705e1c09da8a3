"""Export: download the head (safetensors + readable JSON metadata), use it from Python, or load
a saved head into this session. The download shown is always the current head's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj

from .views import Views


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row():
        with gr.Column():
            ui.export = gr.Button("Download the head", variant="primary", elem_id="export")
            views.add(
                "export_files",
                gr.File(
                    label="Head: safetensors (JSON metadata in its header) and the "
                    "same metadata as a readable .json",
                    file_count="multiple",
                    elem_id="head-file",
                ),
            )
            views.add("export_note", gr.Markdown(elem_id="export-note"))
            views.add(
                "snippet",
                gr.Code(pj.python_snippet(), language="python", label="Use it from Python"),
            )
        with gr.Column():
            ui.upload = gr.File(
                label=f"Load a saved head (.safetensors, at most {pj.MAX_HEAD_MB} MB)",
                file_types=[".safetensors"],
                elem_id="head-upload",
            )
            ui.message = gr.Markdown(elem_id="load-msg")
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    views.on(ui.export.click, export)
    views.on(
        ui.upload.upload,
        load_head,
        [ui.upload],
        extra=[ui.message, ui.upload],
        refused=lambda project, file: ("", None),
    )


def export(project) -> None:
    pj.export_metadata(project.export_head())


def load_head_file(project: pj.Project, path: str) -> None:
    """Load a head file into ``project`` if its backbone is offered here and fits it."""
    size = Path(path).stat().st_size
    if size > pj.MAX_HEAD_MB * 1024 * 1024:
        raise pj.ProjectError(
            f"'{Path(path).name}' is {size / 2**20:.0f} MB; a head file may be at most "
            f"{pj.MAX_HEAD_MB} MB."
        )
    project.load_head(path, pj.backbone_names(), pj.backbone_dims())


def load_head(project, file):
    if not file:
        return gr.skip(), gr.skip()
    load_head_file(project, file)
    return f"Head '{pj.escape_md(project.head_source)}' loaded: go to **Try it**.", None
