"""Issue 21, rows 1 and 2 in the session layer: a camera frame is checked from its data URL's
length and its header before it is decoded; each session's stream has a frame-rate cap and a
time limit, and one session's stream does not count against another's."""

from __future__ import annotations

import base64
import io

import pytest
from attack_files import png_header
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError, camera
from imprint_core.session.quotas import LIVE_GAP_S, LIVE_MAX_FPS, LIVE_MAX_STREAM_S


def data_url(data: bytes, kind: str = "image/png") -> dict:
    return {"path": None, "url": f"data:{kind};base64,{base64.b64encode(data).decode()}"}


def jpeg(size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_frame_is_classified_read_only(trained):
    version = trained.version
    result, note = pj.classify_frame(trained, data_url(jpeg(), "image/jpeg"), now=1e6)
    assert set(result["confidences"]) == set(trained.head.classes_)
    assert note.startswith("Frame classified in") and trained.version == version


def test_a_huge_frame_is_refused_from_its_header(trained, tmp_path):
    header = png_header(tmp_path / "huge.png", 13_000, 13_000).read_bytes()  # 169 MP, 57 bytes
    with pytest.raises(ProjectError, match="169.0 megapixels, which is too large.*at most 4 mega"):
        pj.classify_frame(trained, data_url(header), now=2e6)
    with pytest.raises(ProjectError, match="a frame may be at most 4 MB"):
        pj.classify_frame(trained, data_url(bytes(5 * 2**20)), now=3e6)
    with pytest.raises(ProjectError, match="no picture"):
        pj.classify_frame(trained, {"path": "/etc/hostname", "url": None}, now=4e6)


def test_each_session_has_its_own_rate_cap_and_time_limit():
    a, b = Project(n_classes=0), Project(n_classes=0)
    gap = 1.0 / LIVE_MAX_FPS
    assert camera.admit(a, now=100.0) is True
    assert camera.admit(a, now=100.0 + gap / 2) is False  # faster than the cap: dropped
    assert camera.admit(b, now=100.0 + gap / 2) is True  # another session's stream is its own
    t = 100.0
    while t < 100.0 + LIVE_MAX_STREAM_S:  # a stream that keeps going...
        t += LIVE_GAP_S / 2
        assert camera.admit(a, now=t) is True
    t += LIVE_GAP_S / 2
    stopped = camera.admit(a, now=t)  # ...is stopped at the time limit, with a sentence
    assert isinstance(stopped, str) and "stops after 10 minutes" in stopped
    assert camera.admit(a, now=t + LIVE_GAP_S / 2) == stopped  # frames keep being refused
    assert camera.admit(a, now=t + 2 * LIVE_GAP_S) is True  # a pause starts a new stream
