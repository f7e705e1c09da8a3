"""Changing the method (session/method.py, session/backbone.py): a backbone that cannot load is
replaced by the built-in one, with a sentence."""

from __future__ import annotations

from imprint_core import session as pj


def test_a_backbone_that_cannot_load_falls_back_to_the_built_in_one():
    backbone, message = pj.backbone_or_default("no-such-model")
    assert backbone.name == pj.default_backbone_name() == "efficientnet_lite0"
    assert message.startswith("The backbone 'no-such-model' cannot be loaded: Unknown backbone")
    assert message.endswith("Keeping the built-in 'efficientnet_lite0'.")
    assert pj.backbone_names()[0] == "efficientnet_lite0"
