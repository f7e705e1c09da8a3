"""Malformed head files (issue 11 §2): every one raises HeadFileError naming the file and the
problem, never a bare ValueError, RecursionError or a silently wrong head. Each bad file is built
here with the real safetensors writer and, where the issue says so, a valid checksum."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import imprint_core as ic

D = 4


def _sha(proxies: np.ndarray, counts: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(proxies, dtype="<f4").tobytes())
    h.update(np.ascontiguousarray(counts, dtype="<i8").tobytes())
    return h.hexdigest()


def write_head(path, names=("apple", "pear"), proxies=None, raw_meta=None, **changes):
    """A head file as save_head writes it, with ``changes`` to its metadata and a valid checksum."""
    counts = np.ones(len(names), dtype=np.int64)
    if proxies is None:
        proxies = np.eye(len(names), D, dtype=np.float32)
    meta = {
        "format": "imprint-head",
        "format_version": 1,
        "library": "imprint_core",
        "library_version": ic.__version__,
        "params": {"gen": "mean", "k": 1, "backbone": "efficientnet_lite0"},
        "classes": list(names),
        "classes_dtype": "object",
        "n_features_in": D,
        "proxy_counts": counts.tolist(),
        "sha256": _sha(proxies, counts),
    }
    meta.update(changes)
    text = raw_meta if raw_meta is not None else json.dumps(meta)
    save_file({"proxies": proxies, "proxy_counts": counts}, str(path), {"imprint": text})
    return path


def test_the_builder_writes_a_loadable_head(tmp_path):
    clf = ic.ImprintClassifier.load(write_head(tmp_path / "good.safetensors"))
    assert list(clf.classes_) == ["apple", "pear"]
    assert clf.predict(np.eye(2, D)).tolist() == ["apple", "pear"]


def test_head_file_error_is_exported_and_a_value_error():
    from imprint_core.head_io import HeadFileError

    assert ic.HeadFileError is HeadFileError
    assert issubclass(ic.HeadFileError, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_proxies_with_a_valid_checksum(tmp_path, bad):
    proxies = np.eye(2, D, dtype=np.float32)
    proxies[1, 2] = bad
    path = write_head(tmp_path / "nan.safetensors", proxies=proxies)
    with pytest.raises(ic.HeadFileError, match="'nan.safetensors': the proxies contain NaN or inf"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (("cat", "cat"), "'cat' and 'cat' are the same class"),
        (("Cat", "cAT"), "'Cat' and 'cAT' are the same class"),
        (("cat", "ｃａｔ"), "'cat' and 'cat' are the same class"),  # NFKC of full-width
        (("ｃａｔ", "dog"), "not in normal form .* it would read as 'cat'"),
        (("cat", "cat\u200b"), r"invisible .*U\+200B ZERO WIDTH SPACE"),
        (("cat", "\u202etac"), r"invisible .*U\+202E RIGHT-TO-LEFT OVERRIDE"),
        (("cat", "\ufeffdog"), r"U\+FEFF"),
        (("cat", "do\x85g"), r"control characters \(first: U\+0085\)"),
        (("cat", "do\x07g"), "control characters"),
        (("cat", "d" * 41), "41 characters long; use at most 40"),
        (("cat", "   "), "cannot be blank"),
        (("cat", " dog"), "not in normal form"),
        (("cat", 3), "all text or all numbers"),
        (("cat", ["dog"]), "all text or all numbers"),
        ((1, 1), "unique finite numbers"),
        (("cat",), "holds 1 class"),
    ],
)
def test_bad_class_names(tmp_path, classes, message):
    path = write_head(tmp_path / "names.safetensors", names=classes)
    with pytest.raises(ic.HeadFileError, match=f"'names.safetensors'.*{message}"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize("dtype", ["<U1", "<U3", "<i8", "|S5", "<U99999999", "<M8[s]", "V8", 7])
def test_a_stored_label_type_that_would_change_the_names(tmp_path, dtype):
    path = write_head(tmp_path / "dtype.safetensors", classes_dtype=dtype)
    with pytest.raises(ic.HeadFileError, match="'dtype.safetensors': the stored label type"):
        ic.ImprintClassifier.load(path)


def test_a_stored_label_type_that_fits_is_kept(tmp_path):
    clf = ic.ImprintClassifier.load(write_head(tmp_path / "u5.safetensors", classes_dtype="<U5"))
    assert clf.classes_.dtype == np.dtype("<U5")
    assert clf.classes_.tolist() == ["apple", "pear"]


def test_deeply_nested_json(tmp_path):
    deep = '{"format": "imprint-head", "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    path = write_head(tmp_path / "deep.safetensors", raw_meta=deep)
    with pytest.raises(ic.HeadFileError, match="'deep.safetensors': the head's JSON metadata"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize("raw", ["[1, 2]", '"head"', '{"format": "imprint-head", "n": NaN}'])
def test_metadata_that_is_not_a_head_object(tmp_path, raw):
    path = write_head(tmp_path / "odd.safetensors", raw_meta=raw)
    with pytest.raises(ic.HeadFileError, match="'odd.safetensors'"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize("version", ["1", "one", 1.5, True, 0, -3, None, [1]])
def test_odd_format_versions(tmp_path, version):
    path = write_head(tmp_path / "version.safetensors", format_version=version)
    with pytest.raises(ic.HeadFileError, match="'version.safetensors' has the format version"):
        ic.ImprintClassifier.load(path)


def test_a_newer_format_version(tmp_path):
    path = write_head(tmp_path / "new.safetensors", format_version=10**30)
    with pytest.raises(ic.HeadFileError, match="written by a newer imprint_core"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gen": "mean", "colour": "red"}, "unknown option 'colour'"),
        ({"gen": "mean", "__class__": 1}, "unknown option '__class__'"),
        ({"gen": "bogus"}, "invalid option: unknown gen 'bogus'"),
        ({"gen": "kmeans", "k": "20"}, "invalid option: k must be an integer"),
        ({"norm_pre": "whiten", "norm_inf": "l2"}, "invalid option"),
    ],
)
def test_unknown_or_invalid_options(tmp_path, params, message):
    path = write_head(tmp_path / "options.safetensors", params=params)
    with pytest.raises(ic.HeadFileError, match=f"'options.safetensors'.* {message}"):
        ic.ImprintClassifier.load(path)


@pytest.mark.parametrize(
    "changes",
    [{"params": []}, {"classes": "apple"}, {"n_features_in": "4"}, {"n_features_in": True}],
)
def test_malformed_fields(tmp_path, changes):
    path = write_head(tmp_path / "fields.safetensors", **changes)
    with pytest.raises(ic.HeadFileError, match="'fields.safetensors'"):
        ic.ImprintClassifier.load(path)


def test_save_refuses_labels_a_head_could_not_load(tmp_path):
    """No file is written that load would refuse (a 41-character label, two spellings of one)."""
    X = np.random.default_rng(0).normal(size=(8, D))
    for labels in (["a" * 41, "b"], ["Cat", "cat"]):
        clf = ic.ImprintClassifier(gen="mean").fit(X, np.repeat(labels, 4))
        path = tmp_path / "refused.safetensors"
        with pytest.raises(ic.HeadFileError, match="'refused.safetensors'"):
            clf.save(path)
        assert not path.exists()


def test_every_failure_is_a_head_file_error_not_another_exception(tmp_path):
    """A crude fuzz: flip each byte of the JSON header of a valid head; any error is ours."""
    good = write_head(tmp_path / "good.safetensors").read_bytes()
    n = int.from_bytes(good[:8], "little")
    bad = tmp_path / "flipped.safetensors"
    for i in range(8, 8 + n, 7):
        raw = bytearray(good)
        raw[i] ^= 0x55
        bad.write_bytes(bytes(raw))
        try:
            ic.ImprintClassifier.load(bad)
        except ic.HeadFileError as exc:
            assert "'flipped.safetensors'" in str(exc)
