"""One fair queue for the heavy work of every session: decoding uploads, embedding, imprinting,
the k-curve and the advice, the map, predictions, the live camera and the ONNX export.

The work runs in short turns (a chunk of images, one (gen, k) of the curve, one frame), and the
workers go round-robin across the sessions waiting for them, one worker per session at most: a
session with a long request gets one turn, then every other waiting session gets one, then it
gets the next. A 6-image imprint thus waits for at most one turn of each other session, never
for a whole 1,000-image request. Turns of one session keep their order. A thread that already
holds a turn and asks again (a prediction inside "Classify several") keeps it: turns do not nest.
Small units of work (decoding a thumbnail) share one turn (``Slices``) up to ``SLICE_S``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from .quotas import HEAVY_WORKERS, SLICE_S


class FairScheduler:
    """``workers`` turns at a time, at most one per owner (session), handed round-robin across
    owners, FIFO within one owner."""

    def __init__(self, workers: int = HEAVY_WORKERS) -> None:
        self.workers = int(workers)
        self._cond = threading.Condition()
        self._waiting: OrderedDict[Hashable, deque[list[bool]]] = OrderedDict()
        self._busy = 0
        self._running: Counter = Counter()  # owner -> turns it holds (0 or 1)
        self._local = threading.local()
        self.turns_given = 0  # for tests and benchmarks: how many turns were handed out
        self.recent: deque[int] = deque(maxlen=256)  # id() of the owners of the last turns

    def _grant(self) -> None:
        """Hand free workers to the owners in round-robin order (called with the lock held)."""
        while self._busy < self.workers:
            owner = next((o for o in self._waiting if not self._running[o]), None)
            if owner is None:
                break
            tickets = self._waiting[owner]
            ticket = tickets.popleft()
            if tickets:
                self._waiting.move_to_end(owner)  # its next turn comes after the others'
            else:
                del self._waiting[owner]
            ticket[0] = True
            ticket.append(owner)
            self._running[owner] += 1
            self._busy += 1
            self.turns_given += 1
            self.recent.append(id(owner))
        self._cond.notify_all()

    @property
    def holding(self) -> bool:
        """Whether the calling thread holds a turn."""
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def turn(self, owner: Hashable) -> Iterator[None]:
        """Run the block as one turn of ``owner`` (wait for it first)."""
        if self.holding:  # already inside a turn of this thread
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        ticket = [False]
        with self._cond:
            self._waiting.setdefault(owner, deque()).append(ticket)
            self._grant()
            while not ticket[0]:
                self._cond.wait()
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            self._release(owner)

    def _release(self, owner: Hashable) -> None:
        with self._cond:
            self._busy -= 1
            self._running[owner] -= 1
            if not self._running[owner]:
                del self._running[owner]
            self._grant()

    def waiting(self) -> int:
        """How many turns are waiting (all owners)."""
        with self._cond:
            return sum(len(t) for t in self._waiting.values())

    def pause(self, owner: Hashable) -> None:
        """Inside a turn of ``owner``: let every other waiting owner have a turn first, then go
        on (a long loop calls this between its steps). Does nothing when nobody waits."""
        if getattr(self._local, "depth", 0) != 1:
            return
        with self._cond:
            if not self._waiting:
                return
            if not any(not self._running[o] for o in self._waiting):
                return  # only other turns of this owner wait: they come after this one
            ticket = [False]
            self._waiting.setdefault(owner, deque()).appendleft(ticket)
            self._waiting.move_to_end(owner)
            self._busy -= 1
            self._running[owner] -= 1
            self._grant()
            while not ticket[0]:
                self._cond.wait()


class Slices:
    """Units of work of one owner run in turns, several units per turn while the turn is
    younger than ``seconds`` (thumbnails share a turn; a 40-megapixel image has its own)::

        with Slices(project) as slices:
            for image in images:
                with slices.unit():
                    decode(image)
    """

    def __init__(
        self, owner: Hashable, seconds: float = SLICE_S, scheduler: FairScheduler | None = None
    ) -> None:
        self.owner, self.seconds = owner, seconds
        self.scheduler = scheduler or SCHEDULER
        self._turn = None
        self._since = 0.0

    @contextmanager
    def unit(self) -> Iterator[None]:
        if self._turn is not None and time.monotonic() - self._since >= self.seconds:
            self.close()  # the turn is used up: others' waiting turns go first
        if self._turn is None and not self.scheduler.holding:
            self._turn = self.scheduler.turn(self.owner)
            self._turn.__enter__()
            self._since = time.monotonic()
        yield

    def close(self) -> None:
        if self._turn is not None:
            turn, self._turn = self._turn, None
            turn.__exit__(None, None, None)

    def __enter__(self) -> Slices:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The one scheduler of the process: every session's heavy work goes through it.
SCHEDULER = FairScheduler()


def turn(owner: Hashable):
    """One turn of ``owner`` (a session's project) on the process's scheduler."""
    return SCHEDULER.turn(owner)


def pause(owner: Hashable) -> None:
    """Let other sessions' waiting turns go first (see ``FairScheduler.pause``)."""
    SCHEDULER.pause(owner)
