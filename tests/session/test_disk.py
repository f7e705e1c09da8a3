"""Disk (session/disk.py, session/downloads.py): a session's downloads replace one another, its
files are held to its disk quota (uploads and downloads refused whole, leaving no file), and
Gradio's upload cache is kept under its cap by deleting its oldest files, else refusing."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from imprint_core import config
from imprint_core import session as pj
from imprint_core.session import Project, QuotaError, UploadCacheGuard
from imprint_core.session.disk import MB, session_bytes


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Gradio's upload cache in a temp folder (where a session's downloads are written)."""
    root = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    return root


@pytest.fixture
def small(backbone, fashion, served):
    """A session as the app makes one (temporary folders), imprinted from 2 classes."""
    train, _ = fashion
    p = Project(n_classes=0)
    for cls in ("Trouser", "Sneaker"):
        p.add_images(p.add_class(cls).uid, train[cls][:3])
    p.train(backbone)
    yield p
    p.close()


def files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def noise_pngs(folder, n: int, side: int = 160) -> list:
    """PNGs that do not compress: each stored copy takes ~side*side*3 bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"noise-{i}.png"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_a_download_replaces_the_previous_one_of_its_kind(small, backbone, fashion, served):
    """The app's downloads live in the session's folder of Gradio's cache (served without a
    copy); a new head's file replaces the last one (new address) and its JSON describes it."""
    first = small.export_head()
    assert small.download_dir.parent == served and first.is_relative_to(served)
    train, _ = fashion
    small.add_images(small.add_class("T-shirt").uid, train["T-shirt"][:3])
    small.train(backbone)
    second = small.export_head()
    assert second != first and not first.exists() and second.exists()
    assert [p.name for p in files(small.download_dir / "head")] == [
        "imprint-head.json",
        "imprint-head.safetensors",
    ]
    meta = json.loads(second.with_suffix(".json").read_text())
    assert "T-shirt" in json.dumps(meta)  # the current head's classes, not the first head's
    assert pj.views(small)["head_file"] == [str(second), str(second.with_suffix(".json"))]
    small.close()
    assert not small.download_dir.exists()  # the session's end deletes its downloads


def test_a_download_past_the_session_quota_is_refused_and_leaves_no_file(small, monkeypatch):
    saved = pj.make_download(small, "project")
    small.rename_class(small.classes[0].uid, "Trousers")  # the saved zip is withdrawn
    before = files(small.download_dir)
    # room for less than a new zip in place of the old one (the old one does not count)
    limit = (session_bytes(small) - saved.stat().st_size + 1000) / MB
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", str(limit))
    with pytest.raises(QuotaError) as info:
        pj.make_download(small, "project")
    sentence = str(info.value)
    assert sentence.startswith("'Save project' would bring the files this session keeps")
    assert f"at most {limit:.2f} MB" in sentence and "Remove some images" in sentence
    assert files(small.download_dir) == before and saved.exists()  # nothing new, the old kept
    assert pj.views(small)["project_file"] is None  # still withdrawn: it is not the project
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", str(limit + 20))  # a head is 13 MB
    assert pj.make_download(small, "project").exists() and not saved.exists()  # replaced


def test_images_past_the_session_quota_are_refused_whole(small, tmp_path, monkeypatch):
    stored = files(small.workdir)
    n_images, version = small.n_images, small.version
    limit = (
        session_bytes(small) + 200_000
    ) / MB  # two 160-px noise images fit (77 KB each), not four
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", str(limit))
    with pytest.raises(QuotaError, match="^Adding these images would bring the files"):
        small.add_images(small.classes[0].uid, noise_pngs(tmp_path / "noise", 4))
    assert files(small.workdir) == stored and small.n_images == n_images
    assert small.version == version
    assert small.add_images(small.classes[0].uid, noise_pngs(tmp_path / "noise", 2)) == 2


def test_the_quota_setting_is_checked(monkeypatch):
    monkeypatch.setenv("IMPRINT_SESSION_DISK_MB", "lots")
    with pytest.raises(ValueError, match="IMPRINT_SESSION_DISK_MB must be a positive number"):
        config.session_disk_mb()
    monkeypatch.setenv("IMPRINT_UPLOAD_CACHE_MB", "0")
    with pytest.raises(ValueError, match="IMPRINT_UPLOAD_CACHE_MB must be a positive number"):
        config.upload_cache_mb()
    monkeypatch.delenv("IMPRINT_UPLOAD_CACHE_MB")
    assert config.upload_cache_mb() == 2048


def _cached(root, name: str, size: int, age_s: float, now: float):
    path = root / name / "upload.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_s, now - age_s))
    os.utime(path.parent, (now - age_s, now - age_s))
    return path


def test_the_upload_cache_guard_deletes_the_oldest_files_then_refuses(tmp_path):
    now = time.time()
    root = tmp_path / "gradio"
    oldest = _cached(root, "a", 400, 3600, now)
    older = _cached(root, "b", 400, 600, now)
    young = _cached(root, "c", 400, 5, now)  # an upload its event may not have read yet
    download = _cached(root, f"{pj.quotas.DOWNLOADS_PREFIX}x", 5000, 7200, now)
    guard = UploadCacheGuard(root, cap=1000, grace_s=60)
    assert guard.admit(150, now=now) is None  # 1,200 + 150 > 1,000: the oldest goes
    assert not oldest.exists() and not oldest.parent.exists()
    assert older.exists() and young.exists() and download.exists()  # downloads never count
    # the 150 admitted count until the scan sees them: 400 + 400 + 150 + 300 > 1,000
    assert guard.admit(300, now=now) is None and not older.exists()
    sentence = guard.admit(500, now=now)  # only young files (and the 450 admitted) are left
    assert sentence is not None and sentence.startswith("The server's upload space is full")
    assert young.exists() and download.exists()
    assert guard.admit(700, now=now + 120) is None  # a minute later the young file may go
    assert not young.exists()


def test_the_upload_cache_guard_looks_at_the_disk_once_for_a_burst_of_uploads(
    tmp_path, monkeypatch
):
    """A scan of every cached file cost ~15 ms per upload after a few sessions (0.6 s of a
    40-file /imprint): a recent scan plus the uploads admitted since decides, until it is
    older than UPLOAD_RESCAN_S or says there is no room."""
    from imprint_core.session import disk

    scans = []
    real = disk._cache_files
    monkeypatch.setattr(disk, "_cache_files", lambda root: scans.append(root) or real(root))
    now = time.time()
    root = tmp_path / "gradio"
    old = _cached(root, "a", 500, 3600, now)
    guard = UploadCacheGuard(root, cap=1500, grace_s=60)
    assert guard.admit(10, now=now) is None and len(scans) == 1
    for i in range(40):  # a 40-file request within a second: known to fit
        assert guard.admit_known(10, now=now + i / 40)
        assert guard.admit(10, now=now + i / 40) is None
    assert len(scans) == 1 and old.exists()
    # 500 held + 810 admitted + 300 > 1,500: admit_known cannot tell, admit looks (and the
    # old file goes)
    assert not guard.admit_known(300, now=now + 1)
    assert guard.admit(300, now=now + 1) is None and len(scans) == 2 and not old.exists()
    # a scan older than UPLOAD_RESCAN_S is not trusted
    later = now + 1 + pj.quotas.UPLOAD_RESCAN_S
    assert not guard.admit_known(1, now=later)
    assert guard.admit(1, now=later) is None and len(scans) == 3
    # a file written meanwhile by another hand is seen by the next scan
    _cached(root, "b", 900, 0, later)
    assert guard.admit(500, now=later + pj.quotas.UPLOAD_RESCAN_S) is not None


def test_the_upload_cache_scan_skips_downloads_and_symlinks(tmp_path):
    from imprint_core.session.disk import _cache_files

    now = time.time()
    root = tmp_path / "gradio"
    kept = _cached(root, "a", 100, 10, now)
    _cached(root, f"{pj.quotas.DOWNLOADS_PREFIX}s1", 100, 10, now)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"y" * 50)
    (root / "link").symlink_to(outside)
    (root / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    assert [p for _, _, p in _cache_files(root)] == [kept]
    assert _cache_files(tmp_path / "none") == []
