"""The real app in a real browser: fixtures and helpers shared by the browser test modules.

Each module that imports these gets its own app (``python app.py`` as a subprocess on a free
port) and Chromium (Playwright with Debian's /usr/bin/chromium). A test fails when the server
logs a traceback; on failure it prints the app log, the console errors and a screenshot's path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",  # a synthetic camera for the webcam test
    "--use-fake-ui-for-media-stream",
]
TIMEOUT_MS = 240_000  # a busy shared 2-core machine can be very slow; normally seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio-tmp")),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300  # a busy shared 2-core machine: normally ~10 s
    try:
        while True:
            try:
                urllib.request.urlopen(address, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the app did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield {"address": address, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, url, request, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.set_default_timeout(TIMEOUT_MS)
    start = url["log"].stat().st_size
    page.goto(url["address"], wait_until="domcontentloaded")
    page.wait_for_selector("#drop-1 input[type=file]", state="attached")
    yield page
    server = url["log"].read_text(errors="replace")[start:]
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        # What the server and the browser said: a browser test's failure is otherwise opaque.
        page.screenshot(path=str(tmp_path / "failure.png"))
        print(f"--- app log during the test ---\n{server[-5000:]}")
        print("--- browser console errors ---\n" + "\n".join(console[-20:]))
        print(f"--- screenshot: {tmp_path / 'failure.png'}")
    context.close()
    signs = ["Traceback"]
    if request.node.get_closest_marker("stale_event_expected") is None:
        signs.append("stale event")  # a click lost to a re-render: the race the app avoids
    for sign in signs:
        assert sign not in server, f"the server logged {sign!r} during the test:\n{server[-5000:]}"


@pytest.fixture(scope="module")
def images(fashion3):
    return fashion3


def rename(page, index: int, name: str) -> None:
    box = page.locator(f"#name-{index} input")
    box.fill(name)
    box.press("Enter")
    page.wait_for_selector(f"#drop-{index} :text(\"Drop images of '{name}' here\")")


def upload(page, index: int, files: list[str]) -> None:
    page.locator(f"#drop-{index} input[type=file]").set_input_files(files)
    page.wait_for_selector(f"#card-{index} :text('{len(files)} images')")


def teach_and_imprint(page, train, n: int = 6, preset: str | None = None) -> None:
    """Two classes, 'trousers' and 'sneakers', of ``n`` images each, imprinted (under ``preset``,
    a label of the Method tab's preset radio, when given)."""
    if preset is not None:
        page.get_by_role("tab", name="Method").click()
        page.get_by_label(preset).check()
        page.get_by_role("tab", name="Teach").click()
    rename(page, 0, "trousers")
    upload(page, 0, train["Trouser"][:n])
    rename(page, 1, "sneakers")
    upload(page, 1, train["Sneaker"][:n])
    page.locator("#imprint").click()
    page.wait_for_selector(f"#status :text('Imprinted 2 classes from {2 * n} images')")


def wait_for_names(page, names: list[str]) -> None:
    """The class cards re-render after the message appears: wait for their names."""
    page.wait_for_function(
        "names => names.every((n, i) => {"
        " const box = document.querySelector(`#name-${i} input`);"
        " return box && box.value === n; })",
        arg=names,
    )


def wait_text(page, selector: str, text: str) -> None:
    """Wait until the element's text contains ``text`` (whatever elements the text is split in)."""
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)", arg=[selector, text]
    )
