"""The import direction, read from the source (ast): app.py -> imprint_core.ui -> imprint_core.session
-> the library, never back; gradio only in the UI package and app.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imprint_core"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (relative imports resolved), anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def layer(module: str) -> str:
    for name in ("imprint_core.ui", "imprint_core.session"):
        if module == name or module.startswith(name + "."):
            return name.rpartition(".")[2]
    return "library"


SOURCES = sorted(PACKAGE.rglob("*.py"))
# what each layer may not import
FORBIDDEN = {
    "library": ("imprint_core.session", "imprint_core.ui", "gradio"),
    "session": ("imprint_core.ui", "gradio"),
    "ui": (),
}


def test_the_layers_exist():
    layers = {layer(module_name(p)) for p in SOURCES}
    assert layers == {"library", "session", "ui"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_only(path):
    own = layer(module_name(path))
    bad = sorted(
        m for m in imports(path) for f in FORBIDDEN[own] if m == f or m.startswith(f + ".")
    )
    assert not bad, f"{module_name(path)} ({own}) imports {bad}"


def test_gradio_is_imported_by_the_ui_and_app_py_only():
    importers = {
        module_name(p)
        for p in [*SOURCES, ROOT / "app.py"]
        if any(m == "gradio" or m.startswith("gradio.") for m in imports(p))
    }
    assert importers and all(m.startswith("imprint_core.ui") or m == "app" for m in importers)


def test_app_py_is_an_entry_point():
    tree = ast.parse((ROOT / "app.py").read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert not functions and len((ROOT / "app.py").read_text().splitlines()) <= 50


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself: a library module importing the UI is caught."""
    fake = PACKAGE / "_layout_probe.py"
    monkeypatch.setattr(
        Path, "read_text", lambda self, *a, **k: "from .ui import build_app\nimport gradio as gr\n"
    )
    assert {"imprint_core.ui", "imprint_core.ui.build_app", "gradio"} <= imports(fake)
    assert layer(module_name(fake)) == "library"
