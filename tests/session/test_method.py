"""Changing the method (session/method.py, session/backbone.py): a backbone that cannot load is
replaced by the built-in one, with a sentence."""

from __future__ import annotations

import logging

from imprint_core import session as pj


def test_a_backbone_that_cannot_load_falls_back_to_the_built_in_one():
    backbone, message = pj.backbone_or_default("no-such-model")
    assert backbone.name == pj.default_backbone_name() == "efficientnet_lite0"
    assert message.startswith("The backbone 'no-such-model' cannot be loaded: Unknown backbone")
    assert message.endswith(", so the built-in 'efficientnet_lite0' is used.")
    assert pj.backbone_names()[0] == "efficientnet_lite0"


def test_an_offline_hub_backbone_is_one_plain_sentence_and_the_detail_goes_to_the_log(
    monkeypatch, tmp_path, project, caplog
):
    """Choosing a hub backbone without its weights and without internet: the user reads one
    sentence once; cache folders, the command to fetch them and the variable go to the log."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING, logger="imprint_core.session.backbone"):
        pj.change_backbone(project, "resnet18", warn=warnings.append)
    assert warnings == [
        "The backbone 'resnet18' is not on this computer and cannot be downloaded now, so the "
        "built-in 'efficientnet_lite0' is used."
    ]
    assert project.backbone_name == "efficientnet_lite0"
    logged = caplog.text
    assert "python -c" in logged and "HF_HUB_OFFLINE" in logged and str(tmp_path) in logged
