"""Result: what was built (head, settings, images and proxies per class) and how good it is."""

from __future__ import annotations

import gradio as gr

from .views import Views


def build(views: Views) -> None:
    views.add("summary", gr.Markdown("Nothing imprinted yet.", elem_id="summary"))
    views.add("accuracy", gr.Markdown(elem_id="accuracy"))
    with gr.Row():
        views.add(
            "per_class",
            gr.Dataframe(
                headers=["class", "images evaluated", "accuracy"],
                label="Per-class accuracy",
                interactive=False,
                elem_id="per-class",
            ),
        )
        views.add("confusion", gr.Plot(label="Confusion matrix", elem_id="confusion"))
