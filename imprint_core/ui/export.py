"""Export: download the head (safetensors + readable JSON metadata), use it from Python, or load
a saved head into this session. A download is shown only while the session holds what it was
made of (the head, or for a project zip the classes, images, settings and head).

Also the standalone model (backbone + head as one ONNX file, for onnxruntime without this
package) and the whole project as one zip (classes, images, settings, head), saved and opened.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj
from imprint_core.onnx_export import onnx_snippet
from imprint_core.session import bundle

from .errors import session
from .views import Views

ONNX_FILE = "imprint-classifier.onnx"


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
    with gr.Row():
        with gr.Column():
            ui.onnx = gr.Button("Download standalone model (ONNX)", elem_id="export-onnx")
            views.add("onnx_file", gr.File(label="Standalone model (ONNX)", elem_id="onnx-file"))
            views.add("onnx_note", gr.Markdown(elem_id="onnx-note"))
            gr.Code(
                onnx_snippet(ONNX_FILE),
                language="python",
                label="Use it with onnxruntime (no PyTorch, no imprint_core)",
            )
        with gr.Column():
            ui.save = gr.Button("Save project", elem_id="save-project")
            views.add("project_file", gr.File(label="Project (.zip)", elem_id="project-file"))
            views.add("project_note", gr.Markdown(elem_id="project-note"))
            ui.open = gr.File(
                label=f"Open a saved project (.zip, at most {pj.MAX_UPLOAD_MB} MB): "
                "replaces the classes, images and head of this session",
                file_types=[".zip"],
                elem_id="project-upload",
            )
            ui.open_message = gr.Markdown(elem_id="open-msg")
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
    views.on(
        ui.onnx.click,
        export_onnx,
        concurrency_id="export-onnx",
        concurrency_limit=1,  # the backbone conversion is memory- and CPU-heavy
    )
    views.on(ui.save.click, save)
    ui.open.upload(
        _open_event(views),
        [views.project, ui.open],
        [*views.outputs, ui.open_message, ui.open],
        api_visibility="private",
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


def export_onnx(project, progress=gr.Progress()) -> None:
    """The views show the model (and withdraw it when the head changes)."""
    progress(0, desc="Converting the backbone and the head to ONNX (10-20 s the first time)")
    bundle.export_project_onnx(project)


def save(project) -> None:
    """The views show the zip (and withdraw it when the project changes)."""
    bundle.save_project(project, project.workdir / "saved" / "imprint-project.zip")


def _open_event(views: Views):
    """Open a saved zip as the session's project. Not a ``views.on`` event: the result is a new
    ``Project`` that replaces the state (the wrapper keeps the one it was given)."""

    def open_saved(project, file):
        project = session(project)
        if not file:
            return (project, *views.show(project), gr.skip(), gr.skip())
        try:
            backbone = pj.load_backbone(project.backbone_name)  # None: the built-in one
            opened = bundle.open_project(file, backbone=backbone)
        except pj.ProjectError as exc:  # the old project is untouched
            gr.Warning(pj.escape_html(exc))
            return (project, *views.show(project), "", None)
        project.close()
        text = f"Opened '{pj.escape_md(Path(file).name)}': {len(opened.classes)} classes."
        return (opened, *views.show(opened), text, None)

    return open_saved
