"""`imprint predict` against `imprint embed` on the same image files, in the same run.

    python benchmarks/bench_predict_files.py [--images 10000] [--small 1000] [--speed 2000]
                                             [--repeats 3] [--batch-size 32]

Images: Fashion-MNIST training images written as PNG files (28 x 28, real images, small so that the
run is about the model, not the disk). The head: the default preset imprinted on 20 test images per
class (all ten classes).

1. Throughput: ``--speed`` images, both commands run round-robin ``--repeats`` times (alternating
   which goes first), each in a fresh process that loads the backbone and imports scikit-learn
   first (start-up is not timed; both commands take the same loaded model; the start-up each was
   spared is reported). Reported: median images/s (wall) and CPU milliseconds per image (all the
   process's threads: what other load on a shared machine disturbs least) of each, and the medians
   of the per-round ratios predict / embed (goal: within 10 %).
2. Memory: each command on ``--small`` and on ``--images`` images in fresh processes; the peak RSS
   (VmHWM) of each and its growth from the small to the large pile (goal for predict: < 50 MB;
   ``embed`` keeps every embedding and the embedding cache, so it grows by design). During the
   large predict run the child's RSS is also sampled against the rows its CSV holds: the RSS after
   ``--small`` rows and at the end of the same run.

Prints a table, writes benchmarks/results/predict-files.json with the machine's CPU and load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A child: load the backbone and import scikit-learn (the head's library) untimed, run one command
# (timed), report its time, the start-up it was spared, and its peak memory.
CHILD = """
import json, sys, time
t = time.perf_counter()
import imprint_core as ic
import imprint_core.classifier
from imprint_core.cli import main
ic.get_backbone()
startup = time.perf_counter() - t
t, cpu = time.perf_counter(), time.process_time()
code = main(sys.argv[1:])
seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
mb = lambda k: int(status[k].split()[0]) / 1024
print(json.dumps({"code": code, "seconds": seconds, "cpu_s": cpu, "startup_s": startup,
                  "peak_mb": mb("VmHWM"), "rss_mb": mb("VmRSS")}))
"""


def child(argv: list[str], watch: Path | None = None, attempts: int = 3) -> dict:
    """Run ``CHILD``; with ``watch`` (the CSV being written) also sample the child's RSS against
    the rows it has written, every 0.2 s. A child ended by a signal from outside (a shared
    machine) is run again, up to ``attempts`` times, and the result says how many it took."""
    for attempt in range(1, attempts + 1):
        result = _child(argv, watch)
        if result is not None:
            return result | {"attempts": attempt}
        print(f"  (a child was ended by a signal; running it again: {' '.join(argv[:2])})")
    raise RuntimeError(f"{argv[:2]} was ended by a signal {attempts} times")


def _child(argv: list[str], watch: Path | None) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", CHILD, *argv]
    if watch is not None:
        watch.unlink(missing_ok=True)  # count only the rows of this run
    log = tempfile.TemporaryFile()  # the progress bar: a pipe left unread would fill and block
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=ROOT)
    samples = []
    while watch is not None and proc.poll() is None:
        try:
            rows = watch.read_bytes().count(b"\n") - 1
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            rows, status = -1, ""
        rss = [ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")]
        if rows > 0 and rss:
            samples.append((rows, int(rss[0]) / 1024))
        time.sleep(0.2)
    out, _ = proc.communicate()
    if proc.returncode < 0:
        return None
    if proc.returncode != 0:
        log.seek(0)
        raise RuntimeError(log.read().decode()[-2000:])
    result = json.loads(out.decode().strip().splitlines()[-1])
    if watch is not None:
        result["rss_by_rows"] = samples
    return result


def rss_at(samples: list[tuple[int, float]], rows: int) -> float:
    """The child's RSS (MB) at the first sample with at least ``rows`` rows written."""
    return next(mb for n, mb in samples if n >= rows)


def write_pngs(folder: Path, count: int) -> Path:
    from PIL import Image

    from imprint_core.bench.datasets import load_fashion_mnist

    X, _ = load_fashion_mnist("train")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(X[i]).save(buf, "PNG")
        (folder / f"{i:05d}.png").write_bytes(buf.getvalue())
    return folder


def link_subset(source: Path, folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        os.link(source / f"{i:05d}.png", folder / f"{i:05d}.png")
    return folder


def fit_head(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    import imprint_core as ic
    from imprint_core.bench.datasets import load_fashion_mnist

    X, y = load_fashion_mnist("test")
    rows = np.concatenate([np.flatnonzero(y == c)[:20] for c in range(10)])
    Z = ic.get_backbone().embed([Image.fromarray(x) for x in X[rows]], cache=False)
    ic.ImprintClassifier.from_preset("ours").fit(Z, y[rows]).save(
        path, backbone="efficientnet_lite0"
    )
    return path


def commands(head: Path, folder: Path, work: Path, batch: int) -> dict[str, list[str]]:
    return {
        "embed": ["embed", str(folder), "-o", str(work / "e.npz"), "--batch-size", str(batch)],
        "predict": ["predict", str(head), str(folder), "-o", str(work / "p.csv"), "--overwrite"]
        + ["--batch-size", str(batch)],
    }


def machine() -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        "unknown",
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "load": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--speed", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/predict-files.json"))
    args = ap.parse_args()
    # the output by its file name only: no machine path in the results
    result: dict = {"before": machine(), "args": {**vars(args), "out": Path(args.out).name}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = write_pngs(tmp / "big", args.images)
        small = link_subset(big, tmp / "small", args.small)
        speed = link_subset(big, tmp / "speed", args.speed)
        head = fit_head(tmp / "head.safetensors")
        times: dict[str, list[float]] = {"embed": [], "predict": []}
        cpu_ms: dict[str, list[float]] = {"embed": [], "predict": []}
        startup: list[float] = []
        for r in range(args.repeats):
            pairs = list(commands(head, speed, tmp, args.batch_size).items())
            for name, argv in pairs if r % 2 == 0 else pairs[::-1]:  # alternate who goes first
                run = child(argv)
                times[name].append(args.speed / run["seconds"])
                cpu_ms[name].append(1000 * run["cpu_s"] / args.speed)
                startup.append(run["startup_s"])
                print(
                    f"round {r + 1} {name}: {times[name][-1]:.1f} img/s, "
                    f"{cpu_ms[name][-1]:.1f} CPU ms/img",
                    flush=True,
                )
        ratios = [p / e for p, e in zip(times["predict"], times["embed"], strict=True)]
        cpu_ratios = [p / e for p, e in zip(cpu_ms["predict"], cpu_ms["embed"], strict=True)]
        result["throughput"] = {
            "images": args.speed,
            "img_per_s": times,
            "cpu_ms_per_img": cpu_ms,
            "median_img_per_s": {k: statistics.median(v) for k, v in times.items()},
            "median_cpu_ms_per_img": {k: statistics.median(v) for k, v in cpu_ms.items()},
            "median_ratio_predict_to_embed": statistics.median(ratios),
            "median_cpu_ratio_predict_to_embed": statistics.median(cpu_ratios),
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "median_startup_s": statistics.median(startup),
        }
        memory: dict[str, dict] = {}
        for name in ("predict", "embed"):
            for label, folder in (("small", small), ("large", big)):
                watch = tmp / "p.csv" if name == "predict" and label == "large" else None
                argv = commands(head, folder, tmp, args.batch_size)[name]
                memory.setdefault(name, {})[label] = child(argv, watch)
                print(f"{name} {label}: peak {memory[name][label]['peak_mb']:.0f} MB", flush=True)
            memory[name]["peak_growth_mb"] = (
                memory[name]["large"]["peak_mb"] - memory[name]["small"]["peak_mb"]
            )
        samples = memory["predict"]["large"]["rss_by_rows"]
        memory["predict"]["in_run_rss_mb"] = {
            "at_small": rss_at(samples, args.small),
            "at_last_sample": samples[-1][1],
            "last_sample_rows": samples[-1][0],
        }
        result["memory"] = {"small": args.small, "large": args.images, **memory}
    result["after"] = machine()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    t = result["throughput"]
    print(f"\nCPU: {result['before']['cpu']} ({result['before']['cores']} cores)")
    print(f"load average before {result['before']['load']}, after {result['after']['load']}")
    print(f"start-up not timed (imports + model load): median {t['median_startup_s']:.1f} s")
    print(f"| {args.speed} images | embed | predict | predict / embed |")
    e, p = t["median_img_per_s"]["embed"], t["median_img_per_s"]["predict"]
    print(
        f"| img/s (median of {args.repeats}) | {e:.1f} | {p:.1f} | "
        f"{t['median_ratio_predict_to_embed']:.3f} |"
    )
    e, p = t["median_cpu_ms_per_img"]["embed"], t["median_cpu_ms_per_img"]["predict"]
    print(
        f"| CPU ms per image | {e:.1f} | {p:.1f} | {t['median_cpu_ratio_predict_to_embed']:.3f} |"
    )
    run = result["memory"]["predict"]["in_run_rss_mb"]
    print(
        f"predict, one run: RSS {run['at_small']:.0f} MB after {args.small} rows, "
        f"{run['at_last_sample']:.0f} MB after {run['last_sample_rows']} rows"
    )
    for name in ("predict", "embed"):
        m = result["memory"][name]
        print(
            f"{name}: peak RSS {m['small']['peak_mb']:.0f} MB at {args.small} images, "
            f"{m['large']['peak_mb']:.0f} MB at {args.images}: +{m['peak_growth_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
