"""A Dockerfile as instructions and stages, each with the line it starts on and its text as written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import InputError

_DIRECTIVE = re.compile(r"^#\s*(syntax|escape|check)\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case
    args: str  # the rest, continuations joined with a space
    text: str  # the lines as written, continuations and all

    @property
    def flags(self) -> dict[str, str]:
        """Leading --name=value flags (COPY --from=..., RUN --mount=...; the last of a name wins)."""
        out: dict[str, str] = {}
        for word in self.args.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            out[name.lower()] = value
        return out

    @property
    def operands(self) -> str:
        """The arguments after the leading flags."""
        words = self.args.split(" ")
        while words and (words[0].startswith("--") or not words[0]):
            words.pop(0)
        return " ".join(words).strip()

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN (None: shell form)."""
        rest = self.operands
        if not rest.startswith("["):
            return None
        try:
            value = json.loads(rest)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        return None


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # what FROM names
    name: str  # "" when unnamed
    line: int
    instructions: tuple[Instruction, ...]  # after FROM
    text: str = ""  # the FROM instruction as written (flags such as --platform kept)

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class Dockerfile:
    path: str  # as shown in messages
    preamble: tuple[Instruction, ...]  # ARGs before the first FROM
    stages: tuple[Stage, ...]
    directives: tuple[str, ...]  # "# syntax=..." lines


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuations joined; comments and blank lines inside a continuation are skipped."""
    out: list[Instruction] = []
    buf: list[str] = []
    raw: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and (not stripped or stripped.startswith("#")):
            raw.append(line)
            continue
        if not buf:
            start = n
        raw.append(line)
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(b for b in buf if b)
        word, _, rest = joined.partition(" ")
        out.append(Instruction(start, word.upper(), rest.strip(), "\n".join(raw)))
        buf, raw = [], []
    if buf:
        joined = " ".join(b for b in buf if b)
        word, _, rest = joined.partition(" ")
        out.append(Instruction(start, word.upper(), rest.strip(), "\n".join(raw)))
    return out


def parse(text: str, path: str) -> Dockerfile:
    directives = tuple(line.strip() for line in text.splitlines()[:5] if _DIRECTIVE.match(line.strip()))
    preamble: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    head: tuple[str, str, int, str] = ("", "", 0, "")
    for ins in instructions(text):
        if ins.keyword == "FROM":
            if current is not None:
                stages.append(Stage(len(stages), head[0], head[1], head[2], tuple(current), head[3]))
            words = ins.operands.split()
            if not words:
                raise InputError(f"{path}:{ins.line}: FROM names no image", hint="fix the Dockerfile, then run again")
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            head = (words[0], name, ins.line, ins.text)
            current = []
        elif current is None:
            preamble.append(ins)
        else:
            current.append(ins)
    if current is not None:
        stages.append(Stage(len(stages), head[0], head[1], head[2], tuple(current), head[3]))
    return Dockerfile(path, tuple(preamble), tuple(stages), directives)


def chain(df: Dockerfile, target: str | None) -> list[Stage]:
    """The stages the build of ``target`` (the last stage without one) goes through, first the one on an image."""
    if not df.stages:
        return []
    final = df.stages[-1]
    if target:
        found = [s for s in df.stages if s.name.lower() == target.lower()]
        if not found:
            raise InputError(f"{df.path}: build target {target!r} is no stage of this Dockerfile")
        final = found[0]
    out = [final]
    while True:
        base = out[-1].base.lower()
        parent = [s for s in df.stages if s.name and s.name.lower() == base and s.index < out[-1].index]
        if not parent or parent[-1] in out:
            break
        out.append(parent[-1])
    return list(reversed(out))
