"""Memos keyed by the state they read: ``same`` tells whether two keys are the same state.

A key is made of plain values (compared by value) and objects that are replaced, never mutated
(a head, an evaluation, the last image tried: compared by identity). A memo keeps its key, so an
object in it stays alive and its identity cannot be taken by a new object.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

_PLAIN = (str, bytes, int, float, bool, type(None), PurePath)


def same(a: Any, b: Any) -> bool:
    """Whether the keys ``a`` and ``b`` are the same state: containers item by item, plain
    values by value, any other object (an array, a head) by identity."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, _PLAIN):
        return a == b
    return False
