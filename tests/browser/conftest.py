"""Fixtures of the browser tests: one app and one Chromium for the whole test run.

The app is ``python app.py`` as a subprocess on a free port; Chromium is Debian's
/usr/bin/chromium driven by Playwright. Every test gets a new browser context, so a new Gradio
session: tests share the server, never a session. A test fails when the server logs a traceback
while it runs; on failure it prints the app log, the console errors and a screenshot's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from browser_app import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, free_port


def sync_playwright():
    # Imported here: without playwright the browser modules skip (browser_app.MARKS) instead of
    # failing at collection.
    from playwright.sync_api import sync_playwright as start

    return start()


@pytest.fixture(scope="session")
def url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio-tmp")),
        "PYTHONUNBUFFERED": "1",
        # Gradio's record of each event it ran (gradio_api/profiling/traces): what a test
        # counts to know how many events one action sent
        "GRADIO_PROFILING": "1",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300  # a loaded 2-core machine: normally ~10 s
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


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
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


@pytest.fixture(scope="session")
def images(fashion3):
    return fashion3
