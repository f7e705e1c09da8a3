"""`imprint embed --engine ray`: Ray Data actors write the same file as the single process."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imprint_core.cli import main
from imprint_core.embeddings_io import read_embeddings

ray = pytest.importorskip("ray", reason="pip install 'imprint_core[distributed]' (Ray Data)")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of small real-looking images (noise around a colour, PNG and JPEG)."""
    root = tmp_path_factory.mktemp("ray") / "data"
    rng = np.random.default_rng(3)
    for name, colour in (("sky", (40, 90, 220)), ("grass", (40, 180, 60))):
        (root / name).mkdir(parents=True)
        for i in range(5):
            arr = np.clip(np.array(colour) + rng.normal(0, 30, (60, 80, 3)), 0, 255)
            fmt, ext = ("JPEG", "jpg") if i % 2 else ("PNG", "png")
            Image.fromarray(arr.astype(np.uint8)).save(root / name / f"{name}{i}.{ext}", fmt)
    return root


def test_ray_engine_writes_the_single_process_file(folder, tmp_path, capsys):
    local, distributed = tmp_path / "local.npz", tmp_path / "ray.npz"
    assert main(["embed", str(folder), "-o", str(local), "--batch-size", "4"]) == 0
    args = ["embed", str(folder), "-o", str(distributed), "--engine", "ray", "--batch-size", "3"]
    assert main(args + ["--ray-cpus", "2", "--workers", "2"]) == 0
    assert "10 images x 1280 dims, 2 classes" in capsys.readouterr().out
    a, b = read_embeddings(local), read_embeddings(distributed)
    assert list(b.files) == list(a.files) and list(b.labels) == list(a.labels)
    assert b.backbone == a.backbone
    np.testing.assert_allclose(b.X, a.X, rtol=1e-4, atol=1e-4)
    assert not ray.is_initialized()  # the local Ray it started is shut down


def test_ray_engine_refuses_bad_options_before_starting(folder, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert main(["embed", str(folder), "-o", str(out), "--engine", "spark"]) == 2
    assert "--engine 'spark' is not one of: local, ray" in capsys.readouterr().err
    assert main(["embed", str(folder), "-o", str(out), "--engine", "ray", "--runtime", "tpu"]) == 2
    assert "Unknown runtime 'tpu'" in capsys.readouterr().err
    assert not out.exists() and not ray.is_initialized()


@pytest.mark.fashion_mnist
def test_ray_backbone_embeds_a_benchmark_dataset_like_the_local_one(tmp_path):
    """``imprint bench``'s embedding stage takes a backbone object: RayBackbone gives its rows."""
    import imprint_core as ic
    from imprint_core.bench import embed_cached
    from imprint_core.bench.datasets import ImageDataset, load_fashion_mnist
    from imprint_core.distributed import RayBackbone

    X, y = load_fashion_mnist("test")
    data = ImageDataset("fashion_mnist", "test", y[:12], tuple("0123456789"), "test", arrays=X[:12])
    rows = np.arange(12)
    remote = RayBackbone(local_cpus=2, workers=1)
    Zr, info = embed_cached(data, rows, remote, tmp_path / "ray", batch_size=5, progress=False)
    Zl, _ = embed_cached(data, rows, ic.get_backbone(), tmp_path / "local", progress=False)
    assert info["cached"] is False and Zr.shape == (12, remote.dim)
    np.testing.assert_allclose(Zr, Zl, rtol=1e-4, atol=1e-4)
