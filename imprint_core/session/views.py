"""Every view of a session as a pure function of its ``Project`` (no Gradio here).

``views(project)`` returns one value per name in ``VIEWS``; the UI shows them all after every
event, so no event can forget a view and no view can show a head that is not the current one.
A view that cannot be current says so in words instead of showing an older result.

The views are computed in groups (``GROUPS``), each declaring the state it reads: a group is
computed again only when that state changed since the last event (``memo.same``), so renaming a
class does not redraw the confusion matrix and trying an image does not redraw the Result tab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import downloads, pile
from .backbone import default_backbone_name
from .downloads import VIEWS as DOWNLOAD_VIEWS
from .examples import EXAMPLES
from .limits import ProjectError
from .memo import same
from .settings import OPTION_ORDER
from .texts import (
    LOADED_LIMITS,
    STALE_HEAD,
    accuracy_markdown,
    escape_md,
    evidence_rows,
    evidence_space,
    geometry_markdown,
    kcurve_text,
    per_class_rows,
    prediction_html,
    preset_description,
    status_line,
    summary_markdown,
    unknown_note,
)

VIEWS = (
    "cards",  # what decides a redraw of the class cards (Teach)
    "status",  # the line under Imprint (Teach and Method)
    "backbone",  # the backbone of the head (Method)
    "undo",  # the Undo button's label, or None when there is nothing to undo
    "preset",
    *OPTION_ORDER,  # Method: the settings in use
    "augment",  # Method: support augmentation on or off
    "preset_text",
    "method_note",
    "summary",  # Result
    "accuracy",
    "per_class",
    "confusion",
    "label",  # Try it: the prediction's headline and confidence bars (HTML)
    "evidence",
    "neighbours",
    "try_note",
    *(f"held_out_{key}" for key in EXAMPLES),  # an example's held-out images: shown or not
    "map",  # Geometry
    "geometry_text",
    "cosines",
    "dispersion",
    "kcurve",
    "kcurve_text",
    *DOWNLOAD_VIEWS,  # Export: every download's file, note and code box
    *pile.VIEWS,  # Sort images: note, counts, the table's order and rows, the least-sure images
)


@dataclass(frozen=True)
class ViewGroup:
    """Views computed together: ``reads(project)`` is the state they read (the memo's key),
    ``compute(project)`` their values, keyed by view name (``names``)."""

    reads: Callable[[Any], Any] | None  # None: computed at every call
    compute: Callable[[Any], dict[str, Any]]
    names: tuple[str, ...] = ()


def views(project) -> dict[str, Any]:
    """Every view of ``project``, keyed by the names in ``VIEWS``; a group of views whose state
    is unchanged since the last call is not computed again."""
    out: dict[str, Any] = {}
    for values in view_groups(project).values():
        out.update(values)
    return out


def view_groups(project, only: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """The views of ``project`` by group of ``GROUPS`` (``only`` those groups, when given). A
    group whose state is unchanged since the last call is the very same dict as then (the UI
    sends a page only what changed)."""
    out: dict[str, dict[str, Any]] = {}
    chosen = GROUPS if only is None else {name: GROUPS[name] for name in only}
    with project.lock:
        memo = project._views
        for name, group in chosen.items():
            key = group.reads(project) if group.reads is not None else None
            kept = memo.get(name)
            if kept is None or group.reads is None or not same(kept[0], key):
                kept = memo[name] = (key, group.compute(project))
            out[name] = kept[1]
    return out


def group_views(groups: Iterable[str]) -> tuple[str, ...]:
    """The names of the views of ``groups`` (of ``GROUPS``), in the order of ``VIEWS``."""
    names = {n for g in groups for n in GROUPS[g].names}
    return tuple(n for n in VIEWS if n in names)


def _summary_reads(project) -> tuple:
    # everything Project.summary() reads
    p = project
    return (
        (p.backbone_name, p.preset, dict(p.settings), p.augment, dict(p.seconds)),
        (p.head, p.head_source, p.evaluation, p._imprinted_from, p._fingerprint()),
    )


def _summary(project) -> dict[str, Any]:
    s = project.summary()
    return {
        "status": status_line(s),
        "summary": summary_markdown(s),
        "accuracy": accuracy_markdown(s),
        "per_class": per_class_rows(s),
    }


def _confusion(project) -> dict[str, Any]:
    acc = project.evaluation.as_dict() if project.evaluation is not None else {}
    if acc.get("confusion") is None:
        return {"confusion": None}
    from ..figures import confusion_matrix_figure  # plotly: only once there is a matrix

    return {"confusion": confusion_matrix_figure(acc["confusion"], acc["labels"])}


def _prediction_reads(project) -> tuple:
    # what Insight.current_prediction reads: the head, the image, the training images
    p = project
    return (p.head, p.head_source, p.last_test, p.backbone_name, p._fingerprint(), p.is_embedded())


def _geometry_reads(project) -> tuple:
    p = project
    # the image tried is the map's star: it counts only once there is a map
    tried = p.last_test if p.geometry_inputs is not None else None
    return (
        (p.head, p.head_source, p.backbone_name, p._fingerprint(), p._imprinted_from),
        (p.geometry_inputs, tried, p.kcurve, p.is_embedded()),
    )


def _downloads_reads(project) -> tuple:
    # what downloads.views reads: each file's record, what it should be made of, whether it is
    # still there, and the backbone its code box names
    kept = []
    for kind, d in downloads.DOWNLOADS.items():
        recorded = project.downloads.get(kind)
        if recorded is not None:
            recorded = (recorded, d.made_of(project), recorded[1].exists())
        kept.append(recorded)
    return (project.backbone_name, tuple(kept))


def _held_out(project) -> dict[str, Any]:
    # held-out images of an example belong to that example, never to the user's own project
    return {f"held_out_{key}": project.example_key == key for key in EXAMPLES}


def _undo_label(project) -> str | None:
    if not project.undo:
        return None
    title, state = project.undo[-1]
    n = sum(len(c.images) for c in state["classes"])
    return f"Undo: bring back your {n} images (put aside for {title})"


def _method(project) -> dict[str, Any]:
    name = project.preset or "custom"
    out = {o: project.settings.get(o) for o in OPTION_ORDER}
    out.update(
        augment=bool(project.augment),
        preset=name,
        preset_text=preset_description(name),
        method_note=escape_md(project.settings_note) if project.settings_note else "",
    )
    return out


def _prediction(project) -> dict[str, Any]:
    empty = {"label": "", "evidence": None, "neighbours": None}
    result = project.current_prediction()
    if result is None:
        note = ""
        if project.last_test is not None:
            note = (
                "The classifier your last image was tried on is gone: imprint (or load a head) "
                "and try an image again."
            )
        return {**empty, "try_note": note}
    near = result["measure"]["near"]
    thumbs = [
        (n["thumb"], f"{n['class']} · {n['file']} · {near} {n['shown']:.2f}")
        for n in result["neighbours"]
    ]
    note = f"'{escape_md(result['file'])}' as the current head sees it. {evidence_space(result)}"
    unknown = unknown_note(result.get("unknown"))
    if unknown:
        note += f" {unknown}"
    if not thumbs:
        note += " No training images to compare with (a loaded head)."
    return {
        "label": prediction_html(result),
        "evidence": evidence_rows(result),
        "neighbours": thumbs or None,
        "try_note": note,
    }


def _geometry(project) -> dict[str, Any]:
    out = {"map": None, "geometry_text": "", "cosines": None, "dispersion": None}
    out.update(kcurve=None, kcurve_text="")
    if project.head is None:
        return {**out, "geometry_text": "Imprint a classifier first: the map shows its images."}
    if project.head_source != "imprinted":
        return {**out, "geometry_text": LOADED_LIMITS}
    if project.stale:
        return {**out, "geometry_text": STALE_HEAD}
    g, problem = None, "The map is drawn when you open this tab."
    if project.geometry_inputs is not None:
        try:
            g = project.current_geometry()
        except ProjectError as exc:
            problem = escape_md(exc)
    curve = project.current_kcurve()
    if isinstance(curve, str):
        out["kcurve_text"] = curve
    elif curve is not None:
        advice = g["advice_raw"] if g is not None else None
        out["kcurve"], out["kcurve_text"] = curve[0], kcurve_text(curve[1], advice)
    if g is None:
        return {**out, "geometry_text": problem}
    out.update(
        map=g["figure"],
        geometry_text=geometry_markdown(g),
        cosines=g["cosines"],
        dispersion=g["dispersion"],
    )
    return out


_METHOD_VIEWS = (*OPTION_ORDER, "augment", "preset", "preset_text", "method_note")
_GEOMETRY_VIEWS = ("map", "geometry_text", "cosines", "dispersion", "kcurve", "kcurve_text")
GROUPS: dict[str, ViewGroup] = {
    "cards": ViewGroup(lambda p: p.cards_key(), lambda p: {"cards": p.cards_key()}, ("cards",)),
    "summary": ViewGroup(_summary_reads, _summary, ("status", "summary", "accuracy", "per_class")),
    "confusion": ViewGroup(lambda p: p.evaluation, _confusion, ("confusion",)),
    "backbone": ViewGroup(
        lambda p: p.backbone_name,
        lambda p: {"backbone": p.backbone_name or default_backbone_name()},
        ("backbone",),
    ),
    "undo": ViewGroup(lambda p: p.undo, lambda p: {"undo": _undo_label(p)}, ("undo",)),
    "method": ViewGroup(
        lambda p: (dict(p.settings), p.preset, p.augment, p.settings_note),
        _method,
        _METHOD_VIEWS,
    ),
    "held_out": ViewGroup(
        lambda p: p.example_key, _held_out, tuple(f"held_out_{key}" for key in EXAMPLES)
    ),
    "prediction": ViewGroup(
        _prediction_reads, _prediction, ("label", "evidence", "neighbours", "try_note")
    ),
    "geometry": ViewGroup(_geometry_reads, _geometry, _GEOMETRY_VIEWS),
    "downloads": ViewGroup(_downloads_reads, downloads.views, DOWNLOAD_VIEWS),
    # the Sort images panel: its pile changes in place, so it is computed at every event
    "pile": ViewGroup(None, pile.views, pile.VIEWS),
}
# The groups that read the image Try it tried (``last_test``): all that trying an image, or
# clearing it, can change (tests/session/test_views.py checks it).
TRIED_IMAGE_GROUPS = ("prediction", "geometry")
