"""Can one session starve another? A victim's /imprint alone, then while an attacker keeps sending
the heaviest request the limits allow (loopback only, bounded).

    python benchmarks/bench_starve.py [--rounds 3] [--victim-images 6] [--attack pixels]
        [--json out.json] [--app-root OTHER_CHECKOUT]

Starts ``python app.py`` on a free loopback port (as bench_load.py does). The victim imprints
``--victim-images`` Fashion-MNIST images (of 40 in 4 classes; a new session each round) and
predicts 3 images, ``--rounds`` times alone, then as many times (and on, up to 60 more, until
the attacker's first request has ended, so that every phase of it is met) while an attacker
thread loops over ``--attack``: ``pixels``, an /imprint of the largest request the per-request
pixel budget admits (40-megapixel PNGs of one colour: tiny files, the most pixels per byte, as
many as ``MAX_REQUEST_PIXELS`` allows, split into two classes); ``many``, an /imprint of 240 small
images (a long embedding); ``pile``, Sort images' ``/sort`` of a zip of ``MAX_PILE_IMAGES``
(2,000) small images, after imprinting 4 (the attacker's session sorts one pile after another);
``augment``, turning augmentation on in a session of 1,000 images (the
page's checkbox, over Gradio's queue protocol: benchmarks/queue_events.py); ``kcurve``, the
accuracy-vs-k curve of such a session (its button); ``open``, Open project with a zip of 1,000
images saved with augmentation on (opening embeds them and their views again). The attacker stops
when the victim is done. ``--app-root`` serves another checkout's app.py (an older commit's
worktree: the figures before a change, measured by the same script). Reports the victim's median imprint
and predict times alone and under attack and their ratios, the attacker's requests (answered /
refused) and their median time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import Recorder, free_port, session, start_app, write_images  # noqa: E402

from imprint_core.session.limits import MAX_IMAGE_PIXELS, MAX_REQUEST_PIXELS  # noqa: E402
from imprint_core.session.quotas import MAX_PILE_IMAGES  # noqa: E402


def heavy_images(folder: Path) -> list[Path]:
    """As many 40-megapixel one-colour PNGs as one request may decode (each a few KB)."""
    from PIL import Image

    side = int(MAX_IMAGE_PIXELS**0.5) - 1  # just inside the per-image limit
    n = max(2, MAX_REQUEST_PIXELS // (side * side))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"heavy-{i}.png"
        Image.new("RGB", (side, side), (i * 7 % 256, 90, 160)).save(path, optimize=True)
        paths.append(path)
    return paths


def many_images(folder: Path) -> list[Path]:
    """240 small images: a request whose cost is its embedding (60 per class, 4 classes)."""
    pairs, _ = write_images(folder, 6)
    return [p for client in pairs for p, _ in client]


def pile_zip(folder: Path) -> list[Path]:
    """4 images to imprint, then a zip of ``MAX_PILE_IMAGES`` small PNGs to sort (last)."""
    import zipfile

    import numpy as np
    from PIL import Image

    teach = many_images(folder / "teach")[:4]
    rng = np.random.default_rng(0)
    path = folder / "pile.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(MAX_PILE_IMAGES):
            image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
            with zf.open(f"pile/{i}.png", "w") as fh:
                image.save(fh, "PNG")
    return [*teach, path]


def pile_attack(folder: Path, url: str):
    """One session imprints 4 images, then sorts the pile again and again (/sort)."""
    from gradio_client import handle_file

    *teach, pile = pile_zip(folder)
    client = imprint(url, teach, ["a", "b"] * 2)

    def request() -> None:
        client.predict(files=[handle_file(str(pile))], api_name="/sort")

    return request, f"/sort of a zip of {MAX_PILE_IMAGES:,} images (after an imprint of 4)"


def imprint(url: str, paths: list[Path], labels: list[str] | None = None):
    """A new session (a Client) that imprinted ``paths``; the caller closes it."""
    from gradio_client import Client, handle_file

    labels = labels or ["a" if i % 2 else "b" for i in range(len(paths))]
    client = Client(url, verbose=False, analytics_enabled=False)
    client.predict(files=[handle_file(str(p)) for p in paths], labels=labels, api_name="/imprint")
    return client


def imprint_attack(make):
    """An attack whose request is one /imprint of the images ``make(folder)`` writes."""

    def prepare(folder: Path, url: str):
        paths = make(folder)

        def request() -> None:
            imprint(url, paths).close()

        return request, f"/imprint of {len(paths)} images"

    return prepare


def full_project(folder: Path) -> tuple[list[Path], list[str]]:
    """1,000 Fashion-MNIST images in 4 classes (250 each, the most a class may hold)."""
    pairs, _ = write_images(folder, 25)
    flat = [pc for client in pairs for pc in client]
    return [p for p, _ in flat], [name for _, name in flat]


def page_attack(action: str, pool: int = 3):
    """An attack on a page event of sessions holding 1,000 images: ``augment`` (turn
    augmentation on: 6 views of each image embedded), ``kcurve`` (the accuracy-vs-k curve).
    ``pool`` sessions are imprinted before the victim's rounds (not timed); each request
    acts on a fresh one (the results are cached per session), imprinting more when they run out."""
    from queue_events import Page

    events = {"augment": ("opt-augment", "input", True), "kcurve": ("k-curve-btn", "click", None)}

    def prepare(folder: Path, url: str):
        paths, labels = full_project(folder)
        ready = [imprint(url, paths, labels) for _ in range(pool)]

        def request() -> None:
            client = ready.pop() if ready else imprint(url, paths, labels)
            try:
                msg = Page(url, client.session_hash).run(*events[action])
                if not msg.get("success"):
                    raise RuntimeError(str(msg.get("output"))[:160])
            finally:
                client.close()

        return request, f"{action} on a session of {len(paths)} images"

    return prepare


def open_attack(folder: Path, url: str):
    """Open project with a zip of 1,000 images with augmentation on and a head saved as
    imprinted: opening embeds them again (and their 6 views each)."""
    import uuid

    from queue_events import Page

    from imprint_core import session as pj

    paths, labels = full_project(folder)
    project = pj.Project(n_classes=0)
    project.import_images(pj.records_from_labels([str(p) for p in paths], labels), "bench")
    project.train(pj.load_backbone(None))
    zip_path = pj.save_project(project, folder / "attack-project.zip")
    _mark_augmented(zip_path)
    project.close()
    page = Page(url, uuid.uuid4().hex[:11])

    def request() -> None:
        msg = page.run("project-upload", "upload", page.upload(zip_path))
        if not msg.get("success"):
            raise RuntimeError(str(msg.get("output"))[:160])

    size = zip_path.stat().st_size / 2**20
    return request, f"Open project of {len(paths)} images with augmentation ({size:.1f} MB)"


def _mark_augmented(zip_path: Path) -> None:
    """The saved manifest says augmentation is on with the app's views, the head current."""
    import zipfile

    from imprint_core.session.settings import check_augment

    with zipfile.ZipFile(zip_path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    name = next(n for n in members if n.endswith(".json") and b"format_version" in members[n])
    meta = json.loads(members[name])
    meta["augment"], meta["stale"] = list(check_augment(True)), False
    members[name] = json.dumps(meta).encode()
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in members.items():
            zf.writestr(n, data)


ATTACKS = {
    "pixels": imprint_attack(heavy_images),
    "many": imprint_attack(many_images),
    "pile": pile_attack,
    "augment": page_attack("augment"),
    "kcurve": page_attack("kcurve", pool=2),
    "open": open_attack,
}


MORE_ROUNDS = 60  # the most attacked rounds beyond --rounds, waiting for the attack's answer


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def attacker(request, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        out["started"] += 1
        try:
            request()
            out["answered"].append(time.perf_counter() - t)
        except Exception as exc:  # a refusal is an answer too: count it
            out["refused"].append(f"{type(exc).__name__}: {str(exc)[:160]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--victim-images", type=int, default=6)
    ap.add_argument("--attack", choices=sorted(ATTACKS), default="pixels")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds between the attack's start and the victim's first attacked round",
    )
    ap.add_argument(
        "--app-root",
        type=Path,
        default=None,
        help="serve app.py of this checkout (e.g. an older commit's worktree) instead",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imprint-starve-") as work:
        work = Path(work)
        server_tmp = work / "server"
        server_tmp.mkdir()
        per_client, tests = write_images(work / "images", 2 * args.rounds + MORE_ROUNDS)
        # the victim's images: the first of each class in turn (so that every class is there)
        per_client = [sorted(pairs, key=lambda pc: pairs.index(pc) % 10) for pairs in per_client]
        per_client = [pairs[: args.victim_images] for pairs in per_client]
        tests = tests[:3]
        port = free_port()
        proc = start_app(port, server_tmp, args.app_root)
        url = f"http://127.0.0.1:{port}/"
        try:
            session(url, per_client[0], tests[:1], Recorder(), work / "dl")  # warm the model
            request, what = ATTACKS[args.attack](work / "attack", url)
            alone = Recorder()
            for r in range(args.rounds):
                session(url, per_client[r], tests, alone, work / "dl")
            stop, seen = threading.Event(), {"answered": [], "refused": [], "started": 0}
            thread = threading.Thread(target=attacker, args=(request, stop, seen))
            thread.start()
            time.sleep(args.warmup)  # let the attack start
            attacked = Recorder()
            # the server's CPU use while the victim runs under attack: about one core per
            # busy worker; near the victim's own use alone, the attack was not running
            cpu, wall = cpu_seconds(proc.pid), time.monotonic()
            # at least --rounds, and on until the attacker's first request has ended (answered
            # or refused): every attack phase (upload, decoding, embedding) is met
            r = 0
            while r < args.rounds or (
                not (seen["answered"] or seen["refused"]) and r < args.rounds + MORE_ROUNDS
            ):
                session(url, per_client[args.rounds + r], tests, attacked, work / "dl")
                r += 1
            busy = (cpu_seconds(proc.pid) - cpu) / (time.monotonic() - wall)
            in_flight = seen["started"] > len(seen["answered"]) + len(seen["refused"])
            stop.set()
            thread.join(timeout=5)  # an unfinished attack request ends with the server
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    result = {
        "attack": args.attack,
        "attacker_request": what,
        "app_root": str(args.app_root or "this checkout"),
        "victim_images": args.victim_images,
    }
    result["attacked_rounds"] = r
    for what in ("imprint", "predict"):
        a, b = alone.seconds[what], attacked.seconds[what]
        result[f"{what}_attacked_max_s"] = round(max(b), 3) if b else None
        result[f"{what}_alone_median_s"] = round(statistics.median(a), 3) if a else None
        result[f"{what}_attacked_median_s"] = round(statistics.median(b), 3) if b else None
        result[f"{what}_ratio"] = (
            round(statistics.median(b) / statistics.median(a), 2) if a and b else None
        )
    result.update(
        {
            "victim_errors": alone.errors + attacked.errors,
            "attacker_answered": len(seen["answered"]),
            "attacker_median_s": statistics.median(seen["answered"]) if seen["answered"] else None,
            "attacker_refused": seen["refused"][:3],
            "server_cores_busy_attacked": round(busy, 2),
            "attacker_in_flight_at_end": in_flight,
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }
    )
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
