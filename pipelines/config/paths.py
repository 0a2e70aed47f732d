"""Paths in the config: inside the project tree, and the one input allowed outside it."""

from __future__ import annotations

import os
from pathlib import Path

from .. import refs
from .table import Table


def inside(t: Table, name: str, rel: str, root: Path) -> Path:
    """``root / rel``, refused when it (or a symlink on the way) leads outside the project."""
    path = refs.inside(root, rel)
    if path is None:
        raise t.error(
            name,
            f"{rel!r} is not inside the project directory {root}",
            hint="paths in the config are relative to the directory of pipeline.toml and stay inside it",
        )
    return path


def not_a(path: Path, kind: str) -> str:
    if path.exists():
        return f"{path} is not a {'directory' if kind == 'directory' else 'regular file'}"
    return f"{kind} {path} does not exist"


def files(t: Table, name: str, root: Path) -> tuple[Path, ...]:
    out = []
    for i, rel in enumerate(t.strings(name)):
        path = inside(t, f"{name}[{i}]", rel, root)
        if not path.is_file():
            raise t.error(f"{name}[{i}]", not_a(path, "file"))
        out.append(path)
    return tuple(out)


def offline_advisories(t: Table, root: Path) -> Path | None:
    """The one config path allowed outside the project tree: advisory data is shared between checkouts (a
    mirror beside them) and is read, never written or built from."""
    rel = t.opt_string("offline_advisories")
    if rel is None:
        return None
    if not rel.strip():
        raise t.error("offline_advisories", "is empty", hint="a directory of OSV files, relative to pipeline.toml")
    return Path(os.path.normpath(root / rel))
