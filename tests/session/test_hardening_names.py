"""Class names (issue 11 §2): one set of rules (imprint_core.names) for the app, zips and heads.
Names that look identical are one class or refused; nothing invisible or reordering gets in."""

from __future__ import annotations

import pytest

from imprint_core.names import MAX_NAME_CHARS, ClassNameError, check_class_names, clean_class_name
from imprint_core.session import Project, ProjectError, validate_class_name
from imprint_core.session.intake import records_from_labels


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  big \t\n dog ", "big dog"),
        ("ｃａｔ", "cat"),  # full-width letters (NFKC)
        ("ﬁsh", "fish"),  # ligature (NFKC)
        ("caf\u0065\u0301", "café"),  # combining accent composed (NFKC)
        ("Straße", "Straße"),
        ("猫", "猫"),
        ("\u2764\ufe0f", "\u2764\ufe0f"),  # an emoji's presentation selector is allowed
        ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS),
    ],
)
def test_names_are_normalised(name, expected):
    assert clean_class_name(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cat\u200b", r"invisible or text-reordering characters \(first: U\+200B ZERO WIDTH SPACE"),
        ("c\u200dat", r"U\+200D ZERO WIDTH JOINER"),
        ("\ufeffcat", r"U\+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("\u202etac", r"U\+202E RIGHT-TO-LEFT OVERRIDE"),
        ("cat\u2066", r"U\+2066 LEFT-TO-RIGHT ISOLATE"),
        ("ca\u00adt", r"U\+00AD SOFT HYPHEN"),
        ("cat\u034f", r"U\+034F COMBINING GRAPHEME JOINER"),
        ("cat\u3164", r"HANGUL \w+ ?FILLER"),  # NFKC maps it to U+1160
        ("cat\ufe0f", r"U\+FE0F VARIATION SELECTOR-16"),
        ("cat\ue000", r"U\+E000"),  # private use
        ("cat\x85", r"control characters \(first: U\+0085\)"),  # C1 (str.split eats it)
        ("cat\x9b", r"control characters \(first: U\+009B\)"),  # C1 CSI
        ("cat\x1f", r"control characters \(first: U\+001F\)"),  # str.split eats it too
        ("c\x00at", r"control characters \(first: U\+0000\)"),
        ("cat\x7f", r"control characters \(first: U\+007F\)"),
        ("\u3000 \u00a0", "cannot be blank"),  # ideographic and no-break spaces only
        ("x" * (MAX_NAME_CHARS + 1), f"{MAX_NAME_CHARS + 1} characters long"),
        (b"cat", "must be text, not bytes"),
    ],
)
def test_invisible_control_and_overlong_names_are_refused(name, message):
    with pytest.raises(ClassNameError, match=message):
        clean_class_name(name)
    with pytest.raises(ProjectError, match=message):
        validate_class_name(name)


def test_the_message_shows_the_hidden_character():
    with pytest.raises(ClassNameError, match=r"The class name 'cat\\u200b' contains"):
        clean_class_name("cat\u200b")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["cat", "CAT"], "'cat' and 'CAT' are the same class"),
        (["cat", "ｃａｔ"], "'cat' and 'cat' are the same class"),
        (["Straße", "STRASSE"], "the same class"),  # casefold
        (["\u2764", "\u2764\ufe0f"], "the same class"),  # ❤ and ❤️
        (["cat", "\u0441at"], "the same class"),  # Cyrillic 'с' (U+0441) looks like Latin 'c'
        (["paypal", "p\u0430ypal"], "the same class"),  # Cyrillic 'а'
        (["tops", "t\u03bfps"], "the same class"),  # Greek omicron
        (["sign A", "sign \u0391"], "the same class"),  # Greek capital alpha
    ],
)
def test_lookalike_names_are_one_class(names, message):
    with pytest.raises(ClassNameError, match=message):
        check_class_names(names)
    with pytest.raises(ProjectError, match="already a class named"):
        validate_class_name(names[1], [names[0]])


@pytest.mark.parametrize(
    "names",
    [
        ["cat", "cot", "cut"],
        ["кошка", "собака"],  # two Cyrillic names: different classes
        ["shirt", "skirt", "t-shirt", "T-shirt 2"],
        ["猫", "犬"],
        ["sign 1", "sign 2", "sign 10"],
    ],
)
def test_different_names_stay_different_classes(names):
    assert check_class_names(names) == names


def test_lookalike_names_are_one_class_in_every_entry_point(tmp_path):
    with pytest.raises(ProjectError, match="differ only in case or in letters that look alike"):
        records_from_labels(["a.png", "b.png"], ["cat", "\u0441at"])
    project = Project(workdir=tmp_path / "work", n_classes=0)
    try:
        project.add_class("cat")
        dog = project.add_class("dog")
        with pytest.raises(ProjectError, match="already a class named 'cat'.*look alike"):
            project.add_class("\u0441at")
        with pytest.raises(ProjectError, match="already a class named 'cat'"):
            project.rename_class(dog.uid, "c\u0430t")  # Cyrillic 'а'
        assert project.names == ["cat", "dog"]  # a refused name changes nothing
    finally:
        project.close()


def test_api_labels_and_project_classes_follow_the_rules(tmp_path):
    records = records_from_labels(["a.png", "b.png"], ["cat", "ｃａｔ"])
    assert [r[0] for r in records] == ["cat", "cat"]  # one class, one spelling
    with pytest.raises(ProjectError, match="differ only in case"):
        records_from_labels(["a.png", "b.png"], ["Straße", "STRASSE"])
    with pytest.raises(ProjectError, match=r"Label 2 \(for 'b.png'\).*U\+202E"):
        records_from_labels(["a.png", "b.png"], ["cat", "\u202edog"])
    project = Project(workdir=tmp_path / "work", n_classes=0)
    try:
        project.add_class("cat")
        with pytest.raises(ProjectError, match="already a class named 'cat'"):
            project.add_class("ＣＡＴ")
        with pytest.raises(ProjectError, match="ZERO WIDTH SPACE"):
            project.add_class("cat\u200b")
        assert project.names == ["cat"]  # a refused name changes nothing
    finally:
        project.close()
