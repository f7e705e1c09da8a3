"""Issue 21, rows 3 to 6: one fair queue for heavy work. A long request of one session (embedding
many images, augmentation, the accuracy-vs-k curve, Open project's re-embedding) runs in turns,
and another session's imprint gets its turns in between instead of after the whole request.

No timings: the order in which the scheduler handed out its turns is the evidence (the times
under attack are measured by benchmarks/bench_starve.py, docs/app.md)."""

from __future__ import annotations

import threading

import pytest

from imprint_core.session import SCHEDULER, Project, open_project, save_project
from imprint_core.session.scheduler import FairScheduler


def test_turns_go_round_robin_across_owners_that_used_alike():
    scheduler = FairScheduler(workers=1, half_life=1e-9)  # past turns forgotten at once
    order: list[str] = []
    release = threading.Event()

    def work(owner: str, hold: bool = False) -> None:
        with scheduler.turn(owner):
            order.append(owner)
            if hold:
                release.wait()

    first = threading.Thread(target=work, args=("a", True))
    first.start()
    while not order:
        release.wait(0.01)
    threads = [threading.Thread(target=work, args=("a",)) for _ in range(3)]
    for t in threads:  # three more turns of "a" queue before one of "b"
        t.start()
        while scheduler.waiting() < threads.index(t) + 1:
            release.wait(0.01)
    late = threading.Thread(target=work, args=("b",))
    late.start()
    while scheduler.waiting() < 4:
        release.wait(0.01)
    release.set()
    for t in [first, *threads, late]:
        t.join()
    assert order == ["a", "a", "b", "a", "a"]  # "b" waits for one turn of "a", not for all


def test_one_worker_per_owner_and_small_units_share_a_turn():
    from imprint_core.session.scheduler import Slices

    scheduler = FairScheduler(workers=2)
    held, go = threading.Event(), threading.Event()

    def long_turn() -> None:
        with scheduler.turn("a"):
            held.set()
            go.wait()

    t = threading.Thread(target=long_turn)
    t.start()
    held.wait()
    second = threading.Thread(target=lambda: scheduler.turn("a").__enter__())
    second.start()
    while not scheduler.waiting():  # "a" waits although a worker is free...
        go.wait(0.01)
    with scheduler.turn("b"):  # ...which "b" gets at once
        pass
    go.set()
    t.join()
    second.join()
    given = scheduler.turns_given
    with Slices("c", seconds=60, scheduler=scheduler) as slices:
        for _ in range(5):
            with slices.unit():
                pass
    assert scheduler.turns_given == given + 1
    with Slices("c", seconds=0, scheduler=scheduler) as slices:
        for _ in range(3):
            with slices.unit():
                pass
    assert scheduler.turns_given == given + 4


def test_turns_do_not_nest_and_pause_lets_others_go_first():
    scheduler = FairScheduler(workers=1)
    order: list[str] = []
    started = threading.Event()

    def other() -> None:
        with scheduler.turn("b"):
            order.append("b")

    with scheduler.turn("a"):
        with scheduler.turn("a"):  # the same thread: no second wait (it would deadlock)
            order.append("a")
        scheduler.pause("a")  # nobody waits: goes on at once
        t = threading.Thread(target=lambda: (started.set(), other()))
        t.start()
        started.wait()
        while not scheduler.waiting():
            started.wait(0.01)
        scheduler.pause("a")  # "b" waits: it goes first
        order.append("a")
    t.join()
    assert order == ["a", "b", "a"]


def _hold(scheduler: FairScheduler, owner: str, seconds: float) -> None:
    """``owner`` holds a turn for ``seconds``: heavy time it used."""
    with scheduler.turn(owner):
        threading.Event().wait(seconds)


def _queue(scheduler: FairScheduler, owner: str, order: list[str]) -> threading.Thread:
    """A thread whose turn of ``owner`` appends to ``order``; returns once the turn waits (or
    was done at once)."""
    waiting = scheduler.waiting()
    thread = threading.Thread(target=lambda: _hold(scheduler, owner, 0) or order.append(owner))
    thread.start()
    while scheduler.waiting() < waiting + 1 and thread.is_alive():
        threading.Event().wait(0.005)
    return thread


def test_a_light_owners_turns_go_before_a_heavy_owners_next_turn():
    """Round-robin would alternate (h, l, h, l): the owner that used less goes first."""
    scheduler = FairScheduler(workers=1)
    order: list[str] = []
    release, held = threading.Event(), threading.Event()

    def heavy_turn() -> None:
        with scheduler.turn("h"):
            held.set()
            release.wait()
            threading.Event().wait(0.3)  # "h" has used 0.3 s of heavy time at least
            order.append("h")

    first = threading.Thread(target=heavy_turn)
    first.start()
    held.wait()
    threads = [_queue(scheduler, "h", order) for _ in range(2)]
    threads += [_queue(scheduler, "l", order) for _ in range(2)]
    release.set()
    for t in [first, *threads]:
        t.join()
    assert order == ["h", "l", "l", "h", "h"]
    assert scheduler.usage("h") > scheduler.usage("l")


def test_a_heavy_owners_turn_does_not_start_beside_a_light_owners():
    scheduler = FairScheduler(workers=2, share_ratio=1.0, share_floor=0.05)
    _hold(scheduler, "h", 0.3)  # "h" used 0.3 s, "l" nothing: more than 1 x 0 s + 0.05 s
    order: list[str] = []
    with scheduler.turn("l"):  # a light owner's turn runs...
        heavy = _queue(scheduler, "h", order)  # ...and "h" waits although a worker is free
        order.append("l")
    heavy.join()
    assert order == ["l", "h"]
    done = threading.Event()
    with scheduler.turn("h"):  # the other way round: "l" starts at once beside "h"
        light = threading.Thread(target=lambda: _hold(scheduler, "l", 0) or done.set())
        light.start()
        assert done.wait(30), "the light owner's turn did not start beside the heavy one's"
    light.join()


def test_a_heavy_turn_does_not_slip_in_between_two_turns_of_a_light_owner():
    """The gap between two turns of one request (a few ms) is not a free worker for a heavy
    owner: it waits out the light owner's grace."""
    scheduler = FairScheduler(workers=2, share_ratio=1.0, share_floor=0.05, grace=2.0)
    _hold(scheduler, "h", 0.3)
    order: list[str] = []
    with scheduler.turn("l"):
        order.append("l")
    heavy = _queue(scheduler, "h", order)  # within the grace: waits although nothing runs
    with scheduler.turn("l"):  # the light owner's next turn starts at once
        order.append("l")
    heavy.join()  # granted once the grace is over
    assert order == ["l", "l", "h"]


def test_a_long_heavy_turn_steps_aside_at_its_pause_while_a_light_turn_runs():
    scheduler = FairScheduler(workers=2, share_ratio=1.0, share_floor=0.05, grace=0.01)
    _hold(scheduler, "h", 0.3)
    order: list[str] = []
    light_in, light_go = threading.Event(), threading.Event()

    def light() -> None:
        with scheduler.turn("l"):
            light_in.set()
            light_go.wait()
            order.append("l")

    def release_light() -> None:  # once "h" has stepped aside (or went on)
        while scheduler.waiting() < 1 and "h" not in order:
            light_go.wait(0.005)
        light_go.set()

    with scheduler.turn("h"):
        threads = [threading.Thread(target=light), threading.Thread(target=release_light)]
        threads[0].start()  # starts at once beside "h"
        light_in.wait()
        threads[1].start()
        scheduler.pause("h")  # a step of a long loop: waits until the light turn is over
        order.append("h")
    for t in threads:
        t.join()
    assert order == ["l", "h"]


def test_past_turns_do_not_keep_a_session_alive():
    """The usage and grace the scheduler keeps after a turn hold a session weakly: a closed
    session (its images, its folder) is freed although its use has not decayed yet."""
    import gc
    import weakref

    class Session:  # any weakly referable owner, as a Project is
        pass

    scheduler = FairScheduler(workers=1, half_life=3600.0, grace=3600.0)
    owner = Session()
    with scheduler.turn(owner):
        pass
    assert scheduler.usage(owner) >= 0.0
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None
    with scheduler.turn("a name"):  # names (not weakly referable) are kept as they are
        pass
    assert scheduler.usage("a name") >= 0.0


def test_a_lone_heavy_owner_is_never_held_back():
    """Heavy time only orders turns that wait for one another: alone, each turn starts at once
    and pause() returns at once, however much the owner used."""
    scheduler = FairScheduler(workers=2)
    for _ in range(3):
        _hold(scheduler, "h", 0.1)
    assert scheduler.usage("h") >= 0.2
    for _ in range(20):
        with scheduler.turn("h"):
            assert scheduler.waiting() == 0
            scheduler.pause("h")
    # a second heavy owner that used as much shares the two workers with it
    _hold(scheduler, "g", 0.3)
    done = threading.Event()
    with scheduler.turn("h"):
        other = threading.Thread(target=lambda: _hold(scheduler, "g", 0) or done.set())
        other.start()
        assert done.wait(30), "two alike heavy owners did not run side by side"
    other.join()


def _grab_worker():
    """Hold the process scheduler's worker from another thread until released, so that the
    work started meanwhile queues in a known order."""
    go, held = threading.Event(), threading.Event()

    def hold() -> None:
        with SCHEDULER.turn("test"):
            held.set()
            go.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    return go, thread


def _victim_vs(attack, victim_project, backbone) -> list[int]:
    """Run ``attack()`` and the victim's imprint concurrently, the attack queued first; returns
    the owners' ids in turn order (from the attack's first turn). One worker (the ``one_worker``
    fixture): the case where other sessions hold every worker."""
    go, holder = _grab_worker()
    given = SCHEDULER.turns_given
    before = SCHEDULER.waiting()
    attacker = threading.Thread(target=attack)
    attacker.start()
    while SCHEDULER.waiting() < before + 1:
        go.wait(0.01)
    victim = threading.Thread(target=victim_project.train, args=(backbone,))
    victim.start()
    while SCHEDULER.waiting() < before + 2:
        go.wait(0.01)
    go.set()
    for t in (holder, attacker, victim):
        t.join()
    return list(SCHEDULER.recent)[given - SCHEDULER.turns_given :]


def _images(fashion, n):
    train, _ = fashion
    return {cls: paths[:n] for cls, paths in train.items()}


def _project(classes, tmp_path, name) -> Project:
    p = Project(workdir=tmp_path / name, n_classes=0)
    for cls, paths in classes.items():
        p.add_images(p.add_class(cls).uid, paths)
    return p


@pytest.fixture(autouse=True)
def one_worker(monkeypatch):
    monkeypatch.setattr(SCHEDULER, "workers", 1)


@pytest.fixture
def victim(fashion, tmp_path):
    p = _project(_images(fashion, 2), tmp_path, "victim")  # 6 images, one embedding turn
    yield p
    p.close()


def _assert_interleaved(order: list[int], attacker, victim) -> None:
    mine = [i for i, owner in enumerate(order) if owner == id(victim)]
    theirs = [i for i, owner in enumerate(order) if owner == id(attacker)]
    assert len(mine) == 3  # embed 6 images, fit, evaluate
    # the victim's last turn comes before the attacker's last one: it did not wait for the
    # whole request although queued after it (first come, first served would have put all of
    # its turns after it); it may even go first, having used less heavy time
    assert theirs and mine[-1] < theirs[-1], order


def test_an_imprint_of_many_images_lets_another_session_in(fashion, victim, backbone, tmp_path):
    attacker = _project(_images(fashion, 10), tmp_path, "attacker")  # 30 images: 4 turns
    order = _victim_vs(lambda: attacker.train(backbone), victim, backbone)
    _assert_interleaved(order, attacker, victim)
    attacker.close()


def test_augmentation_lets_another_session_in(fashion, victim, backbone, tmp_path):
    from imprint_core.session import apply_augment

    attacker = _project(_images(fashion, 3), tmp_path, "attacker")
    attacker.train(backbone)  # embedded: the augmentation's views are the attack
    order = _victim_vs(lambda: apply_augment(attacker, None, True), victim, backbone)
    _assert_interleaved(order, attacker, victim)
    attacker.close()


def test_the_k_curve_lets_another_session_in(trained, victim, backbone):
    order = _victim_vs(lambda: trained.k_curve(), victim, backbone)
    _assert_interleaved(order, trained, victim)


def test_an_imprint_does_not_wait_for_another_threads_blas_limit(victim, backbone):
    """The k-curve holds the process-wide one-thread limit for each of its steps (seconds on
    1,000 images); another session's fit and evaluation run meanwhile instead of waiting."""
    from imprint_core.threads import one_thread

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with one_thread():
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    imprinting = threading.Thread(target=victim.train, args=(backbone,))
    imprinting.start()
    imprinting.join(timeout=120)
    finished = not imprinting.is_alive()
    release.set()
    holder.join()
    imprinting.join()
    assert finished and victim.head_source == "imprinted"


def test_open_project_embeds_in_turns(fashion, backbone, tmp_path):
    p = _project(_images(fashion, 6), tmp_path, "saved")
    p.train(backbone)
    path = save_project(p, tmp_path / "p.zip")
    given = SCHEDULER.turns_given
    opened = open_project(path, workdir=tmp_path / "opened", backbone=backbone)
    # 18 images decoded (in at least one turn), embedded (3 turns), fitted and evaluated (2)
    assert opened.head_source == "imprinted" and SCHEDULER.turns_given - given >= 1 + 3 + 2
    opened.close()
    p.close()
