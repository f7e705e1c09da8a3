"""Issue 12 in Chromium: the Export tab saves a project as one zip that a fresh session opens
with identical predictions, refuses a file that is not a project without changing anything,
and downloads a standalone ONNX model that onnxruntime runs."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from browser_app import MARKS, teach_and_imprint, wait_text

from imprint_core.onnx_export import onnx_snippet

pytestmark = MARKS


def download(page, selector: str, target):
    """Click the link of the gr.File ``selector`` as a user would; the saved file's path."""
    link = page.locator(f"{selector} a[download]").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    info.value.save_as(target)
    return target


def predictions(page, image: str) -> tuple[str, dict[str, float]]:
    """Try it on ``image``: (the predicted label, class -> confidence %) from the evidence table."""
    page.get_by_role("tab", name="Try it").click()
    old = page.locator("#evidence").inner_text()
    page.locator("#try-image input[type=file]").set_input_files(image)
    # new rows, and no progress timer ("0.4s") left: it shows over the old rows while pending
    page.wait_for_function(
        "old => { const t = document.querySelector('#evidence').innerText;"
        " return t !== old && !/\\d(\\.\\d+)?s\\b/.test(t)"
        " && (t.match(/(trousers|sneakers)\\s+[\\d.]+ %/g) || []).length === 2; }",
        arg=old,
    )
    text = page.locator("#evidence").inner_text()
    conf = {m[1]: float(m[2]) for m in re.finditer(r"(trousers|sneakers)\s+([\d.]+) %", text)}
    assert len(conf) == 2, text
    return max(conf, key=conf.get), conf


def test_a_saved_project_opens_in_a_fresh_session_with_the_same_predictions(
    page, browser, images, tmp_path
):
    train, test = images
    teach_and_imprint(page, train)
    probes = [test["Sneaker"][0], test["Trouser"][0]]
    before = [predictions(page, str(p)) for p in probes]
    page.get_by_role("tab", name="Export").click()
    page.locator("#project-download").click()
    saved = download(page, "#project-file", tmp_path / "saved.zip")

    fresh = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    fresh.goto(page.url, wait_until="domcontentloaded")
    fresh.wait_for_selector("#drop-1 input[type=file]", state="attached")
    fresh.get_by_role("tab", name="Export").click()
    fresh.locator("#project-upload input[type=file]").set_input_files(str(saved))
    fresh.wait_for_selector("#open-msg :text('2 classes')")
    fresh.get_by_role("tab", name="Teach").click()
    fresh.wait_for_function(
        "() => ['trousers', 'sneakers'].every((n, i) =>"
        " document.querySelector(`#name-${i} input`)?.value === n)"
    )
    after = [predictions(fresh, str(p)) for p in probes]
    for (label_a, conf_a), (label_b, conf_b) in zip(before, after, strict=True):
        assert label_a == label_b
        assert conf_a.keys() == conf_b.keys() == {"trousers", "sneakers"}
        for name in conf_a:  # shown rounded to 0.1 %
            assert conf_b[name] == pytest.approx(conf_a[name], abs=0.11)
    assert {before[0][0], before[1][0]} == {"sneakers", "trousers"}, before
    fresh.context.close()

    # the zip is a view of what it was made of: another preset withdraws it (it was left shown)
    page.get_by_role("tab", name="Method").click()
    page.get_by_label("Qi et al. 2018: mean").check()
    page.get_by_role("tab", name="Export").click()
    wait_text(page, "#project-note", "The project changed since it was saved: save it again.")
    assert page.locator("#project-file a[download]").count() == 0


def test_a_file_that_is_not_a_project_is_refused_and_changes_nothing(page, images, tmp_path):
    train, _ = images
    teach_and_imprint(page, train, n=3)
    bad = tmp_path / "holiday.zip"
    bad.write_bytes(b"this is not a zip file")
    page.get_by_role("tab", name="Export").click()
    page.locator("#project-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_selector(".toast-body :text('holiday.zip')")
    assert "not a readable zip" in page.locator(".toast-body").first.inner_text()
    page.get_by_role("tab", name="Teach").click()
    assert page.locator("#name-0 input").input_value() == "trousers"
    page.wait_for_selector("#card-0 :text('3 images')")
    assert page.locator("#open-msg").inner_text().strip() == ""


def test_the_onnx_download_runs_in_onnxruntime(page, images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    train, test = images
    teach_and_imprint(page, train, n=4)
    page.get_by_role("tab", name="Export").click()
    page.locator("#onnx-download").click()
    model = download(page, "#onnx-file", tmp_path / "model.onnx")
    page.wait_for_selector("#onnx-note :text('imprint-classifier.onnx')")
    session = ort.InferenceSession(str(model))
    assert [o.name for o in session.get_outputs()] == ["probabilities", "unknown_score"]
    # the page's snippet, run as a user would: it prints "<class> <probability>" (and a second
    # line when the image looks like none of the classes)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(onnx_snippet(str(model), str(test["Sneaker"][0])), {})
    first, *rest = out.getvalue().splitlines()
    name, probability = first.split()
    assert rest in ([], ["none of these? unlike every class it was taught"])
    assert name == "sneakers"
    assert 0.5 < float(probability) <= 1.0

    # a new head withdraws the model of the old one, and says so
    page.get_by_role("tab", name="Method").click()
    page.get_by_label("Qi et al. 2018: mean").check()
    page.get_by_role("tab", name="Export").click()
    wait_text(page, "#onnx-note", "The head changed since the ONNX download: download it again.")
    assert page.locator("#onnx-file a[download]").count() == 0
