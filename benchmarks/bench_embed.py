"""Throughput of the built-in backbone (EfficientNet-Lite0) on the CPU, beside a plain eager timm
forward of the same model, in the same run.

    python benchmarks/bench_embed.py [--threads 2] [--repeats 9] [--compile] [--no-memory]
                                     [--no-fidelity] [--shots 10] [--draws 5]
                                     [--sections paths,precision,...] [--photos FOLDER]
                                     [--fmnist 1000] [--n-photos 300] [--n-e2e 256]

First the machine: CPU model, cores, the flags that decide the precision paths, ``uptime``. The
``paths`` section times each precision path (fp32, the int8 recipe, int8 of every layer, and fp32
with the per-image preprocessing used before) forward only and through ``Backbone.embed`` end to
end on small Fashion-MNIST PNGs and photos, interleaved; ``precision`` gives each int8 path's
guard verdict and its cosine / leave-one-out class-mean accuracy against fp32 on Fashion-MNIST and
a labelled photo set (``--photos``: one folder per class; default: sample-photo crops).

Forward variants run round-robin on the same preprocessed batch (32 x 3 x 224 x 224), so that load
from other processes hits them alike; we report the median images/s of each, the median of the
per-round ratios to eager, and the smallest cosine similarity of its embeddings to the eager ones.
Then the end-to-end ``Backbone.embed`` (JPEG bytes -> decode -> preprocess -> forward, cache off;
with and without decoding the next batch while the model runs) beside the same pipeline with the
eager forward. Fidelity of the candidate runtimes (fp32 ONNX Runtime, int8 static quantisation
calibrated on real images, OpenVINO when installed): min/median cosine to the eager fp32
embeddings on photos and Fashion-MNIST images, and the presets' accuracy on Fashion-MNIST
(``--shots`` per class, ``--draws`` draws, mean and 95% interval of the per-draw difference to the
eager embeddings, beside a logistic-regression probe). Peak memory (max RSS) is measured per variant in a
fresh subprocess that loads the model and embeds a few batches.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

BATCH = 32
ARGS = argparse.Namespace(photos=None, fmnist=1000, n_photos=300, n_e2e=256)
SECTIONS = ("forward", "e2e", "paths", "precision", "fidelity", "memory")


def _variants(use_compile: bool) -> dict:
    """name -> (setup() -> forward(x) -> np.ndarray)."""
    import torch

    from imprint_core import backbones as B
    from imprint_core.backbones.engines import ort_session
    from imprint_core.backbones.lite0 import lite0_onnx_bytes

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
        engine = B.get_backbone(runtime="torch").engine
        return lambda x: engine.features(x.numpy())

    def ort():  # IMPRINT's default on the CPU
        bb = B.get_backbone(runtime="onnxruntime")
        assert bb.runtime == "onnxruntime", bb.runtime
        return lambda x: bb.engine.features(x.numpy())

    def ort_dynamic_pad():  # the previous export: timm's per-call "same" padding arithmetic
        session = ort_session(_dynamic_pad_onnx())
        return lambda x: session.run(["features"], {"images": x.numpy()})[0]

    def ort_basic():  # graph optimisation level BASIC instead of ALL
        session = _ort_session_level(lite0_onnx_bytes(B.load_lite0_timm()), "ORT_ENABLE_BASIC")
        return lambda x: session.run(["features"], {"images": x.numpy()})[0]

    def ort_int8():
        session = ort_session(_int8_onnx())
        return lambda x: session.run(["features"], {"images": x.numpy()})[0]

    def openvino_fp32():
        import openvino as ov

        core = ov.Core()
        model = core.compile_model(
            lite0_onnx_bytes(B.load_lite0_timm()),
            "CPU",
            {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"},
        )
        out = model.output("features")
        return lambda x: model({"images": x.numpy()})[out]

    def ort_spin():  # ONNX Runtime's own default: threads busy-wait between ops
        session = ort_session(lite0_onnx_bytes(B.load_lite0_timm()), spin=True)
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
        "onnxruntime, graph opt BASIC": ort_basic,
        "onnxruntime, dynamic padding (old)": ort_dynamic_pad,
        "onnxruntime int8 (QDQ, per-channel)": ort_int8,
        "bf16 autocast + channels_last": bf16_cl,
    }
    if use_compile:
        out["torch.compile (inductor, freezing)"] = compiled
    if importlib.util.find_spec("openvino") is not None:
        out["openvino fp32"] = openvino_fp32
    return out


def _ort_session_level(source, level: str):
    import onnxruntime as ort

    from imprint_core.backbones.engines import ort_session

    session = ort_session(source)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = session.get_session_options().intra_op_num_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def _dynamic_pad_onnx() -> bytes:
    """The export before static padding: timm's Conv2dSame computes its padding per call."""
    import io

    import torch

    from imprint_core import backbones as B
    from imprint_core.backbones.lite0 import timm_parts

    buf = io.BytesIO()
    torch.onnx.export(
        timm_parts(B.load_lite0_timm())[2].eval(),
        torch.zeros(1, 3, 224, 224),
        buf,
        input_names=["images"],
        output_names=["features", "logits"],
        dynamic_axes={"images": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    return buf.getvalue()


def _calibration_batch() -> np.ndarray:
    """96 real images not used for timing or fidelity: photo crops + Fashion-MNIST train images."""
    from PIL import Image

    from imprint_core import backbones as B
    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.images import load_image

    images = [load_image(b) for b in _sample_jpegs(48, (500, 333))]
    X, _ = load_fashion_mnist("train")
    images += [Image.fromarray(X[i]).convert("RGB") for i in range(59000, 59048)]
    return np.stack([B.lite0_preprocess(im) for im in images])


def _int8_onnx() -> str:
    """Static int8 quantisation (QDQ, per-channel weights, u8 activations) calibrated on real
    images; reduce_range because this CPU has no VNNI (AVX2 u8s8 products can saturate)."""
    import logging
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from imprint_core import backbones as B
    from imprint_core.backbones.lite0 import lite0_onnx_bytes

    calib = _calibration_batch()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"images": calib[i : i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self):
            return next(self.it, None)

    folder = tempfile.mkdtemp(prefix="imprint-int8-")
    pre = os.path.join(folder, "pre.onnx")
    quant_pre_process(lite0_onnx_bytes(B.load_lite0_timm()), pre, skip_symbolic_shape=True)
    out = os.path.join(folder, "int8.onnx")
    logging.disable(logging.WARNING)  # the quantiser logs every shape tensor it skips
    try:
        quantize_static(
            pre,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
    finally:
        logging.disable(logging.NOTSET)
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


def bench_end_to_end(repeats: int, size: tuple[int, int], n: int = 3 * BATCH) -> dict:
    """Backbone.embed (with / without overlapped decoding) vs the obvious pipeline: full decode,
    timm's transform, eager timm forward; ``n`` JPEGs in batches of 32."""
    import torch

    from imprint_core import backbones as B
    from imprint_core.images import load_image

    jpegs = _sample_jpegs(n, size)
    bb = B.get_backbone()
    m = B.load_lite0_timm()
    m.reset_classifier(0)
    pre = B.lite0_timm_transform(m)  # the obvious alternative: timm's own transform

    def eager_pipeline():
        with torch.inference_mode():
            return np.concatenate(
                [
                    m(torch.stack([pre(load_image(b)) for b in jpegs[i : i + BATCH]])).numpy()
                    for i in range(0, n, BATCH)
                ]
            )

    variants = {
        "eager pipeline": eager_pipeline,
        "Backbone.embed (default)": lambda: bb.embed(jpegs, batch_size=BATCH, cache=False),
        "Backbone.embed, no overlap": lambda: bb.embed(
            jpegs, batch_size=BATCH, cache=False, overlap=False
        ),
        "decode+preprocess only": lambda: bb.preprocess(jpegs),
    }
    outs = {name: f() for name, f in variants.items()}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, f in variants.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    base, ref = times["eager pipeline"], outs["eager pipeline"]
    rows = {}
    for name, ts in times.items():
        row = {"images_per_s": n / statistics.median(ts)}
        if name.startswith("Backbone"):
            row["ratio_to_eager"] = statistics.median(b / t for b, t in zip(base, ts, strict=True))
            row["min_cosine_to_eager"] = _cos_min(outs[name], ref)
            row["runtime"] = bb.runtime
        rows[name] = row
    return rows


def _fidelity_images():
    """Real images never used for calibration: 32 photo crops and Fashion-MNIST test images."""
    from PIL import Image

    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.images import load_image

    X, _ = load_fashion_mnist("test")
    photos = [load_image(b) for b in _sample_jpegs(32, (480, 320))]
    return photos + [Image.fromarray(X[i]).convert("RGB") for i in range(0, 3200, 100)]


def _fmnist_split(per_class_pool: int = 50, n_test: int = 1000):
    """A few-shot pool (train split) and a test set (test split) of Fashion-MNIST."""
    from imprint_core.bench.datasets import load_fashion_mnist

    rng = np.random.default_rng(0)
    Xtr, ytr = load_fashion_mnist("train")
    Xte, yte = load_fashion_mnist("test")
    pool = np.concatenate(
        [rng.choice(np.flatnonzero(ytr == c), per_class_pool, replace=False) for c in range(10)]
    )
    test = rng.choice(len(yte), n_test, replace=False)
    return Xtr[pool], ytr[pool], Xte[test], yte[test]


def bench_fidelity(shots: int, draws: int) -> dict:
    """Cosine to eager fp32 and preset accuracy on Fashion-MNIST for each candidate runtime."""
    import torch
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    import imprint_core as ic
    from imprint_core import backbones as B

    names = [
        "eager (plain timm)",
        "onnxruntime (IMPRINT default)",
        "onnxruntime int8 (QDQ, per-channel)",
    ]
    if importlib.util.find_spec("openvino") is not None:
        names.append("openvino fp32")
    fwd = {k: f for k, f in _variants(False).items() if k in names}
    real = np.stack([B.lite0_preprocess(im) for im in _fidelity_images()])
    Xp, yp, Xt, yt = _fmnist_split()
    to_batch = lambda X: np.stack(  # noqa: E731
        [B.lite0_preprocess(Image.fromarray(x).convert("RGB")) for x in X]
    )
    pool_in, test_in = to_batch(Xp), to_batch(Xt)

    def run(f, X):
        with torch.inference_mode():
            return np.concatenate(
                [f(torch.from_numpy(X[i : i + BATCH])) for i in range(0, len(X), BATCH)]
            )

    emb = {}
    for name in names:
        f = fwd[name]()
        emb[name] = {"real": run(f, real), "pool": run(f, pool_in), "test": run(f, test_in)}
    rng = np.random.default_rng(1)
    picks = [
        np.concatenate(
            [rng.choice(np.flatnonzero(yp == c), shots, replace=False) for c in range(10)]
        )
        for _ in range(draws)
    ]
    presets = [p for p in ("qi", "hosoda", "janson", "ours") if p in ic.PRESETS]
    acc: dict[str, dict[str, list[float]]] = {}
    for name in names:
        e = emb[name]
        acc[name] = {p: [] for p in [*presets, "logistic regression"]}
        for idx in picks:
            for p in presets:
                clf = ic.ImprintClassifier.from_preset(p).fit(e["pool"][idx], yp[idx])
                acc[name][p].append(float(clf.score(e["test"], yt)))
            lr = LogisticRegression(max_iter=2000).fit(e["pool"][idx], yp[idx])
            acc[name]["logistic regression"].append(float(lr.score(e["test"], yt)))
    ref = emb["eager (plain timm)"]
    out = {}
    for name in names:
        cos = np.concatenate([_cosines(emb[name][k], ref[k]) for k in ("real", "pool", "test")])
        rows = {}
        for p, values in acc[name].items():
            diff = np.subtract(values, acc["eager (plain timm)"][p])
            half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            rows[p] = {
                "mean": float(np.mean(values)),
                "diff": float(diff.mean()),
                "ci": float(half),
            }
        out[name] = {"min_cos": float(cos.min()), "median_cos": float(np.median(cos)), "acc": rows}
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


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


# ------------------------------------------------------------------ small images, precision paths
CPU_FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def machine() -> str:
    """CPU model, cores, the flags that matter here, and ``uptime``'s load average."""
    from imprint_core.backbones.precision import cpu_flags

    model = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    flags = cpu_flags()
    shown = " ".join(f for f in CPU_FLAGS_SHOWN if f in flags) or "none of " + ", ".join(
        CPU_FLAGS_SHOWN
    )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{model}, {os.cpu_count()} cores, flags: {shown}\nuptime: {uptime}"


def _pngs(X: np.ndarray) -> list[bytes]:
    from PIL import Image

    out = []
    for x in X:
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _photo_folder() -> str | None:
    """A labelled photo set (one folder per class) named by --photos, if it is there."""
    return ARGS.photos if ARGS.photos and os.path.isdir(ARGS.photos) else None


def _photo_files(n: int) -> tuple[list[str], np.ndarray]:
    """Up to ``n`` photos of the --photos set, classes balanced, seeded; else sample-photo crops."""
    from imprint_core.bench.datasets import load_image_folder

    root = _photo_folder()
    if root is None:
        return _sample_jpegs(n, (480, 320)), np.arange(n) % 2
    ds = load_image_folder(root, "train")
    rng = np.random.default_rng(0)
    per = max(1, n // len(ds.class_names))
    rows = np.concatenate(
        [rng.permutation(np.flatnonzero(ds.labels == c))[:per] for c in range(len(ds.class_names))]
    )
    return [str(ds.paths[i]) for i in rows], ds.labels[rows]


def _engines() -> dict:
    """name -> (engine, Backbone) for each precision path, plus fp32 with per-image preprocessing
    (the pipeline before batch preprocessing)."""
    import copy

    from imprint_core import backbones as B
    from imprint_core.backbones import precision as P

    bb = B.get_backbone(runtime="onnxruntime")
    fp32 = bb.engine
    assert bb.runtime == "onnxruntime", bb.runtime
    old = copy.copy(fp32)
    old.batch_preprocess = None
    out = {
        "fp32 (ONNX Runtime)": fp32,
        "fp32, per-image preprocessing (before)": old,
    }
    src = B.lite0_onnx_path()
    calib = P.calibration_batch()
    for name, keep in (("int8 (IMPRINT recipe)", P.FP32_PREFIXES), ("int8, every layer", ())):
        folder = os.path.join(os.path.dirname(src), "bench")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"int8-{len(keep)}-v{P.PRECISION_VERSION}.onnx")
        if not os.path.isfile(path):
            with open(path, "wb") as fh:
                fh.write(P.quantize_int8(str(src), calib, keep_fp32=keep))
        out[name] = P._reduced_engine(fp32, Path(path), "int8")
    return {k: (e, B.Backbone(bb.spec, e, bb.device)) for k, e in out.items()}


def bench_paths(repeats: int, engines: dict) -> dict:
    """Per path: forward only (preprocessed batches of 32) and ``embed`` end to end (bytes in;
    hashing, decoding, preprocessing, a fresh embedding cache each round) on ``--n-e2e``
    Fashion-MNIST PNGs and half as many photos, interleaved; medians of per-round ratios."""
    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.cache import EmbeddingCache

    X, _ = load_fashion_mnist("test")
    files, _ = _photo_files(ARGS.n_e2e // 2)
    sets = {
        "Fashion-MNIST PNGs (28 x 28)": _pngs(X[5000 : 5000 + ARGS.n_e2e]),
        "photos (JPEG)": [open(f, "rb").read() if isinstance(f, str) else f for f in files],
    }
    rows = {}
    for label, items in sets.items():
        fp32 = engines["fp32 (ONNX Runtime)"][1]
        batches = [fp32.preprocess(items[i : i + BATCH]) for i in range(0, len(items), BATCH)]
        fns = {}
        for name, (engine, bb) in engines.items():
            if "before" not in name:
                fns[(name, "forward")] = lambda e=engine, bs=batches: [e.features(b) for b in bs]
            fns[(name, "embed")] = lambda b=bb, xs=items: b.embed(
                xs, batch_size=BATCH, cache=EmbeddingCache()
            )
        for f in fns.values():
            f()  # warm-up
        times: dict = {k: [] for k in fns}
        cpu: dict = {k: [] for k in fns}  # CPU seconds of all threads: robust to other load
        for _ in range(repeats):
            for k, f in fns.items():
                t, c = time.perf_counter(), time.process_time()
                f()
                times[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
        base = times[("fp32 (ONNX Runtime)", "forward")]
        for name in engines:
            fwd_name = name if "before" not in name else "fp32 (ONNX Runtime)"
            fwd, e2e = times[(fwd_name, "forward")], times[(name, "embed")]
            fwd_c, e2e_c = cpu[(fwd_name, "forward")], cpu[(name, "embed")]
            rows[(label, name)] = {
                "cpu_share": statistics.median(f / e for f, e in zip(fwd_c, e2e_c, strict=True)),
                "cpu_ms_outside": 1e3
                * statistics.median(
                    (e - f) / len(items) for f, e in zip(fwd_c, e2e_c, strict=True)
                ),
                "forward": len(items) / statistics.median(fwd),
                "embed": len(items) / statistics.median(e2e),
                "embed_share": statistics.median(f / e for f, e in zip(fwd, e2e, strict=True)),
                "x_fp32_forward": statistics.median(b / f for b, f in zip(base, fwd, strict=True)),
            }
    return rows


def bench_precision_fidelity(engines: dict) -> dict:
    """Each path against fp32: the guard's own figures (shipped examples + sample photos), then
    cosine and leave-one-out class-mean accuracy on Fashion-MNIST test images and the photo set."""
    from PIL import Image

    from imprint_core.backbones import precision as P
    from imprint_core.backbones.batchprep import lite0_preprocess_batch
    from imprint_core.bench.datasets import load_fashion_mnist
    from imprint_core.images import load_image

    X, y = load_fashion_mnist("test")
    rng = np.random.default_rng(3)
    pick = rng.choice(len(y), ARGS.fmnist, replace=False)
    fm = lite0_preprocess_batch([Image.fromarray(X[i]).convert("RGB") for i in pick])
    files, py = _photo_files(ARGS.n_photos)
    ph = lite0_preprocess_batch([load_image(f, min_side=512) for f in files])
    guard_images = P.guard_data()
    fp32 = engines["fp32 (ONNX Runtime)"][0]
    ref = {"fm": P._embed(fp32.features, fm), "ph": P._embed(fp32.features, ph)}
    out = {}
    for name, (engine, _) in engines.items():
        if "before" in name or name.startswith("fp32"):
            continue
        v = P.guard(name, fp32.features, engine.features, guard_images)
        got = {"fm": P._embed(engine.features, fm), "ph": P._embed(engine.features, ph)}
        row = {"guard": v.to_dict()}
        for key, labels in (("fm", y[pick]), ("ph", py)):
            cos = P._cosines(got[key], ref[key])
            row[key] = {
                "min_cos": float(cos.min()),
                "median_cos": float(np.median(cos)),
                "acc_fp32": P.loo_class_mean_accuracy(ref[key], labels),
                "acc": P.loo_class_mean_accuracy(got[key], labels),
            }
        out[name] = row
    return out


def print_paths(rows: dict) -> None:
    print(
        "\nEnd to end vs forward only, per path (img/s; 'share' = forward time / embed time per"
        " round, median; 'cpu share' the same in CPU seconds of the process, 'cpu ms out' = CPU ms"
        " per image outside the network; 'x fp32' = fp32 forward time / this forward time):"
    )
    print(
        f"{'images':30s} {'path':40s} {'forward':>8s} {'embed':>8s} {'share':>6s} "
        f"{'cpu share':>9s} {'cpu ms out':>10s} {'x fp32':>7s}"
    )
    for (label, name), r in rows.items():
        print(
            f"{label:30s} {name:40s} {r['forward']:8.1f} {r['embed']:8.1f} "
            f"{100 * r['embed_share']:5.0f}% {100 * r['cpu_share']:8.0f}% "
            f"{r['cpu_ms_outside']:10.2f} {r['x_fp32_forward']:7.2f}"
        )


def machine_verdict() -> str:
    """What ``IMPRINT_PRECISION=auto`` chose on this machine (the cached guard verdict)."""
    from imprint_core import backbones as B
    from imprint_core.backbones import precision as P

    path = P.verdict_path(B.lite0_onnx_path(), P.cpu_flags())
    if not path.is_file():
        return "no cached verdict (the guard has not run here, or the CPU has no VNNI)"
    return path.read_text()


def print_fidelity(fid: dict) -> None:
    where = _photo_folder() or "crops of the two sample photos"
    print(
        f"\nFidelity to fp32 (guard: min cos >= {0.99}, accuracy within 0.5 points, faster). "
        f"Accuracy: leave-one-out nearest class mean; Fashion-MNIST {ARGS.fmnist} test images, "
        f"photos {ARGS.n_photos} from {where}:"
    )
    for name, r in fid.items():
        g = r["guard"]
        print(
            f"{name}: guard {'PASSED' if g['passed'] else 'REJECTED'} ({g['reason']}); guard images"
            f" min cos {g['min_cosine']:.4f} median {g['median_cosine']:.4f}, examples accuracy "
            f"{100 * g['accuracy_fp32']:.1f} -> {100 * g['accuracy']:.1f}, {g['speedup']:.2f}x"
        )
        for key, label in (("fm", "Fashion-MNIST"), ("ph", "photos")):
            s = r[key]
            print(
                f"    {label:14s} min cos {s['min_cos']:.4f}  median {s['median_cos']:.4f}  "
                f"accuracy {100 * s['acc_fp32']:.2f} -> {100 * s['acc']:.2f} "
                f"({100 * (s['acc'] - s['acc_fp32']):+.2f} points)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow setup)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-fidelity", action="store_true", help="skip the cosine/accuracy section")
    ap.add_argument("--shots", type=int, default=10, help="images per class for the heads")
    ap.add_argument("--draws", type=int, default=5, help="few-shot draws for the accuracy")
    ap.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    ap.add_argument("--photos", help="a labelled photo set: one folder of JPEGs per class")
    ap.add_argument("--fmnist", type=int, default=1000, help="Fashion-MNIST test images")
    ap.add_argument("--n-photos", type=int, default=300, help="photos for the precision section")
    ap.add_argument("--n-e2e", type=int, default=256, help="PNGs per round (photos: half)")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    ARGS.photos, ARGS.fmnist, ARGS.n_photos = args.photos, args.fmnist, args.n_photos
    ARGS.n_e2e = args.n_e2e
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        ap.error(f"unknown sections {sorted(sections - set(SECTIONS))}; choose from {SECTIONS}")
    if args.memory_child:
        _memory_child(args.memory_child, args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    # Every section measures the fp32 model unless it says otherwise; the int8 paths are built
    # explicitly (the automatic choice is reported from the guard's cached verdict).
    os.environ["IMPRINT_PRECISION"] = "fp32"
    print(machine())
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, 224 px, "
        f"{args.repeats} rounds, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if "paths" in sections or "precision" in sections:
        engines = _engines()
        if "paths" in sections:
            print_paths(bench_paths(args.repeats, engines))
        if "precision" in sections:
            print_fidelity(bench_precision_fidelity(engines))
            print(f"\nThe guard's cached verdict on this machine:\n{machine_verdict()}")
    fwd = bench_forward(args.repeats, args.compile) if "forward" in sections else {}
    if fwd:
        print("\nForward pass (preprocessed batch):")
        print(f"{'variant':38s} {'img/s':>7s} {'x eager':>8s} {'min cos':>9s} {'setup s':>8s}")
    for name, r in fwd.items():
        print(
            f"{name:38s} {r['images_per_s']:7.1f} {r['ratio_to_eager']:8.2f} "
            f"{r['min_cosine_to_eager']:9.6f} {r['setup_s']:8.1f}"
        )
    for size in ((640, 427), (4032, 3024)) if "e2e" in sections else ():
        e2e = bench_end_to_end(args.repeats if size[0] < 1000 else max(3, args.repeats // 2), size)
        print(
            f"\nEnd to end, {3 * BATCH} JPEGs of {size[0]} x {size[1]} in batches of {BATCH} "
            "(decode + preprocess + forward, cache off):"
        )
        for name, r in e2e.items():
            extra = ""
            if "ratio_to_eager" in r:
                extra = f"  x{r['ratio_to_eager']:.2f}  min cos {r['min_cosine_to_eager']:.6f}"
            print(f"{name:38s} {r['images_per_s']:7.1f} img/s{extra}")
    if not args.no_fidelity and "fidelity" in sections:
        fid = bench_fidelity(args.shots, args.draws)
        print(
            f"\nFidelity to eager fp32: cosine on 32 photos + 1,532 Fashion-MNIST images; "
            f"accuracy on 1,000 Fashion-MNIST test images, {args.shots}-shot, {args.draws} draws "
            "(mean; difference to eager with 95% interval):"
        )
        for name, r in fid.items():
            print(f"{name:38s} min cos {r['min_cos']:.4f}  median {r['median_cos']:.4f}")
            for p, a in r["acc"].items():
                print(
                    f"    {p:22s} {100 * a['mean']:5.1f}%  "
                    f"{100 * a['diff']:+5.1f} +/- {100 * a['ci']:.1f} points"
                )
    if not args.no_memory and "memory" in sections and fwd:
        mem = bench_memory(list(fwd), args.threads)
        print("\nPeak memory (max RSS of a fresh process: load + 3 batches of 32):")
        for name, r in mem.items():
            if "error" in r:
                print(f"{name:38s} failed: {r['error']}")
            else:
                print(
                    f"{name:38s} {r['peak_rss_mb']:7.0f} MB (before loading the model {r['before_model_mb']:.0f} MB)"
                )
    print(f"\nat the end: {machine().splitlines()[-1]}")


if __name__ == "__main__":
    main()
