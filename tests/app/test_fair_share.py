"""Issue 21 against the real app (launched in-process, loopback): the live camera's streams are
per session (row 1), a camera frame is checked from its header before Gradio or we decode it
(row 2), /imprint and the page's uploads keep to the pixel budget (row 3).

The camera is driven as the browser drives it, over Gradio's queue protocol: ``queue/join`` opens
the stream with its first frame, ``stream/<event_id>`` sends the next ones, the answers come
back on the session's ``queue/data`` event stream."""

from __future__ import annotations

import base64
import io
import json
import queue
import threading
import uuid

import httpx
import pytest
from attack_files import forty_mp, png_header
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


def frame(data: bytes, kind: str = "image/jpeg") -> dict:
    return {"path": None, "url": f"data:{kind};base64,{base64.b64encode(data).decode()}"}


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 60, 60)).save(buf, "JPEG")
    return buf.getvalue()


class Camera:
    """One session's live camera stream, spoken in Gradio's queue protocol."""

    def __init__(self, url: str, session_hash: str | None = None) -> None:
        self.url = url.rstrip("/") + "/gradio_api"
        self.session = session_hash or uuid.uuid4().hex[:11]
        config = httpx.get(url.rstrip("/") + "/config").json()
        live = next(
            c["id"] for c in config["components"] if c["props"].get("elem_id") == "live-camera"
        )
        self.fn, self.trigger = next(
            (i, live)
            for i, d in enumerate(config["dependencies"])
            if [live, "stream"] in [list(t) for t in d["targets"]]
        )
        self.answers: queue.Queue = queue.Queue()
        self.event_id = None

    def _body(self, payload) -> dict:
        return {
            "data": [None, payload],
            "event_data": None,
            "fn_index": self.fn,
            "trigger_id": self.trigger,
            "session_hash": self.session,
        }

    def send(self, payload) -> None:
        if self.event_id is None:
            reply = httpx.post(f"{self.url}/queue/join", json=self._body(payload)).json()
            self.event_id = reply["event_id"]
            threading.Thread(target=self._listen, daemon=True).start()  # after the event exists
        else:
            httpx.post(f"{self.url}/stream/{self.event_id}", json=self._body(payload))

    def _listen(self) -> None:
        params = {"session_hash": self.session}
        try:
            with httpx.stream("GET", f"{self.url}/queue/data", params=params, timeout=None) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        msg = json.loads(line[5:])
                        if msg.get("msg") in ("process_streaming", "process_completed"):
                            self.answers.put(msg)
        except httpx.HTTPError:  # the server stopped at the end of the module
            return

    def answer(self, timeout: float = 20) -> dict:
        return self.answers.get(timeout=timeout)

    def close(self) -> None:
        if self.event_id is not None:
            httpx.post(f"{self.url}/stream/{self.event_id}/close")


def note_of(msg: dict) -> str:
    assert msg.get("success", True), msg
    return msg["output"]["data"][1]


def test_one_open_stream_does_not_hold_the_camera_of_other_sessions(url):
    first, second = Camera(url), Camera(url)
    first.send(frame(jpeg()))
    assert "No classifier yet" in note_of(first.answer())  # its stream stays open
    second.send(frame(jpeg()))
    try:  # one slot for all made this wait until the first stream closed
        answer = second.answer()
    except queue.Empty:
        pytest.fail("a second session's camera got no answer while the first stream was open")
    assert "No classifier yet" in note_of(answer)
    first.close()
    second.close()


def test_a_huge_camera_frame_is_refused_from_its_header(url, fashion3, tmp_path):
    train, _ = fashion3
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    files = [handle_file(str(p)) for c in ("Trouser", "Sneaker") for p in train[c][:2]]
    client.predict(files=files, labels=["t", "t", "s", "s"], api_name="/imprint")
    camera = Camera(url, client.session_hash)
    header = png_header(tmp_path / "huge.png", 13_000, 13_000).read_bytes()  # 169 MP, 57 bytes
    camera.send(frame(header, "image/png"))
    note = note_of(camera.answer()).replace("\\", "")  # the note is Markdown-escaped
    assert "169.0 megapixels, which is too large" in note and "at most 4 megapixels" in note
    for _ in range(20):  # the stream goes on (a frame sent too soon after another is dropped)
        camera.send(frame(jpeg()))
        note = note_of(camera.answer())
        if note and "Frame classified" in note:
            break
    assert "Frame classified" in note
    camera.close()


def test_imprint_keeps_to_the_pixel_budget(url, tmp_path):
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    files = [handle_file(str(p)) for p in forty_mp(tmp_path / "big")]
    with pytest.raises(AppError, match="would decode more than 500 megapixels"):
        client.predict(files=files, labels=["a"] * 7 + ["b"] * 6, api_name="/imprint")
