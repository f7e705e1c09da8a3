"""Can one session starve another? A victim's /imprint alone, then while an attacker keeps sending
the heaviest request the limits allow (loopback only, bounded).

    python benchmarks/bench_starve.py [--rounds 3] [--victim-images 6] [--attack pixels]
        [--json out.json]

Starts ``python app.py`` on a free loopback port (as bench_load.py does). The victim imprints
``--victim-images`` Fashion-MNIST images (of 40 in 4 classes; a new session each round) and
predicts 3 images, ``--rounds`` times alone, then the same number of times while an attacker
thread loops over /imprint with ``--attack``: ``pixels``, the largest request the per-request
pixel budget admits (40-megapixel PNGs of one colour: tiny files, the most pixels per byte, as
many as ``MAX_REQUEST_PIXELS`` allows, split into two classes); ``many``, 240 small images (a
long embedding); ``pile``, Sort images' ``/sort`` of a zip of ``MAX_PILE_IMAGES`` (2,000) small
images, after imprinting 4 (the attacker's session sorts one pile after another). The attacker
stops when the victim is done. Reports the victim's median imprint
and predict times alone and under attack and their ratios, the attacker's requests (answered /
refused) and their median time.
"""

from __future__ import annotations

import argparse
import json
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


ATTACKS = {"pixels": heavy_images, "many": many_images, "pile": pile_zip}


def attacker(url: str, paths: list[Path], stop: threading.Event, out: dict) -> None:
    from gradio_client import Client, handle_file

    pile = paths[-1] if paths[-1].suffix == ".zip" else None
    if pile is not None:  # one session: imprint 4 images, then sort the pile again and again
        paths = paths[:-1]
        client = Client(url, verbose=False, analytics_enabled=False)
        client.predict(
            files=[handle_file(str(p)) for p in paths], labels=["a", "b"] * 2, api_name="/imprint"
        )
    labels = ["a" if i % 2 else "b" for i in range(len(paths))]
    while not stop.is_set():
        if pile is None:
            client = Client(url, verbose=False, analytics_enabled=False)
        t = time.perf_counter()
        try:
            if pile is not None:
                client.predict(files=[handle_file(str(pile))], api_name="/sort")
                out["answered"].append(time.perf_counter() - t)
                continue
            client.predict(
                files=[handle_file(str(p)) for p in paths], labels=labels, api_name="/imprint"
            )
            out["answered"].append(time.perf_counter() - t)
        except Exception as exc:  # a refusal is an answer too: count it
            out["refused"].append(f"{type(exc).__name__}: {str(exc)[:160]}")
        finally:
            if pile is None:
                client.close()
    if pile is not None:
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--victim-images", type=int, default=6)
    ap.add_argument("--attack", choices=sorted(ATTACKS), default="pixels")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imprint-starve-") as work:
        work = Path(work)
        server_tmp = work / "server"
        server_tmp.mkdir()
        per_client, tests = write_images(work / "images", 2 * args.rounds)
        # the victim's images: the first of each class in turn (so that every class is there)
        per_client = [sorted(pairs, key=lambda pc: pairs.index(pc) % 10) for pairs in per_client]
        per_client = [pairs[: args.victim_images] for pairs in per_client]
        tests = tests[:3]
        heavy = ATTACKS[args.attack](work / "attack")
        port = free_port()
        proc = start_app(port, server_tmp)
        url = f"http://127.0.0.1:{port}/"
        try:
            session(url, per_client[0], tests[:1], Recorder(), work / "dl")  # warm the model
            alone = Recorder()
            for r in range(args.rounds):
                session(url, per_client[r], tests, alone, work / "dl")
            stop, seen = threading.Event(), {"answered": [], "refused": []}
            thread = threading.Thread(target=attacker, args=(url, heavy, stop, seen))
            thread.start()
            time.sleep(2.0)  # let the attack start
            attacked = Recorder()
            for r in range(args.rounds):
                session(url, per_client[args.rounds + r], tests, attacked, work / "dl")
            stop.set()
            thread.join(timeout=600)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    result = {
        "attack": args.attack,
        "attacker_request": (
            f"/sort of a zip of {MAX_PILE_IMAGES:,} images (after an imprint of 4)"
            if args.attack == "pile"
            else f"{len(heavy)} images"
        ),
        "victim_images": args.victim_images,
    }
    for what in ("imprint", "predict"):
        a, b = alone.seconds[what], attacked.seconds[what]
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
        }
    )
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
