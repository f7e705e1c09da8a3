"""Words for people and accessibility in Chromium: an offline backbone is one plain sentence,
Record 10 says how far it is and what it dropped, and axe-core finds no serious or critical
violation on any tab."""

from __future__ import annotations

from browser_app import MARKS

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
