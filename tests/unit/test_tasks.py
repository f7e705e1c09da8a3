"""Benchmark tasks: the paper's splits (spec 3.2), label remapping, merged multi-modal tasks."""

import numpy as np
import pytest

from imprint_core.bench.datasets import FASHION_MNIST_CLASSES
from imprint_core.bench.tasks import MERGED, SPLITS, get_task, merged_task, split_task


def test_splits_are_the_papers():
    assert SPLITS["all"] == tuple(range(10))
    assert SPLITS["even"] == (0, 2, 4, 6, 8)
    assert SPLITS["odd"] == (1, 3, 5, 7, 9)
    assert SPLITS["short"] == (0, 1, 2)


def test_labels_are_remapped_in_split_order():
    labels = np.array([9, 0, 3, 2, 7, 1, 4, 5, 8, 6, 3])
    rows, new = get_task("odd").select(labels)
    assert rows.tolist() == [0, 2, 4, 5, 7, 10]  # the rows holding 9, 3, 7, 1, 5, 3
    assert new.tolist() == [4, 1, 3, 0, 2, 1]  # 1->0, 3->1, 5->2, 7->3, 9->4
    rows, new = get_task("even").select(labels)
    assert labels[rows].tolist() == [0, 2, 4, 8, 6]
    assert new.tolist() == [0, 1, 2, 4, 3]
    rows, new = get_task("short").select(labels)
    assert labels[rows].tolist() == [0, 2, 1] and new.tolist() == [0, 2, 1]
    rows, new = get_task("all").select(labels)
    assert (new == labels).all() and len(rows) == len(labels)


def test_splits_name_their_classes_and_are_not_merged():
    task = get_task("short", "fashion-mnist", 10, FASHION_MNIST_CLASSES)
    assert task.class_names == ("T-shirt/top", "Trouser", "Pullover")
    assert not task.merged and task.n_classes == 3


def test_fashion_mnist_merged_task_is_tops_footwear_other():
    task = get_task("merged", "fashion-mnist")
    assert task.merged and task.class_names == ("tops", "footwear", "other")
    assert task.groups == ((0, 2, 4, 6), (5, 7, 9), (1, 3, 8))
    labels = np.arange(10)
    rows, new = task.select(labels)
    assert rows.tolist() == list(range(10))
    assert new.tolist() == [0, 2, 0, 2, 0, 1, 0, 1, 2, 1]


@pytest.mark.parametrize("dataset", sorted(MERGED))
def test_fixed_groupings_partition_the_classes(dataset):
    groups = get_task("merged", dataset).groups
    merged = [c for g in groups for c in g]
    assert sorted(merged) == list(range(10))


def test_seeded_merge_is_d_in_1_and_reproducible():
    task = get_task("merge2", "mnist")
    assert task.n_classes == 5 and all(len(g) == 2 for g in task.groups)
    assert sorted(c for g in task.groups for c in g) == list(range(10))
    assert task == merged_task(2)  # same seed, same grouping
    other = get_task("merge2s7")
    assert other.name == "merge2s7" and other.groups != task.groups
    three = get_task("merge3")
    used = [c for g in three.groups for c in g]
    assert three.n_classes == 3 and len(set(used)) == 9  # one class left over


def test_merged_falls_back_to_seeded_merge3_without_a_fixed_grouping():
    task = get_task("merged", "mnist")
    assert task.name == "merged" and task.groups == merged_task(3).groups


def test_splits_of_other_class_counts():
    assert split_task("all", 4).groups == ((0,), (1,), (2,), (3,))
    assert split_task("odd", 4).groups == ((1,), (3,))
    with pytest.raises(ValueError, match="fewer than 2 classes"):
        split_task("odd", 2)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("evens", "unknown task 'evens'.*all, even, odd, short, merged"),
        ("merge1", "d must be between 2 and 5"),
        ("merge6", "d must be between 2 and 5"),
    ],
)
def test_bad_task_names(name, message):
    with pytest.raises(ValueError, match=message):
        get_task(name)
