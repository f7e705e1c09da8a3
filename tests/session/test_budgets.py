"""Issue 21, rows 3, 5 and 8: the per-request pixel budget at every entry point that decodes
images, priced from headers before anything is decoded; the entry count of a project zip read
from its end record before zipfile parses it; project zips validated as heads and uploads are.

The attacks are synthetic and small: PNG headers claiming 40 megapixels in a few dozen bytes (a
request of 13 of them would decode 520 megapixels; their pixel data is missing, so decoding one
would fail with another sentence), a zip whose end record claims 60,000 entries."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from attack_files import forty_mp

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError, open_project, save_project
from imprint_core.session.bundle import HEAD, MANIFEST

BUDGET = "would decode more than 500 megapixels"


def test_a_card_upload_over_the_budget_is_refused_before_decoding(project, tmp_path):
    uid = project.classes[0].uid
    version = project.version
    with pytest.raises(ProjectError, match=BUDGET):
        project.add_images(uid, forty_mp(tmp_path / "up"))
    assert project.version == version and not list(project.workdir.glob("*.png"))


def test_the_api_records_and_a_folder_import_are_charged_too(project, tmp_path):
    paths = forty_mp(tmp_path / "api")
    records = pj.records_from_labels([str(p) for p in paths], ["a"] * 7 + ["b"] * 6)
    with pytest.raises(ProjectError, match=BUDGET):
        project.import_images(records, "the request")
    forty_mp(tmp_path / "folder" / "cats", 7)
    forty_mp(tmp_path / "folder" / "dogs", 6)
    with pytest.raises(ProjectError, match=BUDGET):
        project.import_folder(tmp_path / "folder")
    assert not project.n_images


def test_classify_several_is_charged_before_decoding(trained, backbone, tmp_path):
    files = [(str(p), p.name) for p in forty_mp(tmp_path / "many")]
    with pytest.raises(ProjectError, match=BUDGET):
        trained.predict_many(backbone, files)


def _forge_entry_count(path: Path, target: Path, entries: int) -> Path:
    """A copy of a zip whose end record claims ``entries`` entries (its directory unchanged:
    zipfile ignores the claim and reads the directory it finds)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    struct.pack_into("<2H", data, at + 8, entries, entries)
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def saved(backbone, fashion, tmp_path_factory):
    train, _ = fashion
    folder = tmp_path_factory.mktemp("saved")
    p = Project(workdir=folder / "work", n_classes=0)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths[:3])
    p.train(backbone)
    yield p, save_project(p, folder / "project.zip")
    p.close()


def _refused(path: Path, tmp_path: Path, match: str) -> None:
    workdir = tmp_path / "never"
    with pytest.raises(ProjectError, match=match):
        open_project(path, workdir=workdir)
    assert not workdir.exists()


def test_open_project_counts_entries_from_the_end_record_first(tmp_path):
    # no project.json either: refused for its entry count means the count came first (before
    # zipfile parsed a directory that may really hold a million entries)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("notes.txt", "hello")
    forged = _forge_entry_count(tmp_path / "plain.zip", tmp_path / "forged.zip", 60_000)
    _refused(forged, tmp_path, "'forged.zip' holds 60,000 entries; a zip may hold at most 5,000")


def _rewrite(path: Path, target: Path, manifest=None, members: dict | None = None) -> Path:
    members = members or {}
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = members.pop(info.filename, None) or src.read(info)
            if info.filename == MANIFEST and manifest is not None:
                data = manifest(json.loads(data))
                data = data if isinstance(data, bytes) else json.dumps(data).encode()
            dst.writestr(info, data)
        for name, data in members.items():
            dst.writestr(name, data)
    return target


def test_a_head_of_other_classes_is_refused_in_a_project(saved, tmp_path):
    def rename(meta):
        meta["classes"][0]["name"] = "Shorts"
        return meta

    _refused(_rewrite(saved[1], tmp_path / "other.zip", rename), tmp_path, "its head is of")


def test_a_deeply_nested_manifest_is_a_sentence(saved, tmp_path):
    deep = _rewrite(saved[1], tmp_path / "deep.zip", lambda meta: b"[" * 200_000 + b"]" * 200_000)
    _refused(deep, tmp_path, "project.json is nested too deeply")


def test_head_limits_apply_inside_projects(saved, tmp_path):
    from imprint_core import ImprintClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([f"c{i}" for i in range(25)], 2)
    head = ImprintClassifier().fit(rng.normal(size=(50, 1280)).astype(np.float32), y)
    head.save(tmp_path / "wide.safetensors", backbone="efficientnet_lite0")

    def loaded(meta):
        meta["head_source"] = "wide.safetensors"
        return meta

    wide = (tmp_path / "wide.safetensors").read_bytes()
    many = _rewrite(saved[1], tmp_path / "many.zip", loaded, {HEAD: wide})
    _refused(many, tmp_path, "has 25 classes; a head may have at most 20")
    big = _rewrite(saved[1], tmp_path / "big.zip", loaded, {HEAD: bytes(21 * 2**20)})
    _refused(big, tmp_path, "head.safetensors is larger than 20 MB")


def test_display_names_with_bidi_controls_are_refused(saved, project, tmp_path):
    def evil(meta):
        meta["classes"][0]["images"][0]["name"] = "evil\u202egnp.exe"
        return meta

    _refused(_rewrite(saved[1], tmp_path / "bidi.zip", evil), tmp_path, "contains U\\+202E")
    image = tmp_path / "src" / "evil\u2067gnp.png"
    image.parent.mkdir()
    image.write_bytes(saved[0].classes[0].images[0].path.read_bytes())
    with pytest.raises(ProjectError, match="contains U\\+2067"):
        project.add_images(project.classes[0].uid, [image])
    assert not project.n_images
