"""What harden writes, planned first and written last: the new files, the originals kept, the unified diff."""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .. import inputs
from ..errors import ConfigError, InputError

ORIG = ".orig"


@dataclass(frozen=True)
class _Change:
    path: Path
    shown: str
    old: str | None  # None: a new file
    new: str
    what: str


def tracked_unchanged(root: Path, path: Path) -> bool:
    """Whether git holds ``path`` as it is now (then the original is recoverable from git, no copy needed)."""
    try:
        rel = path.relative_to(root).as_posix()
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--error-unmatch", "--", rel],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if listed.returncode != 0:
            return False
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", rel], capture_output=True, timeout=30, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    return diff.returncode == 0


@dataclass
class Plan:
    root: Path
    _changes: list[_Change] = field(default_factory=list)

    def dockerfile(self, path: Path, shown: str, old: str, new: str) -> None:
        """The hardened Dockerfile, and the original beside it unless git holds it unchanged."""
        if old == new:
            return
        orig = path.with_name(path.name + ORIG)
        if orig.exists() or orig.is_symlink():
            try:
                kept = inputs.read_text(orig, shown + ORIG)
            except ConfigError as exc:
                raise InputError(exc.what, hint=exc.hint) from None
            if kept != old or orig.is_symlink():
                raise InputError(
                    f"{shown}{ORIG}: exists and is not {shown} as it is now; harden does not overwrite it",
                    hint=f"move {shown}{ORIG} aside, then run harden again",
                )
        elif not tracked_unchanged(self.root, path):
            self._changes.append(_Change(orig, shown + ORIG, None, old, f"the original {shown}"))
        self.replace(path, shown, old, new, "hardened Dockerfile")

    def replace(self, path: Path, shown: str, old: str, new: str, what: str = "") -> None:
        if path.is_symlink():
            raise InputError(f"{shown}: is a symbolic link; harden does not write through it")
        self._changes.append(_Change(path, shown, old, new, what or "bases and golden images"))

    def changes(self) -> list[tuple[str, str]]:
        return [(c.shown, c.what) for c in self._changes]

    def diff(self) -> str:
        out: list[str] = []
        for c in self._changes:
            old = [] if c.old is None else c.old.splitlines(keepends=True)
            a = "/dev/null" if c.old is None else f"a/{c.shown}"
            lines = difflib.unified_diff(old, c.new.splitlines(keepends=True), a, f"b/{c.shown}")
            out.extend(line if line.endswith("\n") else line + "\n" for line in lines)
        return "".join(out)

    def write(self) -> list[Path]:
        written: list[Path] = []
        for c in self._changes:
            try:
                inputs.write_text(c.path, c.new, c.what)
            except ConfigError as exc:
                raise InputError(exc.what, hint=exc.hint) from None
            written.append(c.path)
        return written
