"""Words for people and accessibility in Chromium: an offline backbone is one plain sentence,
Record 10 says how far it is and what it dropped, and axe-core finds no serious or critical
violation on any tab."""

from __future__ import annotations

import re

import pytest
from browser_app import MARKS, axe_violations, teach_and_imprint

pytestmark = MARKS


def test_an_offline_hub_backbone_is_one_plain_sentence_shown_once(page):
    """No internet here, so resnet18's weights cannot be fetched: one toast, in words a user
    reads (no cache folder, URL, command or environment variable), and the built-in one stays."""
    page.get_by_role("tab", name="Method").click()
    page.locator("#backbone input").click()
    page.get_by_role("option", name="resnet18").click()
    toast = page.locator("[data-testid=toast-body]")
    toast.first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#backbone input').value === 'efficientnet_lite0'"
    )
    page.wait_for_timeout(1500)  # a second toast would have come by now
    texts = toast.all_inner_texts()
    assert len(texts) == 1, texts
    text = texts[0]
    assert "(2)" not in text, text  # Gradio counts a repeated warning in the same toast
    assert "'resnet18' is not on this computer and cannot be downloaded now" in text, text
    assert "'efficientnet_lite0' is used" in text, text
    for detail in ("python", "HF_HUB", "http", "/", "cache"):
        assert detail not in text, (detail, text)


WATCH_NOTE = """() => {
    window.noteTexts = [];
    setInterval(() => {
        const t = document.querySelector('#burst-note-0')?.textContent;
        if (t && window.noteTexts[window.noteTexts.length - 1] !== t) window.noteTexts.push(t);
    }, 10);
}"""


def test_record_10_counts_its_frames_as_it_goes(page):
    """Record 10 says how far it is (frame k of 10), then what it recorded, in a live region."""
    page.evaluate(WATCH_NOTE)
    page.locator("#burst-0").click()
    page.wait_for_selector("#card-0 :text('10 images')", timeout=120_000)
    texts = page.evaluate("() => window.noteTexts")
    frames = [t for t in texts if t.startswith("Recording: frame")]
    assert frames[-1] == "Recording: frame 10 of 10...", texts
    assert len(frames) >= 5, texts  # polled every 10 ms, frames 150 ms apart: most are seen
    assert texts[-1] == "Recorded 10 frames. Adding them.", texts
    assert page.locator("#burst-note-0").get_attribute("role") == "status"


def test_record_10_says_when_frames_were_dropped(page):
    """The camera stalls mid-burst (its video paused): the frames it did not send are dropped,
    counted and said; the frames recorded before are added."""
    page.locator("#burst-0").click()
    page.wait_for_function(
        "() => (document.querySelector('#burst-note-0')?.textContent || '')"
        ".includes('frame 4 of 10')"
    )
    page.evaluate("() => document.querySelector('#cam-0 video').pause()")
    page.wait_for_function(
        "() => (document.querySelector('#burst-note-0')?.textContent || '').includes('Recorded')"
    )
    text = page.locator("#burst-note-0").inner_text()
    found = re.fullmatch(
        r"Recorded (\d+) of 10 frames: (\d+) frames? dropped \(the camera sent no new picture\)\. "
        r"Adding (\d+)\.",
        text,
    )
    assert found, text
    kept, dropped, adding = map(int, found.groups())
    assert 3 <= kept <= 5 and kept + dropped == 10 and adding == kept, text
    page.wait_for_selector(f"#card-0 :text('{kept} images')")


TABS = ["Teach", "Method", "Result", "Try it", "Sort images", "Geometry", "Export"]


def _report(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} elements)")
        lines += [f"    {n['target']}: {n['summary'][:200]}" for n in v["nodes"][:30]]
    return "\n".join(lines)


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_axe_core_finds_no_serious_or_critical_violation_on_any_tab(page, images, width):
    """Contrast of 4.5:1, a name for every control, ...: axe-core's WCAG 2.1 A/AA rules over each
    tab of a project with an imprinted head (so every tab shows its content), on a desktop and on
    a phone (390 px wide: the layout stacks and wraps, and other rules can fail there)."""
    page.set_viewport_size({"width": width, "height": 1000 if width > 390 else 844})
    train, _ = images
    teach_and_imprint(page, train, n=3)
    found = {}
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)  # the tab's content drawn
        violations = axe_violations(page)
        if violations:
            found[tab] = _report(violations)
    # an Example project, imprinted: Try it shows its held-out thumbnails (buttons)
    page.get_by_role("tab", name="Teach").click()
    page.locator("#example-fashion3").click()
    page.wait_for_selector("#teach-msg :text('Loaded the example')")
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 3 classes')")
    for tab in ("Teach", "Try it"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)
        violations = axe_violations(page)
        if violations:
            found[f"{tab} (an example)"] = _report(violations)
    assert not found, "\n".join(f"--- {tab}\n{text}" for tab, text in found.items())
    named = page.locator("#held-out-fashion3").get_by_role("button", name=re.compile(r" \(\d+\)$"))
    assert named.count() >= 12  # every held-out thumbnail on the page has a name
    assert page.get_by_role("button", name="Sneaker (1)", exact=True).count() == 1


def test_the_class_name_box_is_named_for_a_screen_reader(page):
    """A screen reader announced each class's name box as "Textbox"."""
    box = page.get_by_role("textbox", name="Name of class 2")
    assert box.count() == 1
    assert box.input_value() == "Class 2"
