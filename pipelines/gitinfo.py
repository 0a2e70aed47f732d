"""What the working tree's git state says about a build: commit, dirtiness, time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import _proc
from .errors import ToolNotFound


@dataclass(frozen=True)
class GitInfo:
    commit: str  # full sha, or "unknown" outside a git checkout
    dirty: bool
    # What the `created` label says: SOURCE_DATE_EPOCH when set, else the
    # commit time, also for a dirty tree (the `-dirty` tag says so), so an
    # unchanged rebuild yields the same image.
    timestamp: int

    @property
    def short(self) -> str:
        return self.commit[:12]

    @property
    def tag(self) -> str:
        """Image tag naming the source: 'git-<sha12>', '-dirty' when uncommitted changes went in."""
        if self.commit == "unknown":
            return "nogit"
        return f"git-{self.short}{'-dirty' if self.dirty else ''}"


def read(root: Path, environ: Mapping[str, str]) -> GitInfo:
    info = _read(root)
    epoch = environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return GitInfo(info.commit, info.dirty, int(epoch))
    return info


def _read(root: Path) -> GitInfo:
    try:
        head = _proc.run(["git", "rev-parse", "HEAD"], cwd=root, timeout=15, check=False, quiet=True)
    except ToolNotFound:
        return GitInfo("unknown", True, int(time.time()))
    if head.returncode != 0:
        return GitInfo("unknown", True, int(time.time()))
    status = _proc.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, timeout=15, quiet=True)
    dirty = bool(status.stdout.strip())
    ct = _proc.run(["git", "log", "-1", "--format=%ct"], cwd=root, timeout=15, quiet=True)
    return GitInfo(head.stdout.strip(), dirty, int(ct.stdout.strip() or time.time()))
