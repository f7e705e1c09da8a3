"""A session folder's life: swept at start-up when a dead run left it, deleted at a clean stop."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .project import LIVE
from .quotas import SESSION_TTL_S, WORKDIR_PREFIX


def sweep_workdirs(
    max_age_s: float = SESSION_TTL_S, root: str | Path | None = None, now: float | None = None
) -> list[Path]:
    """Delete session folders (``imprint-project-*``) untouched for longer than a session
    lives: a run killed without a clean stop (kill -9, power loss) left them. Returns them."""
    root = Path(root) if root is not None else Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    swept = []
    for folder in root.glob(f"{WORKDIR_PREFIX}*"):
        try:
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
        except OSError:  # vanished meanwhile
            continue
        if folder.is_dir() and now - newest > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            swept.append(folder)
    return swept


def close_all() -> int:
    """Delete every live session's stored images (a clean stop); returns how many sessions."""
    projects = list(LIVE)
    for project in projects:
        project.close()
    return len(projects)
