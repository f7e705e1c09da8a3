"""IMPRINT: teach an image classifier with a few images per class, try it, export it.

The Gradio layer only: layout and events. Everything else lives in ``imprint_core`` (project.py:
classes, images, embedding, imprinting, evidence, export; evaluation.py; examples.py).
Run ``python app.py``; on Hugging Face Spaces GRADIO_SERVER_NAME / GRADIO_SERVER_PORT apply.
"""

from __future__ import annotations

import os

# Quiet offline: set before gradio is imported (gradio reads them at import time).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from imprint_core import session as pj  # noqa: E402
from imprint_core.presets import PRESETS  # noqa: E402
from imprint_core.session import examples as ex  # noqa: E402

DEFAULT_BACKBONE = pj.default_backbone_name()
SESSION_TTL_S = 4 * 3600  # a project (and its stored images) is dropped after 4 idle hours
MAX_THUMBS = 40

PRESET_LABELS = {
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
OPTIONS = list(OPTION_WIDGETS)

CSS = """
.class-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 6px;}
.drop-zone {min-height: 90px;}
#status {min-height: 1.5em;}
.thumbs button[aria-label='Clear'] {display: none;}  /* no event to learn of it: the card has Clear */
"""


# ---- session helpers -----------------------------------------------------------------------------
def _project(project: pj.Project | None) -> pj.Project:
    return project if project is not None else pj.Project()


def _close(project: pj.Project | None) -> None:
    if project is not None:
        project.close()


def _fail(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def _cards(project: pj.Project) -> dict:
    return project.view(MAX_THUMBS)


# ---- views of results --------------------------------------------------------------------------
def result_views(project: pj.Project):
    """(status line, summary markdown, accuracy markdown, per-class rows, confusion figure)."""
    s = project.summary()
    acc = s["accuracy"] or {}
    fig = None
    if acc.get("confusion") is not None:
        from imprint_core.figures import confusion_matrix_figure

        fig = confusion_matrix_figure(acc["confusion"], acc["labels"])
    return (
        pj.status_line(s),
        pj.summary_markdown(s),
        pj.accuracy_markdown(s),
        pj.per_class_rows(s),
        fig,
    )


# ---- event handlers ------------------------------------------------------------------------------
def on_load():
    project = pj.Project()
    return project, _cards(project)


def on_add_class(project):
    project = _project(project)
    try:
        project.add_class()
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, _cards(project)


def _drop_label(name: str) -> str:
    return f"Drop images of '{name}' here"


def on_rename(uid: int, project, name: str):
    """Rename in place (the name box and the drop zone's label): no re-render of the cards,
    which would wipe typing elsewhere and replace every card's event handlers."""
    project = _project(project)
    try:
        entry = project.get(uid)
        if " ".join(str(name).split()) != entry.name:
            project.rename_class(uid, name)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    name = project.get(uid).name
    return project, gr.skip(), name, gr.update(label=_drop_label(name)), _status(project)


def on_rename_failed(uid: int, project):
    """Put the class's current name back into its box."""
    project = _project(project)
    try:
        return project, gr.skip(), project.get(uid).name, gr.skip(), gr.skip()
    except pj.ProjectError:  # the class is gone (removed meanwhile): show the cards as they are
        return project, _cards(project), gr.skip(), gr.skip(), gr.skip()


def on_remove(uid: int, project):
    project = _project(project)
    try:
        project.remove_class(uid)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, _cards(project), _status(project)


# Changes inside one card update that card in place ([project, cards, count, gallery, ...]):
# re-rendering every card would replace all their event handlers, and a click that reaches the
# server in between would name handlers that no longer exist. Only a class that vanished
# meanwhile (another tab removed it) makes them re-render the cards.
def _count_text(n: int) -> str:
    return f"**{n}** image{'s' if n != 1 else ''}"


def _status(project: pj.Project) -> str:
    """The line under Imprint (it says when the images changed since the last imprint)."""
    return pj.status_line(project.summary())


def _card_update(project: pj.Project, uid: int) -> tuple:
    """(cards, count, gallery, status) after a change to class ``uid``."""
    try:
        card = project.card(uid, MAX_THUMBS)
    except pj.ProjectError:
        return _cards(project), gr.skip(), gr.skip(), _status(project)
    thumbs = card["thumbs"]
    gallery = gr.update(value=thumbs or None, visible=bool(thumbs))
    return gr.skip(), _count_text(card["n"]), gallery, _status(project)


def on_clear(uid: int, project):
    project = _project(project)
    try:
        project.clear_images(uid)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, *_card_update(project, uid)


def on_add_images(uid: int, project, files):
    project = _project(project)
    if not files:
        return (gr.skip(),) * 6
    files = files if isinstance(files, list) else [files]
    try:
        project.add_images(uid, files)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, *_card_update(project, uid), None


def on_delete_image(uid: int):
    """A thumbnail's delete button removes that image from class ``uid``.

    A closure, not a partial: Gradio finds the event-data argument by its type hint, which it
    cannot read through ``functools.partial``. Gradio 6's Gallery sends ``{"file": {...},
    "index": i}``, which ``gr.DeletedFileData`` fails to parse, so the raw payload is read.
    """

    def delete(project, evt: gr.EventData):
        project = _project(project)
        data = getattr(evt, "_data", None) or {}
        file = data.get("file", data) if isinstance(data, dict) else {}
        path = file.get("path") if isinstance(file, dict) else None
        try:
            if not path:
                raise pj.ProjectError("The deleted thumbnail did not say which image it was.")
            project.remove_image_file(uid, path)
        except pj.ProjectError as exc:
            raise _fail(exc) from None
        return project, *_card_update(project, uid)

    return delete


def on_gallery_upload(uid: int, project, value):
    """Images dropped onto a class's thumbnails join that class."""
    project = _project(project)
    try:
        project.add_gallery_images(uid, [item[0] for item in value or []])
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, *_card_update(project, uid)


def on_card_refused(uid: int, project):
    """After a refused change: the card as it is (the browser may have changed its gallery)."""
    project = _project(project)
    return project, *_card_update(project, uid)


def on_upload_failed(uid: int, project):
    """After a refused upload: the card as it is, and an empty drop zone."""
    return *on_card_refused(uid, project), None


def on_import_zip(project, file):
    project = _project(project)
    if not file:
        return gr.skip(), gr.skip(), gr.skip(), None, gr.skip()
    try:
        message = project.import_zip(file, Path(file).name)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, _cards(project), message, None, _status(project)


def on_import_folder(project, files, relative_paths: str):
    """A folder picked in the browser; ``relative_paths`` is the page's JSON list of the files'
    paths inside it (see FOLDER_PATHS_JS)."""
    import json

    project = _project(project)
    if not files:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        paths = json.loads(relative_paths or "[]")
        if not isinstance(paths, list):
            raise ValueError
    except ValueError:
        raise _fail(pj.ProjectError("The folder's file paths did not arrive; zip it.")) from None
    try:
        message = project.import_uploaded_folder(files, [str(p) for p in paths])
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project, _cards(project), message, _status(project)


def on_example(key: str, project):
    project = _project(project)
    try:
        message = ex.load_example(project, key)
    except (pj.ProjectError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    return project, _cards(project), message, _status(project)


def on_imprint(project, backbone_name, progress=gr.Progress()):
    project = _project(project)
    backbone, warning = pj.backbone_or_default(backbone_name)
    if warning:
        gr.Warning(warning)

    def report(done: int, total: int) -> None:
        if total == 0:
            progress(1.0, desc="Every image is embedded already")
        else:
            progress((done, total), desc=f"Embedded {done} of {total} images", unit="images")

    try:
        project.train(backbone, progress=report)
    except (pj.ProjectError, ValueError) as exc:
        raise _fail(exc) from None
    return (project, backbone.name, *result_views(project))


def on_settings(project, backbone_name, preset, *values):
    """A preset or an Advanced option changed: validate, and re-imprint from cached embeddings."""
    project = _project(project)
    options = dict(zip(OPTIONS, values, strict=True))
    options["k"], options["m"], options["seed"] = (
        int(options["k"]),
        int(options["m"]),
        int(options["seed"] or 0),
    )
    try:
        if preset in PRESETS and preset != project.preset:
            settings = project.set_settings(preset)
        else:
            settings = project.set_settings(None, **options)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    widgets = [settings.get(o, gr.skip()) for o in OPTIONS]
    views = result_views(project)
    if project.head_source == "imprinted" and project.is_embedded(backbone_name):
        try:
            project.imprint()
        except pj.ProjectError as exc:
            raise _fail(exc) from None
        views = result_views(project)
    name = project.preset or "custom"
    return (project, name, pj.preset_description(name), *widgets, *views)


def on_predict(project, image):
    if not image:
        return None, None, None, ""
    project = _project(project)
    try:
        backbone = pj.load_backbone(project.backbone_name)
        result = project.predict(backbone, image, Path(image).name)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    thumbs = [
        (n["path"], f"{n['class']} · {n['file']} · cos {n['similarity']:.2f}")
        for n in result["neighbours"]
    ]
    note = "" if thumbs else "No training images to compare with (a loaded head)."
    return result["confidences"], pj.evidence_rows(result), thumbs, note


def on_geometry(project, method, dim, space):
    project = _project(project)
    try:
        g = project.geometry(method, int(dim), normalize=space == "l2")
    except pj.ProjectError as exc:
        return None, str(exc), None, None
    return g["figure"], pj.geometry_markdown(g), g["cosines"], g["dispersion"]


def on_use_auto(project, backbone_name, preset, *values):
    """The Geometry tab's advice applied: k-means proxies, their number chosen per class."""
    values = list(values)
    values[OPTIONS.index("gen")] = "auto"
    return on_settings(project, backbone_name, "custom", *values)


def on_k_curve(project, progress=gr.Progress()):
    project = _project(project)
    try:
        figure, curve = project.k_curve(progress=lambda f, msg="": progress(f, desc=msg))
    except pj.ProjectError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return figure, curve.get("cv_description", "")


def on_predict_many(project, files):
    if not files:
        return None
    project = _project(project)
    rows = []
    try:
        backbone = pj.load_backbone(project.backbone_name)
        for f in files:
            r = project.predict(backbone, f, Path(f).name, n_neighbors=0)
            rows.append([Path(f).name, r["label"], pj.percent(r["confidences"][r["label"]])])
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return rows


def on_export(project):
    project = _project(project)
    try:
        path = project.export_head()
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    files = [str(path), str(pj.export_metadata(path))]
    return files, pj.python_snippet(path.name, project.backbone_name)


def _load_head_file(project: pj.Project, path: str) -> None:
    from imprint_core.backbones import BACKBONES

    project.load_head(path, pj.backbone_names(), {n: b.dim for n, b in BACKBONES.items()})


def on_load_head(project, file):
    project = _project(project)
    if not file:
        return (gr.skip(),) * 6
    try:
        _load_head_file(project, file)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return (project, *result_views(project))


# ---- API endpoints (fixed, outside gr.render) ----------------------------------------------------
def api_imprint(files, labels, preset="ours", backbone=DEFAULT_BACKBONE, project=None):
    """Imprint from files and one class name per file; returns the JSON summary."""
    project = _project(project)
    try:
        bb = pj.load_backbone(backbone or DEFAULT_BACKBONE)
        project.set_settings(preset or pj.DEFAULT_PRESET)
        records = pj.records_from_labels(files or [], labels)
        project.reset()
        project.import_images(records, "the request")
        project.train(bb)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project.summary(), project


def api_predict(image, project=None):
    """Classify one image file: {label, confidences} as gr.Label gives it."""
    project = _project(project)
    if not image:
        raise gr.Error("Send one image file as 'image'.", print_exception=False)
    try:
        backbone = pj.load_backbone(project.backbone_name)
        result = project.predict(backbone, image, Path(image).name)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return result["confidences"], project


def api_load_head(head, project=None):
    """Load a saved head (safetensors) into this session; returns the JSON summary."""
    project = _project(project)
    if not head:
        raise gr.Error("Send a saved head file as 'head'.", print_exception=False)
    try:
        _load_head_file(project, head)
    except pj.ProjectError as exc:
        raise _fail(exc) from None
    return project.summary(), project


def api_export(project=None):
    """The imprinted head as a safetensors file (JSON metadata inside)."""
    project = _project(project)
    try:
        return str(project.export_head()), project
    except pj.ProjectError as exc:
        raise _fail(exc) from None


# ---- layout --------------------------------------------------------------------------------------
def build_app() -> gr.Blocks:
    with gr.Blocks(
        title="IMPRINT: few-shot image classification", delete_cache=(1800, 3600)
    ) as demo:
        project = gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=_close)
        cards = gr.State(None)
        gr.Markdown(
            "# IMPRINT: teach an image classifier with a few examples\n"
            "Add classes, drop a few images into each, press **Imprint**. A frozen foundation "
            "model embeds the images and each class is *imprinted* as a handful of proxy vectors "
            "(k-means, Westerhoff et al., TMLR 2025). No training loop, no GPU."
        )
        with gr.Tabs():
            with gr.Tab("Teach", id="teach"):
                with gr.Row():
                    example_buttons = {
                        key: gr.Button(f"Example: {e.title}", size="sm", elem_id=f"example-{key}")
                        for key, e in ex.EXAMPLES.items()
                    }
                with gr.Accordion(
                    "Bulk import: a folder or a zip with one folder per class", open=False
                ):
                    with gr.Row():
                        folder_button = gr.UploadButton(
                            "Choose a folder (cat/1.jpg, dog/2.png, ...)",
                            file_count="directory",
                            elem_id="folder-upload",
                            size="md",
                            scale=1,
                        )
                        zip_file = gr.File(
                            label=f"or a zip (at most {pj.MAX_UPLOAD_MB} MB)",
                            file_types=[".zip"],
                            elem_id="zip-upload",
                            height=120,
                            scale=2,
                        )
                    folder_paths = gr.Textbox(visible=False)
                teach_msg = gr.Markdown(elem_id="teach-msg")

                # Only cards.change: the default triggers add page load, and two renders racing at
                # load leave the browser with event ids the server has already replaced.
                @gr.render(inputs=[cards], triggers=[cards.change])
                def render_cards(view):
                    if not view:
                        gr.Markdown("Loading...")
                        return
                    for i, card in enumerate(view["classes"]):
                        _card(i, card, project, cards, status_teach)

                with gr.Row():
                    add_btn = gr.Button("+ Add a class", elem_id="add-class")
                    imprint_teach = gr.Button("Imprint", variant="primary", elem_id="imprint")
                status_teach = gr.Markdown(elem_id="status")

            with gr.Tab("Method", id="method"):
                with gr.Row():
                    backbone = gr.Dropdown(
                        pj.backbone_names(),
                        value=DEFAULT_BACKBONE,
                        label="Backbone (frozen foundation model)",
                        info="The built-in EfficientNet-Lite0 works offline; others download "
                        "their weights on first use (if they cannot, the built-in one is kept).",
                        elem_id="backbone",
                    )
                    preset = gr.Radio(
                        [(PRESET_LABELS.get(k, k), k) for k in PRESETS] + [("Custom", "custom")],
                        value=pj.DEFAULT_PRESET,
                        label="Method preset",
                        elem_id="preset",
                    )
                preset_md = gr.Markdown(pj.preset_description(pj.DEFAULT_PRESET))
                defaults = dict(PRESETS[pj.DEFAULT_PRESET])
                with gr.Accordion("Advanced: every option of the IMPRINT framework", open=False):
                    widgets = []
                    for pair in range(0, len(OPTIONS), 2):
                        with gr.Row():
                            for name in OPTIONS[pair : pair + 2]:
                                factory, info = OPTION_WIDGETS[name]
                                widgets.append(
                                    factory(
                                        value=defaults.get(name, 0),
                                        label=name,
                                        info=info,
                                        elem_id=f"opt-{name}",
                                    )
                                )
                imprint_method = gr.Button("Imprint", variant="primary")
                status_method = gr.Markdown(elem_id="status-method")

            with gr.Tab("Result", id="result"):
                summary_md = gr.Markdown("Nothing imprinted yet.", elem_id="summary")
                accuracy_md = gr.Markdown(elem_id="accuracy")
                with gr.Row():
                    per_class = gr.Dataframe(
                        headers=["class", "images evaluated", "accuracy"],
                        label="Per-class accuracy",
                        interactive=False,
                        elem_id="per-class",
                    )
                    confusion = gr.Plot(label="Confusion matrix", elem_id="confusion")

            with gr.Tab("Try it", id="try"):
                with gr.Row():
                    with gr.Column():
                        try_image = gr.Image(
                            sources=["upload", "webcam", "clipboard"],
                            type="filepath",
                            label="An image to classify",
                            elem_id="try-image",
                            height=300,
                        )
                        for key, example in ex.EXAMPLES.items():
                            held_out = [[str(p)] for _, p in _safe_tests(key)]
                            if held_out:
                                gr.Examples(
                                    held_out,
                                    [try_image],
                                    label=f"Held-out images: {example.title}",
                                    examples_per_page=12,
                                )
                    with gr.Column():
                        label = gr.Label(
                            num_top_classes=5, label="Prediction", elem_id="prediction"
                        )
                        evidence = gr.Dataframe(
                            headers=["class", "confidence", "nearest proxy", "cosine similarity"],
                            label="Evidence: the nearest proxy of each class",
                            interactive=False,
                            elem_id="evidence",
                        )
                        neighbours = gr.Gallery(
                            label="Nearest training images",
                            columns=3,
                            height="auto",
                            fit_columns=False,
                            elem_id="neighbours",
                        )
                        try_note = gr.Markdown()
                with gr.Accordion("Classify several images", open=False):
                    many = gr.File(file_count="multiple", file_types=["image"], label="Images")
                    many_out = gr.Dataframe(
                        headers=["file", "label", "confidence"], interactive=False
                    )

            with gr.Tab("Geometry", id="geometry") as geometry_tab:
                gr.Markdown(
                    "Each dot is one training image (its embedding, L2-normalised and projected "
                    "to 2-D or 3-D); diamonds are the proxies, crosses the class means, the star "
                    "the last image you tried. A class whose dots form several groups is "
                    "multi-modal: one mean falls between the groups, several proxies do not."
                )
                with gr.Row():
                    map_method = gr.Radio(
                        [("PCA", "pca"), ("UMAP", "umap")], value="pca", label="Map"
                    )
                    map_dim = gr.Radio([("2-D", 2), ("3-D", 3)], value=2, label="Dimensions")
                    map_space = gr.Radio(
                        [("L2-normalised", "l2"), ("raw", "raw")],
                        value="l2",
                        label="Embeddings",
                    )
                geometry_plot = gr.Plot(label="Embedding map", elem_id="geometry-map")
                geometry_md = gr.Markdown(elem_id="geometry-text")
                with gr.Row():
                    cosine_plot = gr.Plot(
                        label="Class-mean cosines beside the ideal simplex", elem_id="cosines"
                    )
                    dispersion_plot = gr.Plot(label="Spread of each class", elem_id="dispersion")
                use_auto_btn = gr.Button(
                    "Apply: let IMPRINT choose the number of proxies per class (gen = auto)",
                    elem_id="use-auto",
                )
                gr.Markdown(
                    "**Accuracy against the number of proxies** on your own images, "
                    "cross-validated (the paper's Figure 6 for your project; takes a few seconds)."
                )
                k_curve_btn = gr.Button("Compute the accuracy-vs-k curve", elem_id="k-curve-btn")
                k_curve_plot = gr.Plot(label="Accuracy vs k", elem_id="k-curve")
                k_curve_md = gr.Markdown()

            with gr.Tab("Export", id="export"):
                with gr.Row():
                    with gr.Column():
                        export_btn = gr.Button(
                            "Download the head", variant="primary", elem_id="export"
                        )
                        head_file = gr.File(
                            label="Head: safetensors (JSON metadata in its header) and the "
                            "same metadata as a readable .json",
                            file_count="multiple",
                            elem_id="head-file",
                        )
                        snippet = gr.Code(
                            pj.python_snippet(), language="python", label="Use it from Python"
                        )
                    with gr.Column():
                        head_upload = gr.File(
                            label="Load a saved head (.safetensors)",
                            file_types=[".safetensors"],
                            elem_id="head-upload",
                        )
                        load_msg = gr.Markdown()

        # ---- hidden API inputs/outputs: fixed endpoints outside gr.render ----
        with gr.Row(visible=False):
            api_files = gr.File(file_count="multiple", label="files")
            api_labels = gr.JSON(label="labels")
            api_preset = gr.Textbox(value=pj.DEFAULT_PRESET, label="preset")
            api_backbone = gr.Textbox(value=DEFAULT_BACKBONE, label="backbone")
            api_summary = gr.JSON(label="summary")
            api_image = gr.File(label="image")
            api_label = gr.Label(label="prediction")
            api_head = gr.File(label="head")
            api_head_in = gr.File(label="head")
            api_load_go = gr.Button("load_head")
            api_go = gr.Button("imprint")
            api_predict_go = gr.Button("predict")
            api_export_go = gr.Button("export")

        # ---- events ----
        views = [status_teach, summary_md, accuracy_md, per_class, confusion]
        demo.load(on_load, None, [project, cards], api_visibility="private")
        add_btn.click(on_add_class, [project], [project, cards], api_visibility="private")
        for key, button in example_buttons.items():
            button.click(
                partial(on_example, key),
                [project],
                [project, cards, teach_msg, status_teach],
                api_visibility="private",
            )
        folder_button.upload(
            on_import_folder,
            [project, folder_button, folder_paths],
            [project, cards, teach_msg, status_teach],
            js="(project, files, paths) => [project, files, JSON.stringify("
            "window.imprintFolderPaths || [])]",
            api_visibility="private",
        )
        zip_file.upload(
            on_import_zip,
            [project, zip_file],
            [project, cards, teach_msg, zip_file, status_teach],
            api_visibility="private",
        ).failure(lambda: None, None, [zip_file], api_visibility="private")
        for button in (imprint_teach, imprint_method):
            button.click(
                on_imprint,
                [project, backbone],
                [project, backbone, *views],
                api_visibility="private",
                concurrency_id="embed",
            )
        # the Method tab repeats the line under Imprint, whatever changed it (imprint, settings,
        # card edits)
        status_teach.change(lambda s: s, [status_teach], [status_method], api_visibility="private")
        settings_out = [project, preset, preset_md, *widgets, *views]
        for trigger in (preset, *widgets):
            trigger.input(
                on_settings,
                [project, backbone, preset, *widgets],
                settings_out,
                api_visibility="private",
            )
        use_auto_btn.click(
            on_use_auto,
            [project, backbone, preset, *widgets],
            settings_out,
            api_visibility="private",
        )
        backbone.input(
            on_backbone,
            [project, backbone],
            [project, backbone, *views],
            api_visibility="private",
            concurrency_id="embed",
        )
        try_image.change(
            on_predict,
            [project, try_image],
            [label, evidence, neighbours, try_note],
            api_visibility="private",
        )
        for trigger in (geometry_tab.select, map_method.input, map_dim.input, map_space.input):
            trigger(
                on_geometry,
                [project, map_method, map_dim, map_space],
                [geometry_plot, geometry_md, cosine_plot, dispersion_plot],
                api_visibility="private",
            )
        k_curve_btn.click(
            on_k_curve, [project], [k_curve_plot, k_curve_md], api_visibility="private"
        )
        many.upload(on_predict_many, [project, many], [many_out], api_visibility="private")
        export_btn.click(on_export, [project], [head_file, snippet], api_visibility="private")
        head_upload.upload(
            on_load_head, [project, head_upload], [project, *views], api_visibility="private"
        ).success(
            lambda: "Head loaded: go to **Try it**.", None, [load_msg], api_visibility="private"
        )

        api_go.click(
            api_imprint,
            [api_files, api_labels, api_preset, api_backbone, project],
            [api_summary, project],
            api_name="imprint",
            concurrency_id="embed",
        )
        api_predict_go.click(
            api_predict, [api_image, project], [api_label, project], api_name="predict"
        )
        api_export_go.click(api_export, [project], [api_head, project], api_name="export")
        api_load_go.click(
            api_load_head, [api_head_in, project], [api_summary, project], api_name="load_head"
        )
    return demo


def on_backbone(project, backbone_name, progress=gr.Progress()):
    """Backbone changed: re-embed and re-imprint if a head was imprinted before."""
    project = _project(project)
    backbone, warning = pj.backbone_or_default(backbone_name)
    if warning:
        gr.Warning(warning)
    if project.head_source != "imprinted":
        return (project, backbone.name, *result_views(project))
    return on_imprint(project, backbone.name, progress)


def _safe_tests(key: str):
    try:
        return ex.test_images(key)
    except FileNotFoundError:
        return []


def _card(i: int, card: dict, project, cards, status) -> None:
    """One class card: name, remove, drop zone, webcam, thumbnails (created inside gr.render)."""
    uid = card["uid"]
    with gr.Column(key=f"card-{uid}", elem_classes="class-card", elem_id=f"card-{i}"):
        with gr.Row(key=f"head-{uid}"):
            name = gr.Textbox(
                card["name"],
                show_label=False,
                max_lines=1,
                key=f"name-{uid}",
                elem_id=f"name-{i}",
                interactive=True,
                scale=4,
            )
            count = gr.Markdown(_count_text(card["n"]), key=f"n-{uid}")
            clear = gr.Button("Clear", size="sm", key=f"clear-{uid}", interactive=True, scale=0)
            remove = gr.Button(
                "Remove",
                size="sm",
                variant="stop",
                key=f"rm-{uid}",
                elem_id=f"remove-{i}",
                interactive=True,
                scale=0,
            )
        with gr.Row(key=f"inputs-{uid}"):
            drop = gr.File(
                file_count="multiple",
                file_types=["image"],
                label=_drop_label(card["name"]),
                key=f"drop-{uid}",
                elem_id=f"drop-{i}",
                elem_classes="drop-zone",
                interactive=True,
                preserved_by_key=None,
                height=140,
                scale=3,
            )
            cam = gr.Image(
                sources=["webcam"],
                type="filepath",
                label="Webcam",
                key=f"cam-{uid}",
                elem_id=f"cam-{i}",
                interactive=True,
                preserved_by_key=None,
                height=140,
                scale=1,
            )
        gallery = gr.Gallery(
            card["thumbs"] or None,
            visible=bool(card["thumbs"]),
            columns=10,
            height=140,
            fit_columns=False,
            show_label=False,
            allow_preview=True,
            interactive=True,  # per-image delete buttons; dropping images here adds them
            file_types=["image"],
            elem_classes="thumbs",
            key=f"gal-{uid}",
            elem_id=f"gal-{i}",
            preserved_by_key=None,
        )
    shown = [project, cards, count, gallery, status]
    refused = partial(on_card_refused, uid)
    gallery.delete(on_delete_image(uid), [project], shown).failure(refused, [project], shown)
    gallery.upload(partial(on_gallery_upload, uid), [project, gallery], shown).failure(
        refused, [project], shown
    )
    for trigger in (name.submit, name.blur):
        renamed = [project, cards, name, drop, status]
        trigger(partial(on_rename, uid), [project, name], renamed).failure(
            partial(on_rename_failed, uid), [project], renamed
        )
    remove.click(partial(on_remove, uid), [project], [project, cards, status])
    clear.click(partial(on_clear, uid), [project], shown)
    for source, event in ((drop, drop.upload), (cam, cam.input)):
        event(partial(on_add_images, uid), [project, source], [*shown, source]).failure(
            partial(on_upload_failed, uid), [project], [*shown, source]
        )


# Browsers upload a picked folder's files under their bare names; this records each file's path
# inside the folder (the class folders) as the folder is picked, for on_import_folder.
FOLDER_PATHS_JS = """<script>
document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.webkitdirectory && input.files) {
    window.imprintFolderPaths = Array.from(input.files, (f) => f.webkitRelativePath || f.name);
  }
}, true);
</script>"""


STALE_EVENT = "The class cards were being redrawn when you clicked, so the click was lost. Please do it again."


def _stale_event(request, exc: KeyError):
    """Answer an event for a handler that a re-render of the cards replaced.

    Gradio looks the handler up by number and lets the KeyError become a bare 500, which the page
    shows as "Could not parse server response"; a JSON ``detail`` is shown as it is.
    """
    import logging

    from starlette.responses import JSONResponse, PlainTextResponse

    log = logging.getLogger("imprint.app")
    if request.url.path.rstrip("/").endswith("/queue/join"):
        log.warning("stale event: no handler %s (the cards were re-rendered)", exc)
        return JSONResponse({"detail": STALE_EVENT}, status_code=409)
    log.error("Unhandled error on %s", request.url.path, exc_info=exc)
    return PlainTextResponse("Internal Server Error", status_code=500)


def launch_options() -> dict:
    """launch() arguments shared by ``python app.py`` and the tests."""
    port = os.environ.get("GRADIO_SERVER_PORT")
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        "server_port": int(port) if port else None,
        "ssr_mode": False,
        "share": False,
        "max_file_size": pj.MAX_UPLOAD_MB * 1024 * 1024,
        "css": CSS,
        "head": FOLDER_PATHS_JS,
        "app_kwargs": {"exception_handlers": {KeyError: _stale_event}},
    }


def main() -> None:
    import signal
    import sys

    # SIGTERM (how Spaces and tests stop the app) exits normally, so that sessions' stored
    # images are deleted by their finalizers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    demo = build_app()
    pj.start_warmup()  # background thread: the first page is served without waiting for it
    demo.queue(default_concurrency_limit=2, max_size=64).launch(**launch_options())


if __name__ == "__main__":
    main()
