"""Issue 9 §4: the app on a phone (390 x 844, Chromium): every tab reachable, the Imprint button
reachable without scrolling past the class cards, no overlapping tab titles."""

from __future__ import annotations

import pytest
from browser_app import MARKS, TIMEOUT_MS, wait_for_names, wait_text

pytestmark = MARKS
TABS = ["Teach", "Method", "Result", "Try it", "Sort images", "Geometry", "Export"]
FIRST_ELEMENT = {  # an element only that tab shows
    "Teach": "#add-class",
    "Method": "#preset",
    "Result": "#summary",
    "Try it": "#try-image",
    "Sort images": "#pile-files",
    "Geometry": "#geometry-map",
    "Export": "#head-download",
}


@pytest.fixture
def phone(browser, url):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url["address"], wait_until="domcontentloaded")
    page.wait_for_selector("#drop-1 input[type=file]", state="attached")
    yield page
    context.close()


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_every_tab_is_reachable_and_imprint_comes_before_the_cards(phone):
    phone.locator("#example-fashion3").click()
    wait_for_names(phone, ["Sneaker", "T-shirt", "Trouser"])
    phone.wait_for_selector("#card-0 :text('30 images')")
    imprint = phone.locator("#imprint").bounding_box()
    assert imprint["y"] + imprint["height"] <= 844  # on the first screen, no scrolling
    assert imprint["y"] < phone.locator("#card-0").bounding_box()["y"]
    boxes = {}
    for name in TABS:
        tab = phone.get_by_role("tab", name=name)
        assert tab.is_visible(), f"the tab {name} is hidden (behind a menu?)"
        box = tab.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= 390, (name, box)
        boxes[name] = box
    for i, a in enumerate(TABS):
        for b in TABS[i + 1 :]:
            assert not overlaps(boxes[a], boxes[b]), (a, b)
    for name in TABS:
        phone.get_by_role("tab", name=name).click()
        phone.wait_for_selector(f"{FIRST_ELEMENT[name]}:visible")


def test_the_map_fits_a_phone(phone):
    """The Geometry map at 390 px: its title is wrapped inside the figure (it ran off the right
    edge) and its legend, three rows here, sits below the x axis' title (it covered it)."""
    phone.locator("#example-fashion3").click()
    phone.wait_for_selector("#teach-msg :text('Loaded the example')")
    phone.locator("#imprint").click()
    phone.wait_for_selector("#status :text('Imprinted 3 classes')")
    phone.get_by_role("tab", name="Geometry").click()
    phone.wait_for_selector("#geometry-map .js-plotly-plot .legend")
    box = {
        name: phone.locator(f"#geometry-map {selector}").first.bounding_box()
        for name, selector in {
            "figure": ".main-svg",
            "title": ".gtitle",
            "legend": ".legend",
            "x title": ".g-xtitle",
        }.items()
    }
    figure, title = box["figure"], box["title"]
    assert (
        figure["x"] <= title["x"] and title["x"] + title["width"] <= figure["x"] + figure["width"]
    )
    assert not overlaps(box["legend"], box["x title"]), box
    assert box["legend"]["y"] >= box["x title"]["y"] + box["x title"]["height"] - 1, box


def test_the_evidence_table_fits_a_phone(phone, images):
    """Try it's evidence at 390 px: every column, the score the head compares last, is on the
    screen without scrolling the table sideways (its long header pushed the score out of view)."""
    phone.locator("#example-fashion3").click()
    phone.wait_for_selector("#teach-msg :text('Loaded the example')")
    phone.locator("#imprint").click()
    phone.wait_for_selector("#status :text('Imprinted 3 classes')")
    phone.get_by_role("tab", name="Try it").click()
    phone.locator("#try-image input[type=file]").set_input_files(str(images[1]["Sneaker"][0]))
    wait_text(phone, "#evidence", "1 of 1")
    headers = phone.locator("#evidence th")
    assert headers.count() >= 4
    for i in range(headers.count()):
        box = headers.nth(i).bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 390, (i, box)
    score = phone.locator("#evidence tbody tr").first.locator("td").last.bounding_box()
    assert score["x"] + score["width"] <= 390, score
