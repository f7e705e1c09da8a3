"""End-to-end through gradio_client against the real app, launched in-process on a free port.

The named endpoints (/imprint, /predict, /export, /load_head) are the documented API.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import imprint_core as ic  # noqa: E402


@pytest.fixture(scope="module")
def images(fashion3):
    return fashion3


def connect(url: str, tmp_path: Path) -> Client:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


def imprint(client: Client, classes: dict[str, list[Path]], **kw):
    files = [handle_file(str(p)) for paths in classes.values() for p in paths]
    labels = [name for name, paths in classes.items() for _ in paths]
    return client.predict(files=files, labels=labels, api_name="/imprint", **kw)


def test_api_lists_the_named_endpoints(url, tmp_path):
    info = connect(url, tmp_path).view_api(print_info=False, return_format="dict")
    named = info["named_endpoints"]
    assert {"/imprint", "/predict", "/export", "/load_head"} <= set(named)
    params = [p["parameter_name"] for p in named["/imprint"]["parameters"]]
    assert params == ["files", "labels", "preset", "backbone"]
    defaults = {
        p["parameter_name"]: p["parameter_default"] for p in named["/imprint"]["parameters"]
    }
    assert defaults["preset"] == ic.DEFAULT_PRESET and defaults["backbone"] == "efficientnet_lite0"
    assert [p["parameter_name"] for p in named["/predict"]["parameters"]] == ["image"]


def test_imprint_predict_export_load_roundtrip(url, images, tmp_path):
    train, test = images
    client = connect(url, tmp_path / "a")
    summary = imprint(
        client, {"trousers": train["Trouser"][:10], "sneakers": train["Sneaker"][:10]}
    )
    assert summary["classes"] == ["sneakers", "trousers"]
    assert summary["images_per_class"] == {"sneakers": 10, "trousers": 10}
    # the default preset imprints one (whitened) class mean per class
    assert summary["proxies_per_class"] == {"sneakers": 1, "trousers": 1}
    assert summary["preset"] == ic.DEFAULT_PRESET and summary["backbone"] == "efficientnet_lite0"
    assert summary["accuracy"]["method"] == "leave-one-out"
    assert summary["accuracy"]["accuracy"] >= 0.9
    assert summary["seconds"]["embed"] > 0

    probe = test["Sneaker"][0]
    first = client.predict(image=handle_file(str(probe)), api_name="/predict")
    assert first["label"] == "sneakers"
    conf = {c["label"]: c["confidence"] for c in first["confidences"]}
    assert set(conf) == {"sneakers", "trousers"} and conf["sneakers"] > 0.5

    head = client.predict(api_name="/export")
    assert Path(head).suffix == ".safetensors" and Path(head).stat().st_size > 1000

    # a new session (another user) loads the exported head and gets the same answer
    other = connect(url, tmp_path / "b")
    loaded = other.predict(head=handle_file(head), api_name="/load_head")
    assert loaded["classes"] == ["sneakers", "trousers"] and loaded["accuracy"] is None
    again = other.predict(image=handle_file(str(probe)), api_name="/predict")
    assert again["label"] == first["label"]
    conf2 = {c["label"]: c["confidence"] for c in again["confidences"]}
    assert conf2 == pytest.approx(conf, abs=1e-6)

    # and so does the library, as the export snippet shows

    clf = ic.ImprintClassifier.load(head)
    z = ic.get_backbone(clf.backbone).embed([str(probe)])
    assert clf.predict(z)[0] == "sneakers"
    assert np.allclose(clf.predict_proba(z)[0], [conf["sneakers"], conf["trousers"]], atol=1e-4)


def test_two_concurrent_clients_stay_isolated(url, images, tmp_path):
    train, test = images
    a, b = connect(url, tmp_path / "a"), connect(url, tmp_path / "b")
    results = {}

    def run(name, client, classes):
        results[name] = imprint(client, classes)

    threads = [
        threading.Thread(
            target=run,
            args=("a", a, {"tee": train["T-shirt"][:6], "shoe": train["Sneaker"][:6]}),
        ),
        threading.Thread(
            target=run,
            args=("b", b, {"legs": train["Trouser"][:5], "top": train["T-shirt"][6:11]}),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert results["a"]["classes"] == ["shoe", "tee"]
    assert results["b"]["classes"] == ["legs", "top"]
    probe = handle_file(str(test["T-shirt"][0]))
    ra = a.predict(image=probe, api_name="/predict")
    rb = b.predict(image=probe, api_name="/predict")
    assert {c["label"] for c in ra["confidences"]} == {"shoe", "tee"}
    assert {c["label"] for c in rb["confidences"]} == {"legs", "top"}
    assert ra["label"] == "tee" and rb["label"] == "top"
    with pytest.raises(AppError, match="no classifier yet"):
        connect(url, tmp_path / "c").predict(image=probe, api_name="/predict")


def test_bad_files_are_named(url, images, tmp_path):
    train, _ = images
    client = connect(url, tmp_path / "c")
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    files = {"shoes": train["Sneaker"][:2] + [corrupt], "pants": train["Trouser"][:2]}
    with pytest.raises(AppError, match=r"'broken.png' in class 'shoes'"):
        imprint(client, files)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(AppError, match=r"'notes.txt' in class 'pants' is not an image"):
        imprint(client, {"shoes": train["Sneaker"][:2], "pants": [text]})
    imprint(client, {"shoes": train["Sneaker"][:2], "pants": train["Trouser"][:2]})
    with pytest.raises(AppError, match="'notes.txt' is not an image"):
        client.predict(image=handle_file(str(text)), api_name="/predict")
    with pytest.raises(AppError, match="'broken.png'"):
        client.predict(image=handle_file(str(corrupt)), api_name="/predict")


def test_bad_class_names_and_shapes(url, images, tmp_path):
    train, _ = images
    client = connect(url, tmp_path / "d")
    two = train["Sneaker"][:2]
    cases = [
        ({"shoes": two, "  ": train["Trouser"][:2]}, "cannot be blank"),
        ({"Shoes": two, "shoes": train["Trouser"][:2]}, "differ only in case"),
        ({"x" * 60: two, "pants": train["Trouser"][:2]}, "use at most 40"),
        ({"shoes": two}, "at least 2 classes"),
    ]
    for classes, message in cases:
        with pytest.raises(AppError, match=message):
            imprint(client, classes)
    with pytest.raises(AppError, match="2 files but 1 labels"):
        client.predict(
            files=[handle_file(str(p)) for p in two], labels=["shoes"], api_name="/imprint"
        )
    with pytest.raises(AppError, match="Unknown preset 'best'"):
        imprint(client, {"shoes": two, "pants": train["Trouser"][:2]}, preset="best")
    with pytest.raises(AppError, match="The backbone 'no-such-model' cannot be loaded"):
        imprint(client, {"shoes": two, "pants": train["Trouser"][:2]}, backbone="no-such-model")
    with pytest.raises(AppError, match="press Imprint first"):
        client.predict(api_name="/export")


def test_server_refuses_files_over_the_upload_limit(url, tmp_path):
    from imprint_core import session as pj

    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(pj.MAX_UPLOAD_MB * 1024 * 1024 + 1)
    with pytest.raises(ValueError, match="(?i)file size"):
        connect(url, tmp_path / "e").predict(image=handle_file(str(big)), api_name="/predict")


def test_an_event_for_a_replaced_handler_gets_a_sentence_not_a_bare_500(url):
    """What the page sends when it clicks a class card that a re-render has just replaced."""
    import json
    import urllib.error
    import urllib.request

    from imprint_core.ui.launch import STALE_EVENT

    body = {"data": [None], "fn_index": 987654, "trigger_id": 1, "session_hash": "stale-test"}
    request = urllib.request.Request(
        url.rstrip("/") + "/gradio_api/queue/join",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 409
    assert json.loads(caught.value.read())["detail"] == STALE_EVENT


def test_a_refused_imprint_keeps_the_session_as_it_was(url, images, tmp_path):
    """Issue 9: /imprint used to reset the session before checking the files."""
    train, test = images
    client = connect(url, tmp_path / "f")
    imprint(client, {"shoes": train["Sneaker"][:3], "pants": train["Trouser"][:3]})
    probe = handle_file(str(test["Sneaker"][0]))
    before = client.predict(image=probe, api_name="/predict")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(AppError, match="'notes.txt'"):
        imprint(client, {"tops": train["T-shirt"][:3], "bags": [notes]})
    with pytest.raises(AppError, match="Unknown preset"):
        imprint(client, {"tops": train["T-shirt"][:3], "x": train["Trouser"][:2]}, preset="no")
    after = client.predict(image=probe, api_name="/predict")
    assert after["label"] == before["label"] == "shoes"
    assert {c["label"] for c in after["confidences"]} == {"shoes", "pants"}


def test_a_loaded_head_reports_the_settings_in_its_file(url, images, tmp_path):
    """Issue 9: a head saved with k=3, agg=mnn, m=3 was reported with the session's settings."""

    train, _ = images
    backbone = ic.get_backbone()
    X = backbone.embed([str(p) for p in train["Sneaker"][:6] + train["Trouser"][:6]])
    y = ["shoes"] * 6 + ["pants"] * 6
    clf = ic.ImprintClassifier(k=3, agg="mnn", m=3, gen="kmeans", seed=5).fit(X, y)
    path = tmp_path / "mine.safetensors"
    clf.save(path, backbone=backbone.name)
    summary = connect(url, tmp_path / "g").predict(
        head=handle_file(str(path)), api_name="/load_head"
    )
    settings = summary["settings"]
    assert (settings["k"], settings["agg"], settings["m"], settings["seed"]) == (3, "mnn", 3, 5)
    assert summary["preset"] == "custom" and summary["head"] == "mine.safetensors"
    assert summary["proxies_per_class"] == {"pants": 3, "shoes": 3}
