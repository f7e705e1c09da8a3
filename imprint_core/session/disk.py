"""Disk the app may fill: a session's own files against its quota, and Gradio's upload cache
against its cap (both sizes set in ``imprint_core.config``, stated in docs/app.md).

A session keeps its stored image copies (those of the projects Undo keeps too) in its folder and
its downloads (one file of each kind: ``downloads.py``) in a folder of the upload cache; an upload
or a download that would take the two past ``config.session_disk_mb()`` is refused with a
sentence, and nothing it wrote is left. Gradio caps one uploaded file (``max_file_size``) but not
what anonymous uploads hold together: ``UploadCacheGuard`` is asked before each upload
(``imprint_core/ui/launch.py`` puts it in front of ``/gradio_api/upload``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import config
from .limits import ProjectError
from .quotas import DOWNLOADS_PREFIX, UPLOAD_CACHE_GRACE_S, UPLOAD_RESCAN_S, UPLOAD_RESERVE_S

MB = 2**20


class QuotaError(ProjectError):
    """A session's files would pass its disk quota (a whole request is refused, not one file)."""


def folder_bytes(folder: Path | None) -> int:
    """Bytes of the files under ``folder`` (0 when there is none)."""
    if folder is None or not folder.is_dir():
        return 0
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:  # deleted meanwhile
            continue
    return total


def session_bytes(project) -> int:
    """What the session keeps on disk: its stored images and its downloads."""
    work, downloads = project._workdir, project._download_dir
    inside = work is not None and downloads is not None and downloads.is_relative_to(work)
    return folder_bytes(work) + (0 if inside else folder_bytes(downloads))


def quota_bytes() -> int:
    return int(config.session_disk_mb() * MB)


def _mb(n: float) -> str:
    return f"{n / MB:,.1f}" if n >= 10 * MB else f"{n / MB:.2f}"


class SessionRoom:
    """A session's room on disk for one request: ``take`` each file's bytes before writing it;
    the one that would pass the quota raises QuotaError naming the request (``what``)."""

    def __init__(self, project, what: str, freed: int = 0) -> None:
        self.what = what
        self.quota = quota_bytes()
        self.used = session_bytes(project) - freed  # ``freed``: files the request replaces

    def take(self, n: int) -> None:
        if self.used + n > self.quota:
            raise QuotaError(
                f"{self.what} would bring the files this session keeps on the server (stored "
                f"images and downloads) to {_mb(self.used + n)} MB; a session may keep at most "
                f"{_mb(self.quota)} MB. Remove some images or classes first."
            )
        self.used += n


# ---- Gradio's upload cache -----------------------------------------------------------------------
def _cache_files(root: Path) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of the cache's files, oldest first; sessions' downloads are not
    counted here (their sessions' quotas bound them) and never deleted."""
    out, folders = [], [root]
    while folders:  # os.scandir, not Path.rglob: 5-10x faster on thousands of upload folders
        try:
            with os.scandir(folders.pop()) as listing:
                entries = list(listing)
        except OSError:  # gone meanwhile (or no cache yet)
            continue
        for entry in entries:
            if entry.name.startswith(DOWNLOADS_PREFIX):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.append((st.st_mtime, st.st_size, Path(entry.path)))
            except OSError:
                continue
    return sorted(out)


class UploadCacheGuard:
    """Keeps Gradio's upload cache (``root``) under ``cap`` bytes: ``admit(n)`` before an upload
    of ``n`` bytes makes room by deleting the oldest cached files older than ``grace_s`` and
    returns None, or the sentence to refuse the upload with when that is not enough."""

    def __init__(
        self,
        root: str | Path | None = None,
        cap: int | None = None,
        grace_s: float = UPLOAD_CACHE_GRACE_S,
    ) -> None:
        self.root = Path(root) if root is not None else config.gradio_temp_dir()
        self.cap = int(cap if cap is not None else config.upload_cache_mb() * MB)
        self.grace_s = grace_s
        self.reserved: list[tuple[float, int]] = []  # admitted uploads not yet seen on disk
        self.lock = threading.Lock()
        self._scanned = (-float("inf"), 0)  # when the folder was last scanned, bytes it held

    def admit_known(self, n: int, now: float | None = None) -> bool:
        """Admit ``n`` bytes without looking at the disk, if a scan of the last
        UPLOAD_RESCAN_S plus every upload admitted since (a bound on what the cache holds now)
        leaves room; False: ``admit`` must look. Never waits (the server's event loop calls it)."""
        now = time.time() if now is None else now
        if not self.lock.acquire(blocking=False):  # a scan is running: ``admit`` waits for it
            return False
        try:
            return self._admit_known(n, now)
        finally:
            self.lock.release()

    def _admit_known(self, n: int, now: float) -> bool:
        self.reserved = [(t, b) for t, b in self.reserved if now - t < UPLOAD_RESERVE_S]
        when, held = self._scanned
        if now - when >= UPLOAD_RESCAN_S or held + self._reserved() + n > self.cap:
            return False
        self.reserved.append((now, n))
        return True

    def _reserved(self) -> int:
        return sum(b for _, b in self.reserved)

    def admit(self, n: int, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        with self.lock:
            if self._admit_known(n, now):
                return None
            reserved = self._reserved()
            files = _cache_files(self.root)
            held = sum(size for _, size, _ in files)
            total = held + reserved
            for mtime, size, path in files:
                if total + n <= self.cap or now - mtime < self.grace_s:
                    break
                path.unlink(missing_ok=True)
                total -= size
                held -= size
                if path.parent != self.root:  # Gradio's folder of that one file
                    try:
                        path.parent.rmdir()
                    except OSError:  # not empty
                        pass
            self._scanned = (now, held)
            if total + n > self.cap:
                return (
                    f"The server's upload space is full: uploads of the last minutes hold "
                    f"{_mb(total)} MB of the {_mb(self.cap)} MB it keeps, so this upload "
                    f"({_mb(n)} MB) is refused. Try again in a minute."
                )
            self.reserved.append((now, n))
            return None
