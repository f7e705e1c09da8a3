"""Class names: the one set of rules for names typed in the app, read from a zip or a head file.

A class name is text, NFKC-normalised (full-width letters, ligatures and compatibility forms become
their plain spelling), trimmed, with runs of whitespace collapsed to one space, 1 to
``MAX_NAME_CHARS`` characters long. Characters a reader cannot see or that reorder the text are
refused rather than dropped, so what is shown is what is stored: control characters (C0, DEL, C1),
format characters (zero-width space and joiners, BOM, soft hyphen, bidi embeddings, overrides and
isolates such as U+202E), private-use, surrogate and unassigned code points, and the blank fillers
and variation selectors that NFKC keeps (an emoji's presentation selector, as in ❤️, is allowed;
joined emoji sequences are not, their joiner is invisible). Two names are the same class when they
are equal ignoring case and look-alike letters after normalisation (``name_key``): 'cat' and 'сat'
(a Cyrillic 'с') would show as one name, so they cannot be two classes. Look-alikes follow the
confusable groups of Unicode's security mechanisms (UTS #39) as shipped by the
``confusable-homoglyphs`` package: every character of a group stands for the group's first
character (ASCII first), the single-character part of UTS #39's skeleton.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable
from importlib import resources
from typing import Any

MAX_NAME_CHARS = 40

# Unicode categories refused anywhere in a name: Cc control (C0, DEL, C1), Cf format (zero-width
# characters, BOM, bidi controls), Cs surrogates, Co private use, Cn unassigned.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Invisible characters outside those categories that NFKC leaves in place.
_INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0]  # grapheme joiner, Hangul/braille blanks
    + list(range(0xFE00, 0xFE10))  # variation selectors 1-16
    + list(range(0xE0100, 0xE01F0))  # variation selectors 17-256
)
# Whitespace that separates words (collapsed to one space); other controls are refused even though
# str.split() would silently treat some of them (U+001C-U+001F, U+0085) as spaces.
_SPACING_CONTROLS = frozenset("\t\n\r\x0b\x0c")
_PRESENTATION = frozenset("\ufe0e\ufe0f")  # text / emoji presentation selectors


class ClassNameError(ValueError):
    """A class name that breaks the rules; the message says which rule and what is allowed."""


def _refused(ch: str) -> bool:
    if ch in _SPACING_CONTROLS:
        return False
    return unicodedata.category(ch) in _REFUSED_CATEGORIES or ord(ch) in _INVISIBLE


def _emoji_style(text: str, i: int) -> bool:
    """A text/emoji presentation selector right after a symbol (phones type ❤️ so): allowed."""
    return text[i] in _PRESENTATION and i > 0 and unicodedata.category(text[i - 1]) == "So"


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def visible(text: str) -> str:
    """``text`` with refused characters written as ``\\u200b`` escapes, for messages."""
    return "".join(f"\\u{ord(c):04x}" if _refused(c) else c for c in text)


def clean_class_name(name: Any) -> str:
    """The normalised name, or a ``ClassNameError`` saying which rule it breaks."""
    if not isinstance(name, str):
        raise ClassNameError(f"A class name must be text, not {type(name).__name__}.")
    normal = unicodedata.normalize("NFKC", name)
    bad = next(
        (c for i, c in enumerate(normal) if _refused(c) and not _emoji_style(normal, i)), None
    )
    if bad is not None:
        kind = (
            "control characters"
            if unicodedata.category(bad) == "Cc"
            else "invisible or text-reordering characters"
        )
        raise ClassNameError(
            f"The class name '{visible(normal.strip())[:60]}' contains {kind} (first: {_describe(bad)}); "
            "use letters, digits, punctuation, symbols and spaces only."
        )
    clean = " ".join(normal.split())
    if not clean:
        raise ClassNameError("A class name cannot be blank: type a name such as 'cat'.")
    if len(clean) > MAX_NAME_CHARS:
        raise ClassNameError(
            f"The class name '{clean[:MAX_NAME_CHARS]}...' is {len(clean)} characters long; "
            f"use at most {MAX_NAME_CHARS}."
        )
    return clean


@functools.cache
def _look_alike() -> dict[str, str]:
    """Each character of a confusable group -> the group's representative (read on first use)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    for char, alikes in data.items():
        for alike in alikes:
            other = alike["c"].strip("\u200e\u200f")  # RTL entries carry direction marks
            if len(char) == 1 and len(other) == 1:
                a, b = sorted((root(char), root(other)), key=lambda c: (not c.isascii(), ord(c)))
                parent[b] = a
    return {c: root(c) for c in parent}


def name_key(name: str) -> str:
    """What two names must differ in to be two classes: the normalised name, ignoring case and
    look-alike characters (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    alike = _look_alike()
    return "".join(alike.get(c, c) for c in folded if c not in _PRESENTATION)  # ❤️ and ❤ are one


def clash(name: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` that is the same class as ``name`` (see ``name_key``), or None."""
    key = name_key(name)
    return next((o for o in others if name_key(o) == key), None)


def check_class_names(names: Iterable[Any]) -> list[str]:
    """Every name cleaned, or a ``ClassNameError`` for the first bad or repeated one."""
    seen: dict[str, str] = {}
    out = []
    for name in names:
        clean = clean_class_name(name)
        first = seen.setdefault(name_key(clean), clean)
        if first is not clean:
            raise ClassNameError(
                f"The class names '{first}' and '{clean}' are the same class (names must differ, "
                "ignoring case and letters that look alike)."
            )
        out.append(clean)
    return out
