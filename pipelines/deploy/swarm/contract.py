"""The deploy stage's engine contract (see ``pipelines.deploy.steps``): a release deployed as a stack."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...errors import GateFailed, InputError, Interrupted, PipelineError
from .. import steps as steps_mod
from ..steps import DeployInterrupted, Step
from .policy import _STACK_NAME, Log
from .rollout import deploy, rollback

if TYPE_CHECKING:
    from ...result import Context
    from ..plan import Deployment


def stack_name(project: str) -> str:
    """A Compose project name as a Swarm stack name (lowercase, [a-z0-9_-], at most 30 characters)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", project.lower()).strip("-_")[:30].rstrip("-_")
    if not _STACK_NAME.match(name):
        raise InputError(
            f"project {project!r} makes no Swarm stack name",
            hint="give --project a name of lowercase letters, digits, '-' or '_'",
        )
    return name


def apply(
    ctx: Context,
    new: Deployment,
    old: Deployment | None,
    *,
    replace_stateful: tuple[str, ...] = (),
    floor: float = 0.0,
    log: Log | None = None,
) -> list[Step]:
    """The stage's engine contract (see ``steps``): deploy ``new`` as a stack, watched to convergence.

    Stateful services arrive here already holding the running release's spec unless ``replace_stateful``
    names them (the stage decides that for every engine). When Swarm rolls an update back, the services
    that converged in earlier phases are put back on ``old`` too, so no half-release is left serving.
    """
    say: Log = log or (lambda line: print(line, flush=True))
    stack = stack_name(new.project)
    images = {s.name: s.image for s in new.services}
    timeout = floor or None
    try:
        out = deploy(new.compose, images, stack=stack, workdir=new.dir, tools=ctx.tools, timeout=timeout, log=say)
    except Interrupted as exc:
        raise DeployInterrupted(f"{exc.what}; Swarm rolls back what was under way", steps=[]) from None
    except GateFailed as exc:
        done = [Step(service="(stack)", action="rolled back by Swarm", gate="failed", ok=False, detail=exc.what)]
        if old is not None:
            try:
                back = rollback(
                    old.compose,
                    {s.name: s.image for s in old.services},
                    stack=stack,
                    workdir=new.dir / "restore",
                    tools=ctx.tools,
                    timeout=timeout,
                    log=say,
                )
                done.append(Step("(stack)", "restored", gate="converged", seconds=round(back.seconds, 2)))
            except PipelineError as again:
                done.append(Step("(stack)", "restore failed", gate="failed", ok=False, detail=again.what))
        raise steps_mod.GateBroken(exc.what, steps=done, seen=exc.seen, hint=exc.hint) from None
    by_phase = {n: p.seconds for p in out.phases for n in p.services}
    result = [
        Step(
            service=s.name,
            action="job ran" if s.one_shot else "converged",
            image=s.image,
            gate="healthy" if s.health else "running",
            seconds=round(by_phase.get(s.name, 0.0), 2),
        )
        for s in new.services
        if s.name in by_phase
    ]
    for n in out.notices:
        result.append(Step("(stack)", "notice", detail=n))
    return result
