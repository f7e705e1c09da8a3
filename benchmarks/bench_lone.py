"""A lone user's speed, on this checkout's app and (``--app-root``) on another one's, in one run:
an /imprint of 40 images, /predict, and the live camera's rate.

    python benchmarks/bench_lone.py [--app-root OLDER_CHECKOUT] [--rounds 5] [--json out.json]

For each app (started as ``python app.py`` on a free loopback port, bench_load.start_app), after
one warm-up session: ``--rounds`` new sessions each imprint 40 Fashion-MNIST images in 4 classes
(different images each round: no embedding is cached) and predict 5 images; then one imprinted
session streams camera frames (a 320x240 JPEG as a data URL, as the page's webcam sends it) every
0.5 s (the page's ``stream_every``) for ``--camera-s`` seconds over Gradio's queue protocol
(benchmarks/queue_events.py), and the results answered per second are counted. Reports medians
and the ratios of this checkout to the other one.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import Recorder, free_port, session, start_app, write_images  # noqa: E402
from queue_events import Camera, Page  # noqa: E402

FRAME_EVERY_S = 0.5  # the page's stream_every


def frame() -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 60, 60)).save(buf, "JPEG")
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"path": None, "url": url}


def camera_rate(url: str, pairs, seconds: float) -> dict:
    """Results answered per second while frames are sent at the page's pace."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, analytics_enabled=False)
    files = [handle_file(str(p)) for p, _ in pairs]
    client.predict(files=files, labels=[n for _, n in pairs], api_name="/imprint")
    camera = Camera(Page(url, client.session_hash))
    picture = frame()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        camera.send(picture)
        sent += 1
        time.sleep(max(0.0, start + sent * FRAME_EVERY_S - time.monotonic()))
    time.sleep(2.0)  # the last answers
    camera.close()
    client.close()
    answered = [
        t
        for t, msg in camera.answers
        if msg.get("success", True) and "classified" in json.dumps(msg.get("output", {}))
    ]
    return {
        "frames_sent": sent,
        "results": len(answered),
        "results_per_s": round(len(answered) / seconds, 2),
    }


def measure(root: Path | None, work: Path, rounds: int, camera_s: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="server-", dir=work))
    per_client, tests = write_images(work / "images", rounds + 2)
    port = free_port()
    proc = start_app(port, tmp, root)
    url = f"http://127.0.0.1:{port}/"
    rec = Recorder()
    try:
        session(url, per_client[0], tests[:1], Recorder(), work / "dl")  # warm the model
        for r in range(rounds):
            session(url, per_client[1 + r], tests[:5], rec, work / "dl")
        camera = camera_rate(url, per_client[-1], camera_s)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = {"app_root": str(root or "this checkout")}
    for what in ("imprint", "predict"):
        values = rec.seconds[what]
        out[f"{what}_median_s"] = round(statistics.median(values), 3) if values else None
        out[f"{what}_n"] = len(values)
        out[f"{what}_all_s"] = [round(v, 3) for v in values]
    out.update(camera)
    out["errors"] = rec.errors
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app-root", type=Path, default=None, help="the other checkout")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--camera-s", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--this-first", action="store_true", help="measure this checkout before the other one"
    )
    args = ap.parse_args()
    result = {}
    with tempfile.TemporaryDirectory(prefix="imprint-lone-") as work:
        work = Path(work)
        roots = {"other": args.app_root, "this": None} if args.app_root else {"this": None}
        if args.this_first:
            roots = dict(reversed(list(roots.items())))
        for name, root in roots.items():
            result[name] = measure(root, work, args.rounds, args.camera_s)
    if "other" in result:
        for key in ("imprint_median_s", "predict_median_s", "results_per_s"):
            a, b = result["other"][key], result["this"][key]
            result[f"{key}_this_over_other"] = round(b / a, 2) if a and b else None
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
