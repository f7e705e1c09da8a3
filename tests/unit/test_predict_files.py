"""The library call behind `imprint predict`: ``predict_files`` rows, ``rescore`` from kept
embeddings under a re-imprinted head, and ``least_sure`` (what an app panel lists first)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pile_data import fit_head, make_pile, read_source

import imprint_core as ic
from imprint_core.prediction_rows import least_sure_order

pytestmark = pytest.mark.fashion_mnist


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    path = tmp_path_factory.mktemp("head") / "fashion3.safetensors"
    return path, fit_head(path)


@pytest.fixture(scope="module")
def pile(tmp_path_factory):
    return make_pile(tmp_path_factory.mktemp("pile"))


@pytest.fixture(scope="module")
def rows(head, pile):
    seen = []
    run = ic.predict_files(
        head[0],
        pile.inputs,
        batch_size=4,
        keep_embeddings=True,
        progress=lambda d, t: seen.append((d, t)),
    )
    n = len(pile.truth) + len(pile.errors) + len(pile.photos)
    assert (run.total, run.ignored, run.skipped, run.backbone) == (
        n,
        pile.left_out,
        0,
        "efficientnet_lite0",
    )
    out = list(run)
    assert seen[-1] == (n, n) and len(seen) == math.ceil(n / 4)  # advanced once per batch
    return out


def test_rows_in_input_order_with_embeddings(rows, pile, head):
    clf = head[1]
    names = [r.path for r in rows]
    assert names[-1] == str(pile.photo) and names.index(
        str(pile.folder / "a" / "twin.png")
    ) < names.index(
        f"{pile.archive}/photos/flower.jpg"
    )  # the folder, then the zip, then the photo, as given
    good = [r for r in rows if not r.error]
    X = ic.get_backbone().embed([read_source(r.path, pile) for r in good], cache=False)
    np.testing.assert_allclose(np.stack([r.embedding for r in good]), X, rtol=1e-4, atol=1e-4)
    assert [r.label for r in good] == list(clf.predict(X))
    for r in good:
        assert r.top[0] == (r.label, r.probability) and len(r.top) == 3
        assert r.margin == pytest.approx(r.top[0][1] - r.top[1][1])
        assert isinstance(r.label, str) and r.source is not None
    bad = [r for r in rows if r.error]
    assert {r.path for r in bad} == set(pile.errors)
    assert all(r.label is None and r.embedding is None and math.isnan(r.margin) for r in bad)


def test_rescore_under_a_reimprinted_head_needs_no_embedding(rows, pile):
    """Correct the pile: teach a head without 'Trouser'; the rows re-sort from their embeddings."""
    good = [r for r in rows if not r.error]
    X = np.stack([r.embedding for r in good])
    keep = [i for i, r in enumerate(good) if pile.truth.get(r.path) in ("T-shirt", "Sneaker")]
    y = [pile.truth[good[i].path] for i in keep]
    clf2 = ic.ImprintClassifier.from_preset("ours").fit(X[keep], y)
    again = ic.rescore(clf2, rows)
    assert [r.path for r in again] == [r.path for r in rows]
    assert [r.label for r in again if not r.error] == list(clf2.predict(X))
    assert {r.label for r in again if not r.error} == {"T-shirt", "Sneaker"}
    scores = [r.unknown_score for r in again if not r.error]
    np.testing.assert_allclose(scores, clf2.unknown_score(X), atol=1e-6)
    assert [r.error for r in again] == [r.error for r in rows]
    with pytest.raises(ValueError, match="keep_embeddings=True"):
        ic.rescore(clf2, [r.__class__(r.path, r.label, r.probability, r.top) for r in good[:1]])


def test_least_sure_lists_none_of_these_then_the_smallest_margins(rows, pile):
    order = ic.least_sure(rows)
    assert len(order) == len(rows) - len(pile.errors)  # nothing to learn from an unreadable file
    flags = [r.unknown for r in order]
    assert flags == sorted(flags, reverse=True) and {p for p in pile.photos} <= {
        r.path for r in order if r.unknown
    }
    margins = [r.margin for r in order if not r.unknown]
    assert margins == sorted(margins) and margins[0] < margins[-1]


def test_least_sure_order_on_arrays():
    margin = np.array([0.9, 0.1, np.nan, 0.5, 0.05])
    unknown = np.array([False, False, False, True, False])
    assert least_sure_order(margin, unknown).tolist() == [3, 4, 1, 0, 2]


def test_skip_and_bad_options(head, pile):
    run = ic.predict_files(head[1], pile.folder, skip=set(pile.errors))
    in_folder = [n for n in pile.truth if n.startswith(str(pile.folder))]
    assert run.skipped == 2 and run.total == len(in_folder)
    assert {r.path for r in run} == set(in_folder)
    with pytest.raises(ValueError, match="Option 'workers' is for engine 'ray'"):
        ic.predict_files(head[1], pile.folder, workers=2)
    with pytest.raises(ValueError, match="Unknown engine 'spark'"):
        ic.predict_files(head[1], pile.folder, engine="spark")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ic.predict_files(head[1], pile.folder, batch_size=0)


def test_a_consumer_that_stops_early_stops_the_work(head, pile):
    """Rows are computed one thread ahead; dropping the iterator ends that thread."""
    import itertools
    import threading

    rows = iter(ic.predict_files(head[1], pile.folder, batch_size=2))
    first = list(itertools.islice(rows, 3))
    assert len(first) == 3 and any(t.name == "imprint-predict" for t in threading.enumerate())
    rows.close()
    assert not any(t.name == "imprint-predict" for t in threading.enumerate())
