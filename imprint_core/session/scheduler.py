"""One fair queue for the heavy work of every session: decoding uploads, embedding, imprinting,
the k-curve and the advice, the map, predictions, the live camera and the ONNX export.

The work runs in short turns (a chunk of images, one (gen, k) of the curve, one frame), and the
worker goes round-robin across the sessions waiting for it: a session with a long request gets
one turn, then every other waiting session gets one, then it gets the next. A 6-image imprint
thus waits for at most one turn of each other session, never for a whole 1,000-image request.
Turns of one session keep their order. A thread that already holds a turn and asks again (a
prediction inside "Classify several") keeps it: turns do not nest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from .quotas import HEAVY_WORKERS


class FairScheduler:
    """``workers`` turns at a time, handed round-robin across owners (sessions), FIFO within
    one owner."""

    def __init__(self, workers: int = HEAVY_WORKERS) -> None:
        self.workers = int(workers)
        self._cond = threading.Condition()
        self._waiting: OrderedDict[Hashable, deque[list[bool]]] = OrderedDict()
        self._busy = 0
        self._local = threading.local()
        self.turns_given = 0  # for tests and benchmarks: how many turns were handed out
        self.recent: deque[int] = deque(maxlen=256)  # id() of the owners of the last turns

    def _grant(self) -> None:
        """Hand free workers to the owners in round-robin order (called with the lock held)."""
        while self._busy < self.workers and self._waiting:
            owner, tickets = next(iter(self._waiting.items()))
            ticket = tickets.popleft()
            if tickets:
                self._waiting.move_to_end(owner)  # its next turn comes after the others'
            else:
                del self._waiting[owner]
            ticket[0] = True
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
            with self._cond:
                self._busy -= 1
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
            ticket = [False]
            self._waiting.setdefault(owner, deque()).append(ticket)
            self._busy -= 1
            self._grant()
            while not ticket[0]:
                self._cond.wait()


# The one scheduler of the process: every session's heavy work goes through it.
SCHEDULER = FairScheduler()


def turn(owner: Hashable):
    """One turn of ``owner`` (a session's project) on the process's scheduler."""
    return SCHEDULER.turn(owner)


def pause(owner: Hashable) -> None:
    """Let other sessions' waiting turns go first (see ``FairScheduler.pause``)."""
    SCHEDULER.pause(owner)
