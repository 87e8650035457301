"""Layering: no subpackage imports another's private module, and no modules import each other in a cycle.

Read from the source with ``ast`` (nothing is imported), so a function-level
import counts as much as one at the top: it runs the first time the function
does, and then closes the same loop. Imports under ``if TYPE_CHECKING:`` never
run, so they close no cycle; they still name the module they import, so they
count for the privacy rule.

* Private: ``gradcam_serving.<pkg>._x`` (or anything below a private name in
  ``<pkg>``) may be imported only from inside ``<pkg>``. What another package
  needs is public in ``<pkg>/__init__.py``. A top-level private module
  (``gradcam_serving/_x.py``) is private to the top-level modules: what
  subpackages share lives on that floor under a public name
  (``gradcam_serving/dtypes.py``, ``console.py``).
* Scripts: the project's scripts outside the package (``benchmarks/``,
  ``serving_config/``) are users like any other: they may import no private
  module of the package at all.
* Cycles: the module graph (module -> the modules it imports) has none. A
  package's ``__init__`` importing its submodules is an edge like any other;
  the implicit import of a parent package is not (Python runs it first, not in
  a loop).
"""

from __future__ import annotations

import ast
import dataclasses
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gradcam_serving"
SCRIPT_FOLDERS = ("benchmarks", "serving_config")


@dataclasses.dataclass(frozen=True)
class Import:
    """One import statement's resolved target, where it is, and whether it only runs for type checkers."""

    importer: str
    target: str
    line: int
    type_checking: bool

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.target}"


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package`` (``__init__`` names its package)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement at any depth (functions, classes, branches), with whether it is type-checking only."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, type_only = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, type_only
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, type_only) for child in node.orelse)
            continue
        stack.extend((child, type_only) for child in ast.iter_child_nodes(node))


def _known_prefix(name: str, modules: dict[str, Path]) -> str | None:
    """The longest module of ours that ``name`` is or lies in (``pkg.mod.attr`` -> ``pkg.mod``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]) -> Iterator[str]:
    """The modules of ours an import statement loads (a name imported from a package may be a submodule)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if (known := _known_prefix(alias.name, modules)) is not None:
                yield known
        return
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, node.module] if node.module else parts)
    else:
        base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        known = submodule if submodule in modules else _known_prefix(base, modules)
        if known is not None:
            yield known


def _imports_in(path: Path, importer: str, module: str, modules: dict[str, Path]) -> Iterator[Import]:
    """The imports of our modules in one file, read as module ``module`` (relative imports resolve against it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node, type_only in _import_nodes(tree):
        for target in _targets(node, module, path.name == "__init__.py", modules):
            if target != module:
                yield Import(importer, target, node.lineno, type_only)


def _sorted(found: set[Import]) -> list[Import]:
    return sorted(found, key=lambda i: (i.importer, i.line, i.target))


def imports_of(root: Path, package: str) -> tuple[dict[str, Path], list[Import]]:
    """Every module under ``root/package`` and every import among them (targets outside the package are dropped)."""
    modules = modules_of(root, package)
    found = {found for module, path in modules.items() for found in _imports_in(path, module, module, modules)}
    return modules, _sorted(found)


def script_imports(root: Path, package: str, folders: tuple[str, ...]) -> list[Import]:
    """Every import of the package from the ``.py`` files in ``root/<folder>`` (importer: the file's path)."""
    modules = modules_of(root, package)
    found = set()
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                name = path.relative_to(root).as_posix()
                found.update(_imports_in(path, name, name.removesuffix(".py").replace("/", "."), modules))
    return _sorted(found)


def script_violations(imports: list[Import]) -> list[Import]:
    """A script is outside every package, so each import of a private module is a violation."""
    return [found for found in imports if private_owner(found.target) is not None]


def private_owner(target: str) -> str | None:
    """The package a private module belongs to (``a.pkg._x.y`` -> ``a.pkg``, ``a._x`` -> ``a``); ``None`` if public."""
    parts = target.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def packages_of(modules: dict[str, Path]) -> frozenset[str]:
    """The dotted names that are packages (their file is an ``__init__.py``)."""
    return frozenset(name for name, path in modules.items() if path.name == "__init__.py")


def _may_import(importer: str, owner: str, packages: frozenset[str]) -> bool:
    """Inside the owning package; for the top-level package, only its own modules, not its subpackages."""
    if "." not in owner:
        return importer == owner or (importer.count(".") == 1 and importer not in packages)
    return importer == owner or importer.startswith(owner + ".")


def private_violations(imports: list[Import], packages: frozenset[str]) -> list[Import]:
    """Imports of a private module from outside the package that owns it (``packages``: the names that are packages)."""
    bad = []
    for found in imports:
        owner = private_owner(found.target)
        if owner is not None and not _may_import(found.importer, owner, packages):
            bad.append(found)
    return bad


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Cycles among runtime imports, each as ``[a, b, ..., a]`` with every module importing the next.

    ``graphlib`` reports one cycle at a time; one edge of it is dropped and the
    search repeats, so every strongly connected tangle yields at least one cycle.
    """
    graph: dict[str, set[str]] = {}
    for found in imports:
        if not found.type_checking:
            graph.setdefault(found.importer, set()).add(found.target)
    cycles = []
    while True:
        # TopologicalSorter takes node -> predecessors; with "imports" as predecessors the
        # reported cycle runs against the import direction, so it is reversed.
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as error:
            cycle = list(reversed(error.args[1]))
            cycles.append(cycle)
            graph[cycle[0]].discard(cycle[1])
            continue
        return cycles


def _describe_cycles(cycles: list[list[str]], imports: list[Import]) -> str:
    lines = {(i.importer, i.target): i.line for i in imports if not i.type_checking}
    return "\n".join(
        " -> ".join(f"{a} (line {lines[a, b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"
        for cycle in cycles
    )


# -- the package itself ----------------------------------------------------------------------------


def test_no_module_imports_another_packages_private_module():
    modules, imports = imports_of(ROOT, PACKAGE)
    bad = private_violations(imports, packages_of(modules))
    assert not bad, (
        "private modules imported from outside their package (make the name public in the package's "
        "__init__, or move it down to a top-level module):\n" + "\n".join(map(str, bad))
    )


def test_no_script_imports_a_private_module():
    bad = script_violations(script_imports(ROOT, PACKAGE, SCRIPT_FOLDERS))
    assert not bad, (
        "scripts importing private modules (use the package's public names; make a missing one public in "
        "its __init__):\n" + "\n".join(map(str, bad))
    )


def test_no_import_cycles():
    _, imports = imports_of(ROOT, PACKAGE)
    cycles = import_cycles(imports)
    assert not cycles, "import cycles (module (line) -> the module it imports):\n" + _describe_cycles(cycles, imports)


def test_the_walk_sees_every_subpackage_and_function_level_imports():
    """Guards the checker against silently reading nothing (a wrong root, a parse that skips bodies)."""
    modules, imports = imports_of(ROOT, PACKAGE)
    assert {"gradcam_serving.deploy", "gradcam_serving.server", "gradcam_serving.exporter",
            "gradcam_serving.evaluate", "gradcam_serving.client"} <= set(modules)
    # ``cli`` imports each command's package inside the command function.
    assert any(i.importer == "gradcam_serving.cli" and i.target == "gradcam_serving.deploy" for i in imports)


def test_the_script_walk_sees_the_benchmarks():
    """Guards the script check against reading nothing (a wrong folder name, a root one level off)."""
    imports = script_imports(ROOT, PACKAGE, SCRIPT_FOLDERS)
    importers = {i.importer for i in imports}
    assert {"benchmarks/hardening.py", "benchmarks/bytes_vs_arrays.py", "serving_config/regenerate.py"} <= importers
    assert ("benchmarks/bytes_vs_arrays.py", "gradcam_serving.client") in {(i.importer, i.target) for i in imports}


# -- the checker on planted violations -------------------------------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


_CLEAN = {
    "pkg/__init__.py": "",
    "pkg/floor.py": "X = 1\n",
    "pkg/_top.py": "",
    "pkg/cli.py": "from pkg import _top\n",
    "pkg/a/__init__.py": "from pkg.a._impl import thing\n__all__ = ['thing']\n",
    "pkg/a/_impl.py": "from . import _helper\nfrom pkg.floor import X\nthing = X\n",
    "pkg/a/_helper.py": "",
    "pkg/b/__init__.py": "",
    "pkg/b/_use.py": "def f():\n    from pkg.a import thing\n    return thing\n",
}


def test_checker_passes_a_clean_package(tmp_path: Path):
    _write_package(tmp_path, _CLEAN)
    modules, imports = imports_of(tmp_path, "pkg")
    assert not private_violations(imports, packages_of(modules))
    assert Import("pkg.cli", "pkg._top", 1, False) in imports  # a top-level module may use a top-level private one
    assert not import_cycles(imports)
    assert Import("pkg.a._impl", "pkg.a._helper", 1, False) in imports  # relative import resolved
    assert Import("pkg.b._use", "pkg.a", 2, False) in imports  # function-level import seen


@pytest.mark.parametrize(
    "planted, importer, target",
    [
        pytest.param("from pkg.a._impl import thing\n", "pkg.b._use", "pkg.a._impl", id="from-private"),
        pytest.param("import pkg.a._helper\n", "pkg.b._use", "pkg.a._helper", id="import-private"),
        pytest.param("from pkg.a import _helper\n", "pkg.b._use", "pkg.a._helper", id="private-as-name"),
        pytest.param("def g():\n    from ..a._impl import thing\n", "pkg.b._use", "pkg.a._impl", id="relative-in-function"),
        pytest.param("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a._impl import thing\n",
                     "pkg.b._use", "pkg.a._impl", id="type-checking"),
        pytest.param("from pkg._top import *\n", "pkg.b._use", "pkg._top", id="top-level-private"),
    ],
)
def test_checker_finds_a_planted_private_import(tmp_path: Path, planted: str, importer: str, target: str):
    _write_package(tmp_path, {**_CLEAN, "pkg/b/_use.py": _CLEAN["pkg/b/_use.py"] + planted})
    modules, imports = imports_of(tmp_path, "pkg")
    assert [(i.importer, i.target) for i in private_violations(imports, packages_of(modules))] == [(importer, target)]


_SCRIPT = "import argparse\nfrom pkg.a import thing\nfrom pkg import floor\n"


@pytest.mark.parametrize(
    "planted, target",
    [
        pytest.param("from pkg.a._impl import thing\n", "pkg.a._impl", id="from-private"),
        pytest.param("import pkg.a._helper as helper\n", "pkg.a._helper", id="import-private"),
        pytest.param("from pkg.a import _helper\n", "pkg.a._helper", id="private-as-name"),
        pytest.param("def main():\n    from pkg.a._impl import thing\n", "pkg.a._impl", id="in-function"),
        # One dot in the importer's name: the rule for top-level private modules must not take a script
        # for a top-level module of the package.
        pytest.param("from pkg import _top\n", "pkg._top", id="top-level-private"),
    ],
)
def test_checker_finds_a_planted_private_import_in_a_script(tmp_path: Path, planted: str, target: str):
    _write_package(tmp_path, {**_CLEAN, "bench/tool.py": _SCRIPT, "bench/planted.py": _SCRIPT + planted})
    imports = script_imports(tmp_path, "pkg", ("bench",))
    assert [(i.importer, i.target) for i in script_violations(imports)] == [("bench/planted.py", target)]
    assert Import("bench/tool.py", "pkg.a", 2, False) in imports  # public imports are read, and pass


def test_a_subpackage_init_may_not_import_a_top_level_private_module(tmp_path: Path):
    _write_package(tmp_path, {**_CLEAN, "pkg/b/__init__.py": "from pkg import _top\n"})
    modules, imports = imports_of(tmp_path, "pkg")
    assert [(i.importer, i.target) for i in private_violations(imports, packages_of(modules))] == [("pkg.b", "pkg._top")]


def test_checker_finds_a_planted_cycle_through_a_function_level_import(tmp_path: Path):
    planted = {"pkg/a/_helper.py": "def late():\n    from pkg.a import _impl\n    return _impl\n"}
    _write_package(tmp_path, {**_CLEAN, **planted})
    _, imports = imports_of(tmp_path, "pkg")
    cycles = import_cycles(imports)
    assert len(cycles) == 1
    cycle = cycles[0]
    assert cycle[0] == cycle[-1] and set(cycle) == {"pkg.a._impl", "pkg.a._helper"}
    assert "pkg.a._helper (line 2) -> pkg.a._impl" in _describe_cycles(cycles, imports)


def test_checker_ignores_type_checking_cycles_and_parent_packages(tmp_path: Path):
    planted = {
        "pkg/a/_helper.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a._impl import thing\n",
    }
    _write_package(tmp_path, {**_CLEAN, **planted})
    _, imports = imports_of(tmp_path, "pkg")
    assert not import_cycles(imports)  # pkg.a -> pkg.a._impl, and pkg.a._impl's parent is not an edge back
