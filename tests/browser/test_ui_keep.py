"""Issue 17 §3 in Chromium: work is never lost. The own project survives Examples, Undo and a
reload; another browser (or a forged key) never gets it; a batch with bad files names every one
of them; "Save project" is on Teach."""

from __future__ import annotations

from browser_app import MARKS, TIMEOUT_MS, rename, upload, wait_for_names, wait_text

from imprint_core.session import open_project

pytestmark = MARKS
OWN = ["trousers", "sneakers"]
FASHION3 = ["Sneaker", "T-shirt", "Trouser"]
MERGED = ["footwear", "other", "tops"]


def own_project(page, train, n: int = 3) -> None:
    rename(page, 0, OWN[0])
    upload(page, 0, train["Trouser"][:n])
    rename(page, 1, OWN[1])
    upload(page, 1, train["Sneaker"][:n])


def example(page, key: str, names: list[str]) -> None:
    page.locator(f"#example-{key}").click()
    wait_for_names(page, names)


def reload(page) -> None:
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#drop-1 input[type=file]", state="attached")


def test_the_own_project_survives_two_examples_undo_and_reloads(page, images):
    train, _ = images
    own_project(page, train)
    example(page, "fashion3", FASHION3)
    example(page, "merged", MERGED)
    reload(page)  # the page comes back with the project it had, Undo included
    wait_for_names(page, MERGED)
    page.wait_for_selector("#undo:visible")
    assert "6 images" in page.locator("#undo").inner_text()
    page.locator("#undo").click()
    wait_for_names(page, OWN)  # the own project, not the first example
    page.wait_for_selector("#card-0 :text('3 images')")
    page.wait_for_selector("#card-1 :text('3 images')")
    page.wait_for_selector("#undo", state="hidden")
    reload(page)
    wait_for_names(page, OWN)
    page.wait_for_selector("#card-1 :text('3 images')")


def test_another_browser_or_a_forged_key_gets_an_empty_project(page, browser, url, images):
    train, _ = images
    own_project(page, train)
    reload(page)
    wait_for_names(page, OWN)  # this browser has its project back
    forged = "bm90IGEga2V5:bm90IGEga2V5IGVpdGhlcg=="
    for script in ("", f"localStorage.setItem('imprint-project', '{forged}')"):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        if script:
            context.add_init_script(script)
        other = context.new_page()
        other.set_default_timeout(TIMEOUT_MS)
        try:
            other.goto(url["address"], wait_until="domcontentloaded")
            other.wait_for_selector("#drop-1 input[type=file]", state="attached")
            wait_for_names(other, ["Class 1", "Class 2"])
            other.wait_for_timeout(1000)  # the load event has answered by now
            assert other.locator("#name-0 input").input_value() == "Class 1"
            assert "0 images" in other.locator("#card-0").inner_text()
        finally:
            context.close()


def test_a_batch_with_bad_files_names_every_one_and_adds_none(page, images, tmp_path):
    train, _ = images
    notes = tmp_path / "notes.png"
    notes.write_text("shopping list, not an image")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    files = [train["Trouser"][0], str(notes), train["Trouser"][1], str(broken)]
    page.locator("#drop-0 input[type=file]").set_input_files(files)
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    wait_text(page, "[data-testid=toast-body]", "broken.jpg")
    text = toast.inner_text()
    assert "notes.png" in text and "broken.jpg" in text, text
    assert "No image was added" in text and "2 of 4" in text, text
    assert "0 images" in page.locator("#card-0").inner_text()  # nothing was added


def test_save_project_from_teach(page, images, tmp_path):
    train, _ = images
    own_project(page, train, n=2)
    page.locator("#teach-save").click()
    link = page.locator("#teach-project-file a[download]").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "saved.zip"
    info.value.save_as(saved)
    opened = open_project(saved, workdir=tmp_path / "opened")
    try:
        assert opened.names == OWN
        assert [len(c.images) for c in opened.classes] == [2, 2]
    finally:
        opened.close()
