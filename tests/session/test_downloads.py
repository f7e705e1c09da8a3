"""The downloads (session/downloads.py): the head's Python snippet runs, no export before a head,
a saved project zip is withdrawn when the project changes."""

from __future__ import annotations

import pytest

from imprint_core import session as pj
from imprint_core.session import ProjectError


def test_python_snippet_runs(trained, fashion, tmp_path, capsys):
    _, test = fashion
    path = trained.export_head(tmp_path)
    code = pj.python_snippet(str(path), trained.backbone_name)
    exec(code.replace("my_image.jpg", str(test["Trouser"][0])), {})
    assert capsys.readouterr().out.splitlines()[0] == "Trouser"


def test_export_before_imprint(project):
    with pytest.raises(ProjectError, match="press Imprint first"):
        project.export_head()


def test_a_saved_project_is_withdrawn_when_its_classes_change(trained):
    """The project zip is a view too: renaming a class withdraws it (the name is in the manifest,
    and the head is imprinted again under the new name)."""
    zipped = pj.save_project(trained, trained.workdir / "saved" / "p.zip")
    assert pj.views(trained)["project_file"] == str(zipped)
    first = trained.classes[0]
    old = first.name
    trained.rename_class(first.uid, old + " 2")
    v = pj.views(trained)
    assert v["project_file"] is None and "save it again" in v["project_note"]
    trained.rename_class(first.uid, old)
    assert pj.views(trained)["project_file"] is None  # a new head, though the same names
    assert pj.save_project(trained, zipped) == zipped
    assert pj.views(trained)["project_file"] == str(zipped)
