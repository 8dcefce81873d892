"""The three boundaries of the repository, read from the code's imports (AST, so comments and strings do
not count, and `importlib.import_module("...")` with a literal name does):

- upstream/ imports nothing outside itself: the standard library, what upstream/requirements.txt names,
  `astroportal` and its own modules;
- services/ import nothing of the portal (`astroportal`): they are HTTP clients;
- launcher/ imports nothing of the portal: it drives it through processes, files and the database.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from conftest import CODE_ROOT

PORTAL = "astroportal"


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) of every import in `path`; level > 0 for a relative import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value, 0))
    return found


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file names (normalized), following `-r` includes."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
        elif line and not line.startswith("-"):
            names.add(normalize(re.split(r"[\[<>=!~;\s]", line, maxsplit=1)[0]))
    return names


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def outside_imports(root: Path, allowed_dists: set[str], own: set[str]) -> list[str]:
    """Imports of files under `root` that reach outside: neither stdlib, nor a module of `own`, nor provided
    by a distribution of `allowed_dists`, nor a module beside the importing file (tests' helpers)."""
    dists = packages_distributions()
    problems = []
    for path in python_files(root):
        beside = {p.stem for p in path.parent.glob("*.py")} | {p.name for p in path.parent.iterdir() if p.is_dir()}
        for line, module, level in imports(path):
            top = module.split(".")[0]
            if level or top in sys.stdlib_module_names or top in own or top in beside or top == "__future__":
                continue
            if any(normalize(d) in allowed_dists for d in dists.get(top, ())):
                continue
            problems.append(f"{path.relative_to(CODE_ROOT)}:{line}: imports {module} "
                            f"(from {', '.join(dists.get(top, [])) or 'no installed distribution'})")
    return problems


def portal_imports(root: Path) -> list[str]:
    return [f"{path.relative_to(CODE_ROOT)}:{line}: imports {module}"
            for path in python_files(root) for line, module, level in imports(path)
            if not level and module.split(".")[0] == PORTAL]


def test_upstream_imports_nothing_outside_itself():
    upstream = CODE_ROOT / "upstream"
    files = python_files(upstream)
    assert len(files) > 20 and any(p.parts[-2] == PORTAL for p in files)  # the scan sees the portal
    allowed = requirement_names(upstream / "requirements.txt")
    own = {PORTAL} | {p.stem for p in files}  # e.g. alembic/regenerate_initial.py uses tests/pgcluster.py
    assert outside_imports(upstream, allowed, own) == []


def test_services_import_nothing_of_the_portal():
    assert portal_imports(CODE_ROOT / "services") == []


def test_the_launcher_imports_nothing_of_the_portal():
    files = python_files(CODE_ROOT / "launcher")
    assert any(p.name == "cli.py" for p in files)
    assert portal_imports(CODE_ROOT / "launcher") == []


def test_the_checks_see_a_crossing(tmp_path):
    """The scans above are not vacuous: each kind of crossing in a file is found, with its line."""
    (tmp_path / "helper.py").write_text("X = 1\n")
    code = tmp_path / "code.py"
    code.write_text(
        "import os\nimport helper\nfrom . import sibling\n"  # stdlib, a module beside it, relative: inside
        "# import launcher (a comment does not count)\n"
        "import launcher.cli\n"
        "from astroportal.models import Obj\n"
        "import importlib\nmod = importlib.import_module('astroportal.app')\n"
    )
    assert [(line, module) for line, module, _ in imports(code)] == [
        (1, "os"), (2, "helper"), (3, ""), (5, "launcher.cli"), (6, "astroportal.models"), (7, "importlib"),
        (8, "astroportal.app")]
    # outside_imports names paths relative to the project root: scan a copy placed inside it
    probe = CODE_ROOT / "tests" / f".boundary-probe-{tmp_path.name}"
    probe.mkdir()
    try:
        for f in tmp_path.iterdir():
            (probe / f.name).write_text(f.read_text())
        outside = outside_imports(probe, {"pyyaml"}, own={PORTAL})
        assert [p.split(": ", 1)[1].split(" (")[0] for p in outside] == ["imports launcher.cli"]
        assert [p.split(":")[1] for p in portal_imports(probe)] == ["6", "8"]
    finally:
        for f in probe.iterdir():
            f.unlink()
        probe.rmdir()
