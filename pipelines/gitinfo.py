"""What the working tree's git state says about a build: commit, dirtiness, time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import _proc
from .errors import ToolNotFound


@dataclass(frozen=True)
class GitInfo:
    commit: str  # full sha, or "unknown" outside a git checkout
    dirty: bool
    timestamp: int  # commit time when clean, now when dirty: what `created` says

    @property
    def short(self) -> str:
        return self.commit[:12]

    @property
    def tag(self) -> str:
        """Image tag naming the source: 'git-<sha12>', '-dirty' when uncommitted changes went in."""
        if self.commit == "unknown":
            return "nogit"
        return f"git-{self.short}{'-dirty' if self.dirty else ''}"


def read(root: Path) -> GitInfo:
    try:
        head = _proc.run(["git", "rev-parse", "HEAD"], cwd=root, timeout=15, check=False, quiet=True)
    except ToolNotFound:
        return GitInfo("unknown", True, int(time.time()))
    if head.returncode != 0:
        return GitInfo("unknown", True, int(time.time()))
    status = _proc.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, timeout=15, quiet=True)
    dirty = bool(status.stdout.strip())
    if dirty:
        return GitInfo(head.stdout.strip(), True, int(time.time()))
    ct = _proc.run(["git", "log", "-1", "--format=%ct"], cwd=root, timeout=15, quiet=True)
    return GitInfo(head.stdout.strip(), False, int(ct.stdout.strip() or time.time()))
