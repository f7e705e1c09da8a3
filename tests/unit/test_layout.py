"""The import direction, read from the source (ast): app.py -> imprint_core.ui -> imprint_core.session
-> the library, never back; gradio only in the UI package and app.py; the UI reaches the library
only through the session; no tab module imports another; no import cycle in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imprint_core"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_nodes(path: Path):
    """``(module, names)`` of every import statement anywhere in ``path`` (relative imports
    resolved; ``names`` is empty for ``import module``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix, [alias.name for alias in node.names]


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, and every ``module.name`` it takes from one."""
    found: set[str] = set()
    for module, names in import_nodes(path):
        found.add(module)
        found.update(f"{module}.{n}" for n in names)
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


# ---- the UI's own rules, and no cycle ------------------------------------------------------------
MODULES = {module_name(p): p for p in SOURCES}
# The tab modules (and the API's): each lays out its components and wires its events. Glue that
# several need lives in a module that is not a tab (actions, views, errors).
TABS = {
    f"imprint_core.ui.{t}" for t in ("teach", "method", "result", "try_it", "sort", "geometry")
} | {
    "imprint_core.ui.export",
    "imprint_core.ui.api",
}


def own_imports(path: Path) -> set[str]:
    """The package's modules ``path`` imports: ``from a import b`` is the module ``a.b`` when
    there is one, else ``a``. The importer's own parent packages are left out: Python
    initialises a parent before its modules, so they cannot form a cycle at import time."""

    def ours(dotted: str) -> str | None:
        parts = dotted.split(".")
        return next(
            (
                ".".join(parts[:i])
                for i in range(len(parts), 0, -1)
                if ".".join(parts[:i]) in MODULES
            ),
            None,
        )

    found = set()
    for module, names in import_nodes(path):
        for name in names or [None]:
            full = f"{module}.{name}" if name else module
            found.add(full if full in MODULES else ours(module))
    name = module_name(path)
    return {m for m in found if m and m != name and not name.startswith(m + ".")}


def test_no_tab_imports_another_tab():
    bad = sorted(
        (tab, other)
        for tab in TABS
        for other in own_imports(MODULES[tab])
        if other in TABS and other != tab
    )
    assert not bad, f"tab-to-tab imports (move the shared part to a non-tab UI module): {bad}"


def test_the_ui_reaches_the_library_only_through_the_session():
    bad = sorted(
        (name, other)
        for name, path in MODULES.items()
        if layer(name) == "ui"
        for other in own_imports(path)
        if layer(other) == "library"
    )
    assert not bad, f"UI modules importing the library directly: {bad}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path) per back edge of a depth-first search of ``graph``."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycle_in_the_package():
    graph = {name: own_imports(path) for name, path in MODULES.items()}
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def private_imports(path: Path) -> list[str]:
    """``module.name`` for every underscore name ``path`` takes from another package module
    (``__future__`` and dunders aside): a name another module needs is public in its home."""
    own = module_name(path)
    return [
        f"{module}.{n}"
        for module, names in import_nodes(path)
        if module.startswith("imprint_core") and module != own
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]


def test_no_module_imports_another_modules_private_name():
    bad = sorted(m for p in [*SOURCES, ROOT / "app.py"] for m in private_imports(p))
    assert not bad, f"private names imported from another module (make them public): {bad}"


def test_the_private_import_checker_sees_one(monkeypatch):
    fake = PACKAGE / "_layout_probe.py"
    source = "from .distributed import _init_ray, default_workers\nfrom . import normalisation\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert private_imports(fake) == ["imprint_core.distributed._init_ray"]
