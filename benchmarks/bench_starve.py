"""Can one session starve another? A victim's /imprint alone, then while an attacker keeps sending
the heaviest request the limits allow (loopback only, bounded).

    python benchmarks/bench_starve.py [--rounds 3] [--json out.json]

Starts ``python app.py`` on a free loopback port (as bench_load.py does). The victim imprints 40
Fashion-MNIST images in 4 classes (a new session each round) ``--rounds`` times alone, then the
same number of times while an attacker thread loops over /imprint with the largest request the
per-request pixel budget admits: 40-megapixel PNGs of one colour (tiny files, the most pixels per
byte), as many as ``MAX_REQUEST_PIXELS`` allows, split into two classes. The attacker stops when
the victim is done. Reports the victim's median imprint time alone and under attack and their
ratio, the attacker's requests (answered / refused) and their median time. The machine running
this may be shared: say so beside any figure.
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


def heavy_images(folder: Path) -> list[Path]:
    """As many 40-megapixel one-colour PNGs as one request may decode (each a few KB)."""
    from PIL import Image

    side = int(MAX_IMAGE_PIXELS**0.5) - 1  # just inside the per-image limit
    n = max(2, MAX_REQUEST_PIXELS // (side * side))
    paths = []
    for i in range(n):
        path = folder / f"heavy-{i}.png"
        Image.new("RGB", (side, side), (i * 7 % 256, 90, 160)).save(path, optimize=True)
        paths.append(path)
    return paths


def attacker(url: str, paths: list[Path], stop: threading.Event, out: dict) -> None:
    from gradio_client import Client, handle_file

    labels = ["a" if i % 2 else "b" for i in range(len(paths))]
    while not stop.is_set():
        client = Client(url, verbose=False, analytics_enabled=False)
        t = time.perf_counter()
        try:
            client.predict(
                files=[handle_file(str(p)) for p in paths], labels=labels, api_name="/imprint"
            )
            out["answered"].append(time.perf_counter() - t)
        except Exception as exc:  # a refusal is an answer too: count it
            out["refused"].append(f"{type(exc).__name__}: {str(exc)[:160]}")
        finally:
            client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imprint-starve-") as work:
        work = Path(work)
        server_tmp = work / "server"
        server_tmp.mkdir()
        per_client, tests = write_images(work / "images", 2 * args.rounds)
        heavy = heavy_images(work)
        port = free_port()
        proc = start_app(port, server_tmp)
        url = f"http://127.0.0.1:{port}/"
        try:
            session(url, per_client[0], tests[:1], Recorder(), work / "dl")  # warm the model
            alone = Recorder()
            for r in range(args.rounds):
                session(url, per_client[r], [], alone, work / "dl")
            stop, seen = threading.Event(), {"answered": [], "refused": []}
            thread = threading.Thread(target=attacker, args=(url, heavy, stop, seen))
            thread.start()
            time.sleep(2.0)  # let the attack start
            attacked = Recorder()
            for r in range(args.rounds):
                session(url, per_client[args.rounds + r], [], attacked, work / "dl")
            stop.set()
            thread.join(timeout=600)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    a, b = alone.seconds["imprint"], attacked.seconds["imprint"]
    result = {
        "attacker_request": f"{len(heavy)} images of {MAX_IMAGE_PIXELS / 1e6:.0f} MP",
        "victim_alone_median_s": statistics.median(a) if a else None,
        "victim_attacked_median_s": statistics.median(b) if b else None,
        "ratio": statistics.median(b) / statistics.median(a) if a and b else None,
        "victim_errors": alone.errors + attacked.errors,
        "attacker_answered": len(seen["answered"]),
        "attacker_median_s": statistics.median(seen["answered"]) if seen["answered"] else None,
        "attacker_refused": seen["refused"][:3],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
