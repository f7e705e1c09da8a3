"""Sort images (issue 19 §2) through gradio_client against the real app: ``/sort`` sorts a zip
with the session's head as the library does, and is refused with a sentence without one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import imprint_core as ic  # noqa: E402


def connect(url: str, tmp_path: Path) -> Client:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


def test_sort_a_zip_as_the_library_does(url, fashion3, tmp_path):
    train, test = fashion3
    client = connect(url, tmp_path / "a")
    classes = {"trousers": train["Trouser"][:3], "sneakers": train["Sneaker"][:3]}
    files = [handle_file(str(p)) for paths in classes.values() for p in paths]
    labels = [name for name, paths in classes.items() for _ in paths]
    client.predict(files=files, labels=labels, api_name="/imprint")

    pile = tmp_path / "pile.zip"
    with zipfile.ZipFile(pile, "w") as zf:
        for p in train["Trouser"][3:8] + train["Sneaker"][3:8] + test["T-shirt"]:
            zf.write(p, p.name)
        zf.writestr("readme.txt", "not an image")
    got = client.predict(files=[handle_file(str(pile))], api_name="/sort")

    head = client.predict(api_name="/export")
    library = {Path(r.path).name: r for r in ic.predict_files(head, pile)}
    rows = {Path(r["file"]).name: r for r in got["rows"]}
    assert rows.keys() == library.keys() and len(rows) == 14
    for name, row in rows.items():
        assert row["class"] == library[name].label, name
        assert (row["none of these"] == "yes") == library[name].unknown, name
        assert row["confidence"] == pytest.approx(library[name].probability, abs=1e-3)
    counts = got["counts"]
    assert sum(counts.values()) == 14 and {"trousers", "sneakers"} <= set(counts)
    assert counts["trousers"] >= 4 and counts["sneakers"] >= 4  # trousers and sneakers sort apart
    margins = [r["margin"] for r in got["rows"] if r["none of these"] != "yes"]
    assert margins == sorted(margins)  # least sure first
    assert got["least_sure"] == [r["file"] for r in got["rows"]][: len(got["least_sure"])]


def test_sort_without_a_classifier_is_refused_with_a_sentence(url, fashion3, tmp_path):
    train, _ = fashion3
    client = connect(url, tmp_path / "b")
    with pytest.raises(AppError, match="no classifier to sort with yet"):
        client.predict(files=[handle_file(str(train["Trouser"][0]))], api_name="/sort")
