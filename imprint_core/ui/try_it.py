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

from .errors import session
from .views import Views, shown_if

LIVE_EVERY_S = 0.5  # a frame every half second: embedding one takes ~0.1-0.3 s on 2 busy cores


def _held_out(key: str) -> list:
    try:
        return ex.test_images(key)
    except FileNotFoundError:
        return []


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace(held_out=[])
    # The result column comes right after the photo: beside it on a desktop, right below it on a
    # phone (the columns stack); the headline and the note come before the tables.
    with gr.Row(elem_id="try-row"):
        with gr.Column(min_width=300):
            ui.image = gr.Image(
                sources=["upload", "webcam", "clipboard"],
                type="filepath",
                label="An image to classify",
                elem_id="try-image",
                height=300,
            )
        with gr.Column(min_width=300):
            views.add("label", gr.HTML(elem_id="prediction", padding=False))
            views.add("try_note", gr.Markdown(elem_id="try-note"))
            views.add(
                "evidence",
                gr.Dataframe(
                    headers=["class", "confidence", "nearest proxy", "score in the head's space"],
                    label="Evidence: the nearest proxy of each class",
                    interactive=False,
                    # wrapped at spaces (and smaller on a phone, launch.py's CSS): the long
                    # score header pushed the score, the column the decision follows, out of view
                    wrap=True,
                    column_widths=["24%", "28%", "20%", "28%"],
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
    # an example's own held-out images, shown only while that example is the project
    for key, example in ex.EXAMPLES.items():
        pairs = _held_out(key)
        held_out = [[str(p)] for _, p in pairs]
        if held_out:
            with gr.Column(visible=False, elem_id=f"held-out-{key}") as column:
                examples = gr.Examples(
                    held_out,
                    [ui.image],
                    # each thumbnail's name (a screen reader had "button" 22 times), its true class
                    example_labels=[f"{label} ({n})" for n, (label, _) in enumerate(pairs, 1)],
                    label=f"Held-out images: {example.title}",
                    examples_per_page=12,
                )
            ui.held_out.append(examples)
            views.add(f"held_out_{key}", column, show=shown_if)
    with gr.Accordion(
        f"Classify several images (at most {pj.MAX_PREDICT_FILES} at a time)", open=False
    ):
        ui.many = gr.File(
            file_count="multiple", file_types=["image"], label="Images", elem_id="try-many"
        )
        ui.many_out = gr.Dataframe(
            headers=["file", "result", "confidence"], interactive=False, elem_id="try-many-out"
        )
    with gr.Accordion("Live camera: classify what the webcam sees, continuously", open=False):
        with gr.Row():
            ui.live = gr.Image(
                sources=["webcam"],
                streaming=True,
                type="numpy",
                label="Camera",
                elem_id="live-camera",
                height=300,
            )
            with gr.Column():
                ui.live_label = gr.HTML(elem_id="live-label", padding=False)
                ui.live_note = gr.Markdown(elem_id="live-note")
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    heavy = {"concurrency_id": "predict", "concurrency_limit": pj.HEAVY_CONCURRENCY["predict"]}
    # Only the views an image tried can change are outputs (Gradio builds every output's update,
    # even a skipped one, and the page draws each sent one). `input` fires once per drop, paste,
    # webcam photo or clear; Gradio 6.31 sent `change` twice for a photo dropped over the one
    # shown. An Example fires only `change`: its click runs the prediction once it has loaded.
    tried = {
        "groups": pj.TRIED_IMAGE_GROUPS,
        "show_progress_on": [views.components["label"][0][0]],
        **heavy,
    }
    # always_last: an image given (or a held-out Example clicked) while the one before is still
    # being answered is answered after it. Gradio's default, "once", dropped it: the panel then
    # showed the new image beside the old one's result (a paste right after the clear that
    # switching to the clipboard sends, on a busy machine).
    views.on(ui.image.input, predict, [ui.image], trigger_mode="always_last", **tried)
    for examples in ui.held_out:
        views.on(
            examples.load_input_event.then, predict, [ui.image], trigger_mode="always_last", **tried
        )
    views.on(
        ui.many.upload,
        predict_many,
        [ui.many],
        extra=[ui.many_out, ui.many],
        refused=lambda project, files: (None, None),
        groups=(),  # read-only: no view changes
        **heavy,
    )
    wire_live(views, ui)


def wire_live(views: Views, ui: SimpleNamespace) -> None:
    # Each session's stream is its own queue event, so no slot limit (one slot for all let one
    # open stream hold the camera of every other session); the session layer caps each stream's
    # frame rate and length and gives each frame one turn of the fair queue. preprocess=False:
    # Gradio would decode the frame's data URL in full before any size check; the session checks
    # it from its header first. (With time_limit / concurrency_id / show_progress="hidden" set,
    # Gradio 6.31 answered only the first frame in our tests.)
    ui.live.stream(
        live_frame,
        [views.project, ui.live],
        [ui.live_label, ui.live_note],
        stream_every=LIVE_EVERY_S,
        concurrency_limit=None,
        preprocess=False,
        api_visibility="private",
    )


def live_frame(project, frame):
    """Classify one camera frame with the current head (read-only: see session.classify_frame);
    a dropped frame (the session's frame rate) changes nothing on the page."""
    try:
        answer = pj.classify_frame(session(project), frame)
    except pj.ProjectError as exc:  # a note, not a toast: this repeats every frame
        return "", pj.escape_md(str(exc))
    if answer is None:
        return gr.skip(), gr.skip()
    result, note = answer
    return ("" if result is None else pj.prediction_html(result, top=3)), note


def predict(project, image) -> None:
    if not image:  # the image was cleared: so is the prediction
        project.last_test = None
        return
    project.predict(pj.load_backbone(project.backbone_name), image, Path(image).name)


def predict_many(project, files):
    if not files:
        return None, gr.skip()
    backbone = pj.load_backbone(project.backbone_name)
    names = [Path(f).name for f in files]
    results = project.predict_many(backbone, list(zip(files, names, strict=True)))
    return pj.batch_rows(names, results), gr.skip()
