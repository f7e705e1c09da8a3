"""Sort images: drop a pile of images (or a zip), see it sorted by the current head, download it,
and correct the head from the images it is least sure of (one click puts an image into a class
card and imprints again; the pile is re-sorted from its kept embeddings).

Every component shows a view of ``session.pile`` (the least-sure slots all show the view
``pile_unsure``, each its own entry), so the panel follows any imprint, on any tab.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from imprint_core import session as pj

from .actions import HEAVY, wire_download
from .errors import api_endpoint
from .views import Views

ADD = "Add to "  # a slot's buttons read "Add to <class>"


def _slot(i: int, part: str):
    """How slot ``i`` of the least-sure list shows ``part`` of its entry (or hides)."""

    def show(unsure: list) -> Any:
        if i >= len(unsure):
            return None if part == "name" else gr.update(visible=False)
        name, thumb, caption, classes = unsure[i]
        if part == "name":
            return name
        if part == "row":
            return gr.update(visible=True)
        # visible each time: Gradio leaves the children of a row that was hidden unrendered
        if part == "image":
            return gr.update(value=thumb, label=name, visible=True)
        if part == "caption":
            text = f"**{pj.escape_md(name)}**: {pj.escape_md(caption)}"
            return gr.update(value=text, visible=True)
        k = int(part[-1])  # "add0", "add1": the head's best and second-best class
        if k >= len(classes):
            return gr.update(visible=False)
        return gr.update(value=f"{ADD}{classes[k]}", visible=True)

    return show


def build(views: Views) -> SimpleNamespace:
    ui = SimpleNamespace(slots=[])
    gr.Markdown(
        "Sort a pile of images with the current classifier, then teach it from the images it "
        f"is least sure of. {pj.PILE_LIMITS}"
    )
    ui.files = gr.File(
        file_count="multiple",
        file_types=["image", ".zip"],
        label=f"Images or a zip to sort (at most {pj.MAX_PILE_IMAGES:,} images)",
        elem_id="pile-files",
    )
    views.add("pile_note", gr.Markdown(elem_id="pile-note"))
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            views.add(
                "pile_counts",
                gr.Dataframe(
                    headers=pj.pile.COUNT_HEADERS,
                    label="Images per class",
                    interactive=False,
                    elem_id="pile-counts",
                ),
            )
        for kind in ("pile_csv", "pile_zip"):
            d = pj.DOWNLOADS[kind]
            with gr.Column(scale=1, min_width=240):
                button = gr.Button(d.button, elem_id=f"{kind.replace('_', '-')}-download")
                views.add(f"{kind}_file", gr.File(label=d.label, elem_id=f"{kind}-file"))
                views.add(f"{kind}_note", gr.Markdown(elem_id=f"{kind}-note"))
                setattr(ui, kind, button)
    gr.Markdown(
        '### Least sure first\nThe images the classifier is least sure of ("none of these", '
        "then the closest call between two classes). Put one into the right class: it is added "
        "to that class card, the classifier is imprinted again and the pile is sorted again."
    )
    ui.new_name = gr.Textbox(
        label="New class name (for the New class buttons)", max_lines=1, elem_id="pile-new-name"
    )
    for i in range(pj.PILE_UNSURE):
        slot = SimpleNamespace(name=views.add("pile_unsure", gr.State(), show=_slot(i, "name")))
        with gr.Row(visible=False, elem_id=f"pile-unsure-{i}") as row:
            views.add("pile_unsure", row, show=_slot(i, "row"))
            slot.image = views.add(
                "pile_unsure",
                gr.Image(interactive=False, height=120, width=120, show_label=False),
                show=_slot(i, "image"),
            )
            with gr.Column(min_width=240):
                views.add("pile_unsure", gr.Markdown(), show=_slot(i, "caption"))
                with gr.Row():
                    slot.add = [
                        views.add("pile_unsure", gr.Button(size="sm"), show=_slot(i, f"add{k}"))
                        for k in range(2)
                    ]
                    slot.new = gr.Button("New class", size="sm", variant="secondary")
        ui.slots.append(slot)
    ui.order = views.add(
        "pile_sort",
        gr.Radio(list(pj.PILE_SORTS), label="Sort the table by", elem_id="pile-order"),
    )
    views.add(
        "pile_table",
        gr.Dataframe(
            headers=pj.pile.TABLE_HEADERS,
            label="The sorted pile",
            interactive=False,
            max_height=480,
            elem_id="pile-table",
        ),
    )
    with gr.Row(visible=False):  # the /sort endpoint's own input and output
        ui.api_files = gr.File(file_count="multiple", label="files")
        ui.api_result = gr.JSON(label="sorted")
        ui.api_go = gr.Button("sort")
    return ui


def wire(views: Views, ui: SimpleNamespace) -> None:
    # always_last: images dropped while the pile is being sorted join the box's list, and the
    # pile is sorted again once the sort running ends (Gradio's default, "once", dropped that
    # event: the box listed images the results did not hold)
    views.on(ui.files.upload, sort_pile, [ui.files], trigger_mode="always_last", **HEAVY)
    views.on(ui.order.input, lambda project, order: project.set_pile_sort(order), [ui.order])
    for slot in ui.slots:
        for button in slot.add:
            views.on(button.click, add_to_class, [slot.name, button], **HEAVY)
        views.on(
            slot.new.click,
            add_to_new_class,
            [slot.name, ui.new_name],
            extra=[ui.new_name],
            **HEAVY,
        )
    for kind in ("pile_csv", "pile_zip"):
        wire_download(views, kind, getattr(ui, kind))
    ui.api_go.click(
        api_endpoint(api_sort),
        [ui.api_files, views.project],
        [ui.api_result, views.project],
        api_name="sort",
        **HEAVY,
    )


def api_sort(files, project=None) -> dict:
    """The ``/sort`` endpoint: sort image files and zips with the session's head; returns the
    table (one dict per image, least sure first) and the per-class counts."""
    project.sort_pile(files or [])
    return pj.pile_summary(project)


def sort_pile(project, files, progress=gr.Progress()) -> None:
    """Sort the dropped files with the current head (the progress bar counts the images)."""
    if not files:
        return

    def report(done: int, total: int) -> None:
        progress((done, total), desc=f"Sorted {done} of {total} images", unit="images")

    gr.Info(pj.escape_html(project.sort_pile(files, report)))


def add_to_class(project, name, label) -> None:
    """A slot's "Add to <class>" button: the button's own label names the class."""
    if not name or not str(label).startswith(ADD):
        return
    gr.Info(pj.escape_html(project.add_from_pile(name, str(label)[len(ADD) :])))


def add_to_new_class(project, name, new_name):
    if not name:
        return (gr.skip(),)
    if not (new_name or "").strip():
        raise pj.ProjectError("Type the new class's name first (above the images).")
    gr.Info(pj.escape_html(project.add_from_pile(name, new_name, new=True)))
    return ("",)
