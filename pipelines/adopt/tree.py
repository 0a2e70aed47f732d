"""The repository's tree: walked without the directories of others, files read as guarded input, what git tracks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .. import inputs
from ..errors import ConfigError, InputError

# Directories that hold someone else's files or generated ones: their Dockerfiles are not this repository's services.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "env",
        ".env",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        "vendor",
        "vendored",
        "_vendor",
        "third_party",
        "third-party",
        "thirdparty",
        "external",
        ".devcontainer",  # an editor's container, not a service
    }
)
# A tree this large is not walked to the end: discovery stays quick on a monorepo.
MAX_ENTRIES = 50_000


def read_file(path: Path, display: str) -> str:
    try:
        return inputs.read_text(path, display)
    except ConfigError as exc:
        raise InputError(exc.what, hint=exc.hint) from None


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def walk(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(relative directory, file names) of the tree, without the directories of others, symlinks not followed."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        seen += len(dirnames) + len(filenames)
        rel = Path(dirpath).relative_to(root).as_posix()
        yield ("" if rel == "." else rel), sorted(filenames)
        if seen > MAX_ENTRIES:
            return


def git_files(root: Path) -> set[str] | None:
    """The files git tracks (None: not a git work tree, or no git)."""
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return {p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p}
