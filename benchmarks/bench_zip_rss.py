"""Memory and time of refused zip imports (issue 11 §3), the streaming intake against the
obvious alternative (read every member, then validate: what the intake did before).

    python benchmarks/bench_zip_rss.py [--imports 12] [--old-imports 4]

1. Zip bombs: a zip of 49 members of 10 MB each (a few hundred KB compressed) is imported 12 times
   into one Project and refused each time. Two zips: "zeros" (every member is 10 MB of zeros named
   .png, the attack as reported) and "padded" (48 valid PNGs padded to 10 MB after their end, then
   one broken member: every member is read and decoded before the refusal, the worst case for a
   streaming reader). Each method runs in its own process; the script reports the process's RSS
   growth after the imports (each in a worker thread, as the web server runs requests), its peak
   (VmHWM) and the RSS after ``malloc_trim(0)``. glibc keeps
   freed heap pages mapped for reuse, so RSS after many large, short-lived allocations overstates
   what the process holds; ``malloc_trim(0)`` returns them to the system, the fair reading of what
   is still in use (the app can call it after a refused import).
2. A zip whose central directory lists 1,000,000 entries: time to refuse it from the end record
   (``intake.zip_directory``) against ``zipfile.ZipFile`` parsing the directory (medians of 3).

The machine running this may be shared: say so beside any figure.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

MEMBER_BYTES = 10 * 2**20 - 64 * 2**10  # just under the 10 MB per-image limit
N_MEMBERS = 49


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def make_zip(path: Path, kind: str) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(buf, "PNG")
    png = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(N_MEMBERS):
            cls = "ab"[i % 2]
            if kind == "zeros" or i == N_MEMBERS - 1:
                data = bytes(MEMBER_BYTES)  # not an image: refused when decoded
            else:  # a valid PNG; Pillow ignores what follows its IEND chunk
                data = png + bytes(MEMBER_BYTES - len(png))
            zf.writestr(f"{cls}/{i:02d}.png", data)
    return path


def old_import(zip_path: Path) -> None:
    """The alternative: read every member into memory, then validate each (the former intake)."""
    from imprint_core.session.intake import prepare_image

    staged = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            staged.append((info.filename, zf.read(info)))
    for name, data in staged:
        prepare_image(data, name)


def child(method: str, zip_path: str, imports: int) -> dict:
    from imprint_core.session import Project, ProjectError

    libc = ctypes.CDLL("libc.so.6")
    project = Project(n_classes=0)
    project.add_class("kept")
    start = rss_mb()
    seconds = []

    def one_import() -> None:
        try:
            if method == "stream":
                project.import_zip(zip_path)
            else:
                old_import(Path(zip_path))
        except ProjectError:
            return
        raise AssertionError("the import was not refused")

    for _ in range(imports):
        # a worker thread per request, as the web server runs them (glibc gives threads their
        # own malloc arenas, which hold freed memory longer than the main one)
        worker = threading.Thread(target=one_import)
        t = time.perf_counter()
        worker.start()
        worker.join()
        seconds.append(time.perf_counter() - t)
    after = rss_mb()
    libc.malloc_trim(0)
    trimmed = rss_mb()
    files = sum(1 for p in project.workdir.rglob("*") if p.is_file())
    project.close()
    return {
        "method": method,
        "imports": imports,
        "rss_start_mb": start,
        "growth_mb": after - start,
        "peak_mb": rss_mb("VmHWM"),
        "growth_after_trim_mb": trimmed - start,
        "median_s": statistics.median(seconds),
        "files_left": files,
    }


def huge_directory(path: Path, entries: int) -> Path:
    """A zip whose (zip64) central directory really lists ``entries`` entries."""
    name = b"c/0.png"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
    )
    central += name
    directory = central * entries
    start = len(local)
    eocd64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, len(directory), start
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, start + len(directory), 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(local + directory + eocd64 + locator + eocd)
    return path


def time_directory(path: Path) -> dict:
    from imprint_core.session import ProjectError
    from imprint_core.session.intake import iter_zip_images

    def refuse():
        try:
            next(iter_zip_images(path))
        except ProjectError:
            return
        raise AssertionError("not refused")

    def parse():
        with zipfile.ZipFile(path) as zf:
            return len(zf.infolist())

    out = {}
    for label, fn in (("end record", refuse), ("zipfile parse", parse)):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        out[label] = statistics.median(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imports", type=int, default=12)
    parser.add_argument(
        "--old-imports",
        type=int,
        default=4,
        help="imports for the read-everything alternative (each holds ~490 MB; keep it small "
        "on a shared machine)",
    )
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "ZIP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, zip_path, n = args.child
        print(json.dumps(child(method, zip_path, int(n))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        tmp = Path(tmp)
        for kind in ("zeros", "padded"):
            path = make_zip(tmp / f"{kind}.zip", kind)
            print(
                f"\n{kind}.zip: {N_MEMBERS} x {MEMBER_BYTES / 2**20:.2f} MB members, "
                f"{path.stat().st_size / 1024:.0f} KB compressed"
            )
            for method, n in (("stream", args.imports), ("read-all", args.old_imports)):
                cmd = [sys.executable, __file__, "--child", method, str(path), str(n)]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
                print(
                    f"  {method:8s} {r['imports']:2d} refused imports: RSS +{r['growth_mb']:.0f} MB "
                    f"(+{r['growth_after_trim_mb']:.0f} MB after malloc_trim), peak "
                    f"{r['peak_mb']:.0f} MB from {r['rss_start_mb']:.0f} MB, median "
                    f"{r['median_s']:.2f} s per import, files left {r['files_left']}"
                )
        path = huge_directory(tmp / "million.zip", 1_000_000)
        t = time_directory(path)
        ratio = t["zipfile parse"] / t["end record"]
        print(
            f"\n1,000,000-entry directory ({path.stat().st_size / 2**20:.0f} MB): refused from "
            f"the end record in {t['end record'] * 1e3:.2f} ms; zipfile parses it in "
            f"{t['zipfile parse']:.2f} s ({ratio:,.0f}x), medians of 3"
        )


if __name__ == "__main__":
    main()
