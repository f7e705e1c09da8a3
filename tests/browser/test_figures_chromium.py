"""The embedding map in a real browser: Plotly shows user strings exactly as typed."""

from __future__ import annotations

import numpy as np
from browser_app import MARKS

from imprint_core import figures as fg

pytestmark = MARKS
HOSTILE = "<b>tops</b> & <i>co</i> %{x}"


def test_chromium_draws_user_strings_as_typed(browser, tmp_path):
    """Plotly in a real browser shows the class and file names exactly as typed (no bold text,
    no element injected), and the axis titles say what the PCA axes keep."""
    coords = np.array([[0.0, 0.0], [1.0, 0.5], [0.2, 1.0], [1.0, 1.0]])
    fig = fg.embedding_map(
        coords,
        [HOSTILE, HOSTILE, "plain", "plain"],
        proxies=coords[:2],
        proxy_labels=[HOSTILE, "plain"],
        names=["<img src=x onerror=alert(1)>.png", "a", "b", "c"],
        axis_titles=fg.map_axis_titles("pca", (0.34, 0.2)),
    )
    page_file = tmp_path / "map.html"
    fig.write_html(page_file, include_plotlyjs=True)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_selector(".legendtext")
        legend = page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
        bold = page.eval_on_selector_all(
            ".legendtext b, .legendtext tspan[style*=bold]", "e => e.length"
        )
        titles = page.eval_on_selector_all(
            ".g-xtitle, .g-ytitle", "els => els.map(e => e.textContent)"
        )
        injected = page.eval_on_selector_all("img", "els => els.length")
    finally:
        context.close()
    assert legend[0] == HOSTILE and "plain" in legend and "proxies" in legend
    assert bold == 0 and injected == 0
    assert titles == ["PC1 (34 % of variance)", "PC2 (20 % of variance)"]
