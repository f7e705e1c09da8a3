"""The components that show the session's views, and the one refresh every event ends with.

Each tab registers its components under a view name of ``imprint_core.session.VIEWS``; every
page event outputs ``outputs`` (the project and every registered component) with the values of
``show(project)``, so no event can leave a view showing an older state.

A page event sends a group of views that only show (``SKIPPABLE``) only when it changed since
this page was last sent it (``session.view_groups`` keeps an unchanged group's very dict): trying
an image does not send, nor make the browser draw again, the confusion matrix or the map. The
page load and an opened project send everything.
"""

from __future__ import annotations

import weakref
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
# Groups of views (session.views.GROUPS) whose components nobody edits: a page keeps what it was
# sent. The others (the class cards' key, Method's widgets, ...) are inputs too: a refused edit
# must be put back on the page, so they are always sent.
SKIPPABLE = frozenset({"summary", "confusion", "prediction", "geometry", "downloads"})


def _page() -> str | None:
    """The page (Gradio session) whose event is running, if any."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None)


def _as_is(value: Any) -> Any:
    return value


class Views:
    """View name -> the components showing it (a view may be shown in several tabs)."""

    def __init__(self, project: gr.State, key: Any = None) -> None:
        self.project = project
        self.key = key  # the browser's key to its kept project (session.keys), a BrowserState
        self.components: dict[str, list[tuple[Any, Any]]] = {}
        # project -> page -> the group values that page was sent last
        self._sent: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def add(self, name: str, component, show=None):
        """Register ``component`` as showing the view ``name`` (through ``show(value)`` when
        given, e.g. ``shown_if``); returns the component."""
        if name not in pj.VIEWS:
            raise KeyError(f"unknown view {name!r}; views: {', '.join(pj.VIEWS)}")
        adapt = show or ADAPTERS.get(name, _as_is)
        self.components.setdefault(name, []).append((component, adapt))
        return component

    def _order(self, groups: tuple[str, ...] | None = None) -> list[tuple[str, Any, Any]]:
        names = pj.VIEWS if groups is None else pj.group_views(groups)
        return [(n, c, a) for n in names for c, a in self.components.get(n, [])]

    @property
    def outputs(self) -> list:
        """The project and every view component, in the order ``show`` returns their values."""
        return self.outputs_of()

    def outputs_of(self, groups: tuple[str, ...] | None = None) -> list:
        """The project and the components of the views of ``groups`` (default: every view)."""
        return [self.project, *(c for _, c, _ in self._order(groups))]

    def show(
        self,
        project: pj.Project,
        changed_only: bool = False,
        groups: tuple[str, ...] | None = None,
    ) -> list:
        """Every registered component's value for ``project`` (of ``groups`` only, when given);
        with ``changed_only``, ``gr.skip()`` for the components of a ``SKIPPABLE`` group this
        page was sent as it is."""
        page = _page()
        with project.lock:  # two events of one page record in the order they computed
            computed = pj.view_groups(project, groups)
            sent = self._sent.setdefault(project, {})
            before = sent.get(page, {}) if page is not None else {}
            last = before if changed_only else {}
            if page is not None:
                sent[page] = {**before, **computed} if groups is not None else computed
        values, kept = {}, set()
        for name, group in computed.items():
            values.update(group)
            if name in SKIPPABLE and last.get(name) is group:
                kept.update(group)
        order = self._order(groups)
        return [gr.skip() if n in kept else adapt(values[n]) for n, _, adapt in order]

    def changed(self, project: pj.Project, groups: tuple[str, ...] | None = None) -> list:
        """``show`` for a page event: what this page was not sent yet."""
        return self.show(project, changed_only=True, groups=groups)

    def on(self, trigger, fn, inputs=(), extra=(), refused=None, groups=None, **kwargs):
        """Wire ``fn(project, *inputs) -> extras`` to ``trigger`` (see errors.page_event):
        outputs are the project, every view (or only the views of ``groups``: an event that
        can change no other group), then ``extra``."""
        from .errors import page_event

        kwargs.setdefault("api_visibility", "private")
        groups = None if groups is None else tuple(groups)
        return trigger(
            page_event(fn, lambda project: self.changed(project, groups), len(extra), refused),
            [self.project, *inputs],
            [*self.outputs_of(groups), *extra],
            **kwargs,
        )
