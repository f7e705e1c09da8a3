"""The app's life as the session sees it: where it listens, the start-up sweep of folders a dead run
left, and the clean stop that deletes every session's folder and the uploads Gradio spooled."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .. import config
from .project import LIVE
from .quotas import SESSION_TTL_S, UPLOAD_CACHE_AGE_S, WORKDIR_PREFIX


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


def server_address() -> tuple[str, int | None]:
    """The host and port to listen on: ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (as on
    Hugging Face Spaces), else 127.0.0.1 and Gradio's own port."""
    port = config.env("GRADIO_SERVER_PORT")
    return config.env("GRADIO_SERVER_NAME") or "127.0.0.1", int(port) if port else None


def delete_upload_spools(since: float) -> int:
    """Delete the spooled copies ("tmp*") that Gradio's upload parser leaves beside its cache,
    made since ``since`` (this run's); returns how many."""
    n = 0
    for spool in config.gradio_temp_dir().glob("tmp*"):
        if spool.is_file() and spool.stat().st_mtime >= since:
            spool.unlink(missing_ok=True)
            n += 1
    return n


def sweep_upload_cache(
    max_age_s: float = UPLOAD_CACHE_AGE_S, root: str | Path | None = None, now: float | None = None
) -> int:
    """Delete files in Gradio's upload cache older than ``max_age_s`` (the age Gradio's own
    sweep deletes them at in a running app): a run killed without a clean stop (kill -9) left
    them, and Gradio's sweep deletes only what its own run created. Returns how many."""
    root = Path(root) if root is not None else config.gradio_temp_dir()
    now = time.time() if now is None else now
    n = 0
    for path in list(root.rglob("*")) if root.is_dir() else []:
        try:
            if path.is_file() and now - path.stat().st_mtime > max_age_s:
                path.unlink()
                n += 1
        except OSError:  # vanished meanwhile
            continue
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):  # the cache's per-file folders, emptied above
            folder.rmdir()
    return n
