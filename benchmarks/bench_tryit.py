"""Try it in Chromium: a 12-megapixel phone JPEG dropped into the panel, to its result drawn.

    python benchmarks/bench_tryit.py --photos DIR [--n 12] [--before main]
        [--json benchmarks/results/tryit.json]

The app is a real ``python app.py`` subprocess; the browser is Debian's Chromium driven by
Playwright. Each page loads the Fashion-MNIST example and imprints it, then Try it gets one phone
JPEG after another (the first one is a warm-up, not counted). Per photo, in the page's own clock:

- **drop to drawn**: from the file input's ``change`` event (the user's drop) to the first frame
  painted after the note naming the photo appeared (the result is drawn in the same update);
- **server**: the event's function time as the server reports it (``duration`` of the queue's
  ``process_completed`` message, read from the page's own event stream): decode, embed, explain
  and the views; of the answer that was drawn (Gradio 6.31 sent ``change`` twice for a photo
  dropped over the one shown; ``events`` counts the events each drop sent);
- **server stages**: Gradio's own timing of that event (the apps run with ``GRADIO_PROFILING=1``):
  queue wait, preprocessing of the inputs, our function, postprocessing of the outputs (every
  output's update is built, a skipped one too), total; and the same for ``/predict`` calls;
- **upload**: the photo's upload request (3-4 MB over localhost), from its start to its answer.

``--before REF`` also starts the app of that git revision (``git archive`` into a temporary
folder) and drops the same photos into it, alternating photo by photo with the working tree's
app, so that the two see the same load. Then ``/predict`` (the API endpoint) is called through
gradio_client on each app with the same photos, alternating too: its round trip, upload included.

Phone photos are made at run time in a temporary folder from real photos (``--photos``: a folder
of JPEG/PNG files, searched recursively; default: scikit-learn's two sample photos): each is
upscaled to 4000 x 3000 (or 3000 x 4000) with sensor-like grain and saved at JPEG quality 90,
which gives 3-4 MB, as a phone does. Prints the machine (CPU model, cores, flags) and ``uptime``
before and after; medians and the ratio before / after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = (4000, 3000)
TIMEOUT_MS = 240_000

# Installed before any page script: records, in the page's clock, the start and end of every
# upload and the ``process_completed`` messages of the queue's event stream (with the server's
# ``duration``), by wrapping fetch (Gradio's client streams the queue through fetch).
PAGE_HOOKS = """
(() => {
  window.__bench = {uploads: [], joins: [], completed: []};
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (...args) => {
    const url = String((args[0] && args[0].url) || args[0]);
    const start = performance.now();
    const response = await fetch0(...args);
    if (url.includes('/upload') && !url.includes('upload_progress')) {
      window.__bench.uploads.push({start, end: performance.now()});
    }
    if (url.includes('queue/join')) window.__bench.joins.push(start);
    if (url.includes('queue/data') && response.body) {
      const [mine, theirs] = response.body.tee();
      (async () => {
        const reader = mine.getReader();
        const text = new TextDecoder();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += text.decode(value, {stream: true});
          let cut;
          while ((cut = buffer.indexOf('\\n\\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            for (const line of block.split('\\n')) {
              if (!line.startsWith('data:')) continue;
              try {
                const m = JSON.parse(line.slice(5));
                if (m.msg === 'process_completed' && m.output) {
                  window.__bench.completed.push({t: performance.now(), duration: m.output.duration,
                                                 success: m.success, event_id: m.event_id});
                }
              } catch (e) {}
            }
          }
        }
      })();
      return new Response(theirs, {status: response.status, headers: response.headers});
    }
    return response;
  };
})();
"""

# Armed before a drop: the time of the file input's change event, and of the first frame
# painted after the note names the photo.
ARM = """
name => {
  const input = document.querySelector('#try-image input[type=file]');
  window.__drop = {name, change: null, drawn: null};
  input.addEventListener('change', () => { window.__drop.change = performance.now(); },
                         {capture: true, once: true});
  const shown = () => {
    const note = document.querySelector('#try-note');
    return note && note.innerText.includes(`'${name}' as the current head sees it`);
  };
  const observer = new MutationObserver(() => {
    if (shown()) {
      observer.disconnect();
      requestAnimationFrame(() => { window.__drop.drawn = performance.now(); });
    }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


# ---- photos ----------------------------------------------------------------------------------
def source_photos(folder: str | None, n: int) -> list[Path]:
    """``n`` real photos, spread over ``folder``'s subfolders (or scikit-learn's samples)."""
    if folder:
        found = sorted(
            p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
        if not found:
            raise SystemExit(f"--photos {folder}: no JPEG or PNG files in it")
        step = max(len(found) // n, 1)
        return found[::step][:n]
    import sklearn.datasets

    samples = sorted((Path(sklearn.datasets.__file__).parent / "images").glob("*.jpg"))
    return [samples[i % len(samples)] for i in range(n)]


def phone_jpeg(source: Path, path: Path, seed: int) -> Path:
    """``source`` as a 12-megapixel phone JPEG (upscaled, with grain, quality 90)."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    size = PHONE if image.width >= image.height else PHONE[::-1]
    image = image.resize(size, Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).normal(0.0, 5.0, (size[1], size[0], 1))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


# ---- apps ------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(folder: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp / f"gradio-{port}"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_PROFILING": "1",  # Gradio's own timing of each event's stages (profiling_traces)
    }
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(address, timeout=2)
            return proc, address
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the app in {folder} did not start") from None
            time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def checkout(ref: str, tmp: Path) -> Path:
    """The tree of git revision ``ref`` in a temporary folder."""
    folder = tmp / f"rev-{ref.replace('/', '-')}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# ---- one page --------------------------------------------------------------------------------
def open_page(browser, address: str):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_init_script(PAGE_HOOKS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(address, wait_until="domcontentloaded")
    page.wait_for_selector("#drop-1 input[type=file]", state="attached")
    page.locator("#example-fashion3").click()
    page.wait_for_selector("#name-2 input", state="attached")
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 3 classes')")
    page.get_by_role("tab", name="Try it").click()
    page.wait_for_selector("#try-image input[type=file]", state="attached")
    return page


def drop(page, photo: Path) -> dict:
    """Drop ``photo`` into Try it; its timings in milliseconds."""
    if page.locator("#try-image input[type=file]").count() == 0:  # an image shown: clear it
        page.locator("#try-image button[aria-label=Clear]").click()
        page.wait_for_selector("#try-image input[type=file]", state="attached")
        page.wait_for_function("() => !document.querySelector('#try-note').innerText.trim()")
    done = page.evaluate("() => window.__bench.completed.length")
    page.evaluate(ARM, photo.name)
    page.locator("#try-image input[type=file]").set_input_files(str(photo))
    page.wait_for_function("() => window.__drop.drawn !== null")
    page.wait_for_function(f"() => window.__bench.completed.length > {done}")
    got = page.evaluate(
        "() => ({drop: window.__drop, uploads: window.__bench.uploads,"
        " joins: window.__bench.joins, completed: window.__bench.completed})"
    )
    d = got["drop"]
    # the first answer after the drop is the one drawn (Gradio 6.31 sent a drop over the photo
    # shown as two change events: an app that listens to them may answer twice)
    completed = [c for c in got["completed"][done:] if c["t"] <= d["drawn"] + 1][:1]
    uploads = [u for u in got["uploads"] if u["start"] >= d["change"]]
    joins = [t for t in got["joins"] if t >= d["change"]]
    return {
        "drop_to_drawn_ms": d["drawn"] - d["change"],
        "server_ms": 1e3 * completed[0]["duration"] if completed else None,
        "upload_ms": uploads[0]["end"] - uploads[0]["start"] if uploads else None,
        "to_upload_ms": uploads[0]["start"] - d["change"] if uploads else None,
        # the event sent to the queue (upload done), and the queue's answer after it
        "to_event_ms": joins[0] - d["change"] if joins else None,
        "event_ms": completed[0]["t"] - joins[0] if joins and completed else None,
        # the answer's arrival, and the page's work from it to the frame drawn
        "answer_ms": completed[0]["t"] - d["change"] if completed else None,
        "render_ms": d["drawn"] - completed[0]["t"] if completed else None,
        "events": len(joins),  # events the drop sent to the queue
        "event_id": completed[0].get("event_id") if completed else None,
    }


# ---- the server's stages, as Gradio times them -------------------------------------------------
STAGES = ("queue_wait_ms", "preprocess_ms", "fn_call_ms", "postprocess_ms", "total_ms")


def profiling_traces(address: str) -> list[dict]:
    """Gradio's per-event timings (``GRADIO_PROFILING=1``): queue wait, preprocessing of the
    inputs, our function, postprocessing of the outputs, and their total."""
    with urllib.request.urlopen(address + "gradio_api/profiling/traces", timeout=30) as r:
        return json.load(r)


def stages_of(traces: list[dict], drops: list[dict], api_calls: int) -> dict:
    """Medians of each stage: of the events whose answers were drawn, and of the last
    ``api_calls`` /predict calls."""
    by_id = {t["event_id"]: t for t in traces if t.get("event_id")}
    drawn = [by_id[d["event_id"]] for d in drops if d.get("event_id") in by_id]
    api = [t for t in traces if t.get("fn_name") == "predict"][-api_calls:]  # its api_name
    return {
        "try_it": {k: median([t[k] for t in drawn]) for k in STAGES},
        "api_predict": {k: median([t[k] for t in api]) for k in STAGES},
    }


# ---- /predict through the API ------------------------------------------------------------------
def api_round_trips(addresses: dict[str, str], train: list[tuple[str, str]], photos: list[Path]):
    """/predict round trips (upload included) of each app, photo by photo, app by app (the
    apps see the same load); app name -> milliseconds per photo."""
    from gradio_client import Client, handle_file

    clients = {}
    for name, address in addresses.items():
        clients[name] = Client(address, verbose=False, analytics_enabled=False)
        files = [handle_file(p) for _, p in train]
        clients[name].predict(files, [c for c, _ in train], "ours", api_name="/imprint")
    out: dict[str, list[float]] = {name: [] for name in clients}
    for photo in photos:
        for name, client in clients.items():
            t0 = time.perf_counter()
            client.predict(handle_file(str(photo)), api_name="/predict")
            out[name].append(1e3 * (time.perf_counter() - t0))
    return out


# ---- where the server's time goes --------------------------------------------------------------
def server_profile(photos: list[Path]) -> dict:
    """In this process, per photo: the decode at each scale (full, 1/4 as a stored copy, 1/8 as
    Try it now decodes), the embedding, ``explain`` and the views after a prediction. Medians."""
    from imprint_core import session as pj
    from imprint_core.images import load_image
    from imprint_core.session import examples as ex
    from imprint_core.session.intake import prepare_image
    from imprint_core.session.limits import PREDICT_MIN_SIDE, STORE_MAX_SIDE

    backbone = pj.load_backbone(None)
    project = pj.Project(n_classes=0)
    ex.load_example(project, "fashion3")
    project.train(backbone)
    steps = {
        "decode, full": lambda p: prepare_image(load_image(p), p.name),
        "decode, 1/4 (stored copy)": lambda p: prepare_image(p, p.name, min_side=STORE_MAX_SIDE),
        "decode, 1/8 (Try it)": lambda p: prepare_image(p, p.name, min_side=PREDICT_MIN_SIDE),
    }
    times: dict[str, list[float]] = {
        k: [] for k in [*steps, "embed", "explain", "views", "predict"]
    }
    for photo in photos:
        for name, step in steps.items():
            t0 = time.perf_counter()
            picture = step(photo)
            times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        z = np.asarray(backbone.embed([picture], cache=False), dtype=np.float32)[0]
        times["embed"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        project.explain(z)
        times["explain"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        project.predict(backbone, str(photo), photo.name)
        t1 = time.perf_counter()
        pj.views(project)
        times["predict"].append(t1 - t0)
        times["views"].append(time.perf_counter() - t1)
    return {k: round(1e3 * statistics.median(v[1:] or v), 1) for k, v in times.items()}


# ---- the run ---------------------------------------------------------------------------------
def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", help="a folder of real photos (default: scikit-learn's samples)")
    ap.add_argument("--n", type=int, default=12, help="photos measured (one more warms up)")
    ap.add_argument("--before", help="a git revision to compare with, e.g. main")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    from bench_embed import machine
    from playwright.sync_api import sync_playwright

    from imprint_core.session import examples as ex

    print(machine())
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-tryit-") as tmp_name:
        tmp = Path(tmp_name)
        sources = source_photos(args.photos, args.n + 1)
        photos = [phone_jpeg(s, tmp / f"phone-{i:02d}.jpg", seed=i) for i, s in enumerate(sources)]
        sizes = [p.stat().st_size / 2**20 for p in photos]
        print(
            f"{len(photos)} phone JPEGs, {PHONE[0]} x {PHONE[1]}, {min(sizes):.1f}-"
            f"{max(sizes):.1f} MB (median {statistics.median(sizes):.1f} MB)"
        )
        apps = {"after": ROOT}
        if args.before:
            apps = {f"before ({args.before})": checkout(args.before, tmp), **apps}
        procs = {name: start_app(folder, tmp) for name, folder in apps.items()}
        results: dict[str, dict] = {name: {"drops": [], "api_ms": []} for name in apps}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = {name: open_page(browser, procs[name][1]) for name in apps}
                for i, photo in enumerate(photos):  # photo by photo, app by app
                    for name, page in pages.items():
                        timing = drop(page, photo)
                        if i > 0:  # the first drop warms up
                            results[name]["drops"].append(timing)
                browser.close()
            train = [(c, str(p)) for c, p in ex.train_images("fashion3")]
            api = api_round_trips({name: procs[name][1] for name in apps}, train, photos)
            for name in apps:
                results[name]["api_ms"] = api[name][1:]  # the first warms up
                results[name]["stages"] = stages_of(
                    profiling_traces(procs[name][1]), results[name]["drops"], len(photos) - 1
                )
        finally:
            for proc, _ in procs.values():
                stop(proc)
        profile = server_profile(photos)
    summary = {}
    for name, r in results.items():
        drops = r["drops"]
        summary[name] = {
            "drop_to_drawn_ms_p50": median([d["drop_to_drawn_ms"] for d in drops]),
            "server_ms_p50": median([d["server_ms"] for d in drops]),
            "upload_ms_p50": median([d["upload_ms"] for d in drops]),
            "answer_ms_p50": median([d["answer_ms"] for d in drops]),
            "to_event_ms_p50": median([d["to_event_ms"] for d in drops]),
            "event_ms_p50": median([d["event_ms"] for d in drops]),
            "render_ms_p50": median([d["render_ms"] for d in drops]),
            "api_predict_round_trip_ms_p50": median(r["api_ms"]),
            "server_stages_ms_p50": r["stages"],
            "drops": drops,
            "api_ms": [round(x, 1) for x in r["api_ms"]],
        }
    print(
        f"\n{'app':<16} {'drop->drawn p50':>16} {'server p50':>11} {'upload p50':>11}"
        f" {'/predict round trip p50':>24}"
    )
    for name, s in summary.items():
        print(
            f"{name:<16} {s['drop_to_drawn_ms_p50']:>13} ms {s['server_ms_p50']:>8} ms"
            f" {s['upload_ms_p50']:>8} ms {s['api_predict_round_trip_ms_p50']:>21} ms"
        )
    print("\nServer stages (Gradio's timing, ms p50): " + ", ".join(STAGES))
    for name, s in summary.items():
        for kind, stages in s["server_stages_ms_p50"].items():
            print(f"  {name:<16} {kind:<12} " + "  ".join(f"{stages[k]}" for k in STAGES))
    if args.before:
        before, after = summary[next(iter(summary))], summary["after"]
        for key in ("drop_to_drawn_ms_p50", "server_ms_p50", "api_predict_round_trip_ms_p50"):
            if before[key] and after[key]:
                print(f"before / after, {key}: {before[key] / after[key]:.2f}x")
    print("\nIn-process medians (ms) of a prediction's parts, working tree:")
    for name, ms in profile.items():
        print(f"  {name:<28} {ms:>8}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"uptime at the end: {uptime.strip()}")
    if args.json:
        record = {
            "machine": machine(),
            "load_average_at_start": load_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "photos": len(photos) - 1,
            "photo_mb": [round(s, 2) for s in sizes],
            "apps": summary,
            "server_profile_ms": profile,
        }
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
