"""The repository's Python project: its name, how a build context pins its dependencies, Python base images."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .. import inputs
from ..errors import ConfigError

# Files that pin a context's Python dependencies, in the order they are recognised.
_LOCKS = (("uv.lock", "uv"), ("poetry.lock", "poetry"), ("pdm.lock", "pdm"), ("Pipfile.lock", "pipenv"))
_PYTHON_IMAGE = re.compile(r"(^|/)(python[0-9.]*|pypy[0-9.]*)(:|@|$)|(^|[/:-])python[0-9.]*(-|$)")


def is_python_image(image: str) -> bool | None:
    """Whether an image reference is a Python base (None: an ARG decides, so the file alone cannot tell)."""
    if "$" in image:
        return None
    ref = image.lower().split("@")[0]
    return bool(_PYTHON_IMAGE.search(ref))


def dependency_style(context: Path) -> str:
    """How a build context pins its Python dependencies, as recorded in the found-services table."""
    try:
        names = {p.name for p in context.iterdir()}
    except OSError:
        return "unknown"
    for lock, style in _LOCKS:
        if lock in names:
            return style
    if "pyproject.toml" in names:
        data = _toml(context / "pyproject.toml")
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        if isinstance(tool, dict):
            for style in ("poetry", "pdm", "uv"):
                if style in tool:
                    return f"{style} (no lock file)"
    if "Pipfile" in names:
        return "pipenv (no lock file)"
    reqs = sorted(n for n in names if n.startswith("requirements") and n.endswith((".txt", ".in")))
    if reqs or "requirements" in names:
        return "pip (" + ", ".join(reqs or ["requirements/"]) + ")"
    if "pyproject.toml" in names:
        return "pyproject.toml (no lock file)"
    if "setup.py" in names or "setup.cfg" in names:
        return "setuptools (no lock file)"
    return "none found"


def _toml(path: Path) -> dict[str, Any]:
    """A pyproject.toml as data; one that cannot be read only tells less (it is a hint here, not an input)."""
    try:
        return tomllib.loads(inputs.read_text(path, path.name))
    except (ConfigError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return {}


def project_name(root: Path) -> str:
    py = root / "pyproject.toml"
    if py.is_file():
        data = _toml(py)
        for table in (
            data.get("project"),
            (data.get("tool") or {}).get("poetry") if isinstance(data.get("tool"), dict) else None,
        ):
            if isinstance(table, dict) and isinstance(table.get("name"), str) and table["name"].strip():
                return str(table["name"]).strip()
    return root.resolve().name or "project"
