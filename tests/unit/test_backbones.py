"""Backbones: real weights, real images, offline behaviour, sharing across threads."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image

from imprint_core import backbones as B
from imprint_core.backbones import (
    BACKBONES,
    DEFAULT_BACKBONE,
    BackboneUnavailable,
    get_backbone,
    list_backbones,
)
from imprint_core.backbones.hub import unreachable_reason
from imprint_core.backbones.lite0 import build_lite0
from imprint_core.backbones.registry import LOADED
from imprint_core.images import ImageError


@pytest.fixture(scope="module")
def backbone():
    return get_backbone()  # loaded once per process, shared by every test module


def _photos(n: int, seed: int = 0) -> list[bytes]:
    """n distinct JPEG crops of scikit-learn's two sample photos."""
    rng = np.random.default_rng(seed)
    photos = [load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
    out = []
    for i in range(n):
        p = photos[i % 2]
        y, x = rng.integers(0, 100), rng.integers(0, 200)
        buf = io.BytesIO()
        Image.fromarray(p[y : y + 300, x : x + 400]).save(buf, "JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_registry_names_and_suggested_lambdas():
    names = list_backbones()
    assert names[0] == DEFAULT_BACKBONE == "efficientnet_lite0"
    for required in ("resnet18", "resnet50", "vit_b_16", "swin_b", "ViT-B-32", "MobileCLIP-S1"):
        assert required in names
    lam = {n: BACKBONES[n].ls_lambda for n in names}
    assert lam["resnet18"] == lam["resnet50"] == 1e-4
    assert lam["vit_b_16"] == 0.1 and lam["swin_b"] == 0.05 and lam[DEFAULT_BACKBONE] == 0.05
    assert (
        BACKBONES["ViT-B-32"].tag == "laion2b_s34b_b79k" and "MIT" in BACKBONES["ViT-B-32"].licence
    )
    assert "apple" in BACKBONES["MobileCLIP-S1"].licence.lower()
    assert (
        BACKBONES[DEFAULT_BACKBONE].licence == "Apache-2.0" and BACKBONES[DEFAULT_BACKBONE].offline
    )
    assert B.backbone_spec("vit-b-32").name == "ViT-B-32"  # case-insensitive


def test_default_backbone_is_shared(backbone):
    assert backbone is get_backbone() is get_backbone(DEFAULT_BACKBONE, device="cpu")
    assert backbone.name == DEFAULT_BACKBONE and backbone.dim == 1280
    assert backbone.ls_lambda == 0.05 and backbone.licence == "Apache-2.0"


def test_weights_are_real_imagenet_weights(backbone):
    """With the ImageNet head kept, the sample photos get the right classes."""
    photos = [Image.fromarray(load_sample_image(f)) for f in ("china.jpg", "flower.jpg")]
    logits = backbone.classify(photos)
    assert logits.shape == (2, 1000) and logits.dtype == np.float32
    names = backbone.class_names
    top5 = [{names[i] for i in np.argsort(-row)[:5]} for row in logits]
    china = {"bell cote, bell cot", "palace", "dome", "monastery", "church, church building"}
    assert top5[0] & china, top5[0]
    flowers = {"daisy", "yellow lady's slipper, yellow lady-slipper, Cypripedium calceolus"}
    assert top5[1] & flowers, top5[1]
    assert names[int(np.argmax(logits[1]))] == "daisy"


def test_embed_matches_plain_timm_eager_forward(backbone):
    """The fast path (ONNX Runtime, PIL/numpy preprocessing) equals timm's own transform + eager."""
    import torch

    jpegs = _photos(6, seed=1)
    model = B.load_lite0_timm()
    transform = B.lite0_timm_transform(model)
    model.reset_classifier(0)
    with torch.inference_mode():
        ref = model(
            torch.stack([transform(Image.open(io.BytesIO(b)).convert("RGB")) for b in jpegs])
        )
    got = backbone.embed(jpegs, cache=False)
    assert got.shape == (6, 1280) and got.dtype == np.float32
    assert _cos(got, ref.numpy()).min() > 0.9999
    np.testing.assert_allclose(got, ref.numpy(), atol=2e-3)


def test_numpy_preprocessing_equals_timm_transform():
    transform = B.lite0_timm_transform()
    for size in [(400, 300), (301, 517), (224, 224), (90, 60)]:
        image = Image.fromarray(
            np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        )
        np.testing.assert_allclose(B.lite0_preprocess(image), transform(image).numpy(), atol=1e-6)


def test_pytorch_fallback_equals_default_runtime(backbone):
    torch_bb = get_backbone(runtime="torch")
    assert torch_bb is not backbone and torch_bb.runtime == "torch+channels_last"
    jpegs = _photos(3, seed=2)
    a = backbone.embed(jpegs, cache=False)
    b = torch_bb.embed(jpegs, cache=False)
    assert _cos(a, b).min() > 0.9999
    la, lb = backbone.classify(jpegs), torch_bb.classify(jpegs)
    np.testing.assert_array_equal(la.argmax(1), lb.argmax(1))


def test_inputs_pil_path_bytes_give_the_same_rows(backbone, tmp_path):
    data = _photos(1, seed=3)[0]
    path = tmp_path / "p.jpg"
    path.write_bytes(data)
    pil = Image.open(io.BytesIO(data))
    rows = backbone.embed([data, path, str(path), pil], cache=False)
    for r in rows[1:]:
        np.testing.assert_allclose(r, rows[0], rtol=1e-5, atol=1e-6)
    single = backbone.embed(data, cache=False)  # one image, not in a list
    assert single.shape == (1, 1280)
    assert backbone.embed([], cache=False).shape == (0, 1280)


def test_big_photo_reduced_decode_keeps_the_embedding(backbone):
    photo = Image.fromarray(load_sample_image("china.jpg")).resize((3200, 2400), Image.BICUBIC)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    fast = backbone.embed(buf.getvalue(), cache=False)  # decoded at 1/4 scale (800 x 600)
    full = backbone.embed(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), cache=False)
    assert _cos(fast, full)[0] > 0.999


def test_batches_and_progress(backbone):
    jpegs = _photos(7, seed=4)
    calls = []
    whole = backbone.embed(jpegs, batch_size=32, cache=False)
    parts = backbone.embed(
        jpegs, batch_size=3, cache=False, progress=lambda d, n: calls.append((d, n))
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]
    np.testing.assert_allclose(parts, whole, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        backbone.embed(jpegs, batch_size=0)


def test_tqdm_progress_bar(backbone):
    from tqdm import tqdm

    with tqdm(total=2, file=io.StringIO()) as bar:
        backbone.embed(_photos(2, seed=5), progress=bar, cache=False)
        assert bar.n == 2


def test_bad_image_names_the_file(backbone, tmp_path):
    good = _photos(1, seed=6)[0]
    with pytest.raises(ImageError, match="'broken.jpg'"):
        backbone.embed([good, b"definitely not an image"], names=["ok.jpg", "broken.jpg"])
    with pytest.raises(ImageError, match="nope.png' does not exist"):
        backbone.embed([tmp_path / "nope.png"])


def test_threads_embedding_at_once_match_serial(backbone):
    sets = [_photos(5, seed=10 + t) for t in range(4)]
    serial = [backbone.embed(s, batch_size=2, cache=False) for s in sets]
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()  # start together
        return backbone.embed(sets[i], batch_size=2, cache=False)

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(work, range(4)))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_concurrent_first_load_gives_one_shared_instance():
    # A key nobody loaded yet: the built-in model on the CPU with an explicit "auto" runtime string.
    LOADED.pop((DEFAULT_BACKBONE, "cpu", "onnxruntime"), None)
    barrier = threading.Barrier(3)

    def load(_):
        barrier.wait()
        return get_backbone(DEFAULT_BACKBONE, device="cpu", runtime="onnxruntime")

    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(load, range(3)))
    assert got[0] is got[1] is got[2] and got[0].runtime == "onnxruntime"


def test_bad_names_devices_runtimes():
    with pytest.raises(ValueError, match="Unknown backbone 'resnet9000'.*efficientnet_lite0"):
        get_backbone("resnet9000")
    with pytest.raises(ValueError, match="device"):
        get_backbone(device="tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_backbone(device="cuda")
    with pytest.raises(ValueError, match="runtime"):
        get_backbone(runtime="tensorrt")


def test_hub_backbone_fails_fast_offline(monkeypatch, tmp_path, backbone):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    t = time.perf_counter()
    with pytest.raises(BackboneUnavailable) as info:
        get_backbone("resnet18")
    assert time.perf_counter() - t < 10
    msg = str(info.value)
    assert "'resnet18'" in msg and "IMAGENET1K_V1" in msg and "resnet18-f37072fd.pth" in msg
    assert "HF_HUB_OFFLINE=1" in msg and str(tmp_path) in msg
    assert "ic.get_backbone('resnet18')" in msg and "'efficientnet_lite0' works offline" in msg
    # the built-in model stays usable
    assert backbone.embed(_photos(1, seed=7), cache=False).shape == (1, 1280)
    assert not B.weights_cached("resnet18")


def test_open_clip_backbone_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if B.weights_cached("ViT-B-32"):
        pytest.skip("ViT-B-32 weights are in the Hugging Face cache: nothing fails offline")
    t = time.perf_counter()
    with pytest.raises(BackboneUnavailable) as info:
        get_backbone("ViT-B-32")
    assert time.perf_counter() - t < 10
    msg = str(info.value)
    assert "laion2b_s34b_b79k" in msg and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert "HF_HUB_OFFLINE=1" in msg and "get_backbone('ViT-B-32')" in msg


def test_hub_backbone_fails_fast_without_network(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE unset, but no route to the weights: a short probe, then a clear error."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    url = torchvision.models.get_model_weights("resnet18")["IMAGENET1K_V1"].url
    if unreachable_reason(url) is None:
        pytest.skip("download.pytorch.org is reachable here: this test would download weights")
    t = time.perf_counter()
    with pytest.raises(BackboneUnavailable, match="cannot be reached"):
        get_backbone("resnet18")
    assert time.perf_counter() - t < 15


@pytest.mark.parametrize("name", [n for n in BACKBONES if not BACKBONES[n].offline])
def test_registry_dims_match_the_architectures(name):
    """Without weights (none download here), the architectures' feature sizes match the registry."""
    import torch

    spec = BACKBONES[name]
    if spec.family == "torchvision":
        with torch.device("meta"), torch.inference_mode():  # shapes only: no memory, no init cost
            out = B.torchvision_features(spec.arch, weights=None)(torch.zeros(1, 3, 224, 224))
        assert tuple(out.shape) == (1, spec.dim)
    else:
        import open_clip

        assert open_clip.get_model_config(spec.arch)["embed_dim"] == spec.dim  # image projection
        assert spec.tag in open_clip.list_pretrained_tags_by_model(spec.arch)


@pytest.mark.parametrize("name", [n for n in BACKBONES if not BACKBONES[n].offline])
def test_hub_backbone_embeds_when_its_weights_are_cached(name):
    if not B.weights_cached(name):
        pytest.skip(f"{name} weights are not cached and these machines cannot download them")
    bb = get_backbone(name)
    z = bb.embed(_photos(2, seed=8), cache=False)
    assert z.shape == (2, bb.dim) and z.dtype == np.float32 and np.isfinite(z).all()


def _cpu():
    import torch

    return torch.device("cpu")


def test_static_padding_export_gives_the_same_features():
    """The exported graph has constant padding (no per-call shape arithmetic) and the same output."""
    import onnx
    import torch

    model = B.load_lite0_timm()
    static = B.static_same_padding(B.load_lite0_timm())
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (2, 3, 224, 224)).astype("f4"))
    with torch.inference_mode():
        np.testing.assert_allclose(static(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)
    graph = onnx.load_from_string(B.export_lite0_onnx(model)).graph
    ops = {node.op_type for node in graph.node}
    assert "Shape" not in ops, sorted(ops)  # timm's dynamic padding reads the input shape


def test_corrupt_cached_onnx_model_is_rebuilt(monkeypatch, tmp_path, caplog):
    """A truncated cache file used to send every restart to the slower PyTorch path for good."""
    import logging

    import onnx

    monkeypatch.setenv("IMPRINT_CACHE_DIR", str(tmp_path))
    spec = B.backbone_spec(DEFAULT_BACKBONE)
    first = build_lite0(spec, _cpu(), "auto")
    path = B.lite0_onnx_path()
    assert first.runtime == "onnxruntime" and path.is_file()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # a half-written or damaged file
    with caplog.at_level(logging.WARNING, logger="imprint_core.backbones.lite0"):
        engine = build_lite0(spec, _cpu(), "auto")
    assert engine.runtime == "onnxruntime"
    onnx.checker.check_model(onnx.load(str(path)))  # the file itself is whole again
    assert path.stat().st_size == len(good)
    assert "re-exporting" in caplog.text and str(path) in caplog.text
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temp file
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(engine.features(x), first.features(x), rtol=1e-4, atol=1e-4)


def test_stale_temp_export_is_swept(tmp_path):
    import os

    target = tmp_path / "model.onnx"
    stale, fresh = tmp_path / "model.123.456.tmp", tmp_path / "model.789.1.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(stale, (0, 0))
    B.write_atomic(target, b"data")
    assert target.read_bytes() == b"data" and not stale.exists() and fresh.exists()


def test_overlapped_decoding_gives_the_same_rows_and_errors(backbone):
    images = _photos(7, seed=5) + [_photos(1, seed=5)[0]]  # a duplicate across batches
    serial = backbone.embed(images, batch_size=3, cache=False, overlap=False)
    overlapped = backbone.embed(images, batch_size=3, cache=False, overlap=True)
    np.testing.assert_allclose(overlapped, serial, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(overlapped[7], overlapped[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ImageError, match="broken.jpg"):
        backbone.embed(
            images[:4] + [b"not an image"] + images[4:],
            batch_size=2,
            cache=False,
            names=[f"p{i}.jpg" for i in range(4)] + ["broken.jpg"] + ["q.jpg"] * 4,
        )
