"""Save a project as one zip and open it again, without Gradio: real images (the shipped
Fashion-MNIST example, scikit-learn's photos), the real built-in backbone, real zip files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError, open_project, save_project
from imprint_core.session.bundle import FORMAT_VERSION, MANIFEST

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


@pytest.fixture(scope="module")
def backbone():
    return pj.load_backbone(None)


@pytest.fixture(scope="module")
def saved(backbone, fashion3, tmp_path_factory):
    """A trained project with custom settings and an empty class, and its saved zip."""
    train, _ = fashion3
    folder = tmp_path_factory.mktemp("saved")
    p = Project(workdir=folder / "work", n_classes=0)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths[:6])
    p.set_settings("qi", seed=3)
    p.set_settings(gen="kmeans", k=2, agg="mnn", m=3, distance="cosine")
    p.train(backbone)
    p.add_class("Not yet filled")
    return p, save_project(p, folder / "my project.zip")


def _probabilities(project, backbone, images):
    return np.array(
        [
            [project.predict(backbone, str(i))["confidences"][c] for c in project.head.classes_]
            for i in images
        ]
    )


def test_round_trip_restores_classes_images_settings_and_predictions(
    saved, backbone, fashion3, tmp_path
):
    before, path = saved
    after = open_project(path, workdir=tmp_path / "opened")
    assert after.names == before.names
    assert after.names[-1] == "Not yet filled" and not after.classes[-1].images
    for a, b in zip(after.classes, before.classes, strict=True):
        assert [i.name for i in a.images] == [i.name for i in b.images]
        assert [i.path.read_bytes() for i in a.images] == [i.path.read_bytes() for i in b.images]
        assert all(i.path.parent == tmp_path / "opened" for i in a.images)
    assert after.settings == before.settings and after.preset == before.preset
    assert after.backbone_name == before.backbone_name == backbone.name
    np.testing.assert_array_equal(after.head.proxies_, before.head.proxies_)
    assert list(after.head.classes_) == list(before.head.classes_)
    assert after.head.get_params() == before.head.get_params()
    _, test = fashion3
    images = [paths[0] for paths in test.values()] + [SKLEARN_IMAGES / "china.jpg"]
    expected = _probabilities(before, backbone, images)
    np.testing.assert_allclose(_probabilities(after, backbone, images), expected, atol=1e-6)
    assert after.head_source == "my project.zip" and not after.stale  # a loaded head
    # the reopened project imprints again from its images, with the same result
    after.remove_class(after.classes[-1].uid)
    after.train(backbone)
    np.testing.assert_allclose(after.head.proxies_, before.head.proxies_, atol=1e-5)
    after.close()


def test_with_the_backbone_an_imprinted_head_reopens_as_imprinted(saved, backbone, tmp_path):
    before, _ = saved
    before.remove_class(before.classes[-1].uid)  # Imprint refuses empty classes
    path = save_project(before, tmp_path / "full.zip")
    after = open_project(path, backbone=backbone)
    assert after.head_source == "imprinted" and not after.stale
    assert after.is_embedded() and after.evaluation is not None
    probe = SKLEARN_IMAGES / "flower.jpg"
    a, b = after.predict(backbone, str(probe)), before.predict(backbone, str(probe))
    assert a["label"] == b["label"] and len(a["neighbours"]) == len(b["neighbours"]) > 0
    assert [n["file"] for n in a["neighbours"]] == [n["file"] for n in b["neighbours"]]
    after.close()


def test_a_project_without_head_round_trips(tmp_path, fashion3):
    train, _ = fashion3
    p = Project(workdir=tmp_path / "w", n_classes=0)
    cls, paths = next(iter(train.items()))
    p.add_images(p.add_class(cls).uid, paths[:2])
    p.add_class("Other")
    path = save_project(p, tmp_path / "draft.zip")
    with zipfile.ZipFile(path) as zf:
        assert "head.safetensors" not in zf.namelist()
    q = open_project(path)
    assert q.names == [cls, "Other"] and q.head is None
    assert [len(c.images) for c in q.classes] == [2, 0]
    q.close()


def _rewrite(path: Path, target: Path, manifest=None, extra: dict | None = None) -> Path:
    """A copy of a saved project with its project.json changed and members added."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == MANIFEST and manifest is not None:
                meta = json.loads(data)
                manifest(meta)
                data = json.dumps(meta).encode()
            dst.writestr(info, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return target


def _refused(path: Path, tmp_path: Path, match: str) -> None:
    workdir = tmp_path / "never"
    with pytest.raises(ProjectError, match=match):
        open_project(path, workdir=workdir)
    assert not workdir.exists()  # a refused file leaves nothing behind


def test_newer_format_is_refused_with_a_sentence(saved, tmp_path):
    def newer(meta):
        meta["format_version"] = FORMAT_VERSION + 1

    path = _rewrite(saved[1], tmp_path / "future.zip", newer)
    _refused(
        path,
        tmp_path,
        rf"saved by a newer version of IMPRINT \(project format "
        rf"{FORMAT_VERSION + 1}.*Update IMPRINT to open it",
    )


def test_damaged_files_are_refused_with_a_sentence(saved, tmp_path):
    data = saved[1].read_bytes()
    (tmp_path / "half.zip").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "half.zip", tmp_path, "'half.zip' is not a readable zip file")
    (tmp_path / "noise.zip").write_bytes(np.random.default_rng(0).bytes(5000))
    _refused(tmp_path / "noise.zip", tmp_path, "'noise.zip' is not a readable zip file")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("cat/1.png", b"x")
    _refused(tmp_path / "other.zip", tmp_path, "not a saved IMPRINT project .*project.json")
    broken = _rewrite(saved[1], tmp_path / "json.zip")
    with zipfile.ZipFile(broken) as src, zipfile.ZipFile(tmp_path / "badjson.zip", "w") as dst:
        for info in src.infolist():
            dst.writestr(info, b"{not json" if info.filename == MANIFEST else src.read(info))
    _refused(tmp_path / "badjson.zip", tmp_path, "damaged: project.json is not valid JSON")

    def drop_image(meta):
        meta["classes"][0]["images"].append({"file": "9999.png", "name": "lost.png"})

    _refused(
        _rewrite(saved[1], tmp_path / "missing.zip", drop_image),
        tmp_path,
        r"damaged: the image 'lost.png' of class .* is missing",
    )
    with zipfile.ZipFile(saved[1]) as zf:
        png = zf.read("images/00/0000.png")  # a valid image: only the listing is wrong
    stray = _rewrite(saved[1], tmp_path / "stray.zip", extra={"images/00/extra.png": png})
    _refused(stray, tmp_path, r"holds the image '00/extra.png', which project.json does not list")


def test_altered_head_and_corrupt_image_are_refused(saved, tmp_path):
    def flip(data: bytes) -> bytes:
        mid = len(data) // 2
        return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 8]) + data[mid + 8 :]

    for member, match in (
        ("head.safetensors", "checksum"),
        ("images/01/0002.png", r"Image '.*' in class '.*'"),
    ):
        target = tmp_path / f"{Path(member).stem}.zip"
        with zipfile.ZipFile(saved[1]) as src, zipfile.ZipFile(target, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                dst.writestr(info, flip(data) if info.filename == member else data)
        _refused(target, tmp_path, match)


def test_bomb_like_members_are_capped(saved, tmp_path):
    bomb = _rewrite(
        saved[1], tmp_path / "bomb.zip", extra={"images/00/zzzz.png": bytes(11 * 2**20)}
    )
    assert bomb.stat().st_size < saved[1].stat().st_size + 100_000  # zeros compress to nothing
    _refused(bomb, tmp_path, "larger than 10 MB")
    with zipfile.ZipFile(tmp_path / "json-bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, b" " * (3 * 2**20))
    _refused(tmp_path / "json-bomb.zip", tmp_path, "project.json is larger than 2 MB")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("x" * 41, "is 41 characters long"),
        ("a\x07b", "control characters"),
        ("", "cannot be blank"),
        (None, "must be text"),
        ("T-SHIRT", "already a class named"),
    ],
)
def test_bad_class_names_are_refused(saved, tmp_path, name, match):
    def rename(meta):
        meta["classes"][1]["name"] = name
        meta["classes"][0]["name"] = "t-shirt"

    _refused(_rewrite(saved[1], tmp_path / "names.zip", rename), tmp_path, match)


def test_too_many_classes_and_bad_settings(saved, tmp_path):
    def many(meta):
        meta["classes"] += [
            {"name": f"c{i}", "folder": f"x{i}", "images": []} for i in range(pj.MAX_CLASSES)
        ]

    _refused(_rewrite(saved[1], tmp_path / "many.zip", many), tmp_path, "at most 20")

    def bad_setting(meta):
        meta["settings"]["gen"] = "magic"

    _refused(_rewrite(saved[1], tmp_path / "set.zip", bad_setting), tmp_path, "Invalid settings")

    def odd_values(meta):
        meta["preset"] = ["qi"]
        meta["classes"][0]["images"][0] = "0000.png"

    _refused(_rewrite(saved[1], tmp_path / "odd.zip", odd_values), tmp_path, "is damaged")

    def odd_setting(meta):
        meta["settings"]["k"] = "many"

    _refused(_rewrite(saved[1], tmp_path / "k.zip", odd_setting), tmp_path, "k must be an integer")


def test_save_refuses_a_wrong_suffix_and_writes_nothing(saved, tmp_path):
    with pytest.raises(ProjectError, match="does not end in .zip"):
        save_project(saved[0], tmp_path / "project.tar")
    assert list(tmp_path.iterdir()) == []


def test_open_needs_a_new_or_empty_folder(saved, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="new or empty folder"):
        open_project(saved[1], workdir=tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
