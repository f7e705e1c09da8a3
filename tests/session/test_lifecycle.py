"""A session folder's life (Project.close, session/lifecycle.py): stored copies deleted with the
project, the start-up sweep of dead runs' folders."""

from __future__ import annotations

from imprint_core import session as pj
from imprint_core.session import Project


def test_close_deletes_the_stored_copies(fashion):
    train, _ = fashion
    p = Project()
    p.add_images(p.classes[0].uid, train["Trouser"][:1])
    assert p.workdir.exists()
    p.close()
    assert not p.workdir.exists()


def test_stored_copies_go_with_the_project(fashion):
    import gc

    train, _ = fashion
    p = Project()
    assert p._workdir is None  # nothing on disk until an image arrives
    p.add_images(p.classes[0].uid, train["Trouser"][:1])
    folder = p.workdir
    del p
    gc.collect()
    assert not folder.exists()


def test_sweep_removes_old_session_folders_only(tmp_path):
    import os
    import time

    old = tmp_path / f"{pj.quotas.WORKDIR_PREFIX}dead"
    new = tmp_path / f"{pj.quotas.WORKDIR_PREFIX}alive"
    other = tmp_path / "someone-else"
    for folder in (old, new, other):
        folder.mkdir()
        (folder / "a.png").write_bytes(b"x")
    past = time.time() - pj.SESSION_TTL_S - 60
    for path in (old, old / "a.png", other, other / "a.png"):
        os.utime(path, (past, past))
    assert pj.sweep_workdirs(root=tmp_path) == [old]
    assert not old.exists() and new.exists() and other.exists()


def test_start_up_sweeps_a_dead_runs_upload_cache(tmp_path):
    """Issue 21, row 9: Gradio's own sweep deletes only the files its run created; a run killed
    with kill -9 left its uploads, which the next start deletes once older than Gradio's age."""
    import os
    import time

    old = tmp_path / "0a1b2c" / "upload.png"
    young = tmp_path / "3d4e5f" / "upload.png"
    for path in (old, young):
        path.parent.mkdir()
        path.write_bytes(b"x" * 100)
    past = time.time() - pj.quotas.UPLOAD_CACHE_AGE_S - 60
    os.utime(old, (past, past))
    assert pj.sweep_upload_cache(root=tmp_path) == 1
    assert not old.parent.exists() and young.exists()
