"""Reduced precision: CPU flags, the fidelity guard, the per-machine verdict and its fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imprint_core import backbones as B
from imprint_core.backbones import precision as P
from imprint_core.backbones.engines import OrtEngine, ort_session
from imprint_core.backbones.lite0 import lite0_onnx_bytes


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    """The real fp32 engine and a copy of its model file in a cache folder of the test's own."""
    path = tmp_path_factory.mktemp("cache") / "lite0.onnx"
    path.write_bytes(open(lite0_onnx_bytes(B.load_lite0_timm()), "rb").read())
    engine = OrtEngine(B.lite0_preprocess, ort_session(str(path)))
    return engine, path


@pytest.fixture(scope="module")
def small_guard_data():
    """Real guard images, fewer of them: 40 Fashion-MNIST examples (one task) and 8 photos."""
    data = P.guard_data()
    rows, labels = data.tasks[0]
    keep = np.concatenate([np.arange(40), np.arange(len(data.images) - 8, len(data.images))])
    return P.GuardData(data.images[keep], [(slice(0, 40), labels[:40])])


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_vnni\n\nprocessor\t: 1\n")
    assert P.cpu_flags(info) == {"fpu", "sse2", "avx2", "avx512_vnni"}
    assert P.cpu_flags(tmp_path / "missing") == frozenset()
    assert "sse2" in P.cpu_flags()  # this machine's /proc/cpuinfo (any x86-64 CPU has SSE2)
    assert P.supported_precisions({"avx2", "fma"}) == []
    assert P.supported_precisions({"avx2", "avx512_vnni"}) == ["int8"]
    assert P.supported_precisions({"avx_vnni"}) == ["int8"]


def test_cpu_without_vnni_stays_fp32_and_writes_nothing(fp32):
    engine, path = fp32
    before = set(path.parent.iterdir())
    chosen = P.choose_precision(
        engine, path, flags=frozenset({"sse2", "avx2", "fma"}), setting="auto"
    )
    assert chosen is engine and chosen.runtime == "onnxruntime" and chosen.verdicts == {}
    assert set(path.parent.iterdir()) == before  # no guard ran: no verdict, no int8 model


def test_fp32_setting_skips_the_guard_even_with_vnni(fp32, monkeypatch):
    engine, path = fp32
    chosen = P.choose_precision(engine, path, flags=frozenset({"avx512_vnni"}), setting="fp32")
    assert chosen is engine and not P.verdict_path(path, frozenset({"avx512_vnni"})).exists()
    monkeypatch.setenv("IMPRINT_PRECISION", "int4")
    with pytest.raises(ValueError, match="IMPRINT_PRECISION must be one of auto, fp32"):
        P.with_precision(engine, path)


def test_class_mean_accuracy_leaves_each_image_out():
    Z = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    y = np.array([0, 0, 1, 1, 1])
    # the last image's own class mean without it is (0.05, 0.95): it is nearer class 0's mean
    assert P.loo_class_mean_accuracy(Z, y) == pytest.approx(4 / 5)


def test_guard_rejects_int8_of_every_layer_and_machine_falls_back(
    fp32, small_guard_data, monkeypatch, tmp_path
):
    """Quantising every layer (the first int8 attempt) fails the fidelity guard: fp32 is kept,
    the verdict is cached and a second process does not rebuild the model."""
    engine, shared = fp32
    path = tmp_path / shared.name
    path.write_bytes(shared.read_bytes())
    built = []

    def every_layer(source, calibration):
        built.append(1)
        return P.quantize_int8(source, calibration[::4], keep_fp32=())

    recipe = P.ReducedPrecision("int8", P.VNNI_FLAGS, every_layer, "every layer int8")
    monkeypatch.setitem(P.PRECISIONS, "int8", recipe)
    flags = frozenset({"avx2", "avx512_vnni"})
    chosen = P.choose_precision(
        engine, path, flags=flags, setting="auto", data=lambda: small_guard_data
    )
    assert chosen is engine and chosen.runtime == "onnxruntime"
    verdict = chosen.verdicts["int8"]
    assert not verdict["passed"] and verdict["min_cosine"] < P.MIN_COSINE
    assert "min cosine" in verdict["reason"]
    assert json.loads(P.verdict_path(path, flags).read_text())["int8"] == verdict
    assert not P.reduced_model_path(path, "int8").exists()  # a rejected model is not kept
    again = P.choose_precision(engine, path, flags=flags, setting="auto", data=lambda: 1 / 0)
    assert again is engine and built == [1]  # the cached verdict: no second build, no guard


def test_guard_passes_fp32_against_itself(fp32, small_guard_data):
    engine, _ = fp32
    verdict = P.guard("fp32", engine.features, engine.features, small_guard_data, min_speedup=0)
    assert verdict.passed and verdict.min_cosine > 0.99999
    assert verdict.accuracy == pytest.approx(verdict.accuracy_fp32)


def test_fp32_is_the_default_and_int8_is_opt_in(monkeypatch):
    """Without IMPRINT_PRECISION nothing is quantised: int8 misses its 1.8x goal and its first
    load builds and guards a model (minutes); ``auto`` opts in."""
    from imprint_core import config

    monkeypatch.delenv("IMPRINT_PRECISION", raising=False)
    assert config.precision_setting() == "fp32"
    monkeypatch.setenv("IMPRINT_PRECISION", "AUTO")
    assert config.precision_setting() == "auto"
