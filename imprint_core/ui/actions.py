"""Event glue more than one tab needs (not a tab): a warning toast, the embedding progress bar,
Imprint (the Teach and Method buttons, a backbone change, the augmentation checkbox) and making
a download (Export, and "Save project" on Teach)."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from imprint_core import session as pj

# The queue group of events that decode or embed images (uploads, imports, Open project,
# Imprint): wide, so that they wait in the session layer's fair queue (round-robin across
# sessions) rather than in Gradio's first-come-first-served one.
HEAVY = {"concurrency_id": "embed", "concurrency_limit": pj.HEAVY_CONCURRENCY["embed"]}


def warn(sentence: str) -> None:
    """A sentence the user should read that refuses nothing, as a warning toast."""
    gr.Warning(pj.escape_html(sentence))  # the toast renders HTML


def embedding_progress(progress) -> Callable[[int, int], None]:
    """``gr.Progress`` as the session's ``(done, total)`` report of images embedded."""

    def report(done: int, total: int) -> None:
        if total == 0:
            progress(1.0, desc="Every image is embedded already")
        else:
            progress((done, total), desc=f"Embedded {done} of {total} images", unit="images")

    return report


def imprint(project, backbone_name, progress=gr.Progress()) -> None:
    """Embed what is missing with the chosen backbone, imprint and evaluate."""
    pj.imprint_with(project, backbone_name, embedding_progress(progress), warn)


def download(kind: str):
    """Make the download ``kind``; the views show it (and withdraw it when the state moves on)."""
    desc = pj.DOWNLOADS[kind].progress

    def make(project, progress=gr.Progress()) -> None:
        if desc:
            progress(0, desc=desc)
        pj.make_download(project, kind)

    return make


def wire_download(views, kind: str, button) -> None:
    """``button`` makes the download ``kind`` (a heavy one runs one at a time in the app)."""
    limit = {"concurrency_id": f"{kind}-download", "concurrency_limit": 1}
    views.on(button.click, download(kind), **(limit if pj.DOWNLOADS[kind].one_at_a_time else {}))
