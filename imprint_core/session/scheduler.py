"""One fair queue for the heavy work of every session: decoding uploads, embedding, imprinting,
the k-curve and the advice, the map, predictions, the live camera and the ONNX export.

The work runs in short turns (a chunk of images, one (gen, k) of the curve, one frame), and the
workers go to the sessions waiting for them, one worker per session at most. The next turn goes
to the waiting session that used the least heavy time lately (the seconds its turns lasted,
decayed with a half-life of ``USAGE_HALF_LIFE_S``, as a fair-share CPU scheduler counts), so a
session with a long request gets one turn, then every lighter waiting session gets one before
its next; among equals the order is round-robin. A 6-image imprint thus waits for at most one
turn of each other session, never for a whole 1,000-image request.

Sharing the turns is not sharing the CPU: a turn running beside another gets half of the cores
or less. So a turn starts beside another session's running turn only if its session did not use
much more heavy time (at most ``SHARE_RATIO`` times as much plus ``SHARE_FLOOR_S``): the short
turns of a light session (an imprint of a few images, a prediction) get the cores to themselves,
starting at once beside a heavy turn already running (which ends within one slice), while two
heavy sessions share the workers. A session counts as running for ``SHARE_GRACE_S`` after its
turn ends, so a heavy turn does not slip in between two turns of one light request (decoding,
then embedding, the fit, the evaluation), and a long heavy turn (the k-curve, the advice) steps
aside at its next ``pause`` while a light session's turn runs. A session alone is never held back: the policy only
orders turns that wait for one another.

Turns of one session keep their order. A thread that already holds a turn and asks again (a
prediction inside "Classify several") keeps it: turns do not nest. Small units of work (decoding
a thumbnail) share one turn (``Slices``) up to ``SLICE_S``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from .quotas import (
    HEAVY_WORKERS,
    SHARE_FLOOR_S,
    SHARE_GRACE_S,
    SHARE_RATIO,
    SLICE_S,
    USAGE_HALF_LIFE_S,
)


class FairScheduler:
    """``workers`` turns at a time, at most one per owner (session), handed to the waiting owner
    that used the least heavy time lately (round-robin among equals), FIFO within one owner.

    Parameters
    ----------
    workers : int, default=HEAVY_WORKERS
        Turns that may run at once (of different owners).
    half_life : float, default=USAGE_HALF_LIFE_S
        Seconds after which an owner's past heavy time counts half.
    share_ratio, share_floor : float, default=SHARE_RATIO, SHARE_FLOOR_S
        A turn starts beside a running turn of another owner only if its owner's heavy time is
        at most ``share_ratio`` times that owner's plus ``share_floor`` seconds: a heavy
        session's turn never runs beside a light session's.
    grace : float, default=SHARE_GRACE_S
        An owner whose turn ended less than ``grace`` seconds ago counts as running for that
        rule: the gap between two turns of one request (a light session's next turn follows
        within milliseconds) does not let a heavy turn in.
    """

    def __init__(
        self,
        workers: int = HEAVY_WORKERS,
        half_life: float = USAGE_HALF_LIFE_S,
        share_ratio: float = SHARE_RATIO,
        share_floor: float = SHARE_FLOOR_S,
        grace: float = SHARE_GRACE_S,
    ) -> None:
        self.workers = int(workers)
        self.half_life, self.share_ratio, self.share_floor = half_life, share_ratio, share_floor
        self.grace = grace
        self._cond = threading.Condition()
        self._waiting: OrderedDict[Hashable, deque[list[bool]]] = OrderedDict()
        self._busy = 0
        self._running: Counter = Counter()  # owner -> turns it holds (0 or 1)
        self._since: dict[Hashable, float] = {}  # owner -> when its running turn started
        # owner -> (seconds, as of when), and owner -> when its last turn ended (grace): kept
        # after the turns, so a session is held weakly (its past use must not keep a closed
        # session, its images and its folder alive)
        self._used = _OwnerTable()
        self._ended = _OwnerTable()
        self._local = threading.local()
        self.turns_given = 0  # for tests and benchmarks: how many turns were handed out
        self.recent: deque[int] = deque(maxlen=256)  # id() of the owners of the last turns

    def usage(self, owner: Hashable, now: float | None = None) -> float:
        """The owner's heavy time (seconds of turns, decayed), its running turn included."""
        now = time.monotonic() if now is None else now
        seconds, when = self._used.get(owner, (0.0, now))
        seconds *= 0.5 ** ((now - when) / self.half_life)
        if owner in self._since:
            seconds += now - self._since[owner]
        return seconds

    def _may_start(self, owner: Hashable, now: float) -> bool:
        """Whether a turn of ``owner`` may start beside the turns running now."""
        mine = self.usage(owner, now)
        for other in [o for o, end in self._ended.items() if now - end >= self.grace]:
            del self._ended[other]  # its grace is over
        others = (self._since.keys() | self._ended.keys()) - {owner}
        return all(
            mine <= self.share_ratio * self.usage(other, now) + self.share_floor for other in others
        )

    def _grant(self) -> None:
        """Hand free workers to the waiting owners, the least used first (with the lock held)."""
        now = time.monotonic()
        while self._busy < self.workers:
            ready = [o for o in self._waiting if not self._running[o]]
            if not ready:
                break
            # min() keeps the first of equals: the queue's order, round-robin (move_to_end)
            owner = min(ready, key=lambda o: self.usage(o, now))
            if not self._may_start(owner, now):
                break  # the others waiting used even more: none may start either
            tickets = self._waiting[owner]
            ticket = tickets.popleft()
            if tickets:
                self._waiting.move_to_end(owner)  # its next turn comes after the others'
            else:
                del self._waiting[owner]
            ticket[0] = True
            self._running[owner] += 1
            self._since[owner] = now
            self._busy += 1
            self.turns_given += 1
            self.recent.append(id(owner))
        self._cond.notify_all()

    def _stop(self, owner: Hashable) -> None:
        """The owner's running turn ends: its time joins its usage (with the lock held)."""
        now = time.monotonic()
        self._used[owner] = (self.usage(owner, now), now)
        del self._since[owner]
        if self.grace > 0:
            self._ended[owner] = now
        self._busy -= 1
        self._running[owner] -= 1
        if not self._running[owner]:
            del self._running[owner]
        if len(self._used) > 64:  # forget owners whose usage has decayed to nothing
            for o in [o for o in self._used if o not in self._since and o not in self._waiting]:
                if self.usage(o, now) < 0.01:
                    del self._used[o]

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
            self._wait(ticket)
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            self._release(owner)

    def _release(self, owner: Hashable) -> None:
        with self._cond:
            self._stop(owner)
            self._grant()

    def _wait(self, ticket: list[bool]) -> None:
        """Wait (lock held) until ``ticket`` is granted; a grace ending lets a turn start, so
        look again after one."""
        while not ticket[0]:
            if not self._cond.wait(self.grace or None) and not ticket[0]:
                self._grant()

    def waiting(self) -> int:
        """How many turns are waiting (all owners)."""
        with self._cond:
            return sum(len(t) for t in self._waiting.values())

    def pause(self, owner: Hashable) -> None:
        """Inside a turn of ``owner``: let every other waiting owner that used less have a turn
        first, and step aside while a much lighter owner's turn runs (the turn could not have
        started beside it), then go on (a long loop calls this between its steps). Does nothing
        when nobody else waits or runs."""
        if getattr(self._local, "depth", 0) != 1:
            return
        with self._cond:
            others_wait = any(not self._running[o] for o in self._waiting)
            if not others_wait and self._may_start(owner, time.monotonic()):
                return  # nobody, or only other turns of this owner, wait: they come after this
            ticket = [False]
            self._waiting.setdefault(owner, deque()).appendleft(ticket)
            self._waiting.move_to_end(owner)
            self._stop(owner)
            self._grant()
            self._wait(ticket)


class _OwnerTable:
    """``owner -> value``: a session (anything weakly referable) weakly, as a
    ``WeakKeyDictionary`` holds it; other hashables (a name) as a dict does."""

    def __init__(self) -> None:
        self._weak: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._strong: dict = {}

    def _table(self, owner: Hashable):
        try:
            weakref.ref(owner)
        except TypeError:
            return self._strong
        return self._weak

    def get(self, owner: Hashable, default=None):
        return self._table(owner).get(owner, default)

    def __setitem__(self, owner: Hashable, value) -> None:
        self._table(owner)[owner] = value

    def __delitem__(self, owner: Hashable) -> None:
        del self._table(owner)[owner]

    def __contains__(self, owner: Hashable) -> bool:
        return owner in self._table(owner)

    def __len__(self) -> int:
        return len(self._weak) + len(self._strong)

    def items(self) -> list:
        return [*self._weak.items(), *self._strong.items()]

    def keys(self) -> set:
        return {*self._weak.keys(), *self._strong.keys()}

    def __iter__(self) -> Iterator:
        return iter(self.keys())


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
