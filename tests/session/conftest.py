"""Fixtures of the session tier: the real built-in backbone, the shipped Fashion-MNIST example,
a fresh project and a trained one (per test module; tests that change it put it back)."""

from __future__ import annotations

import pytest

from imprint_core import session as pj
from imprint_core.session import Project


@pytest.fixture(scope="module")
def backbone():
    return pj.load_backbone(None)


@pytest.fixture(scope="module")
def fashion(fashion3):
    return fashion3


@pytest.fixture
def project(tmp_path):
    p = Project(workdir=tmp_path / "work")
    yield p
    p.close()


@pytest.fixture(scope="module")
def trained(backbone, fashion, tmp_path_factory):
    train, _ = fashion
    p = Project(workdir=tmp_path_factory.mktemp("trained"), n_classes=0)
    p.set_settings("ours")  # these tests read k-means proxies (k = 20)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths)
    p.train(backbone)
    return p
