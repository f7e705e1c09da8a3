"""The standalone ONNX model: run by onnxruntime + numpy + PIL only, equal to the library.

Real parts throughout: the built-in EfficientNet-Lite0 weights, Fashion-MNIST images written as
PNG files and scikit-learn's two sample photos. One subprocess (which must not import torch or
imprint_core) runs every exported model; each setting family is then compared with the library's
``predict_proba`` on the same images.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.onnx_export import export_onnx, onnx_snippet, preprocessing_lines

pytestmark = [pytest.mark.fashion_mnist, pytest.mark.slow]  # one backbone export, 11 models run

PHOTOS = [
    Path(__import__("sklearn.datasets").datasets.__file__).parent / "images" / f
    for f in ("china.jpg", "flower.jpg")
]
NAMES = {0: "t-shirt", 1: "trouser", 3: "dress", 8: "bag"}

# setting family -> classifier keyword arguments (or a preset name)
FAMILIES: dict[str, dict | str] = {
    "default": {},
    "ours": "ours",
    "qi_mean": "qi",
    "hosoda_quantile": "hosoda",
    "janson_mnn_euclidean_distance": "janson",
    "oracle_ls": "oracle",
    "whitened": dict(norm_pre="whiten", norm_inf="whiten", gen="kmeans", k=3),
    **{p: p for p in ("auto", "adaptive") if p in ic.PRESETS},  # whitened presets beyond the paper
    "all_cosine_max": dict(gen="all", distance="cosine"),
    "kmeans_manhattan_mnn": dict(gen="kmeans", k=3, agg="mnn", m=5, distance="manhattan"),
    "kmeans_inner_mnn_distance": dict(gen="kmeans", k=3, agg="mnn", m=4, weighting="distance"),
    "mean_mahalanobis": dict(gen="all", distance="mahalanobis", norm_inf="none", norm_pre="none"),
}

RUNNER = """
import json, sys
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

def pixels_of(path):
{body}
    return pixels

images = json.loads(sys.argv[1])
batch = np.concatenate([pixels_of(p) for p in images])
out = {{}}
for model in json.loads(sys.argv[2]):
    session = ort.InferenceSession(model)
    meta = session.get_modelmeta().custom_metadata_map
    (inp,), outputs = session.get_inputs(), session.get_outputs()
    probs, unknown = session.run(["probabilities", "unknown_score"], {{"pixels": batch}})
    out[model] = dict(probs=probs.tolist(), dtype=str(probs.dtype), meta=meta,
                      unknown=unknown.tolist(), unknown_dtype=str(unknown.dtype),
                      io=[inp.name, inp.type, inp.shape]
                      + [x for o in outputs for x in (o.name, o.type, o.shape)])
heavy = sorted(m for m in ("torch", "imprint_core", "sklearn") if m in sys.modules)
print(json.dumps(dict(out=out, heavy=heavy)))
"""


def _run_standalone(images: list[Path], models: list[Path], cwd: Path) -> dict:
    script = cwd / "run_onnx.py"
    script.write_text(RUNNER.format(body=textwrap.indent(preprocessing_lines(), "    ")))
    args = [json.dumps([str(p) for p in images]), json.dumps([str(m) for m in models])]
    done = subprocess.run(
        [sys.executable, "-I", str(script), *args], capture_output=True, text=True, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from PIL import Image

    from imprint_core.bench.datasets import load_fashion_mnist

    folder = tmp_path_factory.mktemp("images")
    X, y = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    train, test, labels = [], [], []
    for c, name in NAMES.items():
        rows = rng.choice(np.flatnonzero(y == c), 10, replace=False)
        for j, i in enumerate(rows):
            path = folder / f"{name}-{i}.png"
            Image.fromarray(X[i]).save(path)
            (train if j < 7 else test).append(path)
            if j < 7:
                labels.append(name)
    test += PHOTOS
    bb = ic.get_backbone()
    return dict(
        Ztrain=bb.embed(train, cache=False),
        ytrain=np.array(labels),
        Ztest=bb.embed(test, cache=False),
        test=test,
        folder=folder,
    )


def _classifier(spec):
    if isinstance(spec, str):
        return ic.ImprintClassifier.from_preset(spec)
    # the option families vary the paper's head; {} is the library's default head
    return ic.ImprintClassifier.from_preset("ours", **spec) if spec else ic.ImprintClassifier()


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    heads, models = {}, []
    for family, spec in FAMILIES.items():
        heads[family] = _classifier(spec).fit(data["Ztrain"], data["ytrain"])
        models.append(export_onnx(heads[family], out / f"{family}.onnx"))
    result = _run_standalone(data["test"], models, out)
    return heads, {m.stem: result["out"][str(m)] for m in models}, result["heavy"]


def test_standalone_process_imports_neither_torch_nor_imprint_core(exported):
    assert exported[2] == []


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_model_equals_library(family, exported, data):
    heads, outputs, _ = exported
    head, out = heads[family], outputs[family]
    expected = head.predict_proba(data["Ztest"])
    probs = np.asarray(out["probs"])
    assert out["dtype"] == "float32"
    assert probs.shape == expected.shape == (len(data["test"]), 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # Mahalanobis scales embedding rounding by an ill-conditioned inverse covariance (few proxies,
    # 1,280 dimensions), in the library as well: a looser tolerance for it only
    atol = 2e-3 if head.distance == "mahalanobis" else 1e-4
    np.testing.assert_allclose(probs, expected, atol=atol)
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 10 * atol  # decisions that are not float-level ties
    assert clear.sum() >= len(clear) // 2  # m-NN vote shares tie for real: 2 + 2 + 1 votes
    np.testing.assert_array_equal(probs.argmax(1)[clear], expected.argmax(1)[clear])
    assert json.loads(out["meta"]["classes"]) == list(head.classes_)
    # "none of these": the same score and threshold as the library
    assert out["unknown_dtype"] == "float32"
    np.testing.assert_allclose(out["unknown"], head.unknown_score(data["Ztest"]), atol=1e-4)
    assert float(out["meta"]["unknown_threshold"]) == pytest.approx(head.unknown_threshold_)
    assert out["meta"]["unknown_rule"] == head.unknown_rule_


def test_metadata_and_signature(exported):
    out = exported[1]["default"]
    assert out["io"] == [
        "pixels",
        "tensor(uint8)",
        ["n", 224, 224, 3],
        "probabilities",
        "tensor(float)",
        ["n", 4],
        "unknown_score",
        "tensor(float)",
        ["n"],
    ]
    meta = out["meta"]
    assert meta["backbone"] == "efficientnet_lite0"
    assert meta["imprint_version"] == ic.__version__
    recipe = json.loads(meta["preprocessing"])
    assert recipe["resize_shorter_side"] == 256 and recipe["center_crop"] == 224
    assert recipe["interpolation"] == "bicubic" and recipe["mean"] == recipe["std"] == [0.5] * 3
    assert json.loads(meta["head_settings"])["gen"] == ic.PRESETS[ic.DEFAULT_PRESET]["gen"]


def test_snippet_runs_as_documented(exported, data, tmp_path):
    """The snippet the Export tab shows, verbatim, prints the library's top class."""
    heads = exported[0]
    model = tmp_path / "classifier.onnx"
    export_onnx(heads["default"], model)
    photo = data["test"][0]
    (tmp_path / "snippet.py").write_text(onnx_snippet(model.name, str(photo)))
    done = subprocess.run(
        [sys.executable, "-I", "snippet.py"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    label, prob = lines[0].split()
    flagged = bool(heads["default"].is_unknown(data["Ztest"][:1])[0])
    assert lines[1:] == (["none of these? unlike every class it was taught"] if flagged else [])
    expected = heads["default"].predict_proba(data["Ztest"][:1])[0]
    assert label == heads["default"].classes_[expected.argmax()]
    assert float(prob) == pytest.approx(expected.max(), abs=1e-4)


def test_cli_export_and_bad_head(data, tmp_path, capsys):
    from imprint_core.cli import main

    head = ic.ImprintClassifier.from_preset("qi").fit(data["Ztrain"], data["ytrain"])
    head.save(tmp_path / "head.safetensors", backbone="efficientnet_lite0")
    out = tmp_path / "classifier.onnx"
    assert (
        main(["export-onnx", str(tmp_path / "head.safetensors"), "-o", str(out), "--snippet"]) == 0
    )
    printed = capsys.readouterr().out
    assert "4 classes, backbone efficientnet_lite0" in printed
    assert 'ort.InferenceSession("classifier.onnx")' in printed
    assert out.stat().st_size > 10 * 2**20  # the backbone's weights are inside

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a head at all")
    assert main(["export-onnx", str(broken), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "broken.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def _refused(head, tmp_path, match, **kwargs):
    target = tmp_path / "refused.onnx"
    with pytest.raises(ValueError, match=match):
        export_onnx(head, target, **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_refusals_name_the_option_and_write_nothing(data, tmp_path):
    head = ic.ImprintClassifier.from_preset("qi").fit(data["Ztrain"], data["ytrain"])
    head.distance = "chebyshev"  # an option the ONNX head does not know
    _refused(head, tmp_path, r"distance='chebyshev' cannot be exported .*inner_product")
    head.distance, head.norm_inf = "inner_product", "zscore"
    _refused(head, tmp_path, r"norm_inf='zscore' cannot be exported")
    head.norm_inf = "l2"
    head.backbone = "resnet18"
    _refused(head, tmp_path, r"imprinted on backbone 'resnet18'", backbone="efficientnet_lite0")
    head.backbone = None
    _refused(head, tmp_path, r"1280-dimensional .* 'resnet18' makes 512", backbone="resnet18")
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(head, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="not fitted|fitted"):
        export_onnx(ic.ImprintClassifier(), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_hub_backbone_without_weights_is_refused(tmp_path):
    from imprint_core.backbones import weights_cached

    rng = np.random.default_rng(0)
    head = ic.ImprintClassifier.from_preset("qi").fit(rng.normal(size=(8, 512)), [0, 1] * 4)
    if weights_cached("resnet18"):  # a machine with the weights: the hub path must export
        assert export_onnx(head, tmp_path / "r18.onnx", backbone="resnet18").stat().st_size > 0
        return
    _refused(
        head, tmp_path, r"'resnet18': its weights .* are not on this machine", backbone="resnet18"
    )


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_documented_preprocessing_is_the_backbones(photo):
    """The PIL lines of the snippet give exactly the pixels the library's Lite0 recipe uses."""
    from PIL import Image, ImageOps

    from imprint_core.backbones import lite0_preprocess

    scope = {"Image": Image, "ImageOps": ImageOps, "np": np, "path": str(photo)}
    exec(preprocessing_lines(), scope)
    pixels = scope["pixels"]
    assert pixels.shape == (1, 224, 224, 3) and pixels.dtype == np.uint8
    expected = lite0_preprocess(Image.open(photo).convert("RGB"))
    scaled = (pixels[0].transpose(2, 0, 1) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
    np.testing.assert_allclose(scaled, expected, atol=1e-6)


def test_hub_recipes_are_read_from_their_transforms():
    import torchvision
    from torchvision import transforms as T

    from imprint_core.onnx_export import recipe_from_transform

    weights = torchvision.models.get_model_weights("swin_b")["IMAGENET1K_V1"]
    recipe = recipe_from_transform(weights.transforms())  # no weights are downloaded for this
    assert recipe["resize_shorter_side"] == 238 and recipe["center_crop"] == 224
    assert recipe["interpolation"] == "bicubic"
    np.testing.assert_allclose(recipe["mean"], [0.485, 0.456, 0.406])
    clip_like = T.Compose(
        [
            T.Resize(224, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    recipe = recipe_from_transform(clip_like)
    assert recipe["resize_shorter_side"] == 224 and recipe["interpolation"] == "bicubic"
    np.testing.assert_allclose(recipe["std"], [0.26862954, 0.26130258, 0.27577711])
    assert "Image.BILINEAR" in preprocessing_lines(256, "bilinear")


def test_a_projects_head_exports_through_the_session(data, tmp_path):
    from imprint_core import session as pj
    from imprint_core.session import Project, ProjectError, export_project_onnx

    project = Project(workdir=tmp_path / "work")
    with pytest.raises(ProjectError, match="press Imprint first"):
        export_project_onnx(project)
    head = ic.ImprintClassifier.from_preset("qi").fit(data["Ztrain"], data["ytrain"])
    head.save(tmp_path / "head.safetensors", backbone="efficientnet_lite0")
    project.load_head(tmp_path / "head.safetensors")
    path = export_project_onnx(project)
    assert path.name == "imprint-classifier.onnx" and path.is_file()
    assert (
        path.parent.parent == project.download_dir / "onnx" == tmp_path / "work" / "downloads/onnx"
    )
    views = pj.views(project)
    assert views["onnx_file"] == str(path) and "imprint-classifier.onnx" in views["onnx_note"]
    project.load_head(tmp_path / "head.safetensors")  # another head: the model is withdrawn
    views = pj.views(project)
    assert views["onnx_file"] is None and "download it again" in views["onnx_note"]
    project.head.distance = "chebyshev"
    with pytest.raises(ProjectError, match="cannot be exported to ONNX: distance='chebyshev'"):
        export_project_onnx(project, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    project.close()


def test_every_head_option_combination_matches_the_library(data):
    """The head graph alone (embeddings -> probabilities) for every NORMinf, distance, AGG and
    weighting the export accepts, against predict_proba on the real embeddings."""
    import itertools

    import onnxruntime as ort

    from imprint_core.onnx_export import AGG, DISTANCES, NORM_INF, WEIGHTING, head_graph

    X, y, Z = data["Ztrain"], data["ytrain"], data["Ztest"]
    # every distance x AGG x weighting under l2; the other NORMinf (applied before, independently
    # of the distance code) with two of them: 19 heads instead of 45, each export takes a while
    combos = [("l2", d, a, w) for d, a, w in itertools.product(DISTANCES, AGG, WEIGHTING)]
    combos += [
        (n, d, a, w)
        for n in NORM_INF
        if n != "l2"
        for d, a, w in (("inner_product", "max", "uniform"), ("euclidean", "mnn", "distance"))
    ]
    failures = []
    for norm_inf, distance, agg, weighting in combos:
        if agg == "max" and weighting == "distance":
            continue  # weighting only matters for m-NN votes
        norm_pre = "whiten" if norm_inf == "whiten" else "l2"
        head = ic.ImprintClassifier(
            norm_pre=norm_pre,
            gen="kmeans",
            k=3,
            norm_inf=norm_inf,
            agg=agg,
            m=4,
            distance=distance,
            weighting=weighting,
        ).fit(X, y)
        session = ort.InferenceSession(head_graph(head), providers=["CPUExecutionProvider"])
        got, unknown = session.run(["probabilities", "unknown_score"], {"features": Z})
        expected = head.predict_proba(Z)
        atol = 2e-3 if distance == "mahalanobis" else 1e-4
        if not np.allclose(unknown, head.unknown_score(Z), atol=1e-4, rtol=0):
            failures.append((norm_inf, distance, agg, weighting, "unknown_score"))
        if got.dtype != np.float32 or not np.allclose(got, expected, atol=atol, rtol=0):
            failures.append(
                (norm_inf, distance, agg, weighting, float(np.abs(got - expected).max()))
            )
    assert failures == []


def _as_older_format(head, tmp_path, keep_means: bool):
    """The head saved and rewritten as an older format wrote it: class means and max-cosine
    held-out scores (format 1), or no unknown-score tensors at all; loaded back."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from imprint_core.head_io import _digest_bytes

    path = tmp_path / "older.safetensors"
    head.save(path)
    with safe_open(str(path), framework="np") as fh:
        meta = json.loads(fh.metadata()["imprint"])
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("unknown_")}
    meta["format_version"] = 1
    meta.pop("sha256_unknown")
    if keep_means:
        tensors["unknown_means"] = head.unknown_means_
        tensors["unknown_calibration"] = np.linspace(0.05, 0.3, 20, dtype=np.float32)
        meta["sha256_unknown"] = _digest_bytes(
            tensors["unknown_means"], tensors["unknown_calibration"]
        )
    save_file(tensors, str(path), metadata={"imprint": json.dumps(meta)})
    return ic.ImprintClassifier.load(path)


@pytest.mark.parametrize("kind", ["several images", "one image per class", "older", "oldest"])
def test_unknown_score_output_follows_the_library(kind, data, tmp_path):
    """The head graph's ``unknown_score`` is the library's for every rule a head can carry: the
    combined score (with held-out images, and with one image per class), the max-cosine score of
    head files with class means only, the nearest proxy of files without them."""
    import onnxruntime as ort

    from imprint_core.onnx_export import head_graph

    X, y, Z = data["Ztrain"], data["ytrain"], data["Ztest"]
    if kind == "one image per class":
        first = np.unique(y, return_index=True)[1]
        X, y = X[first], y[first]
    head = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(X, y)
    if kind in ("older", "oldest"):
        head = _as_older_format(head, tmp_path, keep_means=kind == "older")
    assert (head.unknown_model_ is None) == (kind in ("older", "oldest"))
    session = ort.InferenceSession(head_graph(head), providers=["CPUExecutionProvider"])
    _, unknown = session.run(["probabilities", "unknown_score"], {"features": Z})
    expected = head.unknown_score(Z)
    np.testing.assert_allclose(unknown, expected, atol=1e-4, rtol=0)
    clear = np.abs(expected - head.unknown_threshold_) > 1e-3
    np.testing.assert_array_equal(
        (unknown > head.unknown_threshold_)[clear], head.is_unknown(Z)[clear]
    )
