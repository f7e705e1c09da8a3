""" "None of these" in Chromium (issue 10): Try it says in words when an image is unlike every
taught class, and still shows the nearest class; a held-out image of a taught class gets no such
sentence."""

from __future__ import annotations

from pathlib import Path

import sklearn.datasets
from browser_app import MARKS, teach_and_imprint, wait_text

pytestmark = MARKS
PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # a temple, not clothing


def test_try_it_says_none_of_these_and_still_shows_the_nearest_class(page, images):
    train, test = images
    teach_and_imprint(page, train)  # the default preset
    page.get_by_role("tab", name="Try it").click()
    page.locator("#try-image input[type=file]").set_input_files(str(PHOTO))
    wait_text(page, "#try-note", "None of these?")
    note = page.locator("#try-note").inner_text()
    assert "'china.jpg' as the current head sees it" in note
    assert "than 95 % of your own images are from their class" in note
    assert "the nearest class is shown" in note
    label = page.locator("#prediction").inner_text()
    assert "trousers" in label or "sneakers" in label  # the nearest class is still there

    page.locator("#try-image input[type=file]").set_input_files(test["Trouser"][0])
    name = Path(test["Trouser"][0]).name
    wait_text(page, "#try-note", f"'{name}' as the current head sees it")
    assert "None of these?" not in page.locator("#try-note").inner_text()
