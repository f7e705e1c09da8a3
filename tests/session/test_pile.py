"""Sort images (issue 19 §2) in the session layer: a pile sorted by the session's head with the
real built-in backbone, its views, learning from the least-sure images, its downloads, and
refusals that change nothing and leave no file."""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

import imprint_core as ic
from imprint_core import session as pj
from imprint_core.session import pile as pl
from imprint_core.session.scheduler import SCHEDULER


def _pile_zip(path: Path, images: dict[str, list[Path]]) -> Path:
    """The images under their class folders, a text file and a file that only claims to be a PNG."""
    with zipfile.ZipFile(path, "w") as zf:
        for cls, paths in images.items():
            for p in paths:
                zf.write(p, f"{cls}/{p.name}")
        zf.writestr("notes.txt", "not an image")
        zf.writestr("broken.png", b"\x89PNG\r\n\x1a\n but nothing else")
    return path


@pytest.fixture
def taught(backbone, fashion, tmp_path):
    """Two images per class imprinted (the default preset); the pile is the rest of the
    example's training images and its held-out ones (3 classes, 96 images) in a zip."""
    train, test = fashion
    p = pj.Project(workdir=tmp_path / "work", n_classes=0)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths[:2])
    p.train(backbone)
    rest = {c: paths[2:] + test[c] for c, paths in train.items()}
    yield p, _pile_zip(tmp_path / "pile.zip", rest), rest
    p.close()


def _truth(name: str) -> str:
    return name.split("/")[1]  # pile.zip/<class>/<file>


def test_a_zip_is_sorted_as_imprint_predict_sorts_it(taught, tmp_path):
    project, zip_path, rest = taught
    turns = SCHEDULER.turns_given
    seen = []
    said = project.sort_pile([str(zip_path)], progress=lambda done, total: seen.append(done))
    n = sum(len(v) for v in rest.values()) + 1  # the broken PNG is a row with its error
    assert said == f"Sorted {n} images (1 could not be read)."
    assert seen[0] == 0 and seen[-1] == n and seen == sorted(seen)
    assert SCHEDULER.turns_given - turns >= math.ceil(n / pj.quotas.SLICE_IMAGES)  # fair turns

    head = tmp_path / "head.safetensors"
    project.head.save(head, backbone=project.backbone_name)
    library = {
        r.path.replace(str(zip_path), "pile.zip"): r for r in ic.predict_files(head, zip_path)
    }
    rows = {r.path: r for r in project.pile_rows()}
    assert rows.keys() == library.keys()
    for name, row in rows.items():
        want = library[name]
        assert bool(row.error) == bool(want.error), name
        if not row.error:
            assert row.label == want.label, name
            assert row.probability == pytest.approx(want.probability, abs=1e-4)
            assert row.unknown == want.unknown
    assert "broken.png" in next(r.error for r in rows.values() if r.error)

    v = pj.views(project)
    counts = dict(v["pile_counts"])
    assert sum(counts.values()) == n and counts[pl.UNREADABLE] == 1
    assert set(counts) >= set(rest)
    assert "1 files in the zip were not images" in v["pile_note"]
    assert len(v["pile_table"]) == n and len(v["pile_unsure"]) == pj.PILE_UNSURE
    # the least-sure list: the smallest margins between the two best classes, in order
    readable = [r for r in rows.values() if not r.error]
    margins = sorted((r.margin, r.path) for r in readable if not r.unknown)
    if not any(r.unknown for r in readable):
        assert [u[0] for u in v["pile_unsure"]] == [p for _, p in margins[: pj.PILE_UNSURE]]
    # most of the pile is right from two images per class
    right = sum(_truth(r.path) == r.label for r in readable)
    assert right / len(readable) > 0.6


def test_the_table_sorts_by_class_confidence_and_none_of_these(taught):
    project, zip_path, _ = taught
    project.sort_pile([str(zip_path)])
    for order in pj.PILE_SORTS:
        project.set_pile_sort(order)
        table = pj.views(project)["pile_table"]
        assert pj.views(project)["pile_sort"] == order
        if order == "class":
            classes = [r[1] for r in table if r[1] != pl.UNREADABLE]
            assert classes == sorted(classes)
        if order == "confidence":
            conf = [r[2] for r in table if r[2] is not None]
            assert conf == sorted(conf, reverse=True)
        if order == "none of these first":
            flags = [r[5] == "yes" for r in table]
            assert flags == sorted(flags, reverse=True)
    version, pile = project.version, project.pile
    with pytest.raises(pj.ProjectError, match="cannot be sorted by 'size'; choose one of"):
        project.set_pile_sort("size")
    assert project.pile is pile and project.version == version


def test_adding_a_least_sure_image_to_its_class_imprints_and_resorts(taught):
    project, zip_path, _ = taught
    project.sort_pile([str(zip_path)])
    name = pj.views(project)["pile_unsure"][0][0]
    truth = _truth(name)
    entry = project.find(truth)
    before, serial = len(entry.images), project.head_serial
    embedded = project.pile.X.copy()

    said = project.add_from_pile(name, truth)
    assert said == f"Added '{name}' to class '{truth}' and imprinted again."
    assert len(entry.images) == before + 1 and project.head_serial == serial + 1
    assert not project.stale
    assert np.array_equal(project.pile.X, embedded)  # re-sorted from the kept embeddings
    after = {r.path: r for r in project.pile_rows()}
    assert after[name].label == truth  # the image it was taught on
    assert name not in [u[0] for u in pj.views(project)["pile_unsure"]]
    # the rows equal the library's rescore of the same embeddings under the new head
    X = project.pile.X
    np.testing.assert_allclose(
        [after[project.pile.items[i].name].probability for i in project.pile.ok],
        project.head.predict_proba(X).max(axis=1),
        atol=1e-6,
    )

    other = pj.views(project)["pile_unsure"][0][0]
    project.add_from_pile(other, "Boots", new=True)
    assert project.find("Boots") is not None and len(project.find("Boots").images) == 1
    assert "Boots" in dict(pj.views(project)["pile_counts"])


def test_downloads_are_the_csv_and_the_class_folders_and_follow_the_head(taught):
    project, zip_path, rest = taught
    project.sort_pile([str(zip_path)])
    csv_path = pj.make_download(project, "pile_csv")
    with open(csv_path, newline="") as fh:
        records = list(csv.DictReader(fh))
    rows = {r.path: r for r in project.pile_rows()}
    assert [r["path"] for r in records] == list(rows)
    assert all(r["label"] == (rows[r["path"]].label or "") for r in records)
    zip_out = pj.make_download(project, "pile_zip")
    with zipfile.ZipFile(zip_out) as zf:
        names = zf.namelist()
    readable = [r for r in rows.values() if not r.error]
    assert len(names) == len(readable)
    for r in readable:
        folder = "none-of-these" if r.unknown else r.label
        assert any(n.startswith(f"{folder}/") and n.endswith(Path(r.path).name) for n in names)
    assert pj.views(project)["pile_csv_file"] == str(csv_path)

    project.set_settings("qi")  # another head: the files it made are withdrawn
    project.imprint()
    v = pj.views(project)
    assert v["pile_csv_file"] is None and "download it again" in v["pile_csv_note"]


@pytest.mark.parametrize(
    "case",
    [
        "no head",
        "too many",
        "pixels",
        "unpacked",
        "not a zip",
        "nothing",
        "loaded head adds",
        "full",
    ],
)
def test_a_refused_request_changes_nothing_and_leaves_no_file(case, taught, monkeypatch, tmp_path):
    project, zip_path, _ = taught
    files = [str(zip_path)]
    if case == "no head":
        project.head = None
    if case == "too many":
        monkeypatch.setattr(pl, "MAX_PILE_IMAGES", 10)
    if case == "pixels":
        monkeypatch.setattr(pl, "MAX_REQUEST_PIXELS", 20_000)  # 25 images of 28 x 28
    if case == "unpacked":
        monkeypatch.setattr(pl, "ZIP_MAX_UNCOMPRESSED_BYTES", 2**16)
    if case == "full":  # refused after the zip member was written out: it is deleted
        project.sort_pile(files)
        monkeypatch.setattr(pj.uploads, "MAX_IMAGES_PER_CLASS", 2)
    if case == "not a zip":
        bad = tmp_path / "holiday.zip"
        bad.write_bytes(b"this is not a zip file")
        files = [str(bad)]
    if case == "nothing":
        files = []
    if case == "loaded head adds":
        project.sort_pile(files)
        head = project.head.save(tmp_path / "head.safetensors", backbone=project.backbone_name)
        pj.load_head_file(project, head or tmp_path / "head.safetensors")
    pile, version = project.pile, project.version
    before = sorted(p for p in project.workdir.rglob("*"))
    expected = {
        "no head": "no classifier to sort with yet",
        "too many": "more than 10 images; sort at most 10 at a time",
        "pixels": "These 9[0-9] images would decode more than 0.02 megapixels",
        "not a zip": "'holiday.zip' is not a readable zip file",
        "nothing": "No images to sort",
        "unpacked": r"'pile.zip' unpacks to 0\.\d MB of images; a zip may hold at most 0\.0625 MB",
        "loaded head adds": "A loaded head has no class cards",
        "full": "Class 'Sneaker' would have 3 images; a class may have at most 2",
    }[case]
    with pytest.raises(pj.ProjectError, match=expected):
        if case in ("loaded head adds", "full"):
            project.add_from_pile(project.pile.names[0], "Sneaker")
        else:
            project.sort_pile(files)
    assert project.pile is pile and project.version == version
    assert sorted(p for p in project.workdir.rglob("*")) == before
