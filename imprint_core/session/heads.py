"""Heads handed back to a session: a saved head file loaded, with its own settings.

A loaded head brings exactly its file's settings, classes, backbone and augmentation; its file
is refused (one sentence naming it) when it is too large, not a head, or made on a backbone this
app does not offer or with another embedding dimension. ``HeadFiles`` is a part of ``Project``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..presets import matching_preset
from .backbone import backbone_dims, backbone_names
from .intake import shown_name
from .limits import MAX_CLASSES, ProjectError
from .quotas import MAX_HEAD_MB
from .settings import OPTION_ORDER, check_augment


def load_head_file(project, path: str | os.PathLike) -> dict[str, Any]:
    """Load a head file a user sent into ``project`` (at most ``MAX_HEAD_MB``; its backbone
    offered here and of its dimension); returns the project's summary."""
    size = Path(path).stat().st_size
    if size > MAX_HEAD_MB * 1024 * 1024:
        raise ProjectError(
            f"'{Path(path).name}' is {size / 2**20:.0f} MB; a head file may be at most "
            f"{MAX_HEAD_MB} MB."
        )
    return project.load_head(path, backbone_names(), backbone_dims())


class HeadFiles:
    """Loading a saved head (mixed into ``Project``)."""

    def load_head(
        self,
        path: str | os.PathLike,
        available_backbones: Iterable[str] | None = None,
        dims: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Load a saved head; check its backbone is known and its dimension matches."""
        from ..classifier import ImprintClassifier

        label = shown_name(path)
        try:
            head = ImprintClassifier.load(path)
        except Exception as exc:  # a user file: any failure is a user-facing message
            raise ProjectError(f"'{label}' is not a saved IMPRINT head ({exc}).") from None
        backbone = head_backbone(head)
        if not backbone:
            raise ProjectError(f"'{label}' does not say which backbone it was imprinted on.")
        if available_backbones is not None and backbone not in set(available_backbones):
            raise ProjectError(
                f"'{label}' was imprinted on the backbone '{backbone}', which this app does not "
                f"offer (available: {', '.join(available_backbones)})."
            )
        n_classes = len(head.classes_)
        if n_classes > MAX_CLASSES:
            raise ProjectError(
                f"'{label}' has {n_classes:,} classes; a head may have at most {MAX_CLASSES}."
            )
        dim = int(np.asarray(head.proxies_).shape[1])
        if dims is not None and backbone in dims and dims[backbone] != dim:
            raise ProjectError(
                f"'{label}' has {dim}-dimensional proxies but the backbone '{backbone}' makes "
                f"{dims[backbone]}-dimensional embeddings: the file does not fit its backbone."
            )
        with self.transaction():
            params = head.get_params()
            # exactly the file's settings (the options a preset sets, the seed and any other
            # option the session shows), not the ones the session had before
            # (whiten_shrinkage only for a whitened head: the session's default preset has it)
            keys = set(OPTION_ORDER) | (set(self.settings) - {"whiten_shrinkage"})
            if params.get("norm_pre") == "whiten":
                keys.add("whiten_shrinkage")
            self.settings = {k: params[k] for k in sorted(keys) if k in params}
            self.preset = matching_preset(self.settings)
            self.settings_note = ""
            training = head_training(head)
            try:  # the file's augmentation too, so that imprinting again makes the same head
                self.augment = check_augment(training.get("augment", []))
            except ProjectError as exc:
                raise ProjectError(f"'{label}': {exc}") from None
            self.head, self.head_source = head, label
            self.head_serial += 1
            self.backbone_name = backbone
            self.evaluation = None
            self.seconds = {}
            self._imprinted_from = ()
            return self.summary()


# ---- what a head says about itself ----------------------------------------------------------------------------------
def head_training(head) -> dict[str, Any]:
    """How a head's samples were made: set by ``imprint``, or read from its file's metadata."""
    training = getattr(head, "training_", None)
    if training is None:  # a loaded head
        meta = getattr(head, "metadata_", None)
        training = meta.get("training") if isinstance(meta, dict) else None
    return training if isinstance(training, dict) else {}


def head_backbone(head) -> str | None:
    """The backbone name stored with a loaded head."""
    for attr in ("backbone_", "backbone"):
        value = getattr(head, attr, None)
        if isinstance(value, str) and value:
            return value
    meta = getattr(head, "metadata_", None)
    if isinstance(meta, dict) and meta.get("backbone"):
        return str(meta["backbone"])
    return None
