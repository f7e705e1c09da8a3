"""A user's mistake (``ProjectError``) becomes the page's message here, and only here.

Page events show it as a warning toast and refresh every view from the unchanged state (a
refused request changes nothing: it runs in a ``Project.transaction``). A raised ``gr.Error``
would paint a red "Error" badge over every output, inputs included, until the user clears it.
API endpoints raise ``gr.Error``: a client gets the sentence as the call's error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr

from imprint_core import session as pj


def session(project: Any) -> pj.Project:
    """The session's project (a fresh one before the page's load event made it)."""
    return project if isinstance(project, pj.Project) else pj.Project()


def page_event(
    fn: Callable, show: Callable, n_extra: int = 0, refused: Callable | None = None
) -> Callable:
    """``fn(project, *values) -> extras`` as an event: (project, every view, extras).

    ``show(project)`` gives every view's value; ``refused(project, *values)`` the extras after
    a refused request (default: leave them as they are). The wrapper keeps ``fn``'s signature,
    so Gradio still finds its ``gr.Progress`` / ``gr.EventData`` parameters.
    """

    @functools.wraps(fn)
    def handler(project, *args):
        project = session(project)
        try:
            with project.transaction():
                extras = fn(project, *args)
        except pj.ProjectError as exc:
            gr.Warning(pj.escape_html(exc))  # the toast renders HTML
            extras = refused(project, *args) if refused is not None else None
        if extras is None:
            extras = (gr.skip(),) * n_extra
        return (project, *show(project), *extras)

    return handler


def api_endpoint(fn: Callable) -> Callable:
    """``fn(..., project) -> result`` as an API endpoint returning (result, project)."""

    @functools.wraps(fn)
    def handler(*args):
        *values, project = args
        project = session(project)
        try:
            with project.transaction():
                return fn(*values, project), project
        except pj.ProjectError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return handler
