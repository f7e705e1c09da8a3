"""Settings of a session's head: the allowed option values and a validated classifier."""

from __future__ import annotations

from typing import Any

from .limits import ProjectError


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
