"""Load on the real app, loopback only: concurrent clients, then many sequential sessions.

    python benchmarks/bench_load.py [--clients 8] [--sessions 100] [--json out.json]
        [--app-root OTHER_CHECKOUT]

Starts ``python app.py`` as a subprocess on a free loopback port, with its own temp folder
(TMPDIR and GRADIO_TEMP_DIR) so that the files it leaves can be counted. Then:

1. ``--clients`` gradio_client clients at once, each its own session: /imprint with 40
   Fashion-MNIST images in 4 classes (10 each, PNGs written to a temp folder, different images
   for each client) and 20 /predict calls one after another.
2. ``--sessions`` sessions one after another: a new client, /imprint of 40 images, one /predict,
   close.

Reports p50/p95 of /imprint and /predict (seconds, as the client sees them), errors, the server's
peak RSS (VmHWM and sampled VmRSS), its RSS before and after the sequential sessions (and the
growth per session), and the files left in its temp folder while it runs and after a clean stop
(SIGTERM). ``--app-root`` serves another checkout's app.py (an older commit's worktree: the
figures before a change). Only the /imprint and /predict endpoints are used. Bounded: the clients and sessions are
fixed; every call has a timeout. The machine running this may be shared: say so beside any figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLASSES = {0: "tshirt", 1: "trouser", 7: "sneaker", 8: "bag"}  # Fashion-MNIST label -> name
PER_CLASS = 10
PREDICTS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid: int, field: str) -> float:
    """A /proc/<pid>/status field in MB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_images(folder: Path, clients: int) -> tuple[list[list[tuple[Path, str]]], list[Path]]:
    """Per client: 40 (path, class) pairs; and the test images to predict."""
    from PIL import Image

    from imprint_core.bench.datasets import load_fashion_mnist

    X, y = load_fashion_mnist("train")
    Xt, _ = load_fashion_mnist("test")
    folder.mkdir(parents=True, exist_ok=True)
    rows = {label: iter(list(map(int, (y == label).nonzero()[0]))) for label in CLASSES}
    per_client = []
    for c in range(clients):
        pairs = []
        for label, name in CLASSES.items():
            for _ in range(PER_CLASS):
                i = next(rows[label])
                path = folder / f"c{c}-{name}-{i}.png"
                Image.fromarray(X[i]).save(path)
                pairs.append((path, name))
        per_client.append(pairs)
    tests = []
    for i in range(PREDICTS):
        path = folder / f"test-{i}.png"
        Image.fromarray(Xt[i]).save(path)
        tests.append(path)
    return per_client, tests


def start_app(port: int, tmp: Path, root: Path | None = None) -> subprocess.Popen:
    """``python app.py`` of ``root`` (this checkout by default) on ``port``, temp files in
    ``tmp``; returns once it serves its page."""
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "TMPDIR": str(tmp),
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=root or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp.parent / "app.log", "w"),  # noqa: SIM115 - lives as long as the server
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200:
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited before serving a page") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("app.py did not serve a page within 300 s")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {"imprint": [], "predict": []}
        self.errors: list[str] = []

    def call(self, what: str, fn):
        t = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:  # counted and reported, the run goes on
            with self.lock:
                self.errors.append(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        with self.lock:
            self.seconds[what].append(time.perf_counter() - t)
        return out


def session(url: str, pairs, tests, rec: Recorder, downloads: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))
    try:
        files = [handle_file(str(p)) for p, _ in pairs]
        labels = [name for _, name in pairs]
        summary = rec.call(
            "imprint",
            lambda: client.predict(files=files, labels=labels, api_name="/imprint"),
        )
        if summary is None:
            return
        for path in tests:
            rec.call(
                "predict",
                lambda p=path: client.predict(image=handle_file(str(p)), api_name="/predict"),
            )
    finally:
        client.close()


def files_under(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def files_by_folder(folder: Path) -> dict[str, int]:
    """Files left, by the top-level entry of ``folder`` they are under (which part left them)."""
    out: dict[str, int] = {}
    for p in folder.rglob("*"):
        if p.is_file():
            top = p.relative_to(folder).parts[0]
            key = top.split("-")[0] + "-*" if top.startswith(("imprint-", "tmp")) else top
            out[key] = out.get(key, 0) + 1
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return (
        round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)
        if len(values) > 1
        else round(values[0], 2)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--app-root", type=Path, default=None, help="serve this checkout's app")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server_tmp = work / "server-tmp"
    server_tmp.mkdir()
    per_client, tests = write_images(work / "images", args.clients)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(port, server_tmp, args.app_root)
    pid = proc.pid
    peak_sampled = [status(pid, "VmRSS")]
    start_rss = peak_sampled[0]
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            peak_sampled.append(status(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result: dict = {
        "app_root": str(args.app_root or "this checkout"),
        "clients": args.clients,
        "sessions": args.sessions,
        "rss_start_mb": start_rss,
    }
    try:
        rec = Recorder()
        t = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            jobs = [
                pool.submit(session, url, pairs, tests, rec, work / f"dl{c}")
                for c, pairs in enumerate(per_client)
            ]
            for job in jobs:
                job.result()
        result["concurrent"] = {
            "wall_s": round(time.perf_counter() - t, 1),
            "imprint_p50_s": pct(rec.seconds["imprint"], 50),
            "imprint_p95_s": pct(rec.seconds["imprint"], 95),
            "predict_p50_s": pct(rec.seconds["predict"], 50),
            "predict_p95_s": pct(rec.seconds["predict"], 95),
            "calls": {k: len(v) for k, v in rec.seconds.items()},
            "errors": len(rec.errors),
            "error_samples": rec.errors[:5],
        }
        result["rss_after_concurrent_mb"] = status(pid, "VmRSS")

        seq = Recorder()
        before = status(pid, "VmRSS")
        t = time.perf_counter()
        for s in range(args.sessions):
            session(url, per_client[s % len(per_client)], tests[:1], seq, work / "dl-seq")
        after = status(pid, "VmRSS")
        result["sequential"] = {
            "wall_s": round(time.perf_counter() - t, 1),
            "imprint_p50_s": pct(seq.seconds["imprint"], 50),
            "imprint_p95_s": pct(seq.seconds["imprint"], 95),
            "predict_p50_s": pct(seq.seconds["predict"], 50),
            "predict_p95_s": pct(seq.seconds["predict"], 95),
            "errors": len(seq.errors),
            "error_samples": seq.errors[:5],
            "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1),
            "rss_per_session_mb": round((after - before) / max(args.sessions, 1), 2),
        }
        result["peak_rss_mb"] = round(max(status(pid, "VmHWM"), *peak_sampled), 1)
        result["files_left_running"] = files_under(server_tmp)
        result["files_left_running_by_folder"] = files_by_folder(server_tmp)
    finally:
        stop_sampling.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result["files_left_after_stop"] = files_under(server_tmp)
    result["files_left_after_stop_by_folder"] = files_by_folder(server_tmp)
    shutil.rmtree(work, ignore_errors=True)
    result["cpu_count"] = os.cpu_count()
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
