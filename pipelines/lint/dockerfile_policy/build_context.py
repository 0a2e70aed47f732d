"""What the build context sends to the builder, and what its .dockerignore keeps out (PL-D016)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ... import inputs
from ...findings import Finding
from .model import Parsed, Stage
from .rules import Context, finding

if TYPE_CHECKING:
    from docker.utils.build import PatternMatcher

# What must never reach the builder: repository history and secrets files.
DOCKERIGNORE_MUST_EXCLUDE = (".git", ".env", ".env.local")
# What should not, when the context holds it: local environments, caches and tests.
DOCKERIGNORE_SHOULD_EXCLUDE = (".venv", "venv", "__pycache__", "node_modules", "tests")


def _matcher(patterns: list[str]) -> PatternMatcher:
    """Docker's own .dockerignore rules, from docker-py: imported when a .dockerignore is read, as loading the
    SDK (requests, urllib3) is 0.25 s of each `pipelines lint` start."""
    from docker.utils.build import PatternMatcher

    return PatternMatcher(patterns)


def _copies_whole_context(p: Parsed) -> bool:
    for s in p.stages:
        for c in s.commands:
            local = c.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in c.flags)
            if local and any(src.rstrip("/") in (".", "./", "*", "") for src in c.value[:-1]):
                return True
    return False


def _beside(p: Parsed, other: Path) -> str:
    """How to name a file read for a Dockerfile: beside it as the Dockerfile is named, else its own path."""
    return str(Path(p.display).with_name(other.name)) if other.parent == p.path.parent else str(other)


def check_dockerignore(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    if ctx.context_dir is None:
        return
    path = ctx.context_dir / ".dockerignore"
    # BuildKit also reads <Dockerfile>.dockerignore next to the Dockerfile.
    alt = p.path.with_name(p.path.name + ".dockerignore")
    source = path if path.exists() else alt if alt.exists() else None
    whole = _copies_whole_context(p)
    present = [s for s in (*DOCKERIGNORE_MUST_EXCLUDE, *DOCKERIGNORE_SHOULD_EXCLUDE) if (ctx.context_dir / s).exists()]
    if source is None:
        # Copying named files only, from a context holding none of the risky paths: nothing can leak.
        if whole or present:
            what = "copies the whole context" if whole else f"the context holds {', '.join(present)}"
            yield finding(p, "PL-D016", 0, f"no .dockerignore in the build context, and it {what}")
        return
    if not whole and not present:
        return
    matcher = _matcher(dockerignore_patterns(inputs.read_text(source, _beside(p, source))))
    candidates = [*DOCKERIGNORE_MUST_EXCLUDE, *(s for s in DOCKERIGNORE_SHOULD_EXCLUDE if s in present)]
    leaked = [s for s in candidates if not matcher.matches(s)]
    if leaked:
        yield finding(p, "PL-D016", 0, f"{source.name} lets these into the build context: {', '.join(leaked)}")


def dockerignore_patterns(text: str) -> list[str]:
    """Patterns as Docker reads them: comments and blank lines dropped, then Docker's own matcher applies."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:].strip() if negate else line
        pat = os.path.normpath(pat.lstrip("/")) if pat not in ("", "/") else pat
        out.append(("!" if negate else "") + pat)
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    return bool(_matcher(patterns).matches(path))
