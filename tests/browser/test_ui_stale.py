"""Issue 9's stale views, in Chromium: every view shows the current head after every change.

Each test drives the real app as a user would and checks the views an older app left stale:
Try it after a preset change, Result / Try it / Export after an example replaced the project,
the Method panel after choosing whiten, and the views of a loaded head.
"""

from __future__ import annotations

import re

from browser_app import MARKS, teach_and_imprint, wait_text

pytestmark = MARKS
OURS = "IMPRINT k-means (ours)"  # one proxy per image here, so the evidence reads "i of n"
HEAD_FILE = "#head-file [aria-label='imprint-head.safetensors']"  # the file's row


def evidence_proxies(page) -> list[str]:
    """The 'nearest proxy' column of Try it's evidence table ("i of n" per class)."""
    return re.findall(r"\d+ of \d+", page.locator("#evidence").inner_text())


def no_error_badges(page) -> None:
    """No component shows Gradio's red error state (it blocks clicks on inputs)."""
    badges = page.locator(".error:visible").all_inner_texts()
    assert not [b for b in badges if b.strip() == "Error"], badges


def test_try_it_follows_the_preset_and_a_replaced_project_clears_every_view(page, images):
    train, test = images
    teach_and_imprint(page, train, preset=OURS)
    page.get_by_role("tab", name="Try it").click()
    page.locator("#try-image input[type=file]").set_input_files(test["Sneaker"][0])
    wait_text(page, "#evidence", " of 6")
    assert len(evidence_proxies(page)) == 2
    assert set(evidence_proxies(page)) <= {f"{i} of 6" for i in range(1, 7)}
    page.get_by_role("tab", name="Export").click()
    page.locator("#head-download").click()
    page.wait_for_selector(HEAD_FILE)

    # a preset with one proxy per class: Try it is explained by the new head at once
    page.get_by_role("tab", name="Method").click()
    page.get_by_label("Qi et al. 2018: mean").check()
    page.wait_for_selector("#status-method :text('(2 proxies)')")
    page.get_by_role("tab", name="Try it").click()
    page.wait_for_function("() => !document.querySelector('#evidence').innerText.includes('of 6')")
    assert evidence_proxies(page) == ["1 of 1", "1 of 1"]
    page.get_by_role("tab", name="Export").click()  # the download was of the old head
    page.wait_for_selector("#head-note :text('download it again')")
    assert page.locator(HEAD_FILE).count() == 0

    # an example replaces the project: no view keeps the old head
    page.get_by_role("tab", name="Teach").click()
    page.locator("#example-fashion3").click()
    page.wait_for_selector("#teach-msg :text('Loaded the example')")
    page.wait_for_selector("#undo:visible")
    page.get_by_role("tab", name="Result").click()
    page.wait_for_selector("#summary :text('Nothing imprinted yet')")
    assert page.locator("#confusion .js-plotly-plot").count() == 0
    page.get_by_role("tab", name="Try it").click()
    page.wait_for_function(
        r"() => !/\d+ of \d+/.test(document.querySelector('#evidence').innerText)"
    )
    assert not evidence_proxies(page)
    assert "sneakers" not in page.locator("#prediction").inner_text()

    # Undo brings back the user's own classes, images and head
    page.get_by_role("tab", name="Teach").click()
    page.locator("#undo").click()
    page.wait_for_selector("#teach-msg :text('Restored your project')")
    page.wait_for_function(
        "() => document.querySelector('#name-0 input')?.value === 'trousers'"
        " && document.querySelector('#name-1 input')?.value === 'sneakers'"
    )
    page.wait_for_selector("#card-1 :text('6 images')")
    assert page.locator("#undo:visible").count() == 0
    page.get_by_role("tab", name="Result").click()
    page.wait_for_selector("#summary :text('preset qi')")


def test_whiten_moves_both_sides_and_leaves_every_widget_usable(page, images):
    train, _ = images
    teach_and_imprint(page, train, n=4, preset=OURS)
    page.get_by_role("tab", name="Method").click()
    page.get_by_text("Advanced: every option of the IMPRINT framework").click()
    page.locator("#opt-norm_pre").get_by_label("whiten").check()
    page.wait_for_selector("#method-note :text('norm_inf was set to whiten too')")
    assert page.locator("#opt-norm_inf").get_by_label("whiten").is_checked()
    page.wait_for_selector("#status-method :text('Imprinted 2 classes from 8 images')")
    no_error_badges(page)
    # and back: every widget still takes clicks
    page.locator("#opt-norm_inf").get_by_label("l2").check()
    page.wait_for_selector("#method-note :text('norm_pre was set to l2 too')")
    assert page.locator("#opt-norm_pre").get_by_label("l2").is_checked()
    page.get_by_label("Qi et al. 2018: mean").check()
    page.wait_for_selector("#status-method :text('(2 proxies)')")
    no_error_badges(page)


def test_a_loaded_head_shows_its_own_settings_classes_and_limits(page, images, tmp_path):
    import imprint_core as ic

    train, _ = images
    backbone = ic.get_backbone()
    X = backbone.embed([str(p) for p in train["Sneaker"][:6] + train["Trouser"][:6]])
    clf = ic.ImprintClassifier.from_preset("ours", k=3, agg="mnn", m=3, seed=4).fit(
        X, ["boots"] * 6 + ["legs"] * 6
    )
    head = tmp_path / "mine.safetensors"
    clf.save(head, backbone=backbone.name)

    page.get_by_role("tab", name="Export").click()
    page.locator("#head-upload input[type=file]").set_input_files(str(head))
    page.wait_for_selector("#load-msg :text('loaded')")
    page.get_by_role("tab", name="Result").click()
    summary = page.locator("#summary")
    page.wait_for_selector("#summary :text('loaded from the file')")
    text = summary.inner_text()
    assert "mine.safetensors" in text and "k=3" in text and "agg=mnn" in text and "m=3" in text
    assert "preset custom" in text and "not in the file" in text
    rows = page.locator("#summary table tr").all_inner_texts()
    assert any(r.split() == ["boots", "-", "3"] for r in rows), rows
    page.get_by_role("tab", name="Method").click()
    page.get_by_text("Advanced: every option of the IMPRINT framework").click()
    assert page.locator("#opt-agg").get_by_label("mnn").is_checked()
    assert page.locator("#preset").get_by_label("Custom").is_checked()
    page.get_by_role("tab", name="Geometry").click()
    page.wait_for_selector("#geometry-text :text('A head file holds the proxies')")
