"""Throughput of the built-in backbone (EfficientNet-Lite0) on the CPU, beside a plain eager timm
forward of the same model, in the same run.

    python benchmarks/bench_embed.py [--threads 2] [--repeats 9] [--compile] [--no-memory]

Forward variants run round-robin on the same preprocessed batch (32 x 3 x 224 x 224), so that load
from other processes hits them alike; we report the median images/s of each, the median of the
per-round ratios to eager, and the smallest cosine similarity of its embeddings to the eager ones.
Then the end-to-end ``Backbone.embed`` (JPEG bytes -> decode -> preprocess -> forward, cache off)
beside the same pipeline with the eager forward. Peak memory (max RSS) is measured per variant in a
fresh subprocess that loads the model and embeds a few batches.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

BATCH = 32


def _variants(use_compile: bool) -> dict:
    """name -> (setup() -> forward(x) -> np.ndarray)."""
    import torch

    from imprint_core import backbones as B

    def eager():
        m = B.load_lite0_timm()
        m.reset_classifier(0)
        return lambda x: m(x).numpy()

    def channels_last():
        m = B.load_lite0_timm()
        m.reset_classifier(0)
        m = m.to(memory_format=torch.channels_last)
        return lambda x: m(x.contiguous(memory_format=torch.channels_last)).numpy()

    def folded_cl():  # IMPRINT's PyTorch fallback
        engine = B.get_backbone(runtime="torch")._engine
        return lambda x: engine.features(x.numpy())

    def ort():  # IMPRINT's default on the CPU
        bb = B.get_backbone(runtime="onnxruntime")
        assert bb.runtime == "onnxruntime", bb.runtime
        return lambda x: bb._engine.features(x.numpy())

    def ort_spin():  # ONNX Runtime's own default: threads busy-wait between ops
        session = B._ort_session(B._lite0_onnx_bytes(B.load_lite0_timm()), spin=True)
        return lambda x: session.run(["features"], {"images": x.numpy()})[0]

    def bf16_cl():
        m = B.load_lite0_timm()
        m.reset_classifier(0)
        m = m.to(memory_format=torch.channels_last)

        def f(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(x.contiguous(memory_format=torch.channels_last)).float().numpy()

        return f

    def compiled():
        import torch._inductor.config as inductor

        inductor.freezing = True
        m = B.fold_batchnorm(B.load_lite0_timm())
        m.reset_classifier(0)
        m = torch.compile(m.to(memory_format=torch.channels_last), dynamic=False)
        return lambda x: m(x.contiguous(memory_format=torch.channels_last)).numpy()

    out = {
        "eager (plain timm)": eager,
        "channels_last": channels_last,
        "torch fold-BN + channels_last": folded_cl,
        "onnxruntime (IMPRINT default)": ort,
        "onnxruntime, spinning threads": ort_spin,
        "bf16 autocast + channels_last": bf16_cl,
    }
    if use_compile:
        out["torch.compile (inductor, freezing)"] = compiled
    return out


def _cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def _sample_jpegs(n: int, size: tuple[int, int] = (640, 427)) -> list[bytes]:
    """n distinct JPEGs of ``size`` made from scikit-learn's two sample photos (640 x 427)."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = [load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
    out = []
    for i in range(n):
        image = Image.fromarray(np.roll(photos[i % 2], shift=7 * i, axis=1))
        if image.size != size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _batch():
    """32 preprocessed sample photos as a (32, 3, 224, 224) float tensor."""
    import torch

    from imprint_core import backbones as B
    from imprint_core.images import load_image

    return torch.from_numpy(
        np.stack([B.lite0_preprocess(load_image(b)) for b in _sample_jpegs(BATCH)])
    )


def _peak_rss_mb() -> float:
    """VmHWM of this process (unlike ru_maxrss, not inherited from the parent across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_forward(repeats: int, use_compile: bool) -> dict:
    import torch

    x = _batch()
    fns, setup_s, outs = {}, {}, {}
    for name, setup in _variants(use_compile).items():
        t = time.perf_counter()
        with torch.inference_mode():
            fns[name] = setup()
            outs[name] = fns[name](x)  # first call (compiles where relevant)
            for _ in range(2):  # warm-up: allocator and thread pools settle
                fns[name](x)
        setup_s[name] = time.perf_counter() - t
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, f in fns.items():
                t = time.perf_counter()
                f(x)
                times[name].append(time.perf_counter() - t)
    base = times["eager (plain timm)"]
    ref = outs["eager (plain timm)"]
    rows = {}
    for name, ts in times.items():
        rows[name] = {
            "images_per_s": BATCH / statistics.median(ts),
            "ratio_to_eager": statistics.median(b / t for b, t in zip(base, ts, strict=True)),
            "min_cosine_to_eager": _cos_min(outs[name], ref),
            "setup_s": setup_s[name],
        }
    return rows


def bench_end_to_end(repeats: int, size: tuple[int, int]) -> dict:
    """Backbone.embed vs the obvious pipeline: full decode, timm's transform, eager timm forward."""
    import torch

    from imprint_core import backbones as B
    from imprint_core.images import load_image

    jpegs = _sample_jpegs(BATCH, size)
    bb = B.get_backbone()
    m = B.load_lite0_timm()
    m.reset_classifier(0)
    pre = B.lite0_timm_transform(m)  # the obvious alternative: timm's own transform

    def eager_pipeline():
        with torch.inference_mode():
            return m(torch.stack([pre(load_image(b)) for b in jpegs])).numpy()

    def ours():
        return bb.embed(jpegs, batch_size=BATCH, cache=False)

    ref, got = eager_pipeline(), ours()
    for f in (eager_pipeline, ours):
        f()
    times = {"eager pipeline": [], "Backbone.embed": []}
    for _ in range(repeats):
        for name, f in (("eager pipeline", eager_pipeline), ("Backbone.embed", ours)):
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    t_pre = []
    for _ in range(max(3, repeats // 3)):
        t = time.perf_counter()
        bb.preprocess(jpegs)
        t_pre.append(time.perf_counter() - t)
    base = times["eager pipeline"]
    return {
        "eager pipeline": {"images_per_s": BATCH / statistics.median(base)},
        "Backbone.embed": {
            "images_per_s": BATCH / statistics.median(times["Backbone.embed"]),
            "ratio_to_eager": statistics.median(
                b / t for b, t in zip(base, times["Backbone.embed"], strict=True)
            ),
            "min_cosine_to_eager": _cos_min(got, ref),
            "runtime": bb.runtime,
        },
        "decode+preprocess only": {"images_per_s": BATCH / statistics.median(t_pre)},
    }


def _memory_child(name: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    x = _batch()
    rss0 = _peak_rss_mb()
    with torch.inference_mode():
        f = _variants(use_compile="compile" in name)[name]()
        for _ in range(3):
            f(x)
    print(json.dumps({"peak_rss_mb": _peak_rss_mb(), "before_model_mb": rss0}))


def bench_memory(names: list[str], threads: int) -> dict:
    out = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", name, "--threads", str(threads)],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        out[name] = json.loads(lines[-1]) if lines else {"error": proc.stderr[-300:]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow setup)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child, args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, 224 px, "
        f"{args.repeats} rounds, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    fwd = bench_forward(args.repeats, args.compile)
    print("\nForward pass (preprocessed batch):")
    print(f"{'variant':38s} {'img/s':>7s} {'x eager':>8s} {'min cos':>9s} {'setup s':>8s}")
    for name, r in fwd.items():
        print(
            f"{name:38s} {r['images_per_s']:7.1f} {r['ratio_to_eager']:8.2f} "
            f"{r['min_cosine_to_eager']:9.6f} {r['setup_s']:8.1f}"
        )
    for size in ((640, 427), (4032, 3024)):
        e2e = bench_end_to_end(args.repeats if size[0] < 1000 else max(3, args.repeats // 2), size)
        print(
            f"\nEnd to end, {BATCH} JPEGs of {size[0]} x {size[1]} "
            "(decode + preprocess + forward, cache off):"
        )
        for name, r in e2e.items():
            extra = ""
            if "ratio_to_eager" in r:
                extra = f"  x{r['ratio_to_eager']:.2f}  min cos {r['min_cosine_to_eager']:.6f}"
            print(f"{name:38s} {r['images_per_s']:7.1f} img/s{extra}")
    if not args.no_memory:
        mem = bench_memory(list(fwd), args.threads)
        print("\nPeak memory (max RSS of a fresh process: load + 3 batches of 32):")
        for name, r in mem.items():
            if "error" in r:
                print(f"{name:38s} failed: {r['error']}")
            else:
                print(
                    f"{name:38s} {r['peak_rss_mb']:7.0f} MB (before loading the model {r['before_model_mb']:.0f} MB)"
                )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
