"""What the head says about images (session/insight.py): predictions with evidence, geometry, the
accuracy-vs-k curve, the count limit, "none of these". Real backbone, real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from imprint_core import session as pj
from imprint_core.session import ProjectError


def test_predict_with_evidence(trained, backbone, fashion):
    _, test = fashion
    correct = 0
    for cls, paths in test.items():
        for path in paths:
            r = trained.predict(backbone, str(path), path.name)
            correct += r["label"] == cls
            assert abs(sum(r["confidences"].values()) - 1) < 1e-6
            assert r["label"] == max(r["confidences"], key=r["confidences"].get)
            assert {c["class"] for c in r["classes"]} == {"Sneaker", "T-shirt", "Trouser"}
            for c in r["classes"]:
                assert 1 <= c["nearest_proxy"] <= c["proxies"] == 20
                assert -1 - 1e-6 <= c["shown"] <= 1 + 1e-6  # cosines in the head's space
            # with max aggregation over l2 proxies the winner owns the most similar proxy
            best = max(r["classes"], key=lambda c: c["shown"])
            assert best["class"] == r["label"]
            sims = [n["shown"] for n in r["neighbours"]]
            assert len(sims) == 6 and sims == sorted(sims, reverse=True)
            assert all(Path(n["path"]).exists() for n in r["neighbours"])
    assert correct >= 11  # of 12 held-out images


def test_predict_refuses_a_corrupt_image(trained, backbone, tmp_path):
    bad = tmp_path / "test.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ProjectError, match="'test.jpg'"):
        trained.predict(backbone, str(bad), "test.jpg")


def test_geometry_figures_and_k_curve(trained):
    g = trained.geometry("pca", 2)
    names = [t.name or "" for t in g["figure"].data]
    assert any("proxies" in n.lower() for n in names)
    assert len(g["cosines"].data) == 2  # the classes' cosines beside the ideal simplex
    assert g["dispersion"].data
    raw = trained.geometry("pca", 2, space="raw")
    assert raw["figure"].data[0].x.tolist() != g["figure"].data[0].x.tolist()
    figure, curve = trained.k_curve()
    assert {t.name for t in figure.data} >= {"kmeans", "kmedoids", "random", "fps"}
    assert curve["cv_description"]


def test_predict_many_has_a_count_limit(trained, backbone, fashion):
    _, test = fashion
    files = [(str(p), p.name) for p in test["Sneaker"]][:1] * (pj.MAX_PREDICT_FILES + 1)
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_PREDICT_FILES}"):
        trained.predict_many(backbone, files)


def test_try_it_says_none_of_these_for_an_image_unlike_every_class(trained, backbone, fashion):
    """clf.unknown_score in Try it: a held-out trouser is a known class; an embedding pointing
    away from every proxy is "none of these"."""
    _, test = fashion
    trained.set_settings("ours")
    trained.imprint()
    z = backbone.embed([str(test["Trouser"][0])])[0]
    known = trained.explain(z)["unknown"]
    assert known is not None and not known["unknown"]
    far = -np.asarray(trained.head.proxies_, dtype=np.float32).mean(axis=0)
    assert trained.explain(far)["unknown"]["unknown"]
    trained.last_test = (far, "odd.png", trained.backbone_name)
    note = pj.views(trained)["try_note"]
    assert "None of these?" in note and "than 95 % of your own images are from their" in note
    assert "the nearest class is shown" in note
    trained.last_test = None


def test_the_same_file_tried_twice_is_embedded_once(trained, backbone, fashion, monkeypatch):
    """Gradio 6.31 sends one drop into Try it twice (two change events): the second call finds
    the file it shows already and answers without decoding or embedding it again."""
    import shutil

    _, test = fashion
    calls = []
    embed = backbone.embed

    def counting(images, **kwargs):
        calls.append(len(images))
        return embed(images, **kwargs)

    monkeypatch.setattr(backbone, "embed", counting)
    first = trained.predict(backbone, str(test["Sneaker"][0]), "a.png")
    again = trained.predict(backbone, str(test["Sneaker"][0]), "a.png")
    assert len(calls) == 1 and again["label"] == first["label"]
    assert again["confidences"] == pytest.approx(first["confidences"])
    trained.predict(backbone, str(test["Trouser"][0]), "b.png")  # another file
    assert len(calls) == 2
    trained.last_test = None  # cleared: the same file is embedded anew
    trained.predict(backbone, str(test["Trouser"][0]), "b.png")
    assert len(calls) == 3
    # the same path with other contents (a new upload under that name) is embedded anew
    copy = trained.workdir / "probe.png"
    shutil.copy(test["Trouser"][0], copy)
    trained.predict(backbone, str(copy), "probe.png")
    shutil.copy(test["Sneaker"][0], copy)
    os.utime(copy, ns=(1, 1))  # another time of change, whatever the file system's resolution
    assert trained.predict(backbone, str(copy), "probe.png")["label"] == "Sneaker"
    assert len(calls) == 5
