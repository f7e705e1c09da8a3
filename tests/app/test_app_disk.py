"""Disk against the real ``python app.py`` (a subprocess with small disk settings): anonymous
uploads are held under the upload cache's cap (a refused upload leaves no file), a download
replaces the previous one instead of adding a copy to Gradio's cache, and a session's files are
held to its quota."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from imprint_core import session as pj  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE_MB = 40  # IMPRINT_UPLOAD_CACHE_MB of the app under test
SESSION_MB = 16  # IMPRINT_SESSION_DISK_MB: a head (12.5 MB with its whitening) fits, 18 MB not


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """``python app.py`` with its own temp folders; yields (url, temp folder, upload cache)."""
    base = tmp_path_factory.mktemp("disk-app")
    tmp, cache = base / "tmp", base / "gradio"
    tmp.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "GRADIO_TEMP_DIR": str(cache),
        "GRADIO_SERVER_PORT": str(port),
        "IMPRINT_UPLOAD_CACHE_MB": str(CACHE_MB),
        "IMPRINT_SESSION_DISK_MB": str(SESSION_MB),
        "PYTHONUNBUFFERED": "1",
    }
    log = base / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield url, tmp, cache
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_an_upload_past_the_cache_cap_is_refused_and_leaves_no_file(app, tmp_path):
    url, _, cache = app
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(int((CACHE_MB + 0.5) * 2**20)))  # under max_file_size (100 MB)
    before = files_in(cache)
    with open(big, "rb") as fh:
        reply = httpx.post(f"{url}gradio_api/upload", files=[("files", ("big.bin", fh))])
    assert reply.status_code == 507, reply.text
    assert reply.text.startswith("The server's upload space is full")
    assert f"of the {CACHE_MB:.1f} MB it keeps" in reply.text
    assert files_in(cache) == before  # no upload, no spooled copy
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    with open(small, "rb") as fh:  # one that fits is stored as before
        reply = httpx.post(f"{url}gradio_api/upload", files=[("files", ("small.bin", fh))])
    assert reply.status_code == 200 and Path(reply.json()[0]).read_bytes() == b"x" * 1000


def _imprint(client: Client, train: dict, classes: tuple[str, str], n: int = 2) -> None:
    paths = [p for c in classes for p in train[c][:n]]
    labels = [c for c in classes for _ in range(n)]
    client.predict(files=[handle_file(str(p)) for p in paths], labels=labels, api_name="/imprint")


def test_a_new_download_replaces_the_last_one(app, fashion3, tmp_path):
    """Each /export of a new head used to add a copy of the file to Gradio's cache (content-
    addressed: a new copy per head) until the hourly sweep; now the session's file is served
    where it is, and the new one replaces the old."""
    url, _, cache = app
    train, _ = fashion3
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    heads = []
    for classes in (("Trouser", "Sneaker"), ("Trouser", "T-shirt"), ("Sneaker", "T-shirt")):
        _imprint(client, train, classes)
        heads.append(Path(client.predict(api_name="/export")).read_bytes())
    assert len(set(heads)) == 3  # three different heads were downloaded
    served = [p for p in files_in(cache) if p.name == "imprint-head.safetensors"]
    assert len(served) == 1 and served[0].read_bytes() == heads[-1]
    assert pj.quotas.DOWNLOADS_PREFIX in str(served[0])
    client.close()


def test_images_past_the_session_quota_are_refused_and_leave_no_file(app, fashion3, tmp_path):
    url, tmp, _ = app
    rng = np.random.default_rng(1)
    paths = []
    for i in range(30):  # 30 x 0.6 MB of stored PNG that does not compress: past 16 MB
        path = tmp_path / f"noise-{i}.png"
        Image.fromarray(rng.integers(0, 256, (448, 448, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    before = set(tmp.glob(f"{pj.quotas.WORKDIR_PREFIX}*/*.png"))  # other sessions' images
    with pytest.raises(AppError, match="Adding these images would bring the files this session"):
        client.predict(
            files=[handle_file(str(p)) for p in paths],
            labels=["a"] * 15 + ["b"] * 15,
            api_name="/imprint",
        )
    assert set(tmp.glob(f"{pj.quotas.WORKDIR_PREFIX}*/*.png")) == before  # none left
    client.close()
