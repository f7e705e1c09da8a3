"""Class names: what the app accepts as a class name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .limits import MAX_NAME_CHARS, ProjectError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_class_name(name: Any, others: Iterable[str] = ()) -> str:
    """The trimmed name, or a ProjectError saying what is wrong with it."""
    if not isinstance(name, str):
        raise ProjectError(f"A class name must be text, not {type(name).__name__}.")
    clean = " ".join(name.split())
    if not clean:
        raise ProjectError("A class name cannot be blank: type a name such as 'cat'.")
    if len(clean) > MAX_NAME_CHARS:
        raise ProjectError(
            f"The class name '{clean[:MAX_NAME_CHARS]}...' is {len(clean)} characters long; "
            f"use at most {MAX_NAME_CHARS}."
        )
    if _CONTROL.search(clean):
        raise ProjectError(f"The class name {clean!r} contains control characters.")
    folded = clean.casefold()
    for other in others:
        if other.casefold() == folded:
            raise ProjectError(
                f"There is already a class named '{other}' (names must differ, ignoring case)."
            )
    return clean
