"""Thread control: small computations run BLAS/OpenMP single-threaded.

The geometry computations, the advice's fits and the session's imprinting are small; on a busy
2-core machine multi-threaded BLAS spins against other processes and was measured 5-100x slower
than one thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Heavy: scipy and threadpoolctl imported where used, so that importing this module stays cheap.

_LIMIT_LOCK = threading.RLock()  # threadpool limits are process-wide: one limiter at a time
# threadpoolctl finds the loaded BLAS/OpenMP libraries by scanning the process (about 7 ms, once
# per fit of the accuracy-vs-k curve); the scan is kept until a module is imported, which is
# when a new library may be loaded.
_CONTROLLER: tuple[int, object] | None = None


@contextmanager
def one_thread(wait: bool = True) -> Iterator[None]:
    """Run BLAS/OpenMP single-threaded (libraries loaded before entry are limited).

    The geometry computations are small; on a busy 2-core machine multi-threaded BLAS spins
    against other processes and was measured 5-100x slower than one thread.

    Parameters
    ----------
    wait : bool, default=True
        False: when another thread holds the limit (e.g. a long accuracy-vs-k curve), run at
        once instead of waiting for it: the limit is process-wide, so BLAS runs single-threaded
        meanwhile anyway (a short computation such as Try it's must not wait seconds).
    """
    import scipy.linalg  # noqa: F401  (load scipy's BLAS so that it is limited too)

    if not _LIMIT_LOCK.acquire(blocking=wait):
        yield
        return
    try:
        with _controller().limit(limits=1):
            yield
    finally:
        _LIMIT_LOCK.release()


def _controller():
    """The threadpoolctl controller of the libraries loaded now (rescanned after imports)."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    with _LIMIT_LOCK:
        if _CONTROLLER is None or _CONTROLLER[0] != len(sys.modules):
            controller = ThreadpoolController()
            _CONTROLLER = (len(sys.modules), controller)
        return _CONTROLLER[1]
