"""Dockerfiles: which files are ones, and what discovery reads of each (stages, COPY sources, EXPOSE, HEALTHCHECK)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .model import Dockerfile, Stage
from .tree import read_file, relative


def is_dockerfile(name: str) -> bool:
    # A .orig is the copy `pipelines harden` keeps of a Dockerfile it rewrote: history, not a service.
    if name.endswith((".dockerignore", ".orig")):
        return False
    low = name.lower()
    return (
        name in ("Dockerfile", "Containerfile")
        or name.startswith(("Dockerfile.", "Containerfile."))
        or low.endswith(".dockerfile")
        or low.endswith(".containerfile")
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Dockerfile instructions with continuations joined, each with the line it starts on."""
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        yield start, " ".join(buf)
        buf = []
    if buf:
        yield start, " ".join(buf)


def parse_dockerfile(root: Path, path: Path) -> Dockerfile:
    rel = relative(root, path)
    text = read_file(path, rel)
    stages: list[Stage] = []
    copies: list[str] = []
    expose: list[str] = []
    health = False
    for line, instr in _logical_lines(text):
        word, _, rest = instr.partition(" ")
        word = word.upper()
        parts = rest.split()
        if word == "FROM":
            args = [p for p in parts if not p.startswith("--")]
            if args:
                name = args[2] if len(args) >= 3 and args[1].lower() == "as" else ""
                stages.append(Stage(name=name, base=args[0], line=line))
        elif word in ("COPY", "ADD"):
            if any(p.startswith("--from") for p in parts):
                continue
            if rest.lstrip().startswith("["):
                try:
                    import json

                    items = [str(x) for x in json.loads(rest[rest.index("[") :])]
                except (ValueError, TypeError):
                    items = []
            else:
                items = [p for p in parts if not p.startswith("--")]
            copies.extend(s for s in items[:-1] if not s.startswith(("http://", "https://", "<<")))
        elif word == "EXPOSE":
            expose.extend(parts)
        elif word == "HEALTHCHECK":
            health = not rest.strip().upper().startswith("NONE")
    return Dockerfile(path=rel, stages=tuple(stages), copies=tuple(copies), expose=tuple(expose), healthcheck=health)
