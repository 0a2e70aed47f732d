"""A Dockerfile as BuildKit's parser reads it: stages, their instructions, build args."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile

from ... import inputs
from ...errors import InputError

INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}
VAR = re.compile(r"\$(?:\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)(?::?[-+](?P<d>[^}]*))?\}|(?P<n>[A-Za-z_][A-Za-z0-9_]*))")
# A COPY or ADD source fetched over the network rather than taken from the build context.
REMOTE = re.compile(r"^(https?|git)://|^git@")


@dataclass
class Stage:
    index: int
    name: str
    base: str  # as written
    resolved: str  # with build args substituted
    line: int
    commands: list[dockerfile.Command] = field(default_factory=list)


@dataclass
class Parsed:
    path: Path
    display: str
    text: str
    stages: list[Stage]
    global_args: dict[str, str]
    # First and last line of every instruction (FROM and global ARGs too): what an inline waiver covers.
    spans: tuple[tuple[int, int], ...] = ()


def parse(path: Path, display: str, build_args: Mapping[str, str]) -> Parsed:
    """Parse with BuildKit's parser; anything it or BuildKit would reject is an InputError with file:line."""
    text = inputs.read_text(path, display)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise InputError(
            f"{display}: not a valid Dockerfile: {exc}",
            hint="fix the syntax; `docker buildx build` would reject it too",
        ) from None
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for c in commands:
        if c.cmd not in INSTRUCTIONS:
            raise InputError(
                f"{display}:{c.start_line}: unknown instruction {c.cmd}",
                seen=c.original,
                hint="BuildKit rejects it; check the spelling",
            )
        if c.cmd == "FROM":
            words = [w for w in c.value]
            if not words:
                raise InputError(f"{display}:{c.start_line}: FROM without an image")
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            args = {**global_args, **{k: v for k, v in build_args.items()}}
            stages.append(Stage(len(stages), name, words[0], substitute(words[0], args), c.start_line))
        elif not stages:
            if c.cmd != "ARG":
                raise InputError(
                    f"{display}:{c.start_line}: {c.cmd} before the first FROM", hint="only ARG may come before FROM"
                )
            for word in c.value:
                k, _, v = word.partition("=")
                # ARG A=${B}: the default may name an earlier ARG (or a --build-arg).
                global_args[k] = substitute(v.strip("'\""), {**global_args, **build_args})
        else:
            stages[-1].commands.append(c)
    if not stages:
        raise InputError(f"{display}: no FROM instruction", hint="a Dockerfile needs at least one stage")
    return Parsed(path, display, text, stages, global_args, tuple((c.start_line, c.end_line) for c in commands))


def substitute(value: str, args: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group("b") or m.group("n")
        if args.get(name):
            return args[name]
        if m.group("d") is not None and m.group(0).startswith("${") and ":-" in m.group(0):
            return m.group("d")
        return m.group(0)

    return VAR.sub(one, value)


def env_pairs(c: dockerfile.Command) -> list[tuple[str, str]]:
    """Key/value pairs of ENV, LABEL or ARG, quotes removed."""
    words = list(c.value)
    if c.cmd in ("ENV", "LABEL"):
        # BuildKit's parser already flattens both `k=v ...` and legacy `k v` into pairs.
        return [(k.strip("'\""), v.strip("'\"")) for k, v in zip(words[0::2], words[1::2], strict=False)]
    pairs = []
    for w in words:
        k, _, v = w.partition("=")
        pairs.append((k, v.strip("'\"")))
    return pairs
