"""Settings of a session's head: the allowed option values and a validated classifier."""

from __future__ import annotations

from typing import Any

from ..head_io import PARAMS as _HEAD_PARAMS
from ..presets import PRESETS
from .limits import DEFAULT_PRESET, ProjectError


def option_choices() -> dict[str, list[str]]:
    """The allowed values of every choice option (the classifier's registry)."""
    from ..classifier import OPTIONS

    return {name: list(values) for name, values in OPTIONS.items()}


def make_classifier(settings: dict[str, Any]):
    """An unfitted ImprintClassifier; bad option values become a ProjectError."""
    from ..classifier import ImprintClassifier

    try:
        clf = ImprintClassifier(**settings)
        clf._check_params()  # scikit-learn style: the constructor itself does not validate
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"Invalid settings: {exc}.") from None
    return clf


# Options that only make sense together: when one side changes to (or away from) the value, the
# other follows. Whitening is learned from the training embeddings (norm_pre) and must then be
# applied to the image being classified (norm_inf), and vice versa.
COUPLED = {("norm_pre", "norm_inf"): "whiten"}


def couple_settings(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``new`` with coupled options moved together, and a sentence saying what followed ("")."""
    out, notes = dict(new), []
    for (a, b), value in COUPLED.items():
        for changed, other in ((a, b), (b, a)):
            if out.get(changed) == old.get(changed):
                continue
            if out[changed] == value and out.get(other) != value:
                out[other] = value
            elif old.get(changed) == value and out.get(other) == value:
                out[other] = out[changed]
            else:
                continue
            notes.append(
                f"{other} was set to {out[other]} too: {a} and {b} use whitening together."
            )
            break
    return out, " ".join(notes)


# One evaluation rule for every setting: the same images are always evaluated the same way, so
# accuracies of different presets can be compared (the library would pick a cheaper scheme for
# some settings; see imprint_core.evaluation.choose_scheme).
LOO_MAX = 30  # leave-one-out up to this many images (30 full refits stay quick for any setting)
KFOLD_MAX = 600  # stratified 5-fold up to this many, a stratified 20 % hold-out beyond


def evaluation_scheme(n_images: int) -> str:
    """The evaluation scheme for a project of ``n_images`` images, whatever the settings."""
    if n_images <= LOO_MAX:
        return "leave-one-out"
    return "stratified k-fold" if n_images <= KFOLD_MAX else "stratified hold-out"


# The options the Method tab shows, in its order: the head file's parameters up to the seed
# (one list of the classifier's options, kept by head_io).
OPTION_ORDER = _HEAD_PARAMS[: _HEAD_PARAMS.index("seed") + 1]


# Support augmentation (imprint_core.augment): the views the app adds to every training image
# when the option is on. Not a classifier option: the session keeps it beside ``settings``
# (``Project.augment``) and the head file records it under "training".
AUGMENT_VIEWS = ("flip", "crops")
AUGMENT_DEFAULT: tuple[str, ...] = ()  # off: see docs/benchmarks.md, "Support augmentation"


def check_augment(views: Any) -> tuple[str, ...]:
    """Validated view names (``()`` for none); a bad name becomes a ProjectError."""
    from ..augment import check_views

    if isinstance(views, bool):
        return AUGMENT_VIEWS if views else ()
    if views is not None and not isinstance(views, (str, list, tuple)):
        raise ProjectError(
            f"Augment training images takes view names ({', '.join(AUGMENT_VIEWS)}), "
            f"not {type(views).__name__}."
        )
    try:
        return check_views(views, "Augment training images")
    except ValueError as exc:
        raise ProjectError(str(exc)) from None


def preset_names() -> list[str]:
    """Every preset's name, the app's default first."""
    return sorted(PRESETS, key=lambda name: name != DEFAULT_PRESET)


def default_settings() -> dict[str, Any]:
    """The options a new project starts with (the default preset, seed 0)."""
    return {"seed": 0, **PRESETS[DEFAULT_PRESET]}
