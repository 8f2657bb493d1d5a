"""The layering rules, checked on every import statement (module level and inside functions) of our packages.

Ground floor `core/` imports nothing of ours; `receiver/` and `processors/` stand on it and never import each other
or the application floor `smshooks/`, which may import everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"core", "receiver", "processors", "smshooks"}
ALLOWED = {
    "core": {"core"},
    "receiver": {"core", "receiver"},
    "processors": {"core", "processors"},
    "smshooks": OURS,
}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every import of ours in a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            names = [node.module or ""]
        else:
            continue
        found.update((node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in OURS)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_floor_imports_only_what_it_stands_on(package):
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, package
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for path in modules for line, target in sorted(imported_packages(path))
             if target not in ALLOWED[package]]
    assert wrong == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from receiver.vendors import load_adapters\n    import processors.db\n")
    assert imported_packages(module) == {(2, "receiver"), (3, "processors")}
