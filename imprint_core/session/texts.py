"""Text for the app: sentences and tables built from summaries (tested without Gradio).

Every string a user supplied (class names, file names, a head file's contents) passes through
``escape_md`` (Markdown) or ``escape_html`` (toasts, plot labels) before it is shown: the page
renders Markdown, toasts and Plotly labels as HTML, and a class named ``<img src=...>`` must
read as text, not fetch an image.
"""

from __future__ import annotations

import html
import re
from typing import Any

# Characters with a meaning in Markdown (and table cells); a backslash makes each one literal.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_html(text: Any) -> str:
    """``text`` as HTML text: tags and entities show as written."""
    return html.escape(str(text), quote=False)


def escape_md(text: Any) -> str:
    """``text`` as Markdown text: no HTML, link, emphasis or table syntax takes effect."""
    return _MD_SPECIAL.sub(r"\\\1", escape_html(" ".join(str(text).split())))


def percent(x: float | None) -> str:
    """The one way the app writes a share (bars, tables, accuracies): one decimal."""
    return "-" if x is None else f"{100 * x:.1f} %"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def status_line(s: dict[str, Any]) -> str:
    """One sentence under the Imprint button."""
    if not s["classes"]:
        return "Nothing imprinted yet: add images to at least two classes and press **Imprint**."
    acc = s["accuracy"]
    if acc is None:
        return (
            f"Loaded the head '{escape_md(s['head'])}': {len(s['classes'])} classes. "
            "Go to **Try it**."
        )
    total = sum(s["seconds"].values())
    built = (
        f"Imprinted {len(s['classes'])} classes from {s['images']} images "
        f"({s['proxies']} proxies) in {_duration(total)}."
    )
    if s.get("stale"):
        return f"{built} The images or class names changed since: press **Imprint** to update."
    if acc["accuracy"] is None:
        return f"{built} {escape_md(acc['description'])}"
    return (
        f"{built} Accuracy {percent(acc['accuracy'])} ({escape_md(acc['method'])}). "
        "See **Result** and **Try it**."
    )


def summary_markdown(s: dict[str, Any]) -> str:
    """What was built: head, settings, images and proxies per class, time."""
    if not s["classes"]:
        return status_line(s)
    options = escape_md(", ".join(f"{k}={v}" for k, v in s["settings"].items()))
    loaded = s["head"] != "imprinted"
    images = "images" if not loaded else "images (not in the file)"
    rows = [
        f"| {escape_md(c)} | {'-' if loaded else s['images_per_class'].get(c, 0)} "
        f"| {s['proxies_per_class'][c]} |"
        for c in s["classes"]
    ]
    timing = ", ".join(f"{k} {_duration(v)}" for k, v in s["seconds"].items())
    source = (
        f"loaded from the file '{escape_md(s['head'])}'" if loaded else "imprinted in this session"
    )
    lines = [
        f"**Head**: {source}, on backbone {escape_md(s['backbone'])}, preset "
        f"**{escape_md(s['preset'])}** ({options}).",
        "",
        f"| class | {images} | proxies |",
        "|---|---|---|",
        *rows,
        f"| **total** | **{'-' if loaded else s['images']}** | **{s['proxies']}** |",
        "",
        f"Time: {timing}." if timing else "",
    ]
    if loaded:
        lines.append(LOADED_LIMITS)
    if s.get("stale"):
        lines.append(f"*{STALE_HEAD}*")
    return "\n".join(lines)


LOADED_LIMITS = (
    "A head file holds the proxies, not the training images: its accuracy, the nearest training "
    "images in **Try it** and the maps in **Geometry** need the images, so they are not shown. "
    "Imprint your own images to see them."
)
STALE_HEAD = (
    "The images or class names changed since this head was imprinted: press **Imprint** to "
    "update it."
)


def accuracy_markdown(s: dict[str, Any]) -> str:
    """The accuracy estimate and how it was made."""
    acc = s["accuracy"]
    if not s["classes"]:
        return ""
    if acc is None:
        return "No accuracy estimate: a loaded head comes without its training images."
    if acc["accuracy"] is None:
        return escape_md(acc["description"])
    return (
        f"### Accuracy on your own images: {percent(acc['accuracy'])} "
        f"({escape_md(acc['method'])})\n\n{escape_md(acc['description'])} The same scheme is "
        "used for every setting of the same images, so accuracies of presets compare."
    )


def per_class_rows(s: dict[str, Any]) -> list[list] | None:
    """[class, images evaluated, accuracy] per class, or None without an estimate."""
    acc = s["accuracy"]
    if not acc or acc["accuracy"] is None:
        return None
    return [[c, acc["support"].get(c, 0), percent(acc["per_class"].get(c))] for c in acc["labels"]]


def evidence_rows(result: dict[str, Any]) -> dict[str, list]:
    """The evidence table: [class, confidence, nearest proxy, score] per class in the order of
    the head's class scores (the decision's order), under a header that names the score."""
    header = result["measure"]["header"]
    return {
        "headers": ["class", "confidence", "nearest proxy", header],
        "data": [
            [
                r["class"],
                percent(r["confidence"]),
                f"{r['nearest_proxy']} of {r['proxies']}",
                f"{r['shown']:.3f}",
            ]
            for r in result["classes"]
        ],
    }


def evidence_space(result: dict[str, Any]) -> str:
    """One sentence on where the evidence's numbers are measured."""
    return (
        f"Scores and nearest images are measured where the head compares images with its "
        f"proxies: its own space ({result['measure']['space']})."
    )


UNKNOWN_HEADLINE = "None of these?"


def is_unknown(result: dict[str, Any]) -> bool:
    """Whether the head finds the image unlike every class ("none of these")."""
    return bool((result.get("unknown") or {}).get("unknown"))


def prediction_html(result: dict[str, Any], top: int = 5) -> str:
    """A prediction as the page shows it: the headline (the class, or "None of these?" with the
    nearest class) and the ``top`` confidences as bars, written with ``percent`` like the
    evidence table. Class names are escaped."""
    ranked = sorted(result["confidences"].items(), key=lambda kv: -kv[1])
    best = escape_html(result["label"])
    if is_unknown(result):
        head = (
            f'<div class="headline unknown">{UNKNOWN_HEADLINE}</div>'
            f'<div class="nearest">Nearest class: {best}</div>'
        )
    else:
        head = f'<div class="headline">{best}</div>'
    bars = "".join(
        f'<div class="bar"><span class="name">{escape_html(c)}</span>'
        f'<span class="track"><span class="fill" style="width:{100 * p:.1f}%"></span></span>'
        f'<span class="value">{percent(p)}</span></div>'
        for c, p in ranked[:top]
    )
    return f'<div class="prediction-panel">{head}<div class="bars">{bars}</div></div>'


def batch_rows(names: list[str], results: list[dict[str, Any]]) -> list[list[str]]:
    """[file, result, confidence] per image of "Classify several"; an image unlike every class
    reads "None of these? (nearest: ...)"."""
    rows = []
    for name, r in zip(names, results, strict=True):
        label = r["label"]
        shown = f"{UNKNOWN_HEADLINE} (nearest: {label})" if is_unknown(r) else label
        rows.append([name, shown, percent(r["confidences"][label])])
    return rows


def unknown_note(unknown: dict[str, Any] | None, subject: str = "It") -> str:
    """The "none of these" sentence for an image (or camera frame) the head finds unlike every
    class; empty when it does not. The nearest class is still shown beside it."""
    if not unknown or not unknown["unknown"]:
        return ""
    if unknown.get("held_out"):
        from ..unknown import UNKNOWN_QUANTILE

        share = round(100 * UNKNOWN_QUANTILE)
        than = f"than {share} % of your own images are from their class, each held out"
    else:  # one image per class (each held out with its class), or an older head file
        than = "than your images typically are from the other classes"
    return (
        f"**None of these?** {subject} is farther from every class (unknown score "
        f"{unknown['score']:.2f}) {than} ({unknown['threshold']:.2f}): it may belong to none "
        "of them, though the nearest class is shown."
    )


def preset_description(name: str) -> str:
    """One line on a preset (or on custom settings) for the Method tab."""
    from ..presets import PRESET_INFO

    if name in PRESET_INFO:
        return f"**{name}**: {PRESET_INFO[name]}."
    return "**custom**: your own combination of the options below."


def geometry_markdown(g: dict[str, Any]) -> str:
    """Neural-collapse readings and the proxies advice as Markdown."""
    lines = [f"*{escape_md(g['map_note'])}*", ""] if g["map_note"] else []
    lines += ["### What the numbers say", *[f"- {escape_md(r)}" for r in g["readings"]], ""]
    advice = [f"- {escape_md(a)}" for a in g["advice"].values()]
    lines += ["### How many proxies per class?", escape_md(g.get("advice_summary", "")), *advice]
    return "\n".join(lines)


def geometry_primer() -> str:
    """The Geometry tab's plain-words introduction (what NC1/NC2, proxies and the maps mean)."""
    from ..collapse import primer

    return primer()


def kcurve_text(curve: dict[str, Any], advice: dict[str, Any] | None) -> str:
    """How the curve was made, and whether it agrees with the advice on the same images."""
    text = escape_md(curve.get("cv_description", ""))
    if advice is not None:
        from ..modes import curve_agreement

        try:
            text += "\n\n" + escape_md(curve_agreement(advice, curve))
        except (ValueError, KeyError):  # a curve without its k = 1 point: no comparison
            pass
    return text


def python_snippet(head_file: str = "imprint-head.safetensors", backbone: str | None = None) -> str:
    """A short script that loads an exported head and classifies an image with imprint_core."""
    bb = f'"{backbone}"' if backbone else ""
    return (
        "import imprint_core as ic\n\n"
        f'head = ic.ImprintClassifier.load("{head_file}")\n'
        f"backbone = ic.get_backbone({bb})\n"
        'z = backbone.embed(["my_image.jpg"])  # paths, PIL images or bytes -> (n, d)\n'
        "print(head.predict(z)[0])\n"
        "print(dict(zip(head.classes_, head.predict_proba(z)[0].round(3))))\n"
    )
