"""Class names in a session: the library's rules (``imprint_core.names``) as ProjectErrors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..names import ClassNameError, clash, clean_class_name
from .limits import ProjectError


def validate_class_name(name: Any, others: Iterable[str] = ()) -> str:
    """The normalised name, or a ProjectError saying what is wrong with it.

    ``others`` are the names already taken; equal ignoring case and look-alike
    letters after NFKC means the same class.
    """
    try:
        clean = clean_class_name(name)
    except ClassNameError as exc:
        raise ProjectError(str(exc)) from None
    other = clash(clean, others)
    if other is not None:
        raise ProjectError(
            f"There is already a class named '{other}' (names must differ, ignoring case and "
            "letters that look alike)."
        )
    return clean
