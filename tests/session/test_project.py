"""Project logic without Gradio: classes, uploads and their limits, zip import, imprint, evidence,
export and import of heads. Real images (the shipped Fashion-MNIST examples, scikit-learn's
sample photos) and the real built-in backbone."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imprint_core import session as pj
from imprint_core.session import Project, ProjectError

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


@pytest.fixture(scope="module")
def backbone():
    return pj.load_backbone(None)


@pytest.fixture(scope="module")
def fashion(fashion3):
    return fashion3


@pytest.fixture
def project(tmp_path):
    p = Project(workdir=tmp_path / "work")
    yield p
    p.close()


@pytest.fixture(scope="module")
def trained(backbone, fashion, tmp_path_factory):
    train, _ = fashion
    p = Project(workdir=tmp_path_factory.mktemp("trained"), n_classes=0)
    p.set_settings("ours")  # these tests read k-means proxies (k = 20)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths)
    p.train(backbone)
    return p


def test_a_new_project_starts_with_the_library_default_preset(project):
    import imprint_core as ic

    assert ic.DEFAULT_PRESET in ic.PRESETS and ic.DEFAULT_PRESET != "ours"
    assert project.preset == ic.DEFAULT_PRESET
    assert project.settings == {"seed": 0, **ic.PRESETS[ic.DEFAULT_PRESET]}


# ---- class names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "others", "message"),
    [
        ("", (), "cannot be blank"),
        ("   \t ", (), "cannot be blank"),
        ("x" * (pj.MAX_NAME_CHARS + 1), (), f"use at most {pj.MAX_NAME_CHARS}"),
        (" Cats ", ("cats",), "already a class named 'cats'"),
        ("DOG", ("cat", "dog"), "already a class named 'dog'"),
        ("a\x07b", (), "control characters"),
        (None, (), "must be text"),
    ],
)
def test_bad_class_names_are_refused_with_a_reason(name, others, message):
    with pytest.raises(ProjectError, match=message):
        pj.validate_class_name(name, others)


def test_names_are_trimmed_and_inner_spaces_collapsed():
    assert pj.validate_class_name("  red   apple ", ["apple"]) == "red apple"


def test_add_rename_remove_classes_keep_stable_ids(project):
    assert project.names == ["Class 1", "Class 2"]
    first = project.classes[0].uid
    project.rename_class(first, "cat")
    third = project.add_class("dog")
    assert project.names == ["cat", "Class 2", "dog"]
    with pytest.raises(ProjectError, match="already a class named 'cat'"):
        project.rename_class(third.uid, "CAT")
    project.rename_class(first, "Cat")  # a class may change its own case
    project.remove_class(project.classes[1].uid)
    assert project.names == ["Cat", "dog"]
    assert project.get(first).name == "Cat"
    with pytest.raises(ProjectError, match="no longer exists"):
        project.get(12345)


def test_at_most_max_classes(project):
    while len(project.classes) < pj.MAX_CLASSES:
        project.add_class()
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_CLASSES} classes"):
        project.add_class()


def test_default_names_do_not_collide(project):
    project.rename_class(project.classes[0].uid, "Class 3")
    assert project.add_class().name == "Class 4"


# ---- images and their limits -----------------------------------------------------------------------
def test_add_images_stores_normalised_copies_and_skips_duplicates(project, fashion, tmp_path):
    train, _ = fashion
    uid = project.classes[0].uid
    assert project.add_images(uid, train["Trouser"][:3]) == 3
    assert project.add_images(uid, train["Trouser"][:2]) == 0  # same files again
    big = tmp_path / "china.jpg"
    big.write_bytes((SKLEARN_IMAGES / "china.jpg").read_bytes())
    assert project.add_images(uid, [big]) == 1
    items = project.classes[0].images
    assert [i.name for i in items][-1] == "china.jpg"
    for item in items:
        assert item.path.parent == project.workdir and item.path.suffix == ".png"
        with Image.open(item.path) as im:
            assert max(im.size) <= pj.STORE_MAX_SIDE and im.mode == "RGB"


def test_an_image_in_two_classes_survives_clearing_one(project, fashion):
    """Identical uploads share one stored file: clearing, removing or deleting in one class must
    not break the other class's copy."""
    train, _ = fashion
    a, b = project.classes[0].uid, project.classes[1].uid
    shared = train["Trouser"][:2]
    project.add_images(a, shared)
    project.add_images(b, [*shared, train["Sneaker"][0]])
    paths = [i.path for i in project.get(b).images]
    project.clear_images(a)
    project.remove_image(b, 2)  # the Sneaker: only b used it
    assert all(p.exists() for p in paths[:2]) and not paths[2].exists()
    project.add_images(a, shared[:1])
    project.remove_class(b)
    assert paths[0].exists() and not paths[1].exists()


def test_remove_an_image_by_its_stored_file_name(project, fashion):
    train, _ = fashion
    uid = project.classes[0].uid
    project.add_images(uid, train["Trouser"][:3])
    first, second, third = project.get(uid).images
    # the app gets back a copy in Gradio's cache: same base name, other folder
    assert project.remove_image_file(uid, f"/tmp/gradio/abc123/{second.path.name}") == second.name
    assert project.get(uid).images == [first, third] and not second.path.exists()
    with pytest.raises(ProjectError, match="has no image stored as 'nope.png'"):
        project.remove_image_file(uid, "nope.png")
    with pytest.raises(ProjectError, match="no image number 3"):
        project.remove_image(uid, 2)


def test_a_corrupt_file_names_class_and_file_and_adds_nothing(project, fashion, tmp_path):
    train, _ = fashion
    project.rename_class(project.classes[0].uid, "shoes")
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not the rest of a png")
    with pytest.raises(ProjectError) as err:
        project.add_images(project.classes[0].uid, [*train["Sneaker"][:2], bad])
    assert "'holiday.png'" in str(err.value) and "'shoes'" in str(err.value)
    assert project.classes[0].images == []


def test_a_text_file_is_not_an_image(project, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ProjectError, match=r"'notes.txt' in class 'Class 1' is not an image"):
        project.add_images(project.classes[0].uid, [notes])


def test_file_size_limit(project, tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as fh:
        fh.truncate(pj.MAX_IMAGE_BYTES + 1)
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_IMAGE_MB} MB"):
        project.add_images(project.classes[0].uid, [huge])


def test_pixel_limit_is_checked_before_decoding(project, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (8000, 6000)).save(bomb)  # 48 MP of one colour: a tiny file
    assert bomb.stat().st_size < pj.MAX_IMAGE_BYTES
    with pytest.raises(ProjectError, match="megapixels"):
        project.add_images(project.classes[0].uid, [bomb])


def test_images_per_class_and_total_limits(project, fashion, monkeypatch):
    train, _ = fashion
    monkeypatch.setattr(pj.uploads, "MAX_IMAGES_PER_CLASS", 3)
    with pytest.raises(ProjectError, match="would have 4 images; a class may have at most 3"):
        project.add_images(project.classes[0].uid, train["Trouser"][:4])
    monkeypatch.setattr(pj.uploads, "MAX_IMAGES_TOTAL", 5)
    project.add_images(project.classes[0].uid, train["Trouser"][:3])
    with pytest.raises(ProjectError, match="would have 6 images; at most 5"):
        project.add_images(project.classes[1].uid, train["Sneaker"][:3])


# ---- bulk import -----------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_import_one_folder_per_class(project, fashion, tmp_path):
    train, _ = fashion
    members = {f"my data/trousers/{p.name}": p.read_bytes() for p in train["Trouser"][:4]}
    members |= {f"my data/sneakers/{p.name}": p.read_bytes() for p in train["Sneaker"][:3]}
    members |= {
        "my data/sneakers/readme.txt": b"ignored: not an image",
        "__MACOSX/my data/sneakers/._x.png": b"resource fork",
        "my data/.DS_Store": b"finder",
        "my data/trousers/.hidden.png": b"dotfile",
    }
    message = project.import_zip(_zip(tmp_path / "set.zip", members))
    assert message == "Imported 7 images into 2 classes from 'set.zip'."
    assert project.names == ["trousers", "sneakers"]  # the empty default classes were dropped
    assert [len(c.images) for c in project.classes] == [4, 3]


def test_zip_import_merges_into_an_existing_class(project, fashion, tmp_path):
    train, _ = fashion
    project.rename_class(project.classes[0].uid, "Trousers")
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    members = {f"trousers/{p.name}": p.read_bytes() for p in train["Trouser"][2:4]}
    project.import_zip(_zip(tmp_path / "more.zip", members))
    assert project.names == ["Trousers"] and len(project.classes[0].images) == 4


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil/x.png": b"x"}, "unsafe path"),
        ({"/abs/x.png": b"x"}, "unsafe path"),
        ({"x.png": b"x"}, "not inside a class folder"),
        ({"docs/readme.txt": b"x"}, "holds no images"),
        ({"cats/broken.png": b"\x89PNG broken"}, "'broken.png' in class 'cats'"),
    ],
)
def test_zip_import_errors(project, tmp_path, members, message):
    with pytest.raises(ProjectError, match=message):
        project.import_zip(_zip(tmp_path / "bad.zip", members))
    assert project.n_images == 0


def test_zip_bomb_is_capped_while_reading(project, tmp_path, monkeypatch):
    monkeypatch.setattr(pj.intake, "ZIP_MAX_UNCOMPRESSED_BYTES", 2 * 2**20)
    path = _zip(tmp_path / "bomb.zip", {f"c/{i}.png": bytes(1536 * 1024) for i in range(3)})
    assert path.stat().st_size < 100_000  # 4.5 MB of zeros compress to almost nothing
    with pytest.raises(ProjectError, match="unpacks to more than 2 MB"):
        project.import_zip(path)


def test_zip_member_count_is_capped(project, tmp_path, monkeypatch):
    monkeypatch.setattr(pj.intake, "ZIP_MAX_MEMBERS", 5)
    path = _zip(tmp_path / "many.zip", {f"c/{i}.png": b"x" for i in range(6)})
    with pytest.raises(ProjectError, match="holds 6 entries; a zip may hold at most 5"):
        project.import_zip(path)


def test_not_a_zip(project, tmp_path):
    fake = tmp_path / "photos.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(ProjectError, match="'photos.zip' is not a readable zip file"):
        project.import_zip(fake)


def test_folder_import(project, fashion, tmp_path):
    train, _ = fashion
    for cls in ("Trouser", "Sneaker"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for p in train[cls][:2]:
            (tmp_path / "data" / cls / p.name).write_bytes(p.read_bytes())
    (tmp_path / "data" / ".git").mkdir()
    (tmp_path / "data" / ".git" / "x.png").write_bytes(b"ignored")
    assert "4 images into 2 classes" in project.import_folder(tmp_path / "data")
    assert sorted(project.names) == ["Sneaker", "Trouser"]


def test_a_folder_uploaded_by_a_browser(project, fashion, tmp_path):
    """The browser sends bare files (Gradio stores each under its name) plus each file's path
    inside the picked folder, in the same order."""
    train, _ = fashion
    files, rel = [], []
    for n, (cls, paths) in enumerate(
        (("Trouser", train["Trouser"][:2]), ("Sneaker", train["Sneaker"][:3]))
    ):
        for i, p in enumerate(paths):
            copy = tmp_path / f"upload{n}{i}" / "1.png"  # same bare name in both classes
            copy.parent.mkdir()
            copy.write_bytes(p.read_bytes())
            files.append(str(copy))
            rel.append(f"my-set/{cls.lower()}s/1-{i}.png")
    files.append(str(tmp_path / "upload00" / "1.png"))
    rel.append("my-set/.DS_Store/1.png")  # ignored like in a zip
    message = project.import_uploaded_folder(files, rel)
    assert message == "Imported 5 images into 2 classes from 'my-set'."
    assert {c.name: len(c.images) for c in project.classes} == {"trousers": 2, "sneakers": 3}


@pytest.mark.parametrize(
    ("files", "rel", "message"),
    [
        (["a.png"], ["set/cat/a.png", "set/dog/b.png"], "sent 1 files but the paths of 2"),
        (
            ["a.png", "b.jpg"],
            ["set/cat/a.png", "set/dog/b.png"],
            "do not match \\('set/dog/b.png'\\)",
        ),
        (["a.png"], ["a.png"], "'a.png' is not inside a class folder"),
        (["a.txt"], ["set/cat/a.txt"], "holds no images in class folders"),
    ],
)
def test_uploaded_folder_errors(project, files, rel, message):
    with pytest.raises(ProjectError, match=message):
        project.import_uploaded_folder(files, rel)
    assert project.n_images == 0


def test_close_deletes_the_stored_copies(fashion):
    train, _ = fashion
    p = Project()
    p.add_images(p.classes[0].uid, train["Trouser"][:1])
    assert p.workdir.exists()
    p.close()
    assert not p.workdir.exists()


def test_stored_copies_go_with_the_project(fashion):
    import gc

    train, _ = fashion
    p = Project()
    assert p._workdir is None  # nothing on disk until an image arrives
    p.add_images(p.classes[0].uid, train["Trouser"][:1])
    folder = p.workdir
    del p
    gc.collect()
    assert not folder.exists()


# ---- imprinting ------------------------------------------------------------------------------------
def test_imprint_needs_two_classes_with_images(project, fashion, backbone):
    train, _ = fashion
    project.remove_class(project.classes[1].uid)
    with pytest.raises(ProjectError, match="at least 2 classes"):
        project.train(backbone)
    project.add_class("empty one")
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    with pytest.raises(ProjectError, match="Class 'empty one' has no images"):
        project.train(backbone)


def test_summary_after_training(trained):
    s = trained.summary()
    assert s["classes"] == ["Sneaker", "T-shirt", "Trouser"]
    assert s["images_per_class"] == {"Sneaker": 30, "T-shirt": 30, "Trouser": 30}
    assert s["proxies_per_class"] == {"Sneaker": 20, "T-shirt": 20, "Trouser": 20}  # k = 20
    assert s["backbone"] == "efficientnet_lite0" and s["preset"] == "ours"
    assert s["accuracy"]["method"] == pj.evaluation_scheme(90) == "stratified k-fold"
    assert s["accuracy"]["accuracy"] >= 0.9
    assert set(s["seconds"]) == {"embed", "imprint", "evaluate"}


def test_the_head_says_when_images_changed_since_imprinting(backbone, fashion, tmp_path):
    train, _ = fashion
    p = Project(workdir=tmp_path / "work", n_classes=0)
    for cls in ("Trouser", "Sneaker"):
        p.add_images(p.add_class(cls).uid, train[cls][:4])
    p.train(backbone)
    assert not p.stale and "changed since" not in pj.status_line(p.summary())
    trousers = p.find("Trouser").uid
    p.remove_image(trousers, 0)
    s = p.summary()
    assert p.stale and s["stale"]
    assert s["images_per_class"] == {"Sneaker": 4, "Trouser": 4}  # what the head was built from
    assert "changed since: press **Imprint**" in pj.status_line(s)
    p.train(backbone)
    assert not p.stale and p.summary()["images_per_class"]["Trouser"] == 3
    p.rename_class(trousers, "pants")
    assert p.stale  # the head still says 'Trouser'
    p.add_class()  # an empty class changes nothing the head is imprinted from
    p.rename_class(trousers, "Trouser")
    assert not p.stale
    p.close()


def test_changing_settings_reimprints_without_embedding(trained, backbone):
    calls = []

    class Counting:  # the real backbone, counting embed calls
        name = backbone.name

        def embed(self, *args, **kwargs):
            calls.append(1)
            return backbone.embed(*args, **kwargs)

    trained.set_settings("qi")
    s = trained.imprint()
    assert s["preset"] == "qi" and set(s["proxies_per_class"].values()) == {1}
    trained.set_settings(None, gen="kmeans", k=3)
    assert trained.preset is None and trained.imprint()["proxies_per_class"]["Trouser"] == 3
    assert trained.embed(Counting()) >= 0 and calls == []  # everything was cached
    trained.set_settings("ours")
    trained.imprint()


def test_presets_keep_the_seed_and_are_recognised(project):
    assert project.preset == pj.DEFAULT_PRESET and project.settings["seed"] == 0
    project.set_settings("ours")
    project.set_settings(None, seed=7)
    assert project.preset == "ours"  # the seed is not part of a preset
    s = project.set_settings("qi")
    assert s["seed"] == 7 and project.preset == "qi"
    assert set(s) >= {"norm_pre", "gen", "k", "norm_post", "norm_inf", "agg", "distance", "m"}
    project.set_settings(None, k=3)
    assert project.preset is None
    project.set_settings(None, gen="kmeans", k=20)
    assert project.preset == "ours"


def test_bad_settings_are_refused(project):
    before = dict(project.settings)
    with pytest.raises(ProjectError, match="Unknown preset 'best'"):
        project.set_settings("best")
    with pytest.raises(ProjectError, match="gen"):
        project.set_settings(None, gen="magic")
    assert project.settings == before  # unchanged


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
                assert -1 <= c["similarity"] <= 1
            # with max aggregation over l2 proxies the winner owns the most similar proxy
            best = max(r["classes"], key=lambda c: c["similarity"])
            assert best["class"] == r["label"]
            sims = [n["similarity"] for n in r["neighbours"]]
            assert len(sims) == 6 and sims == sorted(sims, reverse=True)
            assert all(Path(n["path"]).exists() for n in r["neighbours"])
    assert correct >= 11  # of 12 held-out images


def test_predict_refuses_a_corrupt_image(trained, backbone, tmp_path):
    bad = tmp_path / "test.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ProjectError, match="'test.jpg'"):
        trained.predict(backbone, str(bad), "test.jpg")


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


def test_python_snippet_runs(trained, fashion, tmp_path, capsys):
    _, test = fashion
    path = trained.export_head(tmp_path)
    code = pj.python_snippet(str(path), trained.backbone_name)
    exec(code.replace("my_image.jpg", str(test["Trouser"][0])), {})
    assert capsys.readouterr().out.splitlines()[0] == "Trouser"


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


def test_export_before_imprint(project):
    with pytest.raises(ProjectError, match="press Imprint first"):
        project.export_head()


# ---- the /imprint API's records ------------------------------------------------------------------
def test_records_from_labels_errors():
    with pytest.raises(ProjectError, match="2 files but 1 labels"):
        pj.records_from_labels(["a.png", "b.png"], ["x"])
    with pytest.raises(
        ProjectError, match=r"Label 2 \(for 'b.png'\): A class name cannot be blank"
    ):
        pj.records_from_labels(["a.png", "b.png"], ["x", " "])
    with pytest.raises(ProjectError, match="'cat' and 'Cat' differ only in case"):
        pj.records_from_labels(["a.png", "b.png"], ["cat", "Cat"])
    with pytest.raises(ProjectError, match="list of class names"):
        pj.records_from_labels(["a.png"], "cat")
    assert pj.records_from_labels([{"path": "/x/a.png"}], [" cat "]) == [
        ("cat", "a.png", "/x/a.png")
    ]


def test_view_lists_cards_with_thumbnails(project, fashion):
    train, _ = fashion
    project.add_images(project.classes[0].uid, train["Trouser"][:3])
    v1 = project.view(max_thumbs=2)
    card = v1["classes"][0]
    assert card["n"] == 3 and len(card["thumbs"]) == 2 and Path(card["thumbs"][0]).exists()


def test_png_roundtrip_keeps_pixels(fashion):
    train, _ = fashion
    src = train["Trouser"][0]
    img = pj.prepare_image(str(src), src.name)
    back = Image.open(io.BytesIO(pj.intake._png_bytes(img)))
    assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(img))


def test_a_backbone_that_cannot_load_falls_back_to_the_built_in_one():
    backbone, message = pj.backbone_or_default("no-such-model")
    assert backbone.name == pj.default_backbone_name() == "efficientnet_lite0"
    assert message.startswith("The backbone 'no-such-model' cannot be loaded: Unknown backbone")
    assert message.endswith("Keeping the built-in 'efficientnet_lite0'.")
    assert pj.backbone_names()[0] == "efficientnet_lite0"


def test_text_for_the_app(trained):
    s = trained.summary()
    assert pj.status_line(s).startswith("Imprinted 3 classes from 90 images (60 proxies) in ")
    assert "(stratified k\\-fold)" in pj.status_line(s)  # Markdown-escaped
    assert "| **total** | **90** | **60** |" in pj.summary_markdown(s)
    assert pj.accuracy_markdown(s).startswith("### Accuracy on your own images: ")
    rows = pj.per_class_rows(s)
    assert [r[0] for r in rows] == ["Sneaker", "T-shirt", "Trouser"] and rows[0][1] == 30
    empty = Project(n_classes=2).summary()
    assert pj.per_class_rows(empty) is None and "press **Imprint**" in pj.status_line(empty)


def test_geometry_figures_and_k_curve(trained):
    g = trained.geometry("pca", 2)
    names = [t.name or "" for t in g["figure"].data]
    assert any("proxies" in n.lower() for n in names)
    assert len(g["cosines"].data) == 2  # the classes' cosines beside the ideal simplex
    assert g["dispersion"].data
    raw = trained.geometry("pca", 2, normalize=False)
    assert raw["figure"].data[0].x.tolist() != g["figure"].data[0].x.tolist()
    figure, curve = trained.k_curve()
    assert {t.name for t in figure.data} >= {"kmeans", "kmedoids", "random", "fps"}
    assert curve["cv_description"]


# ---- one state: versions, all-or-nothing changes, views ----------------------------------------
def stored_files(project: Project) -> set[str]:
    return {p.name for p in project.workdir.glob("*.png")}


def test_every_edit_changes_the_version_and_a_refused_one_nothing(project, fashion, tmp_path):
    train, _ = fashion
    uid = project.classes[0].uid
    v = project.version
    project.add_images(uid, train["Trouser"][:2])
    assert project.version > v
    v, before = project.version, stored_files(project)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"nonsense")
    with pytest.raises(ProjectError, match="'broken.png'"):
        project.add_images(uid, train["Trouser"][2:6] + [bad])  # four good files, then a bad one
    assert project.version == v
    assert len(project.get(uid).images) == 2
    assert stored_files(project) == before  # the four checked copies did not stay behind


def test_a_refused_import_leaves_no_file_and_no_change(project, fashion, tmp_path):
    train, _ = fashion
    project.add_images(project.classes[0].uid, train["Trouser"][:2])
    names, before = project.names, stored_files(project)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in train["Sneaker"][:5]:
            zf.write(path, f"shoes/{Path(path).name}")
        zf.writestr("bags/bad.png", b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ProjectError, match="bad.png"):
        project.import_zip(archive)
    assert project.names == names and stored_files(project) == before


def test_a_transaction_restores_everything_on_error(trained, backbone):
    head, settings, serial = trained.head, dict(trained.settings), trained.head_serial
    with pytest.raises(ProjectError):
        with trained.transaction():
            trained.reset()
            trained.set_settings("qi")
            raise ProjectError("refused")
    assert trained.head is head and trained.settings == settings
    assert trained.head_serial == serial and trained.summary()["images"] == 90


@pytest.mark.parametrize("side", ["norm_pre", "norm_inf"])
def test_whiten_on_one_side_sets_the_other_and_says_so(project, side):
    other = {"norm_pre": "norm_inf", "norm_inf": "norm_pre"}[side]
    project.set_settings("ours")  # both sides l2
    settings = project.set_settings(None, **{side: "whiten"})
    assert settings["norm_pre"] == settings["norm_inf"] == "whiten"
    assert f"{other} was set to whiten too" in project.settings_note
    settings = project.set_settings(None, **{side: "l2"})  # and back together
    assert settings["norm_pre"] == settings["norm_inf"] == "l2"


def test_one_evaluation_scheme_for_every_preset(backbone, fashion, tmp_path):
    """Issue 9: leave-one-out for some presets and k-fold for others made accuracies that
    could not be compared."""
    train, _ = fashion
    p = Project(workdir=tmp_path, n_classes=0)
    for cls in ("Trouser", "Sneaker"):
        p.add_images(p.add_class(cls).uid, train[cls][:20])
    p.embed(backbone)
    methods = set()
    for preset in ("ours", "qi", "oracle", "auto"):
        p.set_settings(preset)
        methods.add(p.imprint()["accuracy"]["method"])
    assert methods == {pj.evaluation_scheme(40)} == {"stratified k-fold"}


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


def test_example_replaces_the_project_and_undo_brings_it_back(fashion, tmp_path):
    from imprint_core.session import examples as ex

    train, _ = fashion
    p = Project(workdir=tmp_path)
    uid = p.classes[0].uid
    p.rename_class(uid, "mine")
    p.add_images(uid, train["Trouser"][:3])
    mine = stored_files(p)
    message = ex.load_example(p, "fashion3")
    assert "Undo" in message and "mine" not in p.names
    assert pj.views(p)["undo"].startswith("Undo: bring back your 3 images")
    assert mine <= stored_files(p)  # kept while an undo may need them
    p.undo_replace()
    assert p.names == ["mine", "Class 2"] and len(p.get(uid).images) == 3
    assert stored_files(p) == mine and p.undo is None
    with pytest.raises(ProjectError, match="nothing to undo"):
        p.undo_replace()


def test_an_empty_project_is_replaced_without_an_undo(tmp_path):
    from imprint_core.session import examples as ex

    p = Project(workdir=tmp_path)
    assert "Undo" not in ex.load_example(p, "fashion3") and p.undo is None


def test_views_follow_the_head(trained, backbone, fashion):
    """Try it, Geometry, Export are views of the current head: a new head updates or clears
    them (issue 9: Try it kept "nearest proxy 1 of 4" after the preset changed to Qi)."""
    _, test = fashion
    trained.set_settings("ours")
    trained.imprint()
    trained.predict(backbone, str(test["Sneaker"][0]), "probe.png")
    trained.geometry("pca", 2)
    trained.export_head()
    zipped = pj.save_project(trained, trained.workdir / "saved" / "p.zip")
    v = pj.views(trained)
    assert v["evidence"][0][2].endswith("of 20") and v["map"] is not None
    assert v["head_file"] and "probe" in v["try_note"]
    assert v["project_file"] == str(zipped) and v["project_note"] == ""
    trained.set_settings("qi")
    trained.imprint()
    v = pj.views(trained)
    assert all(row[2] == "1 of 1" for row in v["evidence"])  # Qi: one proxy per class
    proxies = [t for t in v["map"].data if (t.name or "").endswith(" proxies")]  # per class
    assert sum(len(t.x) for t in proxies) == 3
    assert v["head_file"] is None and "download it again" in v["head_note"]
    # the saved zip held the k-means head: withdrawn too (it was left on the page before)
    assert v["project_file"] is None and "save it again" in v["project_note"]
    trained.set_settings("ours")
    trained.imprint()


def test_a_saved_project_is_withdrawn_when_its_classes_change(trained):
    """The project zip is a view too: renaming a class (the head unchanged) withdraws it."""
    zipped = pj.save_project(trained, trained.workdir / "saved" / "p.zip")
    assert pj.views(trained)["project_file"] == str(zipped)
    first = trained.classes[0]
    old = first.name
    trained.rename_class(first.uid, old + " 2")
    v = pj.views(trained)
    assert v["project_file"] is None and "save it again" in v["project_note"]
    trained.rename_class(first.uid, old)  # the same project again: the same zip is current
    assert pj.views(trained)["project_file"] == str(zipped)


def test_predict_many_has_a_count_limit(trained, backbone, fashion):
    _, test = fashion
    files = [(str(p), p.name) for p in test["Sneaker"]][:1] * (pj.MAX_PREDICT_FILES + 1)
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_PREDICT_FILES}"):
        trained.predict_many(backbone, files)


def test_user_strings_are_text_in_every_text_builder():
    hostile = "<img src=http://127.0.0.1:1/x> [Log in](http://evil) *b* | c"
    s = {
        "classes": [hostile],
        "accuracy": None,
        "head": "<b>head</b>.safetensors",
        "backbone": "efficientnet_lite0",
        "preset": "custom",
        "settings": {"gen": "kmeans"},
        "images_per_class": {},
        "proxies_per_class": {hostile: 2},
        "images": 0,
        "proxies": 2,
        "seconds": {},
    }
    for text in (pj.summary_markdown(s), pj.status_line(s)):
        assert "<img" not in text and "<b>" not in text and "](" not in text
        assert "&lt;img" in text or "&lt;b&gt;" in text
    assert "\\|" in pj.summary_markdown(s)  # a '|' in a name cannot end its table cell
    assert pj.escape_html("<a href=x>") == "&lt;a href=x&gt;"


def test_sweep_removes_old_session_folders_only(tmp_path):
    import os
    import time

    old = tmp_path / f"{pj.quotas.WORKDIR_PREFIX}dead"
    new = tmp_path / f"{pj.quotas.WORKDIR_PREFIX}alive"
    other = tmp_path / "someone-else"
    for folder in (old, new, other):
        folder.mkdir()
        (folder / "a.png").write_bytes(b"x")
    past = time.time() - pj.SESSION_TTL_S - 60
    for path in (old, old / "a.png", other, other / "a.png"):
        os.utime(path, (past, past))
    assert pj.sweep_workdirs(root=tmp_path) == [old]
    assert not old.exists() and new.exists() and other.exists()


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
