"""Teach: examples, bulk import, one card per class (name, drop zone, webcam, thumbnails), Imprint.

Changes inside one card update that card in place (its count and thumbnails are extra outputs):
re-rendering every card would replace all their event handlers, and a click reaching the server
in between would name handlers that no longer exist. The cards are drawn anew only when the
``cards`` view changes (a class added or removed, a bulk import, an example, an undo).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from imprint_core import session as pj
from imprint_core.session import examples as ex

from .actions import HEAVY, imprint, wire_download
from .views import Views, shown_if

MAX_THUMBS = 40


def build(views: Views) -> SimpleNamespace:
    """The Teach tab's layout (call inside ``gr.Tab``); returns the components events need."""
    ui = SimpleNamespace()
    with gr.Row(elem_id="examples"):
        ui.examples = {
            key: gr.Button(f"Example: {e.title}", size="sm", elem_id=f"example-{key}")
            for key, e in ex.EXAMPLES.items()
        }
        # the same project zip as the Export tab's, without leaving the tab the work is done in
        ui.save = gr.Button("Save project (zip)", size="sm", elem_id="teach-save")
    ui.undo = views.add("undo", gr.Button("Undo", size="sm", visible=False, elem_id="undo"))
    with gr.Row():
        views.add(
            "project_file",
            gr.File(label="Project (.zip)", visible=False, elem_id="teach-project-file"),
            show=shown_if,
        )
        views.add("project_note", gr.Markdown(elem_id="teach-project-note"))
    with gr.Accordion("Bulk import: a folder or a zip with one folder per class", open=False):
        with gr.Row():
            ui.folder = gr.UploadButton(
                "Choose a folder (cat/1.jpg, dog/2.png, ...)",
                file_count="directory",
                elem_id="folder-upload",
                size="md",
                scale=1,
            )
            ui.zip = gr.File(
                label=f"or a zip (at most {pj.MAX_UPLOAD_MB} MB)",
                file_types=[".zip"],
                elem_id="zip-upload",
                height=120,
                scale=2,
            )
        ui.folder_paths = gr.Textbox(visible=False)
    ui.message = gr.Markdown(elem_id="teach-msg")
    # On a phone the Imprint button comes before the cards: it stays reachable without
    # scrolling past every thumbnail.
    with gr.Row(elem_id="teach-actions"):
        ui.add = gr.Button("+ Add a class", elem_id="add-class")
        ui.imprint = gr.Button("Imprint", variant="primary", elem_id="imprint")
    ui.status = views.add("status", gr.Markdown(elem_id="status"))
    ui.cards = views.add("cards", gr.State(None))

    # Only cards.change: the default triggers add page load, and two renders racing at load
    # leave the browser with event ids the server has already replaced.
    @gr.render(inputs=[ui.cards, views.project], triggers=[ui.cards.change])
    def render_cards(key, project):
        if not key or not isinstance(project, pj.Project):
            gr.Markdown("Loading...")
            return
        for i, card in enumerate(project.view(MAX_THUMBS)["classes"]):
            _card(views, i, card)

    return ui


def wire(views: Views, ui: SimpleNamespace, backbone, more_imprint_buttons=()) -> None:
    """The Teach tab's events; ``backbone`` is the Method tab's dropdown (read by Imprint), and
    ``more_imprint_buttons`` do what this tab's Imprint does."""
    views.on(ui.add.click, add_class)
    for key, button in ui.examples.items():
        views.on(button.click, _load_example(key), extra=[ui.message])
    views.on(ui.undo.click, undo, extra=[ui.message])
    wire_download(views, "project", ui.save)
    views.on(
        ui.folder.upload,
        import_folder,
        [ui.folder, ui.folder_paths],
        extra=[ui.message],
        js="(project, files, paths) => [project, files, JSON.stringify("
        "window.imprintFolderPaths || [])]",
        # multiple: a folder chosen while the last is still imported is imported too (each
        # event takes its own files and paths; the session's lock runs them one at a time).
        # Gradio's default, "once", dropped it: the button stays usable while an import runs.
        trigger_mode="multiple",
        **HEAVY,
    )
    views.on(
        ui.zip.upload,
        import_zip,
        [ui.zip],
        extra=[ui.message, ui.zip],
        refused=lambda project, file: (gr.skip(), None),
        **HEAVY,
    )
    for button in (ui.imprint, *more_imprint_buttons):
        views.on(button.click, imprint, [backbone], **HEAVY)


# ---- handlers: (project, *inputs) -> extra outputs; ProjectError -> errors.page_event ---------
def add_class(project):
    project.add_class()


def _load_example(key: str):
    def load(project):
        try:
            return (ex.load_example(project, key),)
        except FileNotFoundError as exc:
            raise pj.ProjectError(str(exc)) from None

    return load


def undo(project):
    return (pj.escape_md(project.undo_replace()),)


def import_zip(project, file):
    if not file:
        return gr.skip(), None
    return project.import_zip(file, Path(file).name), None


def import_folder(project, files, relative_paths: str):
    """A folder picked in the browser; ``relative_paths`` is the page's JSON list of the files'
    paths inside it (see launch.FOLDER_PATHS_JS)."""
    if not files:
        return (gr.skip(),)
    try:
        paths = json.loads(relative_paths or "[]")
        if not isinstance(paths, list):
            raise ValueError
    except ValueError:
        raise pj.ProjectError("The folder's file paths did not arrive; zip it.") from None
    return (project.import_uploaded_folder(files, [str(p) for p in paths]),)


# ---- one class card ----------------------------------------------------------------------------
def _drop_label(name: str) -> str:
    return f"Drop images of '{name}' here"


def _count_text(n: int) -> str:
    return f"**{n}** image{'s' if n != 1 else ''}"


def _card_update(project: pj.Project, uid: int) -> tuple:
    """(count, gallery) of class ``uid`` as it is now (a vanished class: the cards re-render)."""
    try:
        card = project.card(uid, MAX_THUMBS)
    except pj.ProjectError:
        return gr.skip(), gr.skip()
    thumbs = card["thumbs"]
    return _count_text(card["n"]), gr.update(value=thumbs or None, visible=bool(thumbs))


BURST_FRAMES = 10
BURST_GAP_MS = 150

# "Record": grab BURST_FRAMES frames from the card's open webcam in the browser and hand them to
# the card's drop zone as one upload, so they go through the same checks and limits as dropped
# files (Teachable Machine's hold-to-record, without a server-side stream). A line under the card
# (a live region: screen readers hear it) counts the frames and says which were dropped: a frame
# is dropped when the camera has sent no new picture since the last one (it stalled or was
# paused) or the browser could not encode it.
BURST_JS = """async () => {
  const card = document.querySelector('#card-%(i)d');
  const cam = document.querySelector('#cam-%(i)d');
  if (!card || !cam) return;
  let note = document.querySelector('#burst-note-%(i)d');
  if (!note) {
    note = document.createElement('p');
    note.id = 'burst-note-%(i)d';
    note.className = 'burst-note';
    note.setAttribute('role', 'status');
    card.appendChild(note);
  }
  const say = text => { note.textContent = text; };
  let video = cam.querySelector('video');
  if (!video || video.readyState < 2) {
    say('Starting the webcam...');
    const open = [...cam.querySelectorAll('button')].find(
      b => b.textContent.includes('Access Webcam'));
    if (open) open.click();
    for (let t = 0; t < 50; t++) {
      await new Promise(r => setTimeout(r, 100));
      video = cam.querySelector('video');
      if (video && video.readyState >= 2 && video.videoWidth > 0) break;
    }
  }
  if (!video || !video.videoWidth) {
    say('The webcam did not start: allow the camera in the browser and press Record again.');
    return;
  }
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const files = [];
  let dropped = 0, last = -1;
  for (let k = 0; k < %(n)d; k++) {
    say(`Recording: frame ${k + 1} of %(n)d...`);
    const now = video.currentTime;
    let blob = null;
    if (now !== last && !video.paused) {
      canvas.getContext('2d').drawImage(video, 0, 0);
      blob = await new Promise(r => canvas.toBlob(r, 'image/png'));
    }
    last = now;
    if (blob) files.push(new File([blob], 'camera-' + Date.now() + '-' + k + '.png',
                                  {type: 'image/png'}));
    else dropped += 1;
    await new Promise(r => setTimeout(r, %(gap)d));
  }
  if (!files.length) {
    say('No frame was recorded: the camera sent no picture. Check that it is on and press '
        + 'Record again.');
    return;
  }
  const plural = n => n === 1 ? '' : 's';
  say(dropped
    ? `Recorded ${files.length} of %(n)d frames: ${dropped} frame${plural(dropped)} dropped `
      + `(the camera sent no new picture). Adding ${files.length}.`
    : `Recorded %(n)d frames. Adding them.`);
  const input = document.querySelector('#drop-%(i)d input[type=file]');
  const data = new DataTransfer();
  files.forEach(f => data.items.add(f));
  input.files = data.files;
  input.dispatchEvent(new Event('change', {bubbles: true}));
}"""


def _card(views: Views, i: int, card: dict) -> None:
    """One class card (created inside gr.render) and its events, bound to the class's uid."""
    uid = card["uid"]
    with gr.Column(key=f"card-{uid}", elem_classes="class-card", elem_id=f"card-{i}"):
        with gr.Row(key=f"head-{uid}"):
            name = gr.Textbox(
                card["name"],
                label=f"Name of class {i + 1}",  # what a screen reader announces
                show_label=False,
                max_lines=1,
                key=f"name-{uid}",
                elem_id=f"name-{i}",
                interactive=True,
                scale=4,
            )
            count = gr.Markdown(_count_text(card["n"]), key=f"n-{uid}")
            burst = gr.Button(
                f"Record {BURST_FRAMES}",
                size="sm",
                key=f"burst-{uid}",
                elem_id=f"burst-{i}",
                interactive=True,
                scale=0,
            )
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
    # Closures, not partials: Gradio finds gr.EventData / gr.Progress parameters by their type
    # hints, which it cannot read through functools.partial.
    shown = [count, gallery]

    def as_is(project, *_):
        return _card_update(project, uid)

    def delete(project, evt: gr.EventData):
        """A thumbnail's x. Gradio 6's Gallery sends ``{"file": {...}, "index": i}``, which
        ``gr.DeletedFileData`` fails to parse, so the raw payload is read."""
        data = getattr(evt, "_data", None) or {}
        file = data.get("file", data) if isinstance(data, dict) else {}
        path = file.get("path") if isinstance(file, dict) else None
        if not path:
            raise pj.ProjectError("The deleted thumbnail did not say which image it was.")
        project.remove_image_file(uid, path)
        return as_is(project)

    def gallery_upload(project, value):
        project.add_gallery_images(uid, [item[0] for item in value or []])
        return as_is(project)

    def add_images(project, files):
        if not files:
            return gr.skip(), gr.skip(), gr.skip()
        project.add_images(uid, files if isinstance(files, list) else [files])
        return *as_is(project), None

    def clear_images(project):
        project.clear_images(uid)
        return as_is(project)

    def rename(project, new_name: str):
        """In place (the name box and the drop zone's label): no re-render of the cards, which
        would wipe typing elsewhere and replace every card's event handlers."""
        if " ".join(str(new_name).split()) != project.get(uid).name:
            project.rename_class(uid, new_name)
        current = project.get(uid).name
        return current, gr.update(label=_drop_label(current))

    def name_as_is(project, *_):
        try:
            return project.get(uid).name, gr.skip()
        except pj.ProjectError:  # removed meanwhile: the cards re-render
            return gr.skip(), gr.skip()

    def remove_class(project):
        project.remove_class(uid)

    views.on(gallery.delete, delete, extra=shown, refused=as_is)
    views.on(gallery.upload, gallery_upload, [gallery], extra=shown, refused=as_is)
    for trigger in (name.submit, name.blur):
        views.on(trigger, rename, [name], extra=[name, drop], refused=name_as_is)
    views.on(remove.click, remove_class)
    # browser only: the frames arrive through the drop zone's upload event below
    burst.click(None, js=BURST_JS % {"i": i, "n": BURST_FRAMES, "gap": BURST_GAP_MS})
    views.on(clear.click, clear_images, extra=shown, refused=as_is)
    for source, event in ((drop, drop.upload), (cam, cam.input)):
        views.on(
            event,
            add_images,
            [source],
            extra=[*shown, source],
            refused=lambda project, *_: (*as_is(project), None),
            **HEAVY,
        )
