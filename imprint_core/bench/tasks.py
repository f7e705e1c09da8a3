"""Benchmark tasks: the paper's class splits and merged "d in 1" multi-modal tasks (spec 3.2).

A task is a tuple of groups: new label ``j`` is the union of the original classes in
``groups[j]``. The class splits have one original class per group, in split order, so labels are
remapped to 0..C-1 in split order (the reference's ``runner.get_mapping``). Merged tasks have
several original classes per group, which makes each new class multi-modal.

Task names:

- ``all``, ``even``, ``odd``, ``short``: the paper's splits of a 10-class dataset ([0..9], even,
  odd, [0, 1, 2]); for n classes: all, even-numbered, odd-numbered, and the first three.
- ``merged``: a fixed, hand-made grouping per dataset (``MERGED``), e.g. Fashion-MNIST
  tops / footwear / other; datasets without one fall back to ``merge3``.
- ``merge{d}`` or ``merge{d}s{seed}`` (e.g. ``merge2``, ``merge3s7``): a seeded grouping in the
  spirit of the ImageNet "d in 1" study: the original classes are shuffled with
  ``random.Random(seed)`` (default seed 42), and new class j merges ``order[j*d:(j+1)*d]``;
  ``n_classes // d`` new classes, leftover classes are not used.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# The splits as functions of the number of classes n; for n = 10 they are the paper's.
_SPLIT_RULES: dict[str, Callable[[int], tuple[int, ...]]] = {
    "all": lambda n: tuple(range(n)),
    "even": lambda n: tuple(range(0, n, 2)),
    "odd": lambda n: tuple(range(1, n, 2)),
    "short": lambda n: tuple(range(min(n, 3))),
}
SPLITS: dict[str, tuple[int, ...]] = {name: rule(10) for name, rule in _SPLIT_RULES.items()}
PAPER_TASKS = ("all", "even", "odd", "short")
DEFAULT_MERGE_SEED = 42

# Fixed multi-modal groupings: name of a new class -> original classes it merges.
MERGED: dict[str, dict[str, tuple[int, ...]]] = {
    # T-shirt, Pullover, Coat, Shirt | Sandal, Sneaker, Ankle boot | Trouser, Dress, Bag
    "fashion-mnist": {"tops": (0, 2, 4, 6), "footwear": (5, 7, 9), "other": (1, 3, 8)},
    # airplane, automobile, ship, truck | cat, deer, dog, horse | bird, frog
    "cifar10": {"vehicles": (0, 1, 8, 9), "mammals": (3, 4, 5, 7), "bird-frog": (2, 6)},
}
_MERGE_RE = re.compile(r"^merge(\d+)(?:s(\d+))?$")


@dataclass(frozen=True)
class Task:
    """A classification task over a dataset's original classes."""

    name: str
    groups: tuple[tuple[int, ...], ...]  # new label j <- original classes groups[j]
    class_names: tuple[str, ...]

    @property
    def merged(self) -> bool:
        """True when some new class merges several original classes (a multi-modal task)."""
        return any(len(g) > 1 for g in self.groups)

    @property
    def n_classes(self) -> int:
        return len(self.groups)

    def mapping(self) -> dict[int, int]:
        """Original class -> new label."""
        return {c: j for j, group in enumerate(self.groups) for c in group}

    def select(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, new_labels)``: the rows of ``labels`` in this task and their new labels."""
        labels = np.asarray(labels)
        lookup = np.full(max(int(labels.max(initial=0)), max(self.mapping())) + 1, -1)
        for c, j in self.mapping().items():
            lookup[c] = j
        new = lookup[labels]
        rows = np.flatnonzero(new >= 0)
        return rows, new[rows].astype(np.int64)


def _names(groups: Sequence[Sequence[int]], class_names: Sequence[str] | None) -> tuple[str, ...]:
    if class_names is None:
        return tuple("+".join(str(c) for c in g) for g in groups)
    return tuple("+".join(class_names[c] for c in g) for g in groups)


def split_task(name: str, n_classes: int = 10, class_names: Sequence[str] | None = None) -> Task:
    """One of the paper's class splits (all, even, odd, short) of an n-class dataset."""
    if name not in _SPLIT_RULES:
        raise ValueError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
    groups = tuple((c,) for c in _SPLIT_RULES[name](n_classes))
    if len(groups) < 2:
        raise ValueError(f"task {name!r} of a {n_classes}-class dataset has fewer than 2 classes")
    return Task(name, groups, _names(groups, class_names))


def merged_task(
    d: int, n_classes: int = 10, seed: int = DEFAULT_MERGE_SEED, class_names=None
) -> Task:
    """A seeded "d in 1" task: ``n_classes // d`` new classes, each the union of d originals."""
    if not 2 <= d <= n_classes // 2:
        raise ValueError(
            f"merge{d}: d must be between 2 and {n_classes // 2} for {n_classes} classes"
        )
    order = list(range(n_classes))
    random.Random(seed).shuffle(order)
    groups = tuple(tuple(sorted(order[j * d : (j + 1) * d])) for j in range(n_classes // d))
    name = f"merge{d}" if seed == DEFAULT_MERGE_SEED else f"merge{d}s{seed}"
    return Task(name, groups, _names(groups, class_names))


def fixed_merged_task(dataset: str, n_classes: int = 10, class_names=None) -> Task:
    """The hand-made ``merged`` task of a dataset (``MERGED``), else the seeded ``merge3``."""
    if dataset not in MERGED:
        task = merged_task(3, n_classes, DEFAULT_MERGE_SEED, class_names)
        return Task("merged", task.groups, task.class_names)
    spec = MERGED[dataset]
    return Task("merged", tuple(spec.values()), tuple(spec))


def get_task(
    name: str, dataset: str = "", n_classes: int = 10, class_names: Sequence[str] | None = None
) -> Task:
    """A task by name (see the module docstring), with a clear error for unknown names."""
    if name in SPLITS:
        return split_task(name, n_classes, class_names)
    if name == "merged":
        return fixed_merged_task(dataset, n_classes, class_names)
    match = _MERGE_RE.match(name)
    if match:
        seed = int(match.group(2)) if match.group(2) else DEFAULT_MERGE_SEED
        return merged_task(int(match.group(1)), n_classes, seed, class_names)
    raise ValueError(
        f"unknown task {name!r}; choose from {', '.join(SPLITS)}, merged, or merge<d>[s<seed>] "
        "(e.g. merge2, merge3s7)"
    )
