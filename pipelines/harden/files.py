"""What harden writes, planned first and written last: the new files, the originals kept, the unified diff."""

from __future__ import annotations

import difflib
import os
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


_NOISE = frozenset({"set", "echo", "printf", "fi", "then", "else", "do", "done", "esac", "}", "{", ";;"})


def script_summary(context: Path, root: Path, script: str) -> str | None:
    """What an entrypoint script found in the build context runs: its file and commands, for the manual step."""
    name = Path(script).name
    if not name or name in ("init", "supervisord", "runsvdir", "s6-svscan"):
        return None
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "venv")]
        if name in filenames:
            found.append(Path(dirpath) / name)
        if len(found) > 1:
            return None  # which one the image runs cannot be told here
    if not found:
        return None
    try:
        text = found[0].read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    commands = [
        line.strip()
        for line in text.splitlines()[1:]
        if line.strip()
        and not line.strip().startswith("#")
        and line.split()[0].rstrip(";") not in _NOISE
        and len(line.strip()) < 160
    ]
    if not commands:
        return None
    shown = "; ".join(commands[:6]) + ("; ..." if len(commands) > 6 else "")
    return f"{found[0].relative_to(root).as_posix()} runs: {shown}"
