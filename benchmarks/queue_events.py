"""Page events over Gradio's queue protocol, as the browser sends them (for the benchmarks).

The page's events (a checkbox, a button, a file drop, the live camera) have no API name; a client
reaches them as the page does: ``queue/join`` with the event's index in the app's config, the
session's hash (the same one a ``gradio_client.Client`` uses, so that ``/imprint`` and page events
share one session), and one value per input (the component's default unless given); the answer
comes on the session's ``queue/data`` event stream.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx


class Page:
    """One session of the app, spoken to as the page speaks (``session_hash`` of a Client)."""

    def __init__(self, url: str, session_hash: str, timeout: float = 900.0) -> None:
        self.root = url.rstrip("/")
        self.api = self.root + "/gradio_api"
        self.session = session_hash
        self.timeout = timeout
        self.config = httpx.get(self.root + "/config", timeout=60).json()
        self.by_elem = {
            c["props"].get("elem_id"): c["id"]
            for c in self.config["components"]
            if c["props"].get("elem_id")
        }
        self.defaults = {c["id"]: c["props"].get("value") for c in self.config["components"]}

    def event(self, elem_id: str, trigger: str) -> tuple[int, dict]:
        """The index and config of the event ``trigger`` of the component ``elem_id``."""
        target = [self.by_elem[elem_id], trigger]
        for i, dep in enumerate(self.config["dependencies"]):
            if target in [list(t) for t in dep["targets"]]:
                return i, dep
        raise KeyError(f"no {trigger} event on #{elem_id}")

    def upload(self, path: Path) -> dict:
        """Upload a file as the page does; returns its FileData."""
        with open(path, "rb") as fh:
            reply = httpx.post(
                f"{self.api}/upload", files=[("files", (path.name, fh))], timeout=self.timeout
            )
        reply.raise_for_status()
        return {
            "path": reply.json()[0],
            "orig_name": path.name,
            "meta": {"_type": "gradio.FileData"},
        }

    def run(self, elem_id: str, trigger: str, value=None) -> dict:
        """Send the event with ``value`` for its own component (defaults for the other inputs)
        and wait for its end; returns the final message (``success`` says whether it ran)."""
        fn, dep = self.event(elem_id, trigger)
        own = self.by_elem[elem_id]
        data = [value if c == own else self.defaults.get(c) for c in dep["inputs"]]
        body = {
            "data": data,
            "event_data": None,
            "fn_index": fn,
            "trigger_id": own,
            "session_hash": self.session,
        }
        reply = httpx.post(f"{self.api}/queue/join", json=body, timeout=60)
        reply.raise_for_status()
        done = {"event_id": reply.json()["event_id"]}
        # after the join: Gradio answers queue/data only for a session with an event
        listener = threading.Thread(target=self._listen, args=(done,), daemon=True)
        listener.start()
        listener.join(self.timeout)
        return done.get("message", {"success": False, "output": "timed out"})

    def _listen(self, done: dict) -> None:
        deadline = time.monotonic() + self.timeout
        params = {"session_hash": self.session}
        with httpx.stream("GET", f"{self.api}/queue/data", params=params, timeout=None) as r:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if (
                    msg.get("msg") == "process_completed"
                    and msg.get("event_id") == done["event_id"]
                ):
                    done["message"] = msg
                    return
                if time.monotonic() > deadline:
                    return


class Camera:
    """One session's live camera stream, as the page streams it: ``queue/join`` with the first
    frame, ``stream/<event_id>`` for the next ones; answers counted from ``queue/data``."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.fn, dep = page.event("live-camera", "stream")
        self.inputs = dep["inputs"]
        self.own = page.by_elem["live-camera"]
        self.event_id = None
        self.answers: list[tuple[float, dict]] = []  # (time, message)
        self.closed = threading.Event()

    def send(self, frame: dict) -> None:
        data = [frame if c == self.own else self.page.defaults.get(c) for c in self.inputs]
        body = {
            "data": data,
            "event_data": None,
            "fn_index": self.fn,
            "trigger_id": self.own,
            "session_hash": self.page.session,
        }
        if self.event_id is None:
            reply = httpx.post(f"{self.page.api}/queue/join", json=body, timeout=60).json()
            self.event_id = reply["event_id"]
            threading.Thread(target=self._listen, daemon=True).start()  # after the join
        else:
            httpx.post(f"{self.page.api}/stream/{self.event_id}", json=body, timeout=60)

    def _listen(self) -> None:
        params = {"session_hash": self.page.session}
        try:
            with httpx.stream(
                "GET", f"{self.page.api}/queue/data", params=params, timeout=None
            ) as r:
                for line in r.iter_lines():
                    if self.closed.is_set():
                        return
                    if line.startswith("data:"):
                        msg = json.loads(line[5:])
                        if msg.get("msg") in ("process_streaming", "process_completed"):
                            self.answers.append((time.monotonic(), msg))
        except httpx.HTTPError:  # the server stopped
            return

    def close(self) -> None:
        self.closed.set()
        if self.event_id is not None:
            httpx.post(f"{self.page.api}/stream/{self.event_id}/close", timeout=60)
