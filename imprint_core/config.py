"""The one place that reads environment variables.

Every other module asks these functions; tests and deployments set the variables (a Space sets
``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``; ``HF_HUB_OFFLINE=1`` keeps hub models offline).

=======================  ====================================================================
variable                 meaning
=======================  ====================================================================
IMPRINT_CACHE_DIR        derived files (exported ONNX backbone, embeddings of benchmarks)
XDG_CACHE_HOME           the cache's parent when IMPRINT_CACHE_DIR is unset (~/.cache)
IMPRINT_CACHE_MB         size of the in-memory embedding cache of the backbones
IMPRINT_DEVICE           torch device for backbones (cpu, cuda, cuda:N)
IMPRINT_RUNTIME          backbone runtime (see ``imprint_core.backbones.RUNTIMES``)
IMPRINT_PRECISION        fp32 (default) or auto (int8 where the CPU has VNNI and the guard passes)
IMPRINT_ASSETS           folder of the example projects (default: the repository's assets/)
IMPRINT_SESSION_DISK_MB  disk one session may hold: stored images and downloads (default 2048)
IMPRINT_UPLOAD_CACHE_MB  disk Gradio's upload cache may hold before uploads are refused (2048)
HF_HUB_OFFLINE           1/true: never try to download hub models
GRADIO_SERVER_NAME       the app's host (default 127.0.0.1)
GRADIO_SERVER_PORT       the app's port (default: Gradio's, 7860)
=======================  ====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = ("1", "true", "yes", "on")


def env(name: str, default: str | None = None) -> str | None:
    """The variable's value with surrounding blanks removed; ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_flag(name: str) -> bool:
    """Whether a yes/no variable is set to yes (1, true, yes, on; any case)."""
    return (env(name) or "").lower() in _TRUE


def cache_dir() -> Path:
    """Where IMPRINT keeps derived files: ``IMPRINT_CACHE_DIR`` or ``$XDG_CACHE_HOME/imprint``."""
    base = env("IMPRINT_CACHE_DIR")
    if base:
        return Path(base)
    return Path(env("XDG_CACHE_HOME") or Path.home() / ".cache") / "imprint"


PRECISIONS = ("auto", "fp32")


def precision_setting() -> str:
    """``IMPRINT_PRECISION``: "fp32" (the default: never reduced) or "auto" (a reduced precision
    where the CPU and the fidelity guard of ``imprint_core.backbones.precision`` allow it).

    fp32 is the default because the faithful int8 recipe is 1.45-1.69x the fp32 forward here, short
    of the 1.8x that would pay for its first-load cost (building and guarding it took 86 s on a
    2-core machine, once per machine) and for embeddings that differ from the ONNX export's."""
    value = (env("IMPRINT_PRECISION") or "fp32").lower()
    if value not in PRECISIONS:
        raise ValueError(
            f"IMPRINT_PRECISION must be one of {', '.join(PRECISIONS)}, not {value!r}."
        )
    return value


def assets_dir() -> Path:
    """The folder holding ``examples/`` (``IMPRINT_ASSETS`` or the repository's ``assets``)."""
    return Path(env("IMPRINT_ASSETS") or Path(__file__).resolve().parent.parent / "assets")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: hub models must not be downloaded."""
    return env_flag("HF_HUB_OFFLINE")


def gradio_temp_dir() -> Path:
    """Where Gradio caches uploads: ``GRADIO_TEMP_DIR`` or ``<temp folder>/gradio``."""
    import tempfile

    return Path(env("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def megabytes(name: str, default: float) -> float:
    """A size in MB from the variable ``name`` (``default`` when unset): a positive number."""
    value = env(name)
    if value is None:
        return float(default)
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ValueError(f"{name} must be a positive number of megabytes, not {value!r}.")
    return number


def session_disk_mb() -> float:
    """``IMPRINT_SESSION_DISK_MB``: the disk one session may hold on the server (its stored image
    files, those of the projects Undo keeps, and its downloads); 2,048 MB by default. Photos are
    stored as sent (a phone's JPEG is 3-4 MB) and a saved zip holds them again, so this is about
    280 phone photos with their saved project, or 1,000 photos of 1 MB without one."""
    return megabytes("IMPRINT_SESSION_DISK_MB", 2048)


def upload_cache_mb() -> float:
    """``IMPRINT_UPLOAD_CACHE_MB``: the disk Gradio's upload cache (``gradio_temp_dir``) may
    hold; past it, anonymous uploads first make room by deleting the oldest cached files and are
    refused when that does not suffice. 2,048 MB by default (20 uploads of the 100 MB maximum)."""
    return megabytes("IMPRINT_UPLOAD_CACHE_MB", 2048)
