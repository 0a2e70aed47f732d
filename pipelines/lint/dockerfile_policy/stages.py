"""Which stage is the image that ships, what it is built from, and what a stage's variables hold."""

from __future__ import annotations

import re

from ...errors import InputError
from .model import Parsed, Stage, env_pairs, substitute

# Trailing stages with these names are development or test targets, not the image that ships.
DEV_TOOLING = re.compile(r"(?i)^(dev-?envs?|devcontainer)$")
NOT_SHIPPED = re.compile(r"(?i)^(dev|devel|development|dev-?envs?|devcontainer|debug|test|tests|testing|ci|lint)$")


def final_stage(p: Parsed, target: str | None) -> Stage:
    if target:
        for s in p.stages:
            if s.name == target:
                return s
        raise InputError(
            f"{p.display}: build target {target!r} is not a stage",
            hint=f"stages: {', '.join(s.name for s in p.stages)}",
        )
    shipped = [s for s in p.stages if not NOT_SHIPPED.match(s.name)]
    if shipped:
        return shipped[-1]
    # Only development targets: judge the development image, not the editor tooling stacked on it.
    not_tooling = [s for s in p.stages if not DEV_TOOLING.match(s.name)]
    return not_tooling[-1] if not_tooling else p.stages[-1]


def shipped_stages(p: Parsed, final: Stage) -> list[Stage]:
    """The final stage and the stages it is built FROM: what ends up in the image."""
    by_name = {s.name.lower(): s for s in p.stages}
    out, cur = [final], final
    while cur.resolved.lower() in by_name and by_name[cur.resolved.lower()] not in out:
        cur = by_name[cur.resolved.lower()]
        out.append(cur)
    return out


def is_export_stage(final: Stage) -> bool:
    """`FROM scratch` holding only copied files, with nothing to run: an artifact export stage."""
    if final.resolved != "scratch":
        return False
    return all(c.cmd in ("COPY", "ADD", "ARG", "LABEL", "WORKDIR") for c in final.commands)


def stage_name(s: Stage) -> str:
    return repr(s.name) if not s.name.isdigit() else f"#{s.name} (FROM {s.base})"


def stage_vars(p: Parsed, stage: Stage, upto: int | None = None) -> dict[str, str]:
    """ARG defaults (global ones the stage re-declares, chains resolved) and ENV values known in a stage."""
    known: dict[str, str] = {}
    for c in stage.commands:
        if upto is not None and c.start_line >= upto:
            break
        if c.cmd == "ARG":
            for w in c.value:
                k, eq, v = w.partition("=")
                if eq:
                    known[k] = substitute(v.strip("'\""), known)
                elif k in p.global_args:
                    known[k] = p.global_args[k]
        elif c.cmd == "ENV":
            for k, v in env_pairs(c):
                known[k] = substitute(v, known)
    return known
