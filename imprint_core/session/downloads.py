"""The downloads of a session (the head file, the standalone ONNX model, the project zip) in one
place: what each file is made of, making it, withdrawing a stale one, and what the views show.

A download is a view of the state: ``Project.downloads`` records, per kind, what its file was
made of and where it is, and the file is shown only while the session still holds that; once the
state moved on it is withdrawn with a sentence ("download it again"). The Export tab and
``VIEWS`` follow ``DOWNLOADS``, so a new export format is one entry here (and its writer, which
may live in the library like ``imprint_core.onnx_export``).

The app's downloads go to the session's ``download_dir``, one file (or file pair) of each kind:
each is written in a new folder there, which replaces the kind's previous one once it is
complete (a new address, so that no browser shows an old file under it). The session's files
(stored images and downloads) are held to its disk quota (``disk.py``): a download that would pass
it is refused with a sentence and leaves no file, the previous one kept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import project_key, write_project
from .disk import SessionRoom, folder_bytes
from .limits import ProjectError
from .pile import pile_made_of, write_csv, write_zip
from .scheduler import turn
from .texts import python_snippet


def _head_serial(project) -> int:
    return project.head_serial


def _nothing(project) -> int:
    return 0


@dataclass(frozen=True)
class Download:
    """One kind of download: its texts, its file, what it is made of and how it is written.
    By default a file made of the current head alone."""

    button: str  # the Export tab's button
    label: str  # the label of the file shown
    file_name: str  # in a folder of the session's download_dir, unless a path is given
    write: Callable[[Any, Path], Path]  # (project, path) -> the file; called under the lock
    stale: str  # said once the file no longer holds the session's state
    made_of: Callable[[Any], Any] = _head_serial  # the state the file holds: a change withdraws it
    needs_head: bool = True
    first: str = ""  # said before the first download of this kind
    saved: Callable[[Path], str] = lambda path: ""  # said beside a current file
    shown: Callable[[Path], Any] = str  # the file view's value
    multiple: bool = False  # the file view shows several files
    code: Callable[[Any, Path | None], str] | None = None  # a code box using the file
    code_label: str = ""
    progress: str = ""  # the progress bar's text while the file is made
    one_at_a_time: bool = False  # memory- and CPU-heavy: one at a time in the whole app
    tab: str = "export"  # the tab offering it ("sort": the Sort images panel)
    estimate: Callable[[Any], int] = _nothing  # bytes it will take, if known before writing


def export_metadata(head_path: str | os.PathLike) -> Path:
    """Write the head's JSON metadata (what its safetensors header holds) beside it."""
    from ..head_io import read_head_metadata

    path = Path(head_path)
    meta = read_head_metadata(path)
    out = path.with_suffix(".json")
    out.write_text(json.dumps(meta, indent=1) + "\n")
    return out


def _write_head(project, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    project.head.save(path, backbone=project.backbone_name)
    export_metadata(path)  # written now: one left from an earlier head would describe that one
    return path


def _head_files(path: Path) -> list[str]:
    """The head file and its readable JSON metadata (written when missing)."""
    meta = path.with_suffix(".json")
    if not meta.exists():
        meta = export_metadata(path)
    return [str(path), str(meta)]


def _head_code(project, path: Path | None) -> str:
    return python_snippet(path.name, project.backbone_name) if path else python_snippet()


def _write_onnx(project, path: Path) -> Path:
    from ..onnx_export import export_onnx  # torch and onnx: only when a model is exported

    try:
        return export_onnx(project.head, path, backbone=project.backbone_name)
    except ValueError as exc:
        raise ProjectError(f"This classifier cannot be exported to ONNX: {exc}.") from None


def _onnx_code(project, path: Path | None) -> str:
    from ..onnx_export import onnx_snippet

    return onnx_snippet(DOWNLOADS["onnx"].file_name)


def _stored_bytes(project) -> int:
    """A project zip holds the stored image files as they are: about their size."""
    sizes = (i.path.stat().st_size for c in project.classes for i in c.images if i.path.exists())
    return sum(sizes)


def _onnx_saved(path: Path) -> str:
    return f"Saved `{path.name}` ({path.stat().st_size / 2**20:.1f} MB)."


DOWNLOADS: dict[str, Download] = {
    "head": Download(
        button="Download the head",
        label="Head: safetensors (JSON metadata in its header) and the same metadata as a "
        "readable .json",
        file_name="imprint-head.safetensors",
        write=_write_head,
        stale="The head changed since the last download: download it again.",
        shown=_head_files,
        multiple=True,
        code=_head_code,
        code_label="Use it from Python",
    ),
    "onnx": Download(
        button="Download standalone model (ONNX)",
        label="Standalone model (ONNX)",
        file_name="imprint-classifier.onnx",
        write=_write_onnx,
        stale="The head changed since the ONNX download: download it again.",
        first="The first export in a session converts the backbone: 10-20 s.",
        saved=_onnx_saved,
        code=_onnx_code,
        code_label="Use it with onnxruntime (no PyTorch, no imprint_core)",
        progress="Converting the backbone and the head to ONNX (10-20 s the first time)",
        one_at_a_time=True,
    ),
    "project": Download(
        button="Save project",
        label="Project (.zip)",
        file_name="imprint-project.zip",
        made_of=project_key,
        estimate=_stored_bytes,
        write=write_project,
        stale="The project changed since it was saved: save it again.",
        needs_head=False,
    ),
    "pile_csv": Download(
        button="Download the CSV",
        label="The sorted pile (CSV: one row per image, as imprint predict writes it)",
        file_name="imprint-sorted.csv",
        made_of=pile_made_of,
        write=write_csv,
        stale="The pile or the classifier changed since the CSV was made: download it again.",
        tab="sort",
    ),
    "pile_zip": Download(
        button="Download a zip of class folders",
        label="The sorted pile (zip: one folder per class, and none-of-these)",
        file_name="imprint-sorted.zip",
        made_of=pile_made_of,
        write=write_zip,
        stale="The pile or the classifier changed since the zip was made: download it again.",
        progress="Writing the class folders",
        tab="sort",
    ),
}

# The views of every download (session.views.VIEWS): its file, its note, its code box if any.
VIEWS = tuple(
    name
    for kind, d in DOWNLOADS.items()
    for name in (f"{kind}_file", f"{kind}_note", *((f"{kind}_code",) if d.code else ()))
)


def make(project, kind: str, path: str | os.PathLike | None = None) -> Path:
    """Write the download ``kind`` of ``project`` (to ``path``, or into the session's
    ``download_dir``, replacing the kind's previous file there) and record what it was made of;
    returns the file's path. A download into the session's folder that would pass its disk
    quota raises ``disk.QuotaError``; nothing is written then."""
    d = DOWNLOADS[kind]
    with project.lock:
        if d.needs_head and project.head is None:
            raise ProjectError("There is no classifier to export yet: press Imprint first.")
        made_of = d.made_of(project)
        if path is not None:
            with _heavy(project, d):
                path = d.write(project, Path(path))
        else:
            path = _replace(project, kind, d)
        project.downloads[kind] = (made_of, path)
        return path


def _heavy(project, d: Download):
    return turn(project) if d.one_at_a_time else nullcontext()  # heavy: a turn (scheduler)


def _replace(project, kind: str, d: Download) -> Path:
    """The kind's file written in a new folder of the session's downloads, then the previous
    folder deleted; against the session's disk quota (the previous file does not count)."""
    kind_dir = project.download_dir / kind
    kind_dir.mkdir(parents=True, exist_ok=True)
    previous = list(kind_dir.iterdir())
    room = SessionRoom(project, f"'{d.button}'", freed=sum(map(folder_bytes, previous)))
    estimate = d.estimate(project)
    room.take(estimate)  # refused before writing when the estimate already passes the quota
    folder = Path(tempfile.mkdtemp(dir=kind_dir))
    try:
        with _heavy(project, d):
            path = d.write(project, folder / d.file_name)
        room.take(folder_bytes(folder) - estimate)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    for old in previous:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return path


def current(project, kind: str) -> Path | None:
    """The file downloaded as ``kind`` if it still holds the session's state and exists."""
    recorded = project.downloads.get(kind)
    if recorded is None or recorded[0] != DOWNLOADS[kind].made_of(project):
        return None
    return recorded[1] if recorded[1].exists() else None


def views(project) -> dict[str, Any]:
    """The values of ``VIEWS``: a current file with its note, or none and why."""
    out: dict[str, Any] = {}
    for kind, d in DOWNLOADS.items():
        made = kind in project.downloads
        path = current(project, kind) if made else None
        if path is None:
            out[f"{kind}_file"], out[f"{kind}_note"] = None, d.stale if made else d.first
        else:
            out[f"{kind}_file"], out[f"{kind}_note"] = d.shown(path), d.saved(path)
        if d.code is not None:
            out[f"{kind}_code"] = d.code(project, path)
    return out


# ---- the Python entry points ---------------------------------------------------------------------
def export_project_onnx(project, folder: str | os.PathLike | None = None) -> Path:
    """The project's head and backbone as one ONNX model (``imprint-classifier.onnx``).

    The first export in a process converts the backbone (seconds); later ones reuse it.
    """
    return make(project, "onnx", _in(folder, "onnx"))


def save_project(project, path: str | os.PathLike) -> Path:
    """Write ``project`` to the zip ``path`` (written whole or not at all); returns the path.
    ``opening.open_project`` opens it again."""
    return make(project, "project", path)


def _in(folder: str | os.PathLike | None, kind: str) -> Path | None:
    return Path(folder) / DOWNLOADS[kind].file_name if folder is not None else None


class Downloads:
    """A project's downloads as its methods (mixed into ``Project``)."""

    def export_head(self, folder: str | os.PathLike | None = None) -> Path:
        """Save the head (safetensors + JSON metadata) and return the file's path."""
        return make(self, "head", _in(folder, "head"))

    def current_export(self) -> Path | None:
        """The exported head file if it holds the current head."""
        return current(self, "head")

    def current_download(self, kind: str) -> Path | None:
        """The file downloaded as ``kind`` if it still holds the session's state."""
        return current(self, kind)
