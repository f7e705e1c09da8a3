"""Open a saved project zip (``bundle``) as a new ``Project``; a refused file leaves nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .bundle import read_project
from .limits import ProjectError
from .project import Project


def open_project(path: str | os.PathLike, workdir: str | os.PathLike | None = None, backbone=None):
    """A new ``Project`` restored from a zip written by ``save_project``.

    ``workdir`` (a new or empty folder; default: a temporary one) receives the image copies.
    The head comes back as a loaded head (``head_source`` is the zip's name). Given the loaded
    ``backbone`` the head was imprinted on, a head that was imprinted from the saved images is
    restored as imprinted instead: the images are embedded again (seconds per few dozen images),
    so that evidence, neighbours and maps work as before saving; predictions use the saved head.
    Raises ProjectError with a sentence for damaged files, newer formats and anything an upload
    may not contain; nothing is left behind then.
    """
    made = None
    if workdir is not None:
        workdir = Path(workdir)
        if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
            raise ProjectError(f"A project opens into a new or empty folder; '{workdir}' is not.")
        made = not workdir.exists()
    project = Project(workdir=workdir, n_classes=0)
    try:
        read_project(project, path, backbone)
    except BaseException:
        project.close()
        if workdir is not None and made:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir is not None:
            for child in workdir.iterdir():  # it was empty: empty it again
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return project
