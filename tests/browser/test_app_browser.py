"""A real browser (Playwright + Debian's Chromium) drives the real app, started as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_app import MARKS, hold_first_event, rename, upload, wait_for_names, wait_held

pytestmark = MARKS


def test_teach_two_classes_imprint_and_predict(page, images, tmp_path):
    train, test = images
    rename(page, 0, "trousers")
    upload(page, 0, train["Trouser"][:6])
    rename(page, 1, "sneakers")
    upload(page, 1, train["Sneaker"][:6])
    assert page.locator("#gal-0 img").count() == 6  # thumbnails
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 2 classes from 12 images')")
    assert "leave-one-out" in page.locator("#status").inner_text()

    page.get_by_role("tab", name="Result").click()
    page.wait_for_selector("#confusion .js-plotly-plot")
    assert "Accuracy on your own images" in page.locator("#accuracy").inner_text()

    page.get_by_role("tab", name="Try it").click()
    page.locator("#try-image input[type=file]").set_input_files(test["Sneaker"][0])
    label = page.locator("#prediction .headline")
    label.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#prediction .headline').innerText.includes('sneakers')"
    )
    assert "sneakers" in label.inner_text()
    page.wait_for_selector("#neighbours img")
    assert "trousers" in page.locator("#evidence").inner_text()
    page.screenshot(path=str(tmp_path / "try-it.png"))

    # a preset change re-imprints from the cached embeddings
    page.get_by_role("tab", name="Method").click()
    page.get_by_label("Qi et al. 2018: mean").check()
    page.wait_for_selector("#status-method :text('from 12 images (2 proxies)')")  # 1 per class
    page.get_by_role("tab", name="Result").click()
    page.wait_for_selector("#summary :text('preset qi')")
    assert "| 1 |" not in page.locator("#summary").inner_text()  # rendered as a table
    rows = page.locator("#summary table tr").all_inner_texts()
    assert any(r.split() == ["sneakers", "6", "1"] for r in rows), rows

    # the status under Imprint says when the images changed since
    page.get_by_role("tab", name="Teach").click()
    page.locator("#gal-1 button[aria-label='Delete image']").first.click()
    page.wait_for_selector("#card-1 :text('5 images')")
    page.wait_for_selector("#status :text('changed since')")
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 2 classes from 11 images')")


def test_a_bad_file_shows_an_error_toast(page, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    rename(page, 0, "beach")
    page.locator("#drop-0 input[type=file]").set_input_files(str(bad))
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    text = toast.inner_text()
    assert "'holiday.png'" in text and "'beach'" in text
    assert page.locator("#card-0 :text('0 images')").count() == 1


def test_a_blank_name_shows_an_error_and_keeps_the_old_one(page):
    box = page.locator("#name-0 input")
    box.fill("   ")
    box.press("Enter")
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    assert "cannot be blank" in toast.inner_text()
    page.wait_for_function("() => document.querySelector('#name-0 input').value === 'Class 1'")


def test_card_edits_update_in_place_without_re_rendering_the_cards(page, images):
    """A re-render is an event of its own (the browser asks for it when the cards change) and
    replaces every card's handlers; renaming, uploading or deleting in one card needs none."""

    train, _ = images
    triggers: list[int] = []  # the component behind each event the browser sends

    def record(request):
        if "/queue/join" in request.url:
            triggers.append(json.loads(request.post_data)["trigger_id"])

    page.on("request", record)
    rename(page, 0, "cats")
    upload(page, 0, train["Trouser"][:2])
    page.locator("#gal-0 button[aria-label='Delete image']").first.click()
    page.wait_for_selector("#card-0 :text('1 image')")
    page.wait_for_timeout(500)  # a render request would follow at once
    edits = list(triggers)
    page.locator("#add-class").click()  # a new card re-renders: learn the render's trigger
    page.wait_for_selector("#drop-2 input[type=file]", state="attached")
    assert len(triggers) == len(edits) + 2, triggers  # the click, then the render it caused
    assert triggers[-1] not in edits, (edits, triggers[-1])  # no edit caused a render
    assert page.locator("#name-0 input").input_value() == "cats"
    assert page.locator("#gal-0 img").count() == 1


def test_add_and_remove_classes(page, images):
    train, _ = images
    page.locator("#add-class").click()
    page.wait_for_selector("#drop-2 input[type=file]", state="attached")
    upload(page, 2, train["Sneaker"][:2])
    page.locator("#remove-1").click()  # the middle card goes; the others keep names and images
    page.wait_for_selector("#card-2", state="detached")
    wait_for_names(page, ["Class 1", "Class 3"])
    assert page.locator("#card-1 :text('2 images')").count() == 1
    assert page.locator("#gal-1 img").count() == 2


def test_delete_one_thumbnail_and_drop_more_onto_the_thumbnails(page, images):
    train, _ = images
    upload(page, 0, train["Trouser"][:5])
    second = page.locator("#gal-0 .gallery-item img").nth(1).get_attribute("src")
    page.locator("#gal-0 button[aria-label='Delete image']").nth(1).click()
    page.wait_for_selector("#card-0 :text('4 images')")
    srcs = page.locator("#gal-0 .gallery-item img").evaluate_all("els => els.map(e => e.src)")
    assert len(srcs) == 4 and second.rsplit("/", 1)[-1] not in " ".join(srcs)
    assert not page.locator("#gal-0 button[aria-label='Clear']").is_visible()
    # the thumbnails are a drop zone too: the new images join the class, the shown ones stay
    page.locator("#gal-0 input[type=file]").set_input_files(train["Trouser"][5:7])
    page.wait_for_selector("#card-0 :text('6 images')")
    assert page.locator("#gal-0 .gallery-item img").count() == 6
    srcs = page.locator("#gal-0 .gallery-item img").evaluate_all("els => els.map(e => e.src)")
    assert all(src.endswith("-thumb.jpg") for src in srcs)  # the thumbnails, not the stored files


def test_a_card_of_phone_photos_loads_small_thumbnails(page, tmp_path):
    """Two 12-megapixel JPEGs (real photos upscaled): the card loads thumbnails of at most
    256 px, tens of kB, not the 3-4 MB photos."""
    import numpy as np
    from PIL import Image
    from sklearn import datasets

    photos = []
    for i, name in enumerate(("china.jpg", "flower.jpg")):
        photo = Image.open(Path(datasets.__file__).parent / "images" / name).convert("RGB")
        noise = np.random.default_rng(i).normal(0, 4, (3000, 4000, 3))
        pixels = np.asarray(photo.resize((4000, 3000)), dtype=float) + noise
        photos.append(tmp_path / f"IMG_{i}.jpg")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(photos[-1], quality=92)
    assert min(p.stat().st_size for p in photos) > 2_000_000
    upload(page, 0, [str(p) for p in photos])
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gal-0 .gallery-item img')]"
        ".filter(e => e.complete && e.naturalWidth > 0).length === 2"
    )
    loaded = page.locator("#gal-0 .gallery-item img").evaluate_all(
        """els => els.map(e => {
            const entry = performance.getEntriesByName(e.src)[0];
            return [e.naturalWidth, e.naturalHeight, entry ? entry.encodedBodySize : -1];
        })"""
    )
    for width, height, size in loaded:
        assert max(width, height) <= 256 and min(width, height) >= 100
        assert 0 < size < 60_000, loaded


@pytest.mark.stale_event_expected
def test_a_click_lost_to_a_re_render_says_so_in_a_sentence(page):
    """Simulate the race: the page asks for a handler number the server no longer has."""

    def stale(route):
        body = json.loads(route.request.post_data)
        route.continue_(post_data=json.dumps({**body, "fn_index": 987654}))

    page.route("**/queue/join*", stale)
    page.locator("#add-class").click()
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    assert "were being redrawn when you clicked" in toast.inner_text()
    page.unroute("**/queue/join*")


def test_webcam_capture_adds_an_image(page):
    page.locator("#cam-1").click()  # "Click to Access Webcam" (Chromium's synthetic camera)
    page.wait_for_function(
        "() => { const v = document.querySelector('#cam-1 video');"
        " return v && v.readyState >= 2 && v.videoWidth > 0; }"
    )
    page.locator("#cam-1 button[aria-label='capture photo']").click()
    page.wait_for_selector("#card-1 :text('1 image')")
    assert page.locator("#gal-1 img").count() == 1


def test_record_fills_a_class_from_the_camera_in_one_go(page):
    """Teachable Machine's hold-to-record: "Record 10" opens the card's webcam if needed and
    adds 10 frames of Chromium's synthetic camera as one upload (checked like dropped files)."""
    page.locator("#burst-0").click()
    page.wait_for_selector("#card-0 :text('10 images')", timeout=120_000)
    assert page.locator("#gal-0 img").count() == 10
    assert page.locator("#card-1 :text('0 images')").count() == 1  # the other class is untouched


def test_zip_import_and_example_buttons(page, images, tmp_path):
    import zipfile

    train, _ = images
    archive = tmp_path / "my-set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cls in ("Trouser", "Sneaker"):
            for path in train[cls][:3]:
                zf.write(path, f"my-set/{cls.lower()}s/{Path(path).name}")
    page.get_by_text("Bulk import: a folder or a zip with one folder per class").click()
    page.locator("#zip-upload input[type=file]").set_input_files(str(archive))
    page.wait_for_selector("#teach-msg :text('Imported 6 images into 2 classes')")
    wait_for_names(page, ["trousers", "sneakers"])
    assert page.locator("#card-1 :text('3 images')").count() == 1
    page.locator("#example-merged").click()
    page.wait_for_selector("#teach-msg :text('Loaded the example')")
    wait_for_names(page, ["footwear", "other", "tops"])
    page.wait_for_selector("#card-2 :text('36 images')")


def test_folder_import_keeps_the_class_folders(page, images, tmp_path):
    """A browser uploads a picked folder's files under bare names; the class comes from each
    file's path in the folder, which the page records. The same file name in two classes."""
    train, _ = images
    for cls, paths in (("Trouser", train["Trouser"][:2]), ("Sneaker", train["Sneaker"][:3])):
        folder = tmp_path / "my-set" / f"{cls.lower()}s"
        folder.mkdir(parents=True)
        for i, path in enumerate(paths):
            (folder / f"{i}.png").write_bytes(Path(path).read_bytes())
    (tmp_path / "my-set" / "notes.txt").write_text("not an image: ignored")
    page.get_by_text("Bulk import: a folder or a zip with one folder per class").click()
    page.locator("#folder-upload").wait_for()
    page.locator("input[webkitdirectory]").set_input_files(str(tmp_path / "my-set"))
    page.wait_for_selector("#teach-msg :text(\"Imported 5 images into 2 classes from 'my-set'\")")
    page.wait_for_function(  # the browser lists the folder in its own order
        "() => ['#name-0 input', '#name-1 input'].map(s => document.querySelector(s)?.value)"
        ".sort().join() === 'sneakers,trousers'"
    )
    cards = {
        page.locator(f"#name-{i} input").input_value(): page.locator(f"#card-{i}").inner_text()
        for i in range(2)
    }
    assert "3 images" in cards["sneakers"] and "2 images" in cards["trousers"], cards


def test_geometry_tab_after_an_example_project(page):
    page.locator("#example-merged").click()
    page.wait_for_selector("#teach-msg :text('Loaded the example')")
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 3 classes')", timeout=240_000)
    page.get_by_role("tab", name="Geometry").click()
    page.wait_for_selector("#geometry-map .js-plotly-plot", timeout=60_000)
    page.wait_for_selector("#cosines .js-plotly-plot")
    page.wait_for_selector("#dispersion .js-plotly-plot")
    names = page.evaluate(
        "() => document.querySelector('#geometry-map .js-plotly-plot').data.map(t => t.name)"
    )
    assert any("proxies" in (n or "").lower() for n in names), names
    assert any("tops" in (n or "") for n in names), names
    assert page.locator("#geometry-text").inner_text().strip()
    page.locator("#k-curve-btn").click()
    page.wait_for_selector("#k-curve .js-plotly-plot", timeout=120_000)
    traces = page.evaluate(
        "() => document.querySelector('#k-curve .js-plotly-plot').data.map(t => t.name)"
    )
    assert "kmeans" in traces, traces
    page.locator("#use-auto").click()
    page.get_by_role("tab", name="Result").click()
    page.wait_for_selector("#summary :text('gen=kmeans')", timeout=120_000)  # the advised k


def test_a_folder_chosen_while_the_last_is_imported_is_imported_too(page, images, tmp_path):
    """A second folder chosen while the first is still being imported is imported as well:
    Gradio's default for `upload` ("once") dropped its event, and its classes never came. The
    first import is made slow here by holding its request to Gradio's queue until the second
    folder has been chosen."""
    train, _ = images
    sets = {"first": ("Trouser", "Sneaker"), "second": ("T-shirt",)}
    for name, classes in sets.items():
        for cls in classes:
            folder = tmp_path / name / cls.lower().replace("-", "")
            folder.mkdir(parents=True)
            for i, path in enumerate(train[cls][:2]):
                (folder / f"{i}.png").write_bytes(Path(path).read_bytes())
    held = hold_first_event(page, "import_folder")  # answered once the second is chosen
    page.get_by_text("Bulk import: a folder or a zip with one folder per class").click()
    page.locator("#folder-upload").wait_for()
    page.locator("input[webkitdirectory]").set_input_files(str(tmp_path / "first"))
    first_import = wait_held(page, held)
    page.locator("input[webkitdirectory]").set_input_files(str(tmp_path / "second"))
    page.wait_for_timeout(300)  # the second `upload` has come and found the first pending
    first_import.continue_()
    names = (
        "['trouser', 'sneaker', 'tshirt'].every(n => [...document.querySelectorAll"
        "('[id^=name-] input')].some(i => i.value === n))"
    )
    page.wait_for_function(f"() => {names}", timeout=60_000)
