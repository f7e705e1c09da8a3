"""Reduced precision for the built-in model: int8 where the CPU has VNNI, behind a fidelity guard.

EfficientNet-Lite0's fp32 ONNX graph can be quantised to int8 (static QDQ: per-channel int8
weights, uint8 activations calibrated on real images) and run by ONNX Runtime's VNNI kernels.
Whether that is worth it depends on the machine (without VNNI, int8 is barely faster and needs 7-bit
weights) and whether it is faithful depends on the images, so the choice is made once per machine:

1. ``cpu_flags()`` reads ``/proc/cpuinfo``; a precision is a candidate only when the CPU has one of
   its ``needs_any`` flags (``PRECISIONS``).
2. The candidate model is built (calibrated on scikit-learn's sample photos and the shipped
   Fashion-MNIST examples) and ``guard`` compares it with fp32 on other images: the smallest cosine
   of its embeddings to fp32 must be >= ``MIN_COSINE``, the leave-one-out nearest-class-mean
   accuracy on the shipped Fashion-MNIST examples may drop by at most ``MAX_ACCURACY_DROP``, and its
   forward must be ``MIN_SPEEDUP`` times faster (median of interleaved rounds).
3. The verdict is written next to the exported ONNX model (``cache_dir()``,
   ``precision-<model>-<flags>.json``) and reused by every later process on this machine; the
   quantised model is cached there too.

Which layers break int8 fidelity (``benchmarks/bench_embed.py``, docs/backbones.md): the error is
not one layer's; it builds up from the stem through the first stages (112 to 28 px), where
small ReLU6 activations and the linear projections lose most to 8-bit steps, and the 1,280-channel
head conv loses the most of any later layer. So ``FP32_PREFIXES`` keeps those in fp32 and
quantises the rest.

It is off unless ``IMPRINT_PRECISION=auto`` (read in ``imprint_core.config``): fp32 is the default.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_COSINE = 0.99  # smallest cosine to the fp32 embeddings on the guard's images
MAX_ACCURACY_DROP = 0.005  # 0.5 points of nearest-class-mean accuracy
MIN_SPEEDUP = 1.3  # a reduced path that is not clearly faster here is not worth its error
PRECISION_VERSION = 3  # bump when a recipe or the guard changes: older verdicts are ignored
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products in one instruction

# Nodes kept in fp32 in the int8 model (ONNX node-name prefixes of the exported timm graph): the
# stem and the first three stages (112, 56 and 28 px), where most of the quantisation error builds
# up, and the 1,280-channel head conv. Keeping less (stem, stage 0, block 1.0, head) was faster
# (~2x) but fell to min cosine 0.984 on 1,000 Fashion-MNIST test images; this keeps 0.993.
FP32_PREFIXES = (
    "/conv_stem",
    "/bn1/",
    "/blocks/blocks.0/",
    "/blocks/blocks.1/",
    "/blocks/blocks.2/",
    "/conv_head",
    "/bn2/",
    "/global_pool",
)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (the ``flags`` line of ``/proc/cpuinfo``); empty when unreadable."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@dataclass(frozen=True)
class ReducedPrecision:
    """A reduced-precision recipe: which CPU flags make it worthwhile and how to build it."""

    name: str
    needs_any: tuple[str, ...]
    build: Callable[[str | bytes, np.ndarray], bytes]  # (fp32 ONNX, calibration batch) -> ONNX
    description: str


def quantize_int8(
    source: str | bytes,
    calibration: np.ndarray,
    keep_fp32: Sequence[str] = FP32_PREFIXES,
    method: str = "MinMax",
) -> bytes:
    """Static int8 QDQ model of the fp32 graph ``source``: per-channel int8 weights (8 bits: VNNI
    needs no reduced range), uint8 activations calibrated on ``calibration`` (n, 3, 224, 224),
    nodes whose names start with one of ``keep_fp32`` left in fp32."""
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [{"images": calibration[i : i + 16]} for i in range(0, len(calibration), 16)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory(prefix="imprint-int8-") as folder:
        src = Path(folder) / "fp32.onnx"
        src.write_bytes(Path(source).read_bytes() if isinstance(source, str) else source)
        pre, out = Path(folder) / "pre.onnx", Path(folder) / "int8.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        names = [n.name for n in onnx.load(str(pre)).graph.node]
        exclude = [n for n in names if n.startswith(tuple(keep_fp32))]
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # the quantiser logs every tensor it skips
        try:
            quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=False,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod[method],
            )
        finally:
            logging.disable(previous)
        return out.read_bytes()


PRECISIONS: dict[str, ReducedPrecision] = {
    "int8": ReducedPrecision(
        "int8",
        VNNI_FLAGS,
        quantize_int8,
        "ONNX Runtime static int8 (QDQ, per-channel weights), stem/first stages/head in fp32",
    ),
}


def supported_precisions(flags: frozenset[str] | set[str]) -> list[str]:
    """Reduced precisions this CPU has the instructions for (``PRECISIONS`` order)."""
    return [name for name, p in PRECISIONS.items() if set(p.needs_any) & set(flags)]


@dataclass
class GuardData:
    """Images the guard compares fp32 and a candidate on (never used for calibration)."""

    images: np.ndarray  # (n, 3, 224, 224): everything in ``tasks`` plus photo crops
    tasks: list[tuple[slice, np.ndarray]] = field(default_factory=list)  # rows, labels


@dataclass
class Verdict:
    """A guard's figures for one candidate and whether it passed."""

    precision: str
    passed: bool
    min_cosine: float
    median_cosine: float
    accuracy_fp32: float
    accuracy: float
    speedup: float
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def loo_class_mean_accuracy(Z: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of the nearest class mean (cosine) of L2-normalised embeddings:
    the imprinted head, each image scored by the means of all the others."""
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    classes = np.unique(labels)
    onehot = (labels[:, None] == classes[None, :]).astype(Z.dtype)
    sums, counts = onehot.T @ Z, onehot.sum(0)  # (C, d), (C,)
    own = onehot.astype(bool)
    means = sums[None, :, :] - own[:, :, None] * Z[:, None, :]  # leave the image out of its class
    scores = np.einsum("nd,ncd->nc", Z, means) / np.linalg.norm(means, axis=2)
    scores[own & (counts[None, :] <= 1)] = -np.inf  # a class with no other image cannot win
    return float(np.mean(classes[np.argmax(scores, axis=1)] == labels))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _embed(forward: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    return np.concatenate([forward(images[i : i + 32]) for i in range(0, len(images), 32)])


def speedup(
    reference: Callable[[np.ndarray], np.ndarray],
    candidate: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    rounds: int = 5,
) -> float:
    """Median over interleaved rounds of (reference time / candidate time) on ``batch``."""
    for f in (reference, candidate):
        f(batch)  # warm-up
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        reference(batch)
        t1 = time.perf_counter()
        candidate(batch)
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / max(t2 - t1, 1e-9))
    return float(statistics.median(ratios))


def guard(
    name: str,
    reference: Callable[[np.ndarray], np.ndarray],
    candidate: Callable[[np.ndarray], np.ndarray],
    data: GuardData,
    min_speedup: float = MIN_SPEEDUP,
) -> Verdict:
    """Compare ``candidate``'s features with ``reference``'s (fp32) on ``data``.

    Parameters
    ----------
    name : the candidate precision's name.
    reference, candidate : forward functions, float32 ``(n, 3, 224, 224)`` -> ``(n, d)``.
    data : the images and labelled tasks to compare on.
    min_speedup : the candidate must be this many times faster (0 skips the timing).

    Returns
    -------
    Verdict
        ``passed`` when min cosine >= ``MIN_COSINE``, no task's accuracy drops by more than
        ``MAX_ACCURACY_DROP`` and the speed-up is at least ``min_speedup``.
    """
    ref, got = _embed(reference, data.images), _embed(candidate, data.images)
    cos = _cosines(got, ref)
    acc_ref = [loo_class_mean_accuracy(ref[rows], y) for rows, y in data.tasks]
    acc_got = [loo_class_mean_accuracy(got[rows], y) for rows, y in data.tasks]
    drop = max((a - b for a, b in zip(acc_ref, acc_got, strict=True)), default=0.0)
    fast = speedup(reference, candidate, data.images[:32]) if min_speedup > 0 else float("nan")
    problems = []
    if cos.min() < MIN_COSINE:
        problems.append(f"min cosine {cos.min():.4f} < {MIN_COSINE}")
    if drop > MAX_ACCURACY_DROP:
        problems.append(f"accuracy drops {100 * drop:.1f} points > {100 * MAX_ACCURACY_DROP}")
    if min_speedup > 0 and not fast >= min_speedup:
        problems.append(f"only {fast:.2f}x the fp32 forward (< {min_speedup}x)")
    return Verdict(
        name,
        not problems,
        float(cos.min()),
        float(np.median(cos)),
        float(np.mean(acc_ref)) if acc_ref else float("nan"),
        float(np.mean(acc_got)) if acc_got else float("nan"),
        fast,
        "; ".join(problems) or "passed",
    )


def _photo_crops(n: int, seed: int) -> list:
    """``n`` crops of scikit-learn's two sample photos (sizes 160-420 px, seeded)."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    rng = np.random.default_rng(seed)
    photos = [load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
    out = []
    for i in range(n):
        p = photos[i % 2]
        h, w = rng.integers(160, 420, 2)
        y, x = rng.integers(0, p.shape[0] - h), rng.integers(0, p.shape[1] - w)
        out.append(Image.fromarray(p[y : y + h, x : x + w]))
    return out


def _asset_images(task: str, split: str | None) -> tuple[list, np.ndarray]:
    """The shipped Fashion-MNIST example ``task`` (both splits when ``split`` is None)."""
    from ..bench.datasets import load_image_folder
    from ..config import assets_dir

    root = assets_dir() / "examples" / task
    parts = [load_image_folder(root, s) for s in ((split,) if split else ("train", "test"))]
    return [p for d in parts for p in d.paths], np.concatenate([d.labels for d in parts])


def calibration_batch() -> np.ndarray:
    """Real images for the int8 calibration: 48 photo crops, the ``fashion3`` training images."""
    from ..images import load_image
    from .batchprep import lite0_preprocess_batch

    files, _ = _asset_images("fashion3", "train")
    return lite0_preprocess_batch(_photo_crops(48, seed=1) + [load_image(f) for f in files])


def guard_data() -> GuardData:
    """The guard's images: the ``merged`` Fashion-MNIST example (all of it, one labelled task),
    the ``fashion3`` test images and 32 photo crops, none of them in ``calibration_batch``."""
    from ..images import load_image
    from .batchprep import lite0_preprocess_batch

    files, labels = _asset_images("merged", None)
    extra, _ = _asset_images("fashion3", "test")
    images = [load_image(f) for f in files + extra] + _photo_crops(32, seed=2)
    return GuardData(lite0_preprocess_batch(images), [(slice(0, len(files)), labels)])


def verdict_path(model_path: Path, flags: frozenset[str]) -> Path:
    """Where the verdict for this model and CPU is cached (beside the exported model)."""
    relevant = sorted(f for p in PRECISIONS.values() for f in p.needs_any if f in flags)
    digest = hashlib.sha256(" ".join(relevant).encode()).hexdigest()[:8]
    return model_path.with_name(f"precision-{model_path.stem}-v{PRECISION_VERSION}-{digest}.json")


def reduced_model_path(model_path: Path, name: str) -> Path:
    return model_path.with_name(f"{model_path.stem}-{name}-v{PRECISION_VERSION}.onnx")


def choose_precision(
    fp32_engine,
    model_path: Path,
    flags: frozenset[str] | None = None,
    setting: str | None = None,
    data: Callable[[], GuardData] = guard_data,
):
    """The engine to use: a reduced-precision one that passed the guard on this CPU, else fp32.

    Parameters
    ----------
    fp32_engine : the checked fp32 ONNX Runtime engine (``OrtEngine``).
    model_path : the exported fp32 ONNX file (verdicts and quantised models are cached beside it).
    flags : CPU flags (default ``cpu_flags()``); tests pass a set to simulate another CPU.
    setting : "auto" or "fp32" (default: ``IMPRINT_PRECISION`` through ``imprint_core.config``).
    data : the guard's images (a function, called only when a guard has to run).

    Returns
    -------
    The engine; its ``runtime`` names the precision ("onnxruntime+int8"), and ``verdicts`` holds
    the guard's figures for each candidate (empty when none was considered).
    """
    from ..config import precision_setting

    fp32_engine.verdicts = {}
    setting = setting or precision_setting()
    flags = cpu_flags() if flags is None else frozenset(flags)
    names = supported_precisions(flags)
    if setting == "fp32" or not names:
        return fp32_engine
    path = verdict_path(model_path, flags)
    verdicts = _read_verdicts(path)
    guard_images = None
    for name in names:
        verdict = verdicts.get(name)
        target = reduced_model_path(model_path, name)
        if verdict is not None and verdict.get("passed") and not target.is_file():
            verdict = None  # the model file went missing: build and check it again
        if verdict is None:
            guard_images = guard_images or data()
            engine, verdict = _build_and_guard(fp32_engine, model_path, name, guard_images)
            verdicts[name] = verdict
            _write_verdicts(path, verdicts)
            if verdict["passed"]:
                engine.verdicts = verdicts
                return engine
            continue
        if verdict.get("passed"):
            engine = _reduced_engine(fp32_engine, target, name)
            engine.verdicts = verdicts
            return engine
    fp32_engine.verdicts = verdicts
    return fp32_engine


def with_precision(fp32_engine, model_path: Path):
    """``choose_precision`` for a cached model file; fp32 (with a warning) if anything fails."""
    from ..config import precision_setting

    setting = precision_setting()  # a bad IMPRINT_PRECISION is an error, not a silent fallback
    if not Path(model_path).is_file():
        fp32_engine.verdicts = {}
        return fp32_engine  # the export lives in memory only (read-only cache): nowhere to cache
    try:
        return choose_precision(fp32_engine, Path(model_path), setting=setting)
    except Exception as exc:
        log.warning("Reduced precision unavailable (%s); using fp32.", exc)
        fp32_engine.verdicts = {}
        return fp32_engine


def _build_and_guard(fp32_engine, model_path: Path, name: str, data: GuardData):
    from .files import write_atomic

    recipe = PRECISIONS[name]
    log.info("Checking the %s model of %s once for this CPU ...", name, model_path.name)
    target = reduced_model_path(model_path, name)
    try:
        write_atomic(target, recipe.build(str(model_path), calibration_batch()))
        engine = _reduced_engine(fp32_engine, target, name)
    except Exception as exc:  # no quantiser, a failed export: fp32 stays
        return None, {"precision": name, "passed": False, "reason": f"build failed: {exc}"}
    verdict = guard(name, fp32_engine.features, engine.features, data).to_dict()
    log.info("%s model: %s", name, verdict["reason"])
    if not verdict["passed"]:
        target.unlink(missing_ok=True)
    return engine, verdict


def _reduced_engine(fp32_engine, path: Path, name: str):
    from .engines import OrtEngine, ort_session

    engine = OrtEngine(fp32_engine.preprocess, ort_session(str(path)), fp32_engine.batch_preprocess)
    engine.runtime = f"onnxruntime+{name}"
    return engine


def _read_verdicts(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verdicts(path: Path, verdicts: dict) -> None:
    from .files import write_atomic

    try:
        write_atomic(path, json.dumps(verdicts, indent=1, sort_keys=True).encode())
    except OSError:
        pass  # a read-only cache: the guard runs again in the next process
