"""Heads on disk: safetensors + JSON, no pickle, clear errors for damaged files."""

import json

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.head_io import HeadFileError, read_head_metadata


@pytest.fixture()
def head(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8))
    y = np.repeat(["apple", "pear"], 20)
    clf = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(X, y)
    path = tmp_path / "head.safetensors"
    clf.save(path, backbone="efficientnet_lite0")
    return clf, path, X


def test_metadata_is_readable_json(head):
    clf, path, _ = head
    meta = read_head_metadata(path)
    assert meta["format"] == "imprint-head"
    assert meta["classes"] == ["apple", "pear"]
    assert meta["params"]["backbone"] == "efficientnet_lite0"
    assert meta["params"]["gen"] == "kmeans" and meta["params"]["k"] == 3
    assert meta["library_version"] == ic.__version__
    assert meta["n_features_in"] == 8
    # the safetensors header is plain JSON: readable without imprint_core
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert set(header) == {
        "__metadata__",
        "proxies",
        "proxy_counts",
        # "none of these" (imprint_core.unknown.UnknownModel): class means, the whitened
        # space, the scale of the two distances, the held-out training scores and, for one
        # image per class, the spread of the images' distances to the other classes
        "unknown_means",
        "unknown_center",
        "unknown_metric",
        "unknown_white_means",
        "unknown_scale",
        "unknown_calibration",
        "unknown_dof",
        "unknown_pair_spread",
    }
    assert b"pickle" not in raw and not raw.startswith(b"\x80")


def test_truncated_file(head, tmp_path):
    _, path, _ = head
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(
        HeadFileError, match="'truncated.safetensors' is (truncated|not a readable)"
    ):
        ic.ImprintClassifier.load(bad)


def test_altered_tensor_bytes(head, tmp_path):
    _, path, _ = head
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    bad = tmp_path / "altered.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(HeadFileError, match="altered after saving"):
        ic.ImprintClassifier.load(bad)


def test_not_a_head(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04K\x01.")  # a pickle, which we never load
    with pytest.raises(HeadFileError, match="'junk.safetensors' is not a readable safetensors"):
        ic.ImprintClassifier.load(junk)
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(other))
    with pytest.raises(HeadFileError, match="not an IMPRINT head"):
        ic.ImprintClassifier.load(other)
    with pytest.raises(FileNotFoundError):
        ic.ImprintClassifier.load(tmp_path / "missing.safetensors")


def test_round_trip_predicts_identically(head):
    clf, path, X = head
    back = ic.ImprintClassifier.load(path)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_allclose(back.predict_proba(X), clf.predict_proba(X), rtol=1e-6, atol=1e-9)
    # the stored bits come back unchanged: compare them as bits, not as computed floats
    np.testing.assert_array_equal(back.proxies_.view(np.uint32), clf.proxies_.view(np.uint32))
