"""Take the README's screenshot of the app: the fashion3 example imprinted, a held-out image tried.

Starts ``python app.py`` on a free port, drives Debian's Chromium with Playwright, writes
docs/app-screenshot.png. Run by hand: ``python scripts/screenshot.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "app-screenshot.png"


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env)
    try:
        address = f"http://127.0.0.1:{port}/"
        for _ in range(600):
            try:
                urllib.request.urlopen(address, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        sys.path.insert(0, str(ROOT))
        from imprint_core.session import examples as ex

        probe = str(ex.test_images("fashion3")[-1][1])
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(300_000)
            page.goto(address)
            page.wait_for_selector("#drop-1 input[type=file]", state="attached")
            page.locator("#example-fashion3").click()
            page.wait_for_selector("#card-2 :text('30 images')")
            page.locator("#imprint").click()
            page.wait_for_selector("#status :text('Imprinted 3 classes')")
            page.get_by_role("tab", name="Try it").click()
            page.locator("#try-image input[type=file]").set_input_files(probe)
            page.wait_for_selector("#neighbours img")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT))
            browser.close()
    finally:
        proc.terminate()
        proc.wait()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
