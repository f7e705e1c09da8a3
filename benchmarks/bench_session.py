"""Teach with phone photos: 100 twelve-megapixel JPEGs from the drop to a ready head and Result,
then the accuracy-vs-k curve and the advice, for this checkout and another revision in one run.

    python benchmarks/bench_session.py PHOTOS [--n 100] [--classes 4] [--compare main]

PHOTOS is a folder with one sub-folder of real photos per class (any size). Each photo is
upscaled to 4,032 x 3,024 (a 12-megapixel phone camera), given sensor-like noise and saved as a
JPEG of 3-4 MB (every fourth one with an EXIF rotation, as a phone held upright writes) in a
temporary folder that is deleted afterwards. A ``Project`` (the app's session state, no Gradio)
then runs what the Teach tab runs: ``add_images`` per class (intake: checks and stored copies),
``train`` (embed with the built-in backbone, imprint with the default preset, evaluate) and the
views (Result), then what the Geometry tab's curve button runs: ``k_curve`` (the curve of the
head's own settings) and the advice (``advised_settings``).

``--compare REV`` runs the same steps on the same photos with the package of git revision REV
(``git archive`` into a temporary folder, in a child process) before this checkout's, so both
see the same machine; ``--rounds N`` alternates N child processes of each (REV, this, REV, ...)
so that both see the same load. Each child warms up (the engine's first call, a small project
taught and its views drawn), then times ``--repeats`` fresh projects; the medians of all runs
are printed with their ratios, and the machine (CPU model, cores, load average) with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PHONE = (4032, 3024)  # 12.2 megapixels
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


# ---- photos ----------------------------------------------------------------------------------------
def make_photos(source: Path, out: Path, n: int, classes: int, seed: int = 0) -> dict[str, list]:
    """``{class: [paths]}``: ``n`` phone-sized JPEGs made from the photos of ``classes`` class
    folders of ``source`` (round-robin over the classes)."""
    from PIL import Image, ImageChops

    folders = sorted(p for p in source.iterdir() if p.is_dir())[:classes]
    if len(folders) < classes:
        raise SystemExit(f"{source} has {len(folders)} class folders; --classes {classes}.")
    rng = np.random.default_rng(seed)
    # one noise field around 128, shifted per photo and added by Pillow (drawing and adding 36
    # million normals per photo in numpy costs seconds)
    field = rng.normal(128, 5.5, (PHONE[1] + 64, PHONE[0] + 64, 3))
    noise = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    files = {
        f.name: sorted(p for p in f.iterdir() if p.suffix.lower() in SUFFIXES) for f in folders
    }
    out_files: dict[str, list[Path]] = {name: [] for name in files}
    for i in range(n):
        name = folders[i % classes].name
        src = files[name][(i // classes) % len(files[name])]
        with Image.open(src) as im:
            photo = im.convert("RGB")
        if photo.width < photo.height:
            photo = photo.rotate(90, expand=True)  # the sensor is landscape
        photo = photo.resize(PHONE, Image.Resampling.BICUBIC)
        dx, dy = (int(v) for v in rng.integers(0, 64, 2))
        grain = noise.crop((dx, dy, dx + PHONE[0], dy + PHONE[1]))
        photo = ImageChops.add(photo, grain, scale=1.0, offset=-128)
        exif = Image.Exif()
        exif[0x0112] = 6 if i % 4 == 3 else 1  # Orientation
        path = out / f"IMG_{i:04d}.jpg"
        photo.save(path, "JPEG", quality=94, exif=exif.tobytes())
        out_files[name].append(path)
    return out_files


# ---- one run of the Teach steps (in the process of the implementation measured) --------------
def run(photos: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    from imprint_core.modes import _ADVICE_CACHE
    from imprint_core.session import Project, load_backbone
    from imprint_core.session.views import views

    bb = load_backbone(None)
    first = next(iter(photos.values()))[0]
    bb.embed([first], cache=False)  # warm-up: the engine's first call
    with tempfile.TemporaryDirectory() as work:  # and the views' first figures (imports)
        project = Project(workdir=work, n_classes=0)
        _teach(project, {name: files[:2] for name, files in list(photos.items())[:2]}, bb, views)
        project.close()
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        _ADVICE_CACHE.clear()  # the advice is memoised by its data: measured as computed
        with tempfile.TemporaryDirectory() as work:
            project = Project(workdir=work, n_classes=0)
            clock = _teach(project, photos, bb, views)
            project.close()
        for key in clock.wall:
            times.setdefault(f"{key}|wall", []).append(clock.wall[key])
            times.setdefault(f"{key}|cpu", []).append(clock.cpu[key])
    return times


def _teach(project, photos: dict[str, list[str]], bb, views) -> _Clock:
    """The Teach steps, then the curve and the advice, timed."""
    clock = _Clock()

    def drop():
        for name, files in photos.items():
            project.add_images(project.add_class(name).uid, files)

    clock.time("intake", drop)
    clock.time("embed + imprint + evaluate", lambda: project.train(bb))
    clock.time("views (Result)", lambda: views(project))
    clock.total("drop to ready head and Result", clock.steps[:])
    clock.time("accuracy-vs-k curve", project.k_curve)
    clock.time("advice", project.advised_settings)
    clock.total("curve + advice", clock.steps[-2:])
    n = sum(len(f) for f in photos.values())
    clock.wall["intake per image (ms)"] = 1000 * clock.wall["intake"] / n
    clock.cpu["intake per image (ms)"] = 1000 * clock.cpu["intake"] / n
    return clock


class _Clock:
    """Wall time and this process's CPU time (every thread) of named steps."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.steps: list[str] = []

    def time(self, name: str, fn) -> None:
        w, c = time.perf_counter(), time.process_time()
        fn()
        self.wall[name] = time.perf_counter() - w
        self.cpu[name] = time.process_time() - c
        self.steps.append(name)

    def total(self, name: str, steps: list[str]) -> None:
        self.wall[name] = sum(self.wall[s] for s in steps)
        self.cpu[name] = sum(self.cpu[s] for s in steps)


def _other_revision(rev: str, folder: Path) -> Path:
    """The package of git revision ``rev``, extracted into ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "imprint_core", "assets"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _child(code_root: Path, photos_json: Path, repeats: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(photos_json), "--repeats", str(repeats)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=str(code_root),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load} (1, 5, 15 min)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path, help="a folder with one sub-folder of photos per class")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="fresh projects per child process")
    ap.add_argument("--rounds", type=int, default=1, help="child processes per revision, in turn")
    ap.add_argument("--compare", default="main", help="git revision to compare with ('' = none)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # photos is the JSON list of the photos; print the times as JSON
        photos = json.loads(Path(args.photos).read_text())
        print(json.dumps(run(photos, args.repeats)))
        return
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        t = time.perf_counter()
        photos = make_photos(args.photos, tmp / "photos", args.n, args.classes)
        sizes = [p.stat().st_size / 2**20 for files in photos.values() for p in files]
        print(
            f"{args.n} JPEGs of {PHONE[0]} x {PHONE[1]} in {args.classes} classes, "
            f"{min(sizes):.1f}-{max(sizes):.1f} MB (median {statistics.median(sizes):.1f}), "
            f"made in {time.perf_counter() - t:.0f} s"
        )
        listing = tmp / "photos.json"
        listing.write_text(json.dumps({k: [str(p) for p in v] for k, v in photos.items()}))
        roots = {}
        if args.compare:
            (tmp / "before").mkdir()
            roots[args.compare] = _other_revision(args.compare, tmp / "before")
        roots["this checkout"] = ROOT
        results: dict[str, dict[str, list[float]]] = {name: {} for name in roots}
        for _ in range(args.rounds):  # the revisions take turns: both see the same load
            for name, root in roots.items():
                for key, values in _child(root, listing, args.repeats).items():
                    results[name].setdefault(key, []).extend(values)
    runs = args.rounds * args.repeats
    print(f"Medians of {runs} runs; load average after: {os.getloadavg()}")
    names = list(results)
    for kind in ("wall", "cpu"):
        what = "wall time" if kind == "wall" else "CPU time of the process (all its threads)"
        print(f"\n{what}")
        head = "".join(f"{n:>16s}" for n in names) + ("   ratio" if len(names) > 1 else "")
        print(f"  {'step':34s}{head}")
        for key in [k for k in results[names[-1]] if k.endswith(f"|{kind}")]:
            meds = [statistics.median(results[n][key]) for n in names]
            label = key.split("|")[0]
            unit = "" if "(ms)" in label else " s"
            row = "".join(f"{m:14.2f}{unit:2s}" for m in meds)
            ratio = f"  {meds[0] / meds[-1]:5.1f}x" if len(meds) > 1 and meds[-1] > 0 else ""
            print(f"  {label:34s}{row}{ratio}")


if __name__ == "__main__":
    main()
