"""Changing a session's method (preset, options, augmentation, backbone) and imprinting with it,
as the app's events ask.

A change re-imprints from the cached embeddings when the head was imprinted here (a loaded head
stays as its file made it). A refused settings change is one sentence under the options
(``Project.settings_note``), not an error: the Method tab shows the settings in use again and
stays usable. ``warn`` receives a sentence the user should read but that refuses nothing (a
backbone that could not load, replaced by the built-in one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..presets import PRESETS
from .backbone import backbone_or_default
from .limits import ProgressFn, ProjectError
from .settings import AUGMENT_VIEWS

Warn = Callable[[str], None]
# Options whose widgets send numbers as floats (and the seed's box may be empty)
INT_OPTIONS = ("k", "m", "seed")


def apply_settings(
    project, backbone_name: str | None, preset: str | None, options: Mapping[str, Any]
) -> None:
    """A preset or an option changed: validate, and re-imprint from cached embeddings.

    ``preset`` is the preset shown: a preset other than the one in use selects it; otherwise
    (the same preset, or "custom") ``options``, every option by name, are applied.
    """
    options = dict(options)
    for name in INT_OPTIONS:
        if name in options:
            value = options[name]
            options[name] = int(value or 0) if name == "seed" else int(value)
    try:
        if preset in PRESETS and preset != project.preset:
            project.set_settings(preset)
        else:
            project.set_settings(None, **options)
    except ProjectError as exc:
        project.settings_note = f"Not applied: {exc}"
        return
    if project.head_source == "imprinted" and project.is_embedded(backbone_name):
        try:
            project.imprint()
        except ProjectError as exc:  # these settings cannot imprint these images
            project.settings_note = f"{project.settings_note} Not imprinted: {exc}".strip()


def apply_advice(project, backbone_name: str | None, options: Mapping[str, Any]) -> None:
    """The Geometry tab's advice applied: exactly the advised gen and k, the other ``options``
    kept (as a custom setting, re-imprinted like any settings change)."""
    try:
        advised = project.advised_settings()
    except ProjectError as exc:
        project.settings_note = f"Not applied: {exc}"
        return
    apply_settings(project, backbone_name, "custom", {**options, **advised})


def imprint_with(
    project, backbone_name: str | None, progress: ProgressFn | None = None, warn: Warn | None = None
) -> dict[str, Any]:
    """Embed what is missing with the backbone ``backbone_name`` (the built-in one, and a
    sentence to ``warn``, when it cannot load), then imprint and evaluate; returns the summary."""
    backbone, warning = backbone_or_default(backbone_name)
    if warning and warn is not None:
        warn(warning)
    return project.train(backbone, progress=progress)


def apply_augment(
    project,
    backbone_name: str | None,
    on: bool,
    progress: ProgressFn | None = None,
    warn: Warn | None = None,
) -> None:
    """Augmentation turned on or off: embed the views if needed and re-imprint, all or nothing."""
    with project.transaction():  # a failed re-imprint leaves the option as it was
        project.set_augment(AUGMENT_VIEWS if on else ())
        if project.head_source == "imprinted":
            imprint_with(project, backbone_name, progress, warn)


def change_backbone(
    project, backbone_name: str | None, progress: ProgressFn | None = None, warn: Warn | None = None
) -> None:
    """Backbone changed: re-embed and re-imprint if a head was imprinted here before."""
    if project.head_source == "imprinted":
        imprint_with(project, backbone_name, progress, warn)
        return
    backbone, warning = backbone_or_default(backbone_name)
    if warning and warn is not None:
        warn(warning)
    project.backbone_name = backbone.name
