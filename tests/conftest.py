import os

# Tests never reach a model hub and never send telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Tests compare embeddings with fp32 references (cosine 0.9999); the reduced-precision choice has
# its own tests (tests/unit/test_precision.py) and would otherwise depend on this machine's CPU.
os.environ.setdefault("IMPRINT_PRECISION", "fp32")


import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests run fixed examples by default, so that a test run (and CI) is repeatable;
# `HYPOTHESIS_PROFILE=explore pytest tests/estimator/test_properties.py` searches many random ones.
settings.register_profile("repeatable", max_examples=25, derandomize=True, database=None)
settings.register_profile("explore", max_examples=400, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def fashion3():
    """{class: [paths]} of the shipped fashion3 example: (train, held-out test)."""
    from imprint_core.session import examples as ex

    train, test = {}, {}
    for cls, path in ex.train_images("fashion3"):
        train.setdefault(cls, []).append(path)
    for cls, path in ex.test_images("fashion3"):
        test.setdefault(cls, []).append(path)
    return train, test


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(config, items):
    """Tests marked ``fashion_mnist`` skip, with the way to install it, when it is missing."""
    from imprint_core.bench.datasets import FASHION_MNIST_DIR

    if FASHION_MNIST_DIR.is_dir():
        return
    skip = pytest.mark.skip(
        reason=f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR} "
        "(apt-get install dataset-fashion-mnist)"
    )
    for item in items:
        if item.get_closest_marker("fashion_mnist"):
            item.add_marker(skip)
