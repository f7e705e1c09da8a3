"""Try it's event is served outside Gradio's queue, so a call waiting for its session's turn
holds one of the server's threads: a session may have at most TRY_IN_FLIGHT calls at once, and
the next is refused at once with a sentence (the page sends one per image dropped)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from imprint_core import session as pj
from imprint_core.session.insight import TRIES
from imprint_core.session.scheduler import SCHEDULER


def test_a_session_waits_with_at_most_two_tries_and_refuses_the_next(trained, backbone, fashion):
    _, test = fashion
    images = [p for paths in test.values() for p in paths][:3]
    held, release = threading.Event(), threading.Event()

    def hold_the_turn():  # the session's heavy work is busy: its tries wait for their turn
        with SCHEDULER.turn(trained):
            held.set()
            release.wait(60)

    answers, errors = [], []

    def try_one(path):
        try:
            answers.append(trained.try_image(backbone, path, Path(path).name))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    assert held.wait(30)
    tries = [threading.Thread(target=try_one, args=(p,)) for p in images[:2]]
    try:
        for t in tries:
            t.start()
        deadline = time.monotonic() + 30
        while TRIES._calls.get(trained, 0) < pj.TRY_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.01)
        assert TRIES._calls.get(trained, 0) == pj.TRY_IN_FLIGHT == 2
        started = time.monotonic()
        with pytest.raises(pj.ProjectError, match="still answering the images dropped before"):
            trained.try_image(backbone, images[2], Path(images[2]).name)
        assert time.monotonic() - started < 5  # refused at once, not after the wait
        assert not answers  # the two admitted still wait for the turn
    finally:
        release.set()
        holder.join(60)
        for t in tries:
            t.join(60)
    assert not errors and len(answers) == 2
    assert TRIES._calls.get(trained, 0) == 0
    # with nothing in flight, the next image is answered
    answer = trained.try_image(backbone, images[2], Path(images[2]).name)
    assert answer["label"] in test


def test_in_flight_counts_per_session(backbone):
    a, b = object.__new__(pj.Project), object.__new__(pj.Project)
    with TRIES.enter(a), TRIES.enter(a):
        with pytest.raises(pj.ProjectError):
            with TRIES.enter(a):
                pass
        with TRIES.enter(b), TRIES.enter(b):  # another session is not held back
            pass
    with TRIES.enter(a):  # released after an exception too
        pass
