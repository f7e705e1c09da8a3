"""Cold and warm start of the app, as a fresh Space would see them.

    python benchmarks/bench_space.py [--python /tmp/venv/bin/python] [--starts 3]

1. First page: ``python app.py`` until ``/`` answers HTTP 200 on a free loopback port,
   - cold: no bytecode cache at all (``PYTHONPYCACHEPREFIX`` set to a new empty folder, so every
     module of gradio, scikit-learn, ... is compiled again: a pessimistic first boot) and an empty
     IMPRINT cache folder;
   - warm: the same interpreter again with the bytecode written by the cold run (median of
     ``--starts``), beside ``python -c "import gradio"`` (the floor any Gradio app pays).
2. First backbone: ``get_backbone()`` in a new process with an empty IMPRINT cache folder (the
   built-in model is exported to ONNX and checked) and again with the filled one: the wait before
   the first Imprint of a fresh Space.

Each figure comes with the load average: other processes share the 2 cores of this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_page(python: str, env: dict) -> float:
    """Seconds from starting ``python app.py`` to the first HTTP 200 on ``/``."""
    port = free_port()
    env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    log = tempfile.TemporaryFile()  # a pipe nobody reads could fill up and stall the app
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200:
                    return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"app.py exited: {tail}") from None
                time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the environment")
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = {
            **os.environ,
            "IMPRINT_CACHE_DIR": str(Path(tmp) / "imprint-cache"),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        pyc = {**base, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pyc")}
        report = {"python": args.python, "load_average_at_start": list(os.getloadavg())}
        report["first_page_cold_s"] = round(first_page(args.python, pyc), 2)
        warm = [first_page(args.python, pyc) for _ in range(args.starts)]
        floor = [timed([args.python, "-c", "import gradio"], pyc) for _ in range(args.starts)]
        report["first_page_warm_median_s"] = round(statistics.median(warm), 2)
        report["first_page_warm_all_s"] = [round(t, 2) for t in warm]
        report["import_gradio_median_s"] = round(statistics.median(floor), 2)
        load = [args.python, "-c", "import imprint_core as ic; ic.get_backbone()"]
        report["first_backbone_empty_cache_s"] = round(timed(load, pyc), 2)
        report["first_backbone_filled_cache_s"] = round(timed(load, pyc), 2)
        report["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
