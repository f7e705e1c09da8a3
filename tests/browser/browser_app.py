"""Helpers of the browser tests: marks, Chromium's flags and page actions (fixtures: conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright (Python) is not installed (pip install playwright)",
    ),
]
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
TIMEOUT_MS = 240_000  # a loaded 2-core machine can be very slow; normally seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# axe-core, the accessibility checker, installed by scripts/test.sh from npm (not a Python
# package): the page's accessibility test injects it and fails without it.
AXE_JS = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of ``impacts`` on the page as it is now (its default rules: WCAG 2
    A/AA and best practices, not the experimental ones)."""
    if not AXE_JS.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE_JS.relative_to(ROOT)}): run scripts/test.sh, or "
            "npm install --prefix .cache/axe axe-core@4"
        )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    page.evaluate(WATCH_BUSY)
    # An output being updated is faded on purpose (Gradio's pending look, opacity 0.2), and an
    # event sent just before (a tab's select) may only turn pending while axe runs: a scan that
    # saw the page busy at any moment is thrown away and taken again once it has settled.
    for _ in range(5):
        page.wait_for_function(SETTLED, polling=50, timeout=60_000)
        result = page.evaluate(
            """async () => {
            window.busySeen = false;
            const r = await axe.run(document);
            return {busy: window.busySeen || !!document.querySelector(BUSY),
                violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '),
                                           summary: n.failureSummary}))}))};
            }""".replace("BUSY", repr(BUSY))
        )
        if not result["busy"]:
            return [v for v in result["violations"] if v["impact"] in impacts]
    pytest.fail("the page never stayed settled through an axe-core scan (5 tries)")


BUSY = ".pending, .generating"
# Notes whether any output turned busy since ``busySeen`` was last cleared.
WATCH_BUSY = """() => {
    if (window.busyWatch) return;
    window.busyWatch = new MutationObserver(() => {
        if (document.querySelector(BUSY)) window.busySeen = true;
    });
    window.busyWatch.observe(document.body,
        {subtree: true, childList: true, attributes: true, attributeFilter: ['class']});
}""".replace("BUSY", repr(BUSY))
# No output busy now, nor in the last 700 ms.
SETTLED = """() => {
    const now = performance.now();
    if (document.querySelector(BUSY)) { window.lastBusy = now; return false; }
    return now - (window.lastBusy ?? -1e9) > 700;
}""".replace("BUSY", repr(BUSY))


def hold_first_event(page, endpoint: str) -> list:
    """Hold the page's first request to Gradio's queue for the event ``endpoint`` (its
    api_name, or ``endpoint_1``, ...) until the test calls ``continue_()`` on it: that event is
    then as slow as the test likes. Returns the list the held route is put in."""
    ids = page.evaluate(
        "pattern => window.gradio_config.dependencies"
        ".filter(d => new RegExp(pattern).test(d.api_name || '')).map(d => d.id)",
        rf"^{endpoint}(_\d+)?$",
    )
    assert ids, f"no {endpoint} endpoint in the page's config"
    held = []

    def hold(route):
        body = json.loads(route.request.post_data or "{}")
        if not held and body.get("fn_index") in ids:
            held.append(route)
        else:
            route.continue_()

    page.route("**/gradio_api/queue/join*", hold)
    return held


def wait_held(page, held: list):
    """The route ``hold_first_event`` held (its handler runs while the page waits)."""
    for _ in range(200):
        if held:
            return held[0]
        page.wait_for_timeout(50)
    pytest.fail("the held event's request never reached the queue")


def events_run(url, endpoint: str) -> int:
    """How many ``endpoint`` events (endpoint, endpoint_1, ...) the server has run, from
    Gradio's own record (the app runs with ``GRADIO_PROFILING=1``)."""
    with urllib.request.urlopen(url["address"] + "gradio_api/profiling/traces", timeout=30) as r:
        traces = json.load(r)
    name = re.compile(rf"{endpoint}(_\d+)?")
    return sum(bool(name.fullmatch(t.get("fn_name") or "")) for t in traces)
