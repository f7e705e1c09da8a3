"""one_thread (threads.py): BLAS/OpenMP limited to one thread inside, restored after, also when
the scan of the loaded libraries is kept between calls; a short computation never waits for a
long one."""

from __future__ import annotations

import sys
import threading
import types

from threadpoolctl import threadpool_info

from imprint_core import threads
from imprint_core.threads import one_thread


def _threads() -> dict[str, int]:
    return {f"{i['internal_api']}:{i['filepath']}": i["num_threads"] for i in threadpool_info()}


def test_one_thread_limits_every_library_and_restores_them():
    import scipy.linalg  # noqa: F401 - a BLAS to limit

    before = _threads()
    assert before
    for _ in range(3):  # the kept scan limits as the first one did
        with one_thread():
            assert set(_threads().values()) == {1}
        assert _threads() == before


def test_the_scan_is_made_again_after_an_import():
    with one_thread():
        pass
    kept = threads._CONTROLLER
    with one_thread():
        pass
    assert threads._CONTROLLER is kept  # nothing imported meanwhile: the same scan
    sys.modules["_imprint_test_module"] = types.ModuleType("_imprint_test_module")
    try:
        with one_thread():
            assert set(_threads().values()) == {1}
        assert threads._CONTROLLER is not kept
    finally:
        del sys.modules["_imprint_test_module"]


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_a_short_computation_does_not_wait_for_a_long_one_and_runs_single_threaded():
    holding, release = threading.Event(), threading.Event()

    def long_computation():
        with one_thread():
            holding.set()
            release.wait(30)

    other = threading.Thread(target=long_computation)
    other.start()
    try:
        assert holding.wait(30)
        with one_thread(wait=False):  # it would wait for the other to finish (30 s)
            assert other.is_alive()  # entered while the other still holds the limit
            assert _blas_threads() == {1}  # whose process-wide limit holds meanwhile
    finally:
        release.set()
        other.join(30)
    with one_thread(wait=False):  # nobody holds it: it limits BLAS itself
        assert _blas_threads() == {1}
