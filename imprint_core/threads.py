"""Thread control: small computations run BLAS/OpenMP single-threaded.

The geometry computations, the advice's fits and the session's imprinting are small; on a busy
2-core machine multi-threaded BLAS spins against other processes and was measured 5-100x slower
than one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Heavy: scipy and threadpoolctl imported where used, so that importing this module stays cheap.

_LIMIT_LOCK = threading.RLock()  # threadpool limits are process-wide: one limiter at a time


@contextmanager
def one_thread() -> Iterator[None]:
    """Run BLAS/OpenMP single-threaded (libraries loaded before entry are limited).

    The geometry computations are small; on a busy 2-core machine multi-threaded BLAS spins
    against other processes and was measured 5-100x slower than one thread.
    """
    import scipy.linalg  # noqa: F401  (load scipy's BLAS so that it is limited too)
    from threadpoolctl import threadpool_limits

    with _LIMIT_LOCK, threadpool_limits(limits=1):
        yield
