"""`imprint predict`: CSV rows on real images (Fashion-MNIST PNGs, photos, a zip, broken files),
`--sort-into`, `--resume` after a killed run, and the refusals that leave no file."""

from __future__ import annotations

import hashlib
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pile_data import fit_head, make_pile, read_csv, read_source, write_fashion_folder

import imprint_core as ic
from imprint_core.cli import main

pytestmark = pytest.mark.fashion_mnist
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    path = tmp_path_factory.mktemp("head") / "fashion3.safetensors"
    fit_head(path)
    return path


@pytest.fixture(scope="module")
def pile(tmp_path_factory):
    return make_pile(tmp_path_factory.mktemp("pile"))


@pytest.fixture(scope="module")
def run(head, pile, tmp_path_factory):
    """One CLI run over the whole pile: (CSV rows by path, what it printed)."""
    out = tmp_path_factory.mktemp("run") / "predictions.csv"
    capture = tmp_path_factory.mktemp("run") / "stdout.txt"
    with open(capture, "w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "imprint_core.cli", "predict", str(head), *pile.inputs]
            + ["-o", str(out), "--batch-size", "5"],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    return read_csv(out), capture.read_text(), proc.stderr


@pytest.mark.slow  # a real subprocess with its own model load
def test_one_row_per_image_and_an_error_row_per_broken_file(run, pile):
    rows, printed, progress = run
    assert set(rows) == set(pile.truth) | set(pile.errors) | set(pile.photos)
    for name, words in pile.errors.items():
        row = rows[name]
        assert words in row["error"] and repr(name) in row["error"], row["error"]
        assert row["label"] == row["probability"] == row["none_of_these"] == ""
    for name in set(rows) - set(pile.errors):
        assert rows[name]["error"] == ""
    n = len(rows)
    assert f"{n} images ({n} new)" in printed and "; 3 errors" in printed
    assert f"left out {pile.left_out} files that are not images" in printed
    assert f"{n}/{n}" in progress and "img" in progress  # the tqdm bar


@pytest.mark.slow  # a real subprocess with its own model load
def test_labels_agree_with_the_library(run, pile, head):
    """The CSV says what ImprintClassifier says about the same images' embeddings."""
    rows, _, _ = run
    names = sorted(set(rows) - set(pile.errors))
    clf = ic.ImprintClassifier.load(head)
    X = ic.get_backbone().embed([read_source(n, pile) for n in names], cache=False)
    proba, labels = clf.predict_proba(X), clf.predict(X)
    score, unknown = clf.unknown_score(X), clf.is_unknown(X)
    for i, name in enumerate(names):
        row = rows[name]
        assert row["label"] == labels[i], name
        order = np.argsort(-proba[i])
        got = [float(row[k]) for k in ("probability", "probability_2", "probability_3")]
        np.testing.assert_allclose(got, proba[i][order], atol=1e-4)
        if proba[i][order[1]] - proba[i][order[2]] > 1e-3:  # not a near-tie
            assert [row["label_2"], row["label_3"]] == list(clf.classes_[order[1:]])
        assert float(row["unknown_score"]) == pytest.approx(score[i], abs=1e-4)
        if abs(score[i] - clf.unknown_threshold_) > 1e-3:
            assert row["none_of_these"] == ("true" if unknown[i] else "false")
    fashion = [rows[n]["label"] == cls for n, cls in pile.truth.items()]
    assert np.mean(fashion) >= 0.85, np.mean(fashion)  # a real head on real images
    assert all(rows[p]["none_of_these"] == "true" for p in pile.photos)  # a temple, a flower


def _digests(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_sort_into_copies_every_image_into_its_class_folder(run, pile, head, tmp_path, capsys):
    rows, _, _ = run
    originals = _digests(
        p for d in (pile.folder, pile.examples) for p in d.rglob("*") if p.is_file()
    )
    originals |= _digests([pile.archive, pile.photo])
    target, out = tmp_path / "sorted", tmp_path / "p.csv"
    assert (
        main(["predict", str(head), *pile.inputs, "-o", str(out), "--sort-into", str(target)]) == 0
    )
    assert "sorted into" in capsys.readouterr().out
    assert _digests(originals) == originals  # nothing moved or changed
    sorted_rows = read_csv(out)
    expected: dict[str, list[bytes]] = {}
    for name, row in sorted_rows.items():
        if not row["error"]:
            folder = "none-of-these" if row["none_of_these"] == "true" else row["label"]
            expected.setdefault(folder, []).append(read_source(name, pile))
    got = {d.name: sorted(f.read_bytes() for f in d.iterdir()) for d in target.iterdir()}
    assert got == {k: sorted(v) for k, v in expected.items()}
    assert set(got) <= {"T-shirt", "Trouser", "Sneaker", "none-of-these"}
    assert {f.name for f in (target / "none-of-these").iterdir()} >= {"china.jpg", "flower.jpg"}
    twin = sorted_rows[str(pile.folder / "a" / "twin.png")]["label"]
    assert (target / twin / "twin.png").is_file() and (target / twin / "twin-2.png").is_file()


def test_sort_into_hard_links(pile, head, tmp_path):
    folder = tmp_path / "few"
    truth = write_fashion_folder(folder, per_class=1)
    target = tmp_path / "linked"
    args = ["predict", str(head), str(folder), str(pile.archive), "-o", str(tmp_path / "l.csv")]
    assert main(args + ["--sort-into", str(target), "--link"]) == 0
    placed = {f.name: f for f in target.rglob("*") if f.is_file()}
    for name in truth:
        copy = placed[Path(name).name]
        assert copy.stat().st_ino == Path(name).stat().st_ino  # the same file, not a copy
    flower = placed["flower.jpg"]  # a zip member is written out
    assert flower.stat().st_nlink == 1 and flower.stat().st_size > 1000


def _start(head, folder, out, *extra):
    cmd = [sys.executable, "-m", "imprint_core.cli", "predict", str(head), str(folder)]
    cmd += ["-o", str(out), "--batch-size", "4", *extra]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        # a run started in the background by a shell (CI) inherits SIGINT ignored, and then
        # Python installs no Ctrl-C handler in the child: give the child the default back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stop_after(proc, out: Path, rows: int, sig: int) -> None:
    """Send ``sig`` once ``out`` holds more than ``rows`` rows."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") - 1 > rows:
            break
        time.sleep(0.02)
    proc.send_signal(sig)


@pytest.mark.slow  # real subprocesses, each with its own model load
def test_resume_after_a_killed_run(head, tmp_path):
    """A real run killed half-way, then one stopped with Ctrl-C, then --resume: rows before each
    stop stay, the rest follow, every image once, the labels of a run of the library."""
    folder = tmp_path / "many"
    write_fashion_folder(folder, per_class=120)  # 360 images
    out = tmp_path / "killed.csv"
    proc = _start(head, folder, out)
    _stop_after(proc, out, 40, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    before = out.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]
    assert 40 <= kept.count(b"\n") - 1 < 360
    proc = _start(head, folder, out, "--resume")
    _stop_after(proc, out, kept.count(b"\n") + 40, signal.SIGINT)
    printed = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 130 and "with --resume goes on" in printed, printed
    interrupted = out.read_bytes()
    assert interrupted.startswith(kept) and interrupted.endswith(b"\n")
    assert kept.count(b"\n") < interrupted.count(b"\n") - 1 < 360
    assert main(["predict", str(head), str(folder), "-o", str(out), "--resume"]) == 0
    assert out.read_bytes().startswith(interrupted)  # rows written before each stop are kept
    rows = read_csv(out)
    lib = {r.path: r for r in ic.predict_files(head, folder)}
    assert set(rows) == set(lib) and len(rows) == 360
    for name, row in rows.items():
        assert row["label"] == lib[name].label
        assert float(row["probability"]) == pytest.approx(lib[name].probability, abs=1e-4)


def test_resume_drops_a_half_written_line(head, pile, tmp_path, capsys):
    out = tmp_path / "cut.csv"
    args = ["predict", str(head), str(pile.archive), "-o", str(out)]
    assert main(args) == 0
    full = read_csv(out)
    data = out.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    second_last = data[:last].rfind(b"\n")
    out.write_bytes(data[: second_last + 1] + data[second_last + 1 : last][:12])  # 1.5 rows gone
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "(2 new, " in capsys.readouterr().out
    rows = read_csv(out)
    assert set(rows) == set(full)
    for name, row in rows.items():
        assert row["label"] == full[name]["label"] and row["error"] == full[name]["error"]


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/1.png", bytes(50 * 2**20))  # 50 MB of zeros, about 50 KB stored
    return path


def _refused(argv: list[str], capsys, *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    return err


def test_refusals_are_sentences_and_leave_no_file(head, pile, tmp_path, capsys):
    out = tmp_path / "none.csv"
    base = ["predict", str(head)]
    bomb = _zip_bomb(tmp_path / "bomb.zip")
    _refused([*base, str(bomb), "-o", str(out)], capsys, "bomb.zip", "zip bomb", "100 times")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    _refused([*base, str(empty), "-o", str(out)], capsys, "No images in", ".png")
    missing = tmp_path / "missing"
    _refused([*base, str(missing), "-o", str(out)], capsys, repr(str(missing)), "does not exist")
    _refused([*base, str(pile.photo), "-o", str(tmp_path / "x.txt")], capsys, "must end in .csv")
    _refused(
        [*base, str(pile.photo), "-o", str(out), "--backbone", "resnet18"],
        capsys,
        "imprinted on backbone 'efficientnet_lite0'",
    )
    _refused([*base, "s3://bucket/photos", "-o", str(out)], capsys, "only engine 'ray'")
    _refused([*base, str(pile.photo), "-o", str(out), "--link"], capsys, "--sort-into")
    inside = pile.folder / "sorted"
    _refused(
        [*base, str(pile.folder), "-o", str(out), "--sort-into", str(inside)],
        capsys,
        "inside the input folder",
    )
    not_a_head = tmp_path / "head.safetensors"
    not_a_head.write_bytes(b"{}")
    _refused(
        ["predict", str(not_a_head), str(pile.photo), "-o", str(out)], capsys, "head.safetensors"
    )
    assert not out.exists() and not inside.exists()
    out.write_text("path\n")
    _refused([*base, str(pile.photo), "-o", str(out)], capsys, "exists", "--resume", "--overwrite")
    _refused([*base, str(pile.photo), "-o", str(out), "--resume"], capsys, "not a predictions CSV")
    assert out.read_text() == "path\n"


def _claiming_zip(path: Path, entries: int, claim: int) -> Path:
    """A zip whose directory lists ``entries`` entries and whose zip64 end records claim
    ``claim`` of them."""
    name = b"c/0.png"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
    )
    directory = (central + name) * entries
    start = len(local)
    eocd64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, claim, claim, len(directory), start
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, start + len(directory), 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(local + directory + eocd64 + locator + eocd)
    return path


def test_a_zip_claiming_too_many_entries_is_refused_from_its_end_record(head, tmp_path, capsys):
    """The entry count comes from the end record, before zipfile parses the directory."""
    from imprint_core.zips import MAX_ENTRIES, zip_directory

    path = _claiming_zip(tmp_path / "liar.zip", 3, MAX_ENTRIES + 1)
    assert zip_directory(path)[0] == MAX_ENTRIES + 1
    out = tmp_path / "x.csv"
    _refused(
        ["predict", str(head), str(path), "-o", str(out)],
        capsys,
        f"holds {MAX_ENTRIES + 1:,} entries; a zip may hold at most {MAX_ENTRIES:,}",
    )
    assert not out.exists()


def test_a_hub_head_that_cannot_load_offline_says_so(tmp_path, capsys):
    from imprint_core.backbones import weights_cached

    if weights_cached("resnet18"):
        pytest.skip("resnet18's weights are cached here: it loads offline")
    rng = np.random.default_rng(0)
    clf = ic.ImprintClassifier().fit(rng.normal(size=(6, 512)), ["a", "b"] * 3)
    clf.save(tmp_path / "r18.safetensors", backbone="resnet18")
    out = tmp_path / "r.csv"
    err = _refused(
        ["predict", str(tmp_path / "r18.safetensors"), str(tmp_path), "-o", str(out)],
        capsys,
        "imprinted on 'resnet18', a hub model",
        "HF_HUB_OFFLINE",
    )
    assert "efficientnet_lite0" in err and not out.exists()  # names the offline alternative
