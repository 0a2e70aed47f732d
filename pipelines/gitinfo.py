"""What the working tree's git state says about a build: commit, dirtiness, time."""

from __future__ import annotations

import hashlib
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
    # Of a dirty tree: the first 12 hex digits of the SHA-256 of its uncommitted changes (`git diff HEAD`).
    changes: str = ""

    @property
    def short(self) -> str:
        return self.commit[:12]

    def tag(self, env: str) -> str:
        """The build's own image tag: 'git-<sha12>-<env>', '-dirty-<hash of the changes>' for a dirty tree.

        Unique to what it names: two environments of one commit (their build
        args differ) and two dirty trees of one commit get different tags, so
        one build does not move another's. The same change gives the same tag.
        """
        if self.commit == "unknown":
            return f"nogit-{env}"
        return f"git-{self.short}-{env}" + (f"-dirty-{self.changes or 'unknown'}" if self.dirty else "")


def read(root: Path, environ: Mapping[str, str]) -> GitInfo:
    info = _read(root)
    epoch = environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return GitInfo(info.commit, info.dirty, int(epoch), info.changes)
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
    changes = ""
    if dirty:
        # What `git status` counts as dirty (tracked files), whole: binary files as --binary's text, no diff tool.
        argv = ["git", "diff", "HEAD", "--binary", "--no-ext-diff", "--no-color"]
        diff = _proc.run(argv, cwd=root, timeout=60, quiet=True)
        changes = hashlib.sha256(diff.stdout.encode()).hexdigest()[:12]
    return GitInfo(head.stdout.strip(), dirty, int(ct.stdout.strip() or time.time()), changes)
