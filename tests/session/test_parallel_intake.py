"""An upload's images are decoded two at a time inside the session's turn (session/uploads.py):
the order of the images, every refused file's sentence and the images stored are those of the
one-at-a-time path. Real photos upscaled to phone size, with sensor-like noise."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from phone_photos import phone_jpeg

from imprint_core.session import Project, ProjectError, uploads
from imprint_core.session.thumbnails import thumb_path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Ten photos; the 4th is truncated and the 8th is no image (when ``bad`` is asked for)."""
    folder = tmp_path_factory.mktemp("parallel")
    paths = []
    for i in range(10):
        source = "china.jpg" if i % 2 else "flower.jpg"
        paths.append(phone_jpeg(folder / f"p{i}.jpg", source, i, (2000, 1500), 6 if i == 5 else 1))
    truncated = folder / "p3-truncated.jpg"
    truncated.write_bytes(paths[3].read_bytes()[: paths[3].stat().st_size // 2])
    junk = folder / "p7-junk.jpg"
    junk.write_bytes(b"not a photo at all" * 100)
    bad = [*paths[:3], truncated, *paths[4:7], junk, *paths[8:]]
    return {"good": paths, "bad": bad}


@pytest.fixture
def decoders(monkeypatch):
    """The names of the threads that decoded images, and the most decoding at once (the real
    decoder runs)."""
    names, active, lock = [], [0, 0], threading.Lock()
    real = uploads.decode_staged

    def spy(staged):
        with lock:
            names.append(threading.current_thread().name)
            active[0] += 1
            active[1] = max(active)
        try:
            return real(staged)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(uploads, "decode_staged", spy)
    return names, active


def _add(tmp_path: Path, name: str, files, threads: int, monkeypatch, free: int = 1):
    """``files`` added to a new project's class by ``threads`` decoding threads, with ``free``
    cores (the machine's load, as ``free_cores`` reads it)."""
    monkeypatch.setattr(uploads, "INTAKE_THREADS", threads)
    monkeypatch.setattr(uploads, "free_cores", lambda: free)
    project = Project(workdir=tmp_path / name, n_classes=0)
    uid = project.add_class("photos").uid
    before = sorted(p.name for p in project.workdir.iterdir())
    try:
        project.add_images(uid, files)
    except ProjectError as exc:
        after = sorted(p.name for p in project.workdir.iterdir())
        return project, str(exc), before, after
    return project, None, before, None


def test_a_bad_file_among_ten_is_refused_as_one_at_a_time(tmp_path, photos, decoders, monkeypatch):
    decoders, _ = decoders
    parallel, refused, before, after = _add(tmp_path, "two", photos["bad"], 2, monkeypatch)
    assert {n for n in decoders if n.startswith("imprint-intake")}, decoders  # two threads ran
    assert refused is not None and refused.startswith("No image was added: 2 of 10 files were")
    truncated = refused.index("Image 'p3-truncated.jpg' in class 'photos' is truncated")
    junk = refused.index("Image 'p7-junk.jpg' in class 'photos' is not an image")
    assert truncated < junk  # named in the order they were sent
    assert parallel.get(parallel.classes[0].uid).images == []  # nothing added
    assert after == before  # and no file left behind
    decoders.clear()
    serial, alone, *_ = _add(tmp_path, "one", photos["bad"], 1, monkeypatch)
    assert decoders and not {n for n in decoders if n.startswith("imprint-intake")}
    assert alone == refused
    parallel.close()
    serial.close()


def test_two_threads_store_what_one_stores_in_the_order_sent(tmp_path, photos, monkeypatch):
    good = photos["good"][::-1]  # not in name order: the order sent is kept
    parallel, refused, *_ = _add(tmp_path, "two", good, 2, monkeypatch)
    serial, alone, *_ = _add(tmp_path, "one", good, 1, monkeypatch)
    assert refused is None and alone is None
    a, b = parallel.classes[0].images, serial.classes[0].images
    assert [i.name for i in a] == [i.name for i in b] == [p.name for p in good]
    assert [i.key for i in a] == [i.key for i in b]
    for x, y, sent in zip(a, b, good, strict=True):
        assert x.path.read_bytes() == y.path.read_bytes() == sent.read_bytes()  # as sent
        assert thumb_path(x.path).read_bytes() == thumb_path(y.path).read_bytes()
        px, py = parallel._decoded.get(x.key), serial._decoded.get(y.key)
        assert px.size == py.size == ((336, 448) if sent.name == "p5.jpg" else (448, 336))
        assert np.array_equal(np.asarray(px), np.asarray(py))
    parallel.close()
    serial.close()


def test_without_a_free_core_images_decode_one_at_a_time(tmp_path, photos, decoders, monkeypatch):
    """On a saturated machine two decoding threads were measured slower than one."""
    _, active = decoders
    busy, _, *_ = _add(tmp_path, "busy", photos["good"][:6], 2, monkeypatch, free=0)
    assert active[1] == 1 and len(busy.classes[0].images) == 6
    busy.close()
