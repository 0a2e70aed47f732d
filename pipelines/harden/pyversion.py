"""Which golden Python a project's declared one admits: the oldest of the catalog's that the specifier allows."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .. import golden

GOLDEN_PYTHON = (3, 11, 2)  # bookworm's python3: what python-builder and python-runtime carry


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().rstrip(".*").split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    pa, pb = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (pa > pb) - (pa < pb)


def _clause(clause: str, have: tuple[int, ...]) -> bool:
    """One clause of a specifier (PEP 440, or Poetry's ^ and ~); one not understood is taken as satisfied."""
    m = re.fullmatch(r"\s*(~=|==|!=|<=|>=|<|>|\^|~|=)?\s*([\d.*]+)\s*", clause)
    if not m:
        return True
    op, raw = m.group(1) or "==", m.group(2)
    want = _version(raw)
    if want is None:
        return True
    if raw.endswith("*") or (op in ("==", "=") and len(want) < len(have)):
        prefix = have[: len(want)]
        return (prefix == want) == (op != "!=")
    if op in ("^", "~", "~="):
        upper = (want[0] + 1,) if op == "^" or len(want) == 1 else (*want[:-2], want[-2] + 1)
        if op == "~" and len(want) >= 2:
            upper = (want[0], want[1] + 1)
        return _cmp(have, want) >= 0 and _cmp(have, upper) < 0
    c = _cmp(have, want)
    return {"==": c == 0, "=": c == 0, "!=": c != 0, "<=": c <= 0, ">=": c >= 0, "<": c < 0, ">": c > 0}[op]


def allows(spec: str, have: tuple[int, ...] = GOLDEN_PYTHON) -> bool:
    """Whether ``spec`` (">=3.12,<3.13", "^3.10", "~=3.11") admits Python ``have`` (any of "||" alternatives)."""
    return any(all(_clause(c, have) for c in alt.split(",") if c.strip()) for alt in spec.split("||"))


def golden_pythons() -> list[str]:
    """The Pythons the golden runtimes carry, oldest first ("3.11", "3.13", ...)."""
    return [g.python for g in golden.family("python-runtime")]


def choose(spec: str) -> str | None:
    """The oldest golden Python ``spec`` admits, or None when it admits none of them."""
    return next((v for v in golden_pythons() if allows(spec, golden.python_key(v))), None)


def declared(pyprojects: Iterable[Path]) -> tuple[str, Path] | None:
    """The first requires-python (or Poetry's python dependency) of these pyproject.toml files, with its file."""
    for path in pyprojects:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, ValueError, RecursionError):
            continue
        project = data.get("project")
        spec = project.get("requires-python") if isinstance(project, dict) else None
        tool = data.get("tool")
        poetry = tool.get("poetry") if isinstance(tool, dict) else None
        if spec is None and isinstance(poetry, dict) and isinstance(poetry.get("dependencies"), dict):
            spec = poetry["dependencies"].get("python")
        if isinstance(spec, str) and spec.strip():
            return spec, path
    return None
