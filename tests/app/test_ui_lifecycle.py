"""Issue 11 §4: ``python app.py`` sweeps session folders a dead run left, and a clean stop
(SIGTERM) deletes every session's stored images, exports and uploads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from imprint_core import session as pj  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_start_up_sweep_and_a_clean_stop(tmp_path, fashion3):
    train, _ = fashion3
    tmp = tmp_path / "tmp"
    uploads = tmp_path / "gradio"
    tmp.mkdir()
    dead = tmp / f"{pj.quotas.WORKDIR_PREFIX}dead-run"
    alive = tmp / f"{pj.quotas.WORKDIR_PREFIX}other-live-run"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "a.png").write_bytes(b"x")
    past = time.time() - pj.SESSION_TTL_S - 60
    for path in (dead / "a.png", dead):
        os.utime(path, (past, past))

    port = free_port()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "GRADIO_TEMP_DIR": str(uploads),
        "GRADIO_SERVER_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        address = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(address, timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert not dead.exists() and alive.exists()  # swept at start-up: only the dead run's
        at_start = set(files_in(uploads))  # the held-out example images Gradio keeps cached

        client = Client(address, verbose=False, download_files=str(tmp_path / "dl"))
        files = train["Trouser"][:2] + train["Sneaker"][:2]
        client.predict(
            files=[handle_file(str(p)) for p in files],
            labels=["legs", "legs", "feet", "feet"],
            api_name="/imprint",
        )
        client.predict(api_name="/export")
        ours = [p for p in tmp.glob(f"{pj.quotas.WORKDIR_PREFIX}*") if p != alive]
        assert ours and files_in(ours[0])  # stored images and the export
        assert set(files_in(uploads)) - at_start  # the uploads of the request

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(p.exists() for p in ours), log.read_text()
    assert alive.exists()  # another run's folder is not ours to delete
    left = set(files_in(uploads)) - at_start
    assert not left, left
    assert "deleted the files of" in log.read_text()
