"""Loading a saved head (session/heads.py): the same predictions after export and load, refused
files, the file's own settings shown."""

from __future__ import annotations

import pytest

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError


def test_export_load_gives_the_same_prediction(trained, backbone, fashion, tmp_path):
    _, test = fashion
    path = trained.export_head(tmp_path)
    fresh = Project(workdir=tmp_path / "fresh")
    s = fresh.load_head(path, pj.backbone_names(), {"efficientnet_lite0": 1280})
    assert s["classes"] == ["Sneaker", "T-shirt", "Trouser"] and s["backbone"] == backbone.name
    image = test["Sneaker"][0]
    a = trained.predict(backbone, str(image), image.name)
    b = fresh.predict(backbone, str(image), image.name)
    assert a["label"] == b["label"] == "Sneaker"
    assert a["confidences"] == pytest.approx(b["confidences"], abs=1e-6)
    assert b["neighbours"] == []  # a loaded head has no training images


def test_load_head_errors(trained, tmp_path):
    fresh = Project(workdir=tmp_path / "f")
    fake = tmp_path / "head.safetensors"
    fake.write_bytes(b"not safetensors")
    with pytest.raises(ProjectError, match="'head.safetensors' is not a saved IMPRINT head"):
        fresh.load_head(fake)
    path = trained.export_head(tmp_path / "h")
    with pytest.raises(ProjectError, match="which this app does not offer"):
        fresh.load_head(path, ["resnet18"])
    with pytest.raises(ProjectError, match="1280-dimensional proxies but the backbone"):
        fresh.load_head(path, None, {"efficientnet_lite0": 512})
    assert fresh.head is None


def test_a_loaded_head_shows_its_own_settings(backbone, fashion, tmp_path):
    import imprint_core as ic

    train, _ = fashion
    X = backbone.embed([str(p) for p in train["Sneaker"][:6] + train["Trouser"][:6]])
    clf = ic.ImprintClassifier(k=3, agg="mnn", m=3, seed=2).fit(X, ["a"] * 6 + ["b"] * 6)
    clf.save(tmp_path / "h.safetensors", backbone=backbone.name)
    p = Project(workdir=tmp_path / "w")
    p.set_settings("qi")
    s = p.load_head(tmp_path / "h.safetensors")
    assert (s["settings"]["k"], s["settings"]["agg"], s["settings"]["m"]) == (3, "mnn", 3)
    assert s["settings"]["seed"] == 2 and s["preset"] == "custom"
    text = pj.summary_markdown(s)
    assert "loaded from the file 'h\\.safetensors'" in text and "not in the file" in text
    assert pj.views(p)["geometry_text"].startswith("A head file holds the proxies")
