"""What a class card of 40 phone photos sends to the browser: the stored originals (what the card
showed when intake began keeping the files as sent), the display thumbnails it shows now, and the
PNG copies intake stored before that; with what making the thumbnails costs at intake.

    python benchmarks/bench_thumbs.py [PHOTOS] [--n 40] [--repeats 3]

PHOTOS: a folder with one sub-folder of real photos per class (default: scikit-learn's two
sample photos as two classes). Each photo is made a 12-megapixel JPEG of about 4 MB
(``bench_session.make_photos``) in a temporary folder deleted afterwards. One class of ``--n``
photos is added to a ``Project`` (the app's session state) ``--repeats`` times with thumbnails
and, in the same run, with the thumbnail writer replaced by a no-op (the intake before
thumbnails), wall and CPU time; then one thumbnail is timed alone from each decoded picture.
Medians and ratios are printed with the machine (CPU model, cores, load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_session import make_photos  # noqa: E402

SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def _sample_photos(folder: Path) -> Path:
    """scikit-learn's two sample photos as two class folders."""
    from sklearn import datasets

    images = Path(datasets.__file__).parent / "images"
    for name in SKLEARN_PHOTOS:
        (folder / Path(name).stem).mkdir(parents=True)
        shutil.copy(images / name, folder / Path(name).stem / name)
    return folder


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _intake(files: list[Path], thumbs: bool) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds to add ``files`` to one class, and the bytes of what the card shows
    and stores."""
    from imprint_core.session import Project, uploads
    from imprint_core.session.intake import _png_bytes, prepare_image

    writer = uploads.write_thumbnail
    if not thumbs:
        uploads.write_thumbnail = lambda path, picture: None
    try:
        with tempfile.TemporaryDirectory() as work:
            project = Project(workdir=work, n_classes=1)
            uid = project.classes[0].uid
            start, cpu = time.perf_counter(), time.process_time()
            project.add_images(uid, files)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            items = project.get(uid).images
            sizes = {"originals": sum(i.path.stat().st_size for i in items)}
            if thumbs:
                card = project.card(uid, max_thumbs=len(items))
                sizes["thumbnails"] = sum(Path(t).stat().st_size for t in card["thumbs"])
                sizes["png copies"] = sum(
                    len(_png_bytes(prepare_image(str(i.path), i.name))) for i in items
                )
            project.close()
    finally:
        uploads.write_thumbnail = writer
    return seconds, cpu, sizes


def _thumbnail_ms(files: list[Path]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of making one thumbnail from a decoded picture."""
    from imprint_core.session.intake import prepare_image
    from imprint_core.session.thumbnails import thumbnail_bytes

    wall, cpu = [], []
    for path in files:
        picture = prepare_image(str(path), path.name)
        start, begun = time.perf_counter(), time.process_time()
        thumbnail_bytes(picture)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - begun)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="?", type=Path)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.photos or _sample_photos(Path(tmp) / "source")
        out = Path(tmp) / "phone"
        out.mkdir()
        photos = make_photos(source, out, args.n, classes=1)
        files = next(iter(photos.values()))
        _intake(files[:2], True)  # warm-up: imports, first decode
        runs: dict[bool, list[float]] = {True: [], False: []}
        cpus: dict[bool, list[float]] = {True: [], False: []}
        sizes: dict[str, int] = {}
        for _ in range(args.repeats):
            for thumbs in (False, True):  # alternated: both see the same load
                seconds, cpu, measured = _intake(files, thumbs)
                runs[thumbs].append(seconds)
                cpus[thumbs].append(cpu)
                sizes.update(measured)
        one_wall, one_cpu = _thumbnail_ms(files)
    with_thumbs, without = (statistics.median(runs[k]) for k in (True, False))
    cpu_with, cpu_without = (statistics.median(cpus[k]) for k in (True, False))
    report = {
        "photos": args.n,
        "card bytes (MB)": {k: round(v / 2**20, 2) for k, v in sizes.items()},
        "card bytes per photo (kB)": {k: round(v / args.n / 1e3, 1) for k, v in sizes.items()},
        "originals / thumbnails": round(sizes["originals"] / sizes["thumbnails"], 1),
        "intake wall s (median)": {
            "with thumbnails": round(with_thumbs, 3),
            "without": round(without, 3),
            "ratio": round(with_thumbs / without, 3),
        },
        "intake CPU s (median)": {
            "with thumbnails": round(cpu_with, 3),
            "without": round(cpu_without, 3),
            "ratio": round(cpu_with / cpu_without, 3),
        },
        "one thumbnail from the decoded picture (ms, median)": {
            "wall": round(one_wall, 2),
            "cpu": round(one_cpu, 2),
        },
        "repeats": args.repeats,
        "cpu": f"{_cpu()}, {os.cpu_count()} cores",
        "load average (start, end)": [round(load[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
