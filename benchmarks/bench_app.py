"""The app's three numbers: start-up, re-imprint + evaluation, peak memory.

    python benchmarks/bench_app.py [--repeats 21] [--starts 3] [--json benchmarks/results/app.json]

1. Start-up: ``python app.py`` as a subprocess until the first page is served (HTTP 200 on "/"),
   beside ``python -c "import gradio"`` (the floor any Gradio app pays), median of --starts runs.
2. Re-imprint + evaluation for 100 images: ``Project.imprint()`` from cached real embeddings
   (the "merged" example, 100 of its images) with the presets "ours" (k-means, exact
   leave-one-out) and "qi" (mean), beside fitting scikit-learn's LogisticRegression probe on the
   same embeddings once, and 5-fold cross-validated (the probe's equivalent of our estimate),
   each with the default BLAS threads and with one thread (what imprint_core uses for small fits).
   Variants run round-robin so that load from other processes hits them alike; medians.
3. Peak memory: the app server's peak RSS (VmHWM) after a client imprints the whole "merged"
   example (108 images) through /imprint.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return proc, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited before serving a page") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def startup(starts: int) -> dict:
    app_times, gradio_times = [], []
    for _ in range(starts):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gradio"], check=True)
        gradio_times.append(time.perf_counter() - t0)
        proc, seconds = start_app(free_port())
        stop(proc)
        app_times.append(seconds)
    return {
        "app_first_page_s": round(statistics.median(app_times), 2),
        "app_first_page_s_all": [round(t, 2) for t in app_times],
        "import_gradio_s": round(statistics.median(gradio_times), 2),
    }


def reimprint(repeats: int) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from imprint_core import session as pj
    from imprint_core.session import examples as ex

    backbone = pj.load_backbone(None)
    project = pj.Project(n_classes=0)
    ex.load_example(project, "merged")
    for entry in project.classes:  # 100 images: 34 + 33 + 33
        keep = 34 if entry is project.classes[0] else 33
        for _ in range(len(entry.images) - keep):
            project.remove_image(entry.uid, len(entry.images) - 1)
    assert project.n_images == 100
    project.embed(backbone)
    X, y, _ = project.dataset()

    def run_preset(name):
        def go():
            project.set_settings(name)
            return project.imprint()

        return go

    from imprint_core.threads import one_thread

    def one(fn):
        def go():
            with one_thread():
                return fn()

        return go

    def lr_fit():
        return LogisticRegression(max_iter=1000).fit(X, y)

    def lr_cv():
        return cross_val_score(LogisticRegression(max_iter=1000), X, y, cv=5)

    variants = {
        "imprint+eval ours (k-means, LOO)": run_preset("ours"),
        "imprint+eval qi (mean, LOO)": run_preset("qi"),
        "LogisticRegression fit": lr_fit,
        "LogisticRegression fit, 1 thread": one(lr_fit),
        "LogisticRegression 5-fold CV": lr_cv,
        "LogisticRegression 5-fold CV, 1 thread": one(lr_cv),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # warm-up: imports, first k-means call
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    project.set_settings("ours")
    s = project.imprint()
    out = {f"{k} median_s": round(v, 4) for k, v in med.items()}
    ours = med["imprint+eval ours (k-means, LOO)"]
    lr_fit_best = min(med["LogisticRegression fit"], med["LogisticRegression fit, 1 thread"])
    lr_cv_best = min(
        med["LogisticRegression 5-fold CV"], med["LogisticRegression 5-fold CV, 1 thread"]
    )
    out["ours_vs_best_lr_fit_ratio"] = round(ours / lr_fit_best, 3)
    out["ours_vs_best_lr_cv_ratio"] = round(ours / lr_cv_best, 3)
    out["ours_accuracy"] = s["accuracy"]["accuracy"]
    out["ours_method"] = s["accuracy"]["method"]
    out["lr_cv_accuracy"] = round(
        float(np.mean(cross_val_score(LogisticRegression(max_iter=1000), X, y, cv=5))), 4
    )
    out["repeats"] = repeats
    project.close()
    return out


def peak_memory() -> dict:
    from gradio_client import Client, handle_file

    from imprint_core.session import examples as ex

    port = free_port()
    proc, _ = start_app(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        files = ex.train_images("merged")
        t0 = time.perf_counter()
        summary = client.predict(
            files=[handle_file(str(p)) for _, p in files],
            labels=[c for c, _ in files],
            api_name="/imprint",
        )
        seconds = time.perf_counter() - t0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kb = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmHWM", "VmRSS"))
        }
    finally:
        stop(proc)
    return {
        "images": summary["images"],
        "imprint_request_s": round(seconds, 2),
        "peak_rss_mb": round(kb["VmHWM"] / 1024, 1),
        "rss_after_mb": round(kb["VmRSS"] / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "app.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    result = {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "startup": startup(args.starts),
        "reimprint_100_images": reimprint(args.repeats),
        "memory": peak_memory(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
