"""Issue 12's camera features in Chromium with its synthetic camera (a moving test pattern):
Try it's live mode classifies frames continuously, and a class card records a burst of frames."""

from __future__ import annotations

from browser_app import MARKS, teach_and_imprint

pytestmark = MARKS


def test_live_camera_labels_frames_continuously(page, images):
    train, _ = images
    teach_and_imprint(page, train, n=3)
    page.get_by_role("tab", name="Try it").click()
    page.get_by_text("Live camera").click()
    page.locator("#live-camera").wait_for()
    page.locator("#live-camera").get_by_text("Click to Access Webcam").click()
    # count the distinct results shown (each names its own classification time)
    page.evaluate(
        """() => {
        window.liveTexts = [];
        setInterval(() => {  // polled: Gradio may replace the note's nodes wholesale
            // the result's sentence, without the progress timer shown beside it meanwhile
            const m = document.querySelector('#live-note').innerText.match(/Frame classified.*/);
            const last = window.liveTexts[window.liveTexts.length - 1];
            if (m && (!last || last.text !== m[0]))
                window.liveTexts.push({text: m[0], at: performance.now()});
        }, 20);
        }"""
    )
    page.locator("#live-camera button[aria-label='capture photo']").click()
    page.wait_for_function("() => window.liveTexts.length >= 5")
    page.locator("#live-camera button[aria-label='capture photo']").click()  # stop
    texts = page.evaluate("() => window.liveTexts")
    label = page.locator("#live-label").inner_text()
    assert "trousers" in label and "sneakers" in label, label
    seconds = (texts[-1]["at"] - texts[0]["at"]) / 1000
    print(
        f"live camera: {len(texts)} distinct results in {seconds:.1f} s = "
        f"{(len(texts) - 1) / seconds:.2f} results/s, a lower bound (stream_every 0.5 s; 2 cores under "
        "load)"
    )
    assert len(texts) >= 5
