"""Keyboard focus stays on the class card it was in when an upload or the webcam redraws the
control that had it (Chromium left it on the page's body: the next Tab started from the top and a
screen reader announced nothing)."""

from __future__ import annotations

from browser_app import MARKS

pytestmark = MARKS

FOCUSED = """() => {
    const el = document.activeElement;
    return {tag: el.tagName, text: (el.innerText || '').slice(0, 40),
            label: el.getAttribute('aria-label'), box: el.closest('[id]')?.id || null,
            card: el.closest('.class-card')?.id || null};
}"""


def tab_to(page, start: str, inside: str, presses: int = 8) -> None:
    """Focus ``start``, then press Tab until the focus is inside ``inside`` (a keyboard user)."""
    page.locator(start).focus()
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement.closest(s)", inside):
            return
    raise AssertionError(f"Tab never reached {inside}: {page.evaluate(FOCUSED)}")


def settled_focus(page) -> dict:
    page.wait_for_timeout(1000)  # the drop zone / webcam drawn anew after the event
    return page.evaluate(FOCUSED)


def test_focus_stays_on_the_drop_zone_after_a_keyboard_upload(page, images):
    """Tab to card 1's drop zone, Enter, pick files: the focus is back on that drop zone once the
    images are added, and Enter there opens the file chooser again."""
    train, _ = images
    # Playwright turns the chooser's interception on asynchronously: on before the first Enter
    page.on("filechooser", lambda chooser: None)
    tab_to(page, "#name-0 input", "#drop-0")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(train["Trouser"][:3])
    page.wait_for_selector("#card-0 :text('3 images')")
    page.wait_for_selector("#drop-0 :text('Click to Upload')")  # empty again
    focused = settled_focus(page)
    assert focused["card"] == "card-0" and focused["box"] == "drop-0", focused
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(train["Trouser"][3:5])
    page.wait_for_selector("#card-0 :text('5 images')")
    page.wait_for_selector("#drop-0 :text('Click to Upload')")
    focused = settled_focus(page)
    assert focused["box"] == "drop-0", focused


def test_focus_stays_on_the_webcam_when_it_opens_and_takes_a_picture(page):
    """Enter on card 1's "Click to Access Webcam", then Enter on the capture button: the focus
    stays in the webcam box both times (Chromium's synthetic camera)."""
    tab_to(page, "#remove-0", "#cam-0")
    assert "Access Webcam" in page.evaluate(FOCUSED)["text"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#cam-0 video")
    focused = settled_focus(page)
    assert focused["box"] == "cam-0" and focused["label"] == "capture photo", focused
    page.keyboard.press("Enter")
    page.wait_for_selector("#card-0 :text('1 image')")
    focused = settled_focus(page)
    assert focused["card"] == "card-0" and focused["box"] == "cam-0", focused
