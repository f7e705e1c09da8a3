"""A project's classes and cards (session/classes.py): names, stable ids, limits, deleting images, the
cards' view. Real images (the shipped Fashion-MNIST examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imprint_core import session as pj
from imprint_core.session import ProjectError


# ---- class names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "others", "message"),
    [
        ("", (), "cannot be blank"),
        ("   \t ", (), "cannot be blank"),
        ("x" * (pj.MAX_NAME_CHARS + 1), (), f"use at most {pj.MAX_NAME_CHARS}"),
        (" Cats ", ("cats",), "already a class named 'cats'"),
        ("DOG", ("cat", "dog"), "already a class named 'dog'"),
        ("a\x07b", (), "control characters"),
        (None, (), "must be text"),
    ],
)
def test_bad_class_names_are_refused_with_a_reason(name, others, message):
    with pytest.raises(ProjectError, match=message):
        pj.validate_class_name(name, others)


def test_names_are_trimmed_and_inner_spaces_collapsed():
    assert pj.validate_class_name("  red   apple ", ["apple"]) == "red apple"


def test_add_rename_remove_classes_keep_stable_ids(project):
    assert project.names == ["Class 1", "Class 2"]
    first = project.classes[0].uid
    project.rename_class(first, "cat")
    third = project.add_class("dog")
    assert project.names == ["cat", "Class 2", "dog"]
    with pytest.raises(ProjectError, match="already a class named 'cat'"):
        project.rename_class(third.uid, "CAT")
    project.rename_class(first, "Cat")  # a class may change its own case
    project.remove_class(project.classes[1].uid)
    assert project.names == ["Cat", "dog"]
    assert project.get(first).name == "Cat"
    with pytest.raises(ProjectError, match="no longer exists"):
        project.get(12345)


def test_at_most_max_classes(project):
    while len(project.classes) < pj.MAX_CLASSES:
        project.add_class()
    with pytest.raises(ProjectError, match=f"at most {pj.MAX_CLASSES} classes"):
        project.add_class()


def test_default_names_do_not_collide(project):
    project.rename_class(project.classes[0].uid, "Class 3")
    assert project.add_class().name == "Class 4"


def test_an_image_in_two_classes_survives_clearing_one(project, fashion):
    """Identical uploads share one stored file: clearing, removing or deleting in one class must
    not break the other class's copy."""
    train, _ = fashion
    a, b = project.classes[0].uid, project.classes[1].uid
    shared = train["Trouser"][:2]
    project.add_images(a, shared)
    project.add_images(b, [*shared, train["Sneaker"][0]])
    paths = [i.path for i in project.get(b).images]
    project.clear_images(a)
    project.remove_image(b, 2)  # the Sneaker: only b used it
    assert all(p.exists() for p in paths[:2]) and not paths[2].exists()
    project.add_images(a, shared[:1])
    project.remove_class(b)
    assert paths[0].exists() and not paths[1].exists()


def test_remove_an_image_by_its_stored_file_name(project, fashion):
    train, _ = fashion
    uid = project.classes[0].uid
    project.add_images(uid, train["Trouser"][:3])
    first, second, third = project.get(uid).images
    # the app gets back a copy in Gradio's cache: same base name, other folder
    assert project.remove_image_file(uid, f"/tmp/gradio/abc123/{second.path.name}") == second.name
    assert project.get(uid).images == [first, third] and not second.path.exists()
    with pytest.raises(ProjectError, match="has no image stored as 'nope.png'"):
        project.remove_image_file(uid, "nope.png")
    with pytest.raises(ProjectError, match="no image number 3"):
        project.remove_image(uid, 2)


def test_view_lists_cards_with_thumbnails(project, fashion):
    train, _ = fashion
    project.add_images(project.classes[0].uid, train["Trouser"][:3])
    v1 = project.view(max_thumbs=2)
    card = v1["classes"][0]
    assert card["n"] == 3 and len(card["thumbs"]) == 2 and Path(card["thumbs"][0]).exists()
