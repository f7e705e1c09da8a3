"""The live camera: a frame classified by the current head, read-only, within a session's share.

The browser's webcam stream sends each frame as a data URL. A frame is checked before anything is
decoded: the URL's length (``LIVE_MAX_FRAME_BYTES``), then its pixel count from the image header
(``LIVE_MAX_FRAME_PIXELS``; a webcam picture is a few megapixels at most). Each session's stream
is answered at most ``LIVE_MAX_FPS`` times a second (faster frames are dropped undecoded) and for
``LIVE_MAX_STREAM_S`` seconds; the frame's work is a turn of the fair queue (``scheduler``), so
one session's camera never takes the worker from the others.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from .backbone import load_backbone
from .intake import prepare_image
from .limits import ProjectError
from .quotas import (
    LIVE_GAP_S,
    LIVE_MAX_FPS,
    LIVE_MAX_FRAME_BYTES,
    LIVE_MAX_FRAME_PIXELS,
    LIVE_MAX_STREAM_S,
)
from .scheduler import turn
from .texts import unknown_note

NAME = "camera frame"


@dataclass
class _Stream:
    started: float
    last: float  # when the last frame was answered (or dropped by the time limit)


_STREAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # project -> _Stream
_LOCK = threading.Lock()


def admit(project, now: float | None = None) -> bool | str:
    """Whether this session's next frame is classified now: True; False to drop it (frames
    come faster than LIVE_MAX_FPS); a sentence once the stream ran LIVE_MAX_STREAM_S seconds.
    A pause of LIVE_GAP_S seconds starts a new stream."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        stream = _STREAMS.get(project)
        if stream is None or now - stream.last > LIVE_GAP_S:
            _STREAMS[project] = _Stream(started=now, last=now)
            return True
        if now - stream.started > LIVE_MAX_STREAM_S:
            stream.last = now
            return (
                f"The live camera stops after {LIVE_MAX_STREAM_S // 60} minutes so that others "
                f"get their share: stop it, wait {LIVE_GAP_S:g} seconds and start it again."
            )
        if now - stream.last < 1.0 / LIVE_MAX_FPS:
            return False
        stream.last = now
        return True


def frame_bytes(payload: Any) -> bytes:
    """The encoded image of a frame: a data URL (or a file dict holding one), or a file in
    Gradio's upload cache. Refused (ProjectError) when longer than LIVE_MAX_FRAME_BYTES."""
    url = payload.get("url") or "" if isinstance(payload, dict) else payload
    if isinstance(url, str) and url.startswith("data:"):
        head, _, data = url.partition(",")
        if len(data) > LIVE_MAX_FRAME_BYTES * 4 // 3 + 4:
            raise ProjectError(
                f"The camera frame is {len(data) * 3 / 4 / 2**20:.1f} MB; a frame may be at most "
                f"{LIVE_MAX_FRAME_BYTES // 2**20} MB."
            )
        if not head.endswith(";base64"):
            raise ProjectError("The camera frame is not a base64 image.")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ProjectError("The camera frame is not a base64 image.") from None
    path = payload.get("path") if isinstance(payload, dict) else None
    root = config.gradio_temp_dir().resolve()
    if isinstance(path, str) and Path(path).resolve().is_relative_to(root):
        file = Path(path).resolve()
        if file.is_file() and file.stat().st_size <= LIVE_MAX_FRAME_BYTES:
            return file.read_bytes()
    raise ProjectError("The camera sent no picture (or one too large to be a camera frame).")


def classify_frame(project, payload: Any, now: float | None = None) -> tuple[Any, str] | None:
    """One camera frame classified by the current head: ``(result or None, note)`` (the result
    as ``Project.explain`` gives it), or
    None when the frame is dropped (the session's frame rate). Read-only: the session's state
    (and so every view) is unchanged; a frame is shown, never stored."""
    if payload is None:
        return None
    if project.head is None:
        return None, "No classifier yet: add images and press **Imprint**."
    admitted = admit(project, now)
    if admitted is False:
        return None
    if isinstance(admitted, str):
        return None, admitted
    start = time.perf_counter()
    data = frame_bytes(payload)
    from ..images import ImageError, decoded_size

    try:  # the header alone: a frame over the limit is never decoded
        decoded_size(data, NAME, LIVE_MAX_FRAME_PIXELS)
    except ImageError as exc:
        raise ProjectError(str(exc)) from None
    backbone = load_backbone(project.backbone_name)
    with turn(project):
        picture = prepare_image(data, NAME)
        z = backbone.embed([picture], cache=False)[0]
    result = project.explain(z, n_neighbors=0)
    took = f"Frame classified in {1000 * (time.perf_counter() - start):.0f} ms by the current head."
    return result, f"{took} {unknown_note(result.get('unknown'), 'The frame')}"
