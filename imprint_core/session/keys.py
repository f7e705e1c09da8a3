"""A project kept under an unguessable key, so that a page reload (or a tab reopened while the
session lives) finds it again.

The browser holds only the key; the project (classes, images, head) stays on the server. A key
the server does not know (forged, mistyped, expired, from before a restart) gets a new, empty
project under a new key: a browser never chooses its key and never reaches another's project.
A project lives while a page session holds it: each page that claimed it is a holder, and when
the last holder's session ends (Gradio drops a closed tab's state after an hour, an idle one
after ``quotas.SESSION_TTL_S``) the project is closed and its key forgotten.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from .project import Project

KEY_BYTES = 32  # 256 random bits: not guessable, not enumerable

_lock = threading.Lock()
_kept: dict[str, Project] = {}  # key -> project
_holders: dict[int, int] = {}  # id(project) -> page sessions holding it


def claim(key: Any, fresh: Project | None = None) -> tuple[str, Project]:
    """``(key, project)``: the project kept under ``key``, or (for an unknown key) ``fresh`` or
    a new empty project under a new key. The caller's session now holds it (see ``release``)."""
    with _lock:
        project = _kept.get(key) if isinstance(key, str) else None
        if project is None:
            key, project = secrets.token_urlsafe(KEY_BYTES), fresh or Project()
            _kept[key] = project
        _holders[id(project)] = _holders.get(id(project), 0) + 1
        return key, project


def swap(key: Any, old: Project, new: Project) -> None:
    """``new`` replaces ``old`` under ``key`` for the session that held ``old`` (a saved project
    was opened); ``old`` is released (closed when no other session holds it)."""
    with _lock:
        if isinstance(key, str) and _kept.get(key) is old:
            _kept[key] = new
        _holders[id(new)] = _holders.get(id(new), 0) + 1
    release(old)


def release(project: Any) -> None:
    """A session holding ``project`` ended: the project is closed (its stored images deleted)
    and its key forgotten once no session holds it."""
    if not isinstance(project, Project):
        return
    with _lock:
        left = _holders.get(id(project), 0) - 1
        if left > 0:
            _holders[id(project)] = left
            return
        _holders.pop(id(project), None)
        for key in [k for k, p in _kept.items() if p is project]:
            del _kept[key]
    project.close()


def kept() -> int:
    """How many projects are kept under a key (for tests and the log)."""
    with _lock:
        return len(_kept)
