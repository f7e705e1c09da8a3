"""Files the backbones derive and cache (exported and quantised models, verdicts): atomic writes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

_STALE_TMP_S = 3600.0  # a half-written export older than this belongs to a dead process


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that no reader ever sees half a file (temp file + rename);
    sweeps temp files that a killed process left behind."""
    import time

    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob(f"{target.stem}.*.tmp"):
        try:
            if time.time() - old.stat().st_mtime > _STALE_TMP_S:
                old.unlink()
        except OSError:
            pass  # another process swept it first
    tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
