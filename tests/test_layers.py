"""The package's layers, as README "## Layout" draws them, checked on the source of every module.

The ground (the process runner, the engine, config, the typed records, the
renderers, ...) is what stages import and never the reverse; a stage never
imports another stage (what two stages share is moved to the ground); the
faces (the command line, the entry points, the Nox sessions, the pytest plugin,
the benchmarks) sit on top and may import anything. Every package-internal
import must resolve, also one inside a function that no other test happens to
run (mypy's ignore_missing_imports does not see those), and the imports run
when a module is imported form no cycle.

Read from the source with ``ast``: a stage's import inside a function counts
as much as one at the top. Nothing here needs the engine.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pipelines

PACKAGE = Path(pipelines.__file__).parent
NAME = "pipelines"

# The three layers of README "## Layout", by top-level part of the package (a module or a sub-package;
# "__init__" is the package's own __init__.py). A new part must be put in one of them here (and in the README).
GROUND = frozenset(
    {
        "__init__",
        "_proc",
        "baseline",
        "compose_model",
        "composefile",
        "composespec",
        "composestack",
        "config",
        "cosign",
        "credentials",
        "datastores",
        "dbseverity",
        "debversion",
        "engine",
        "errors",
        "findings",
        "gitinfo",
        "golden",
        "inputs",
        "ledger_schema",
        "loadgen",
        "lockfile",
        "manifest",
        "osupdates",
        "refs",
        "registry",
        "render",
        "report",
        "result",
        "subjects",
        "tools",
        "trivyresult",
        "verdicts",
        "waivers",
    }
)
STAGES = frozenset({"adopt", "harden", "lint", "build", "scan", "verify", "stack", "deploy", "k8s", "signing"})
FACES = frozenset({"cli", "_main", "__main__", "nox", "testing", "bench"})


@dataclass(frozen=True)
class Import:
    """One package-internal import statement, resolved to the modules it names."""

    module: str  # the importing module, e.g. pipelines.deploy.plan
    file: Path
    line: int
    text: str  # the statement, on one line
    base: str  # the module the names are imported from, absolute ("" when a relative import leaves the package)
    names: tuple[str, ...]  # for `from BASE import a, b`; () for `import BASE`
    runs_on_import: bool  # at module level (also in a class body or try), not in a function or under TYPE_CHECKING

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(PACKAGE.parent)}:{self.line} `{self.text}`"


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package: files in directories that are packages (golden's build contexts are not)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if not all((PACKAGE / Path(*rel.parts[:i]) / "__init__.py").is_file() for i in range(len(rel.parts))):
            continue
        parts = [NAME, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").is_file()


def _is_module(module: str) -> bool:
    rel = module.replace(".", "/")
    return _is_package(module) or (PACKAGE.parent / f"{rel}.py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, runs: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), runs)
            elif isinstance(child, ast.ImportFrom):
                names = tuple(a.name for a in child.names)
                text = f"from {'.' * child.level}{child.module or ''} import {', '.join(names)}"
                if child.level:
                    parts = package.split(".")
                    up = child.level - 1
                    base = ".".join([*parts[: len(parts) - up], *([child.module] if child.module else [])])
                    if up >= len(parts):  # `from ..x import y` in a top-level module: beyond the package
                        base = ""
                    yield Import(module, path, child.lineno, text, base, names, runs)
                elif child.module and (child.module == NAME or child.module.startswith(NAME + ".")):
                    yield Import(module, path, child.lineno, text, child.module, names, runs)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == NAME or alias.name.startswith(NAME + "."):
                        yield Import(module, path, child.lineno, f"import {alias.name}", alias.name, (), runs)
            else:
                yield from visit(child, runs)

    yield from visit(ast.parse(path.read_text(), str(path)), True)


@cache
def _all_imports() -> tuple[Import, ...]:
    return tuple(i for module, path in _modules() for i in _imports_of(module, path))


def _targets(imp: Import) -> list[str]:
    """The modules an import loads: every package on the way to its base, and each name that is a module."""
    parts = imp.base.split(".")
    found = [".".join(parts[:n]) for n in range(2, len(parts) + 1)]
    found += [f"{imp.base}.{n}" for n in imp.names if _is_module(f"{imp.base}.{n}")]
    return found


def _part(module: str) -> str:
    """The top-level part of the package a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(part: str) -> str:
    return "ground" if part in GROUND else "stage" if part in STAGES else "face" if part in FACES else "?"


def _crossings() -> Iterator[tuple[str, str, Import]]:
    """(importing part, imported part, the import) for every import from one top-level part into another."""
    for imp in _all_imports():
        if not imp.base:
            continue
        for target in _targets(imp):
            a, b = _part(imp.module), _part(target)
            if a != b and b != "__init__":
                yield a, b, imp


def test_every_part_of_the_package_is_in_exactly_one_layer() -> None:
    parts = {p.stem for p in PACKAGE.glob("*.py")}
    parts |= {d.name for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()}
    overlap = (GROUND & STAGES) | (GROUND & FACES) | (STAGES & FACES)
    assert not overlap, f"in more than one layer: {sorted(overlap)}"
    unplaced = sorted(parts - GROUND - STAGES - FACES)
    assert not unplaced, (
        f"{unplaced}: in no layer. Put each in GROUND, STAGES or FACES here (a stage's shared code goes to the ground) "
        'and in README "## Layout"'
    )
    gone = sorted((GROUND | STAGES | FACES) - parts)
    assert not gone, f"{gone}: named in a layer here but not in the package any more"


def test_every_package_internal_import_resolves() -> None:
    bad = []
    for imp in _all_imports():
        if not imp.base:
            bad.append(f"{imp.where}: the relative import reaches beyond the package")
        elif not _is_module(imp.base):
            bad.append(f"{imp.where}: there is no module {imp.base}")
        else:
            for name in imp.names:
                if name == "*" or _is_module(f"{imp.base}.{name}"):
                    continue
                if not hasattr(importlib.import_module(imp.base), name):
                    bad.append(f"{imp.where}: {imp.base} has no {name}")
    assert not bad, "imports that fail when they run:\n" + "\n".join(bad)


def test_no_stage_imports_another_stage() -> None:
    bad = sorted(
        {f"{a} -> {b}: {imp.where}" for a, b, imp in _crossings() if _layer(a) == "stage" and _layer(b) == "stage"}
    )
    assert not bad, "a stage imports another stage (move what they share to the ground):\n" + "\n".join(bad)


def test_the_ground_imports_no_stage_and_no_face() -> None:
    bad = sorted(
        {
            f"{a} -> {b} ({_layer(b)}): {imp.where}"
            for a, b, imp in _crossings()
            if _layer(a) == "ground" and _layer(b) in ("stage", "face")
        }
    )
    assert not bad, "the ground imports from above it:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself): Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_imports_run_on_import_form_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for imp in _all_imports():
        if not imp.runs_on_import or not imp.base:
            continue
        for target in _targets(imp):
            # A module's own packages are being imported already when it runs: no edge to wait on.
            if imp.module == target or imp.module.startswith(target + "."):
                continue
            edges.setdefault(imp.module, set()).add(target)
            why.setdefault((imp.module, target), imp.where)
    cycles = _cycles(edges)
    shown = [
        " <-> ".join(c) + "\n  " + "\n  ".join(w for (a, b), w in sorted(why.items()) if a in c and b in c)
        for c in cycles
    ]
    assert not cycles, "module-level imports in a cycle:\n" + "\n".join(shown)
