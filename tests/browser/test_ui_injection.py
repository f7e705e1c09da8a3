"""Issue 11 §2: every user string is shown as text in every tab (Chromium).

Class names that are HTML (an image from another host, a fake "Log in again" link, a password
form) come from the class cards and from a loaded head file; no such element may appear in any
tab, and the page may not fetch anything from the names' host.
"""

from __future__ import annotations

from browser_app import MARKS, rename, upload, wait_text

pytestmark = MARKS
HEAD_FILE = "#head-file [aria-label='imprint-head.safetensors']"  # the file's row

HOST = "127.0.0.1:1"  # nothing listens there: a fetch would only show up as a request
NAMES = [
    f"<img src=http://{HOST}/x>",
    f"<a href=//{HOST}>Log in again</a>",
    "<form><input type=password>",
]
INJECTED = f"img[src*='{HOST}'], a[href*='{HOST}'], input[type=password], form"
TABS = ["Teach", "Method", "Result", "Try it", "Geometry", "Export"]


def watch(page) -> list[str]:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if HOST in r.url else None)
    return fetched


def assert_text_everywhere(page, fetched: list[str], visible: str) -> None:
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
        assert page.locator(INJECTED).count() == 0, tab
    page.get_by_role("tab", name="Result").click()
    assert visible in page.locator("#summary").inner_text()  # shown, as the text it is
    assert not fetched, fetched


def test_class_names_from_the_cards_are_text_in_every_tab(page, images, tmp_path):
    train, test = images
    fetched = watch(page)
    page.locator("#add-class").click()
    page.wait_for_selector("#drop-2 input[type=file]", state="attached")
    for i, (name, cls) in enumerate(zip(NAMES, ["Trouser", "Sneaker", "T-shirt"], strict=True)):
        rename(page, i, name)
        upload(page, i, train[cls][:3])
    # an error toast names the class too
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    page.locator("#drop-0 input[type=file]").set_input_files(str(bad))
    page.locator("[data-testid=toast-body]").first.wait_for()
    assert NAMES[0] in page.locator("[data-testid=toast-body]").first.inner_text()
    assert page.locator(INJECTED).count() == 0
    page.locator("#imprint").click()
    page.wait_for_selector("#status :text('Imprinted 3 classes from 9 images')")
    page.get_by_role("tab", name="Try it").click()
    page.locator("#try-image input[type=file]").set_input_files(test["Trouser"][0])
    page.wait_for_selector("#neighbours img")
    page.get_by_role("tab", name="Geometry").click()
    page.wait_for_selector("#geometry-map .js-plotly-plot")
    page.get_by_role("tab", name="Export").click()
    page.locator("#head-download").click()
    page.wait_for_selector(HEAD_FILE)
    assert_text_everywhere(page, fetched, "Log in again</a>")


def test_class_names_from_a_head_file_are_text_in_every_tab(page, images, tmp_path):
    import imprint_core as ic

    train, test = images
    fetched = watch(page)
    backbone = ic.get_backbone()
    paths = [str(p) for cls in ("Trouser", "Sneaker", "T-shirt") for p in train[cls][:3]]
    clf = ic.ImprintClassifier(gen="mean").fit(
        backbone.embed(paths), [n for n in NAMES for _ in range(3)]
    )
    head = tmp_path / "<i>mine<i>.safetensors"
    clf.save(head, backbone=backbone.name)
    page.get_by_role("tab", name="Export").click()
    page.locator("#head-upload input[type=file]").set_input_files(str(head))
    page.wait_for_selector("#load-msg :text('loaded')")
    assert "mine" in page.locator("#load-msg").inner_text()
    assert page.locator("#load-msg i, #summary i").count() == 0
    page.get_by_role("tab", name="Try it").click()
    page.locator("#try-image input[type=file]").set_input_files(test["Sneaker"][0])
    wait_text(page, "#evidence", "1 of 1")
    assert_text_everywhere(page, fetched, "<form><input type=password>")
