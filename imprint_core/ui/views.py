"""The components that show the session's views, and the one refresh every event ends with.

Each tab registers its components under a view name of ``imprint_core.session.VIEWS``; every
page event outputs ``outputs`` (the project and every registered component) with the values of
``show(project)``, so no event can leave a view showing an older state.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from imprint_core import session as pj


def _undo(label: str | None) -> Any:
    return gr.update(visible=label is not None, value=label or "Undo")


def shown_if(value: Any) -> Any:
    """A component that is shown only while its view has a value (or is true)."""
    if isinstance(value, bool):
        return gr.update(visible=value)
    return gr.update(value=value, visible=value is not None)


# A view whose value needs more than the value itself (visibility, a label).
ADAPTERS = {"undo": _undo}


def _as_is(value: Any) -> Any:
    return value


class Views:
    """View name -> the components showing it (a view may be shown in several tabs)."""

    def __init__(self, project: gr.State, key: Any = None) -> None:
        self.project = project
        self.key = key  # the browser's key to its kept project (session.keys), a BrowserState
        self.components: dict[str, list[tuple[Any, Any]]] = {}

    def add(self, name: str, component, show=None):
        """Register ``component`` as showing the view ``name`` (through ``show(value)`` when
        given, e.g. ``shown_if``); returns the component."""
        if name not in pj.VIEWS:
            raise KeyError(f"unknown view {name!r}; views: {', '.join(pj.VIEWS)}")
        adapt = show or ADAPTERS.get(name, _as_is)
        self.components.setdefault(name, []).append((component, adapt))
        return component

    def _order(self) -> list[tuple[str, Any, Any]]:
        return [(n, c, a) for n in pj.VIEWS for c, a in self.components.get(n, [])]

    @property
    def outputs(self) -> list:
        """The project and every view component, in the order ``show`` returns their values."""
        return [self.project, *(c for _, c, _ in self._order())]

    def show(self, project: pj.Project) -> list:
        """Every registered component's value for ``project``."""
        values = pj.views(project)
        return [adapt(values[n]) for n, _, adapt in self._order()]

    def on(self, trigger, fn, inputs=(), extra=(), refused=None, **kwargs):
        """Wire ``fn(project, *inputs) -> extras`` to ``trigger`` (see errors.page_event):
        outputs are the project, every view, then ``extra``."""
        from .errors import page_event

        kwargs.setdefault("api_visibility", "private")
        return trigger(
            page_event(fn, self.show, len(extra), refused),
            [self.project, *inputs],
            [*self.outputs, *extra],
            **kwargs,
        )
