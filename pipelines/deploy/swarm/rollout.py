"""A deploy and a rollback: render, write the stack files, deploy each phase and watch it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...compose_model import Project
from ...engine import Engine
from ...errors import InputError, Interrupted
from ...tools import Toolchain
from .engine_api import _api_error, _digest, _prune_secrets, _service_state, _stack_deploy, check_manager
from .phases import _phase_file, deadline_for, phases
from .policy import Log
from .render import dump, notices, render_stack
from .watch import _abort, _Watch, _watch


@dataclass
class PhaseResult:
    services: tuple[str, ...]
    seconds: float


@dataclass
class Outcome:
    """What a deploy did: the stack file, the phases with their times, the notices of the render."""

    stack: str
    file: Path
    phases: list[PhaseResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    removed_secrets: list[str] = field(default_factory=list)
    seconds: float = 0.0


def deploy(
    merged_compose: Project,
    images: Mapping[str, str],
    *,
    stack: str,
    workdir: Path,
    tools: Toolchain,
    run_jobs: bool = True,
    registry_auth: bool = False,
    timeout: float | None = None,
    log: Log | None = None,
) -> Outcome:
    """Render, deploy in phases and watch until every service converged healthy on ``images``.

    Raises GateFailed (exit 1) when Swarm rolled an update back or paused it, a job failed, or a service
    did not converge before its deadline (``timeout`` overrides it when longer); SwarmNotReady (exit 2)
    when the engine is no Swarm manager; SwarmRenderError (exit 2) on input a stack cannot hold.
    """
    say: Log = log or (lambda line: print(line, flush=True))
    started = time.monotonic()
    stack_file = render_stack(merged_compose, images, stack=stack)
    outcome = Outcome(stack, workdir / f"{stack}.swarm.yaml", notices=notices(stack_file))
    for n in outcome.notices:
        say(f"notice: {n}")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        outcome.file.write_text(dump(stack_file), encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"{outcome.file}: cannot be written ({exc.strerror})", hint="name a writable directory"
        ) from None
    import docker.errors
    import requests.exceptions

    with Engine.connect() as engine:
        check_manager(engine)
        client = engine.client
        current: list[_Watch] = []
        try:
            for label, names in phases(stack_file, run_jobs=run_jobs):
                phase_started = time.monotonic()
                watches = []
                for name in names:
                    svc = stack_file["services"][name]
                    dep = svc.get("deploy") or {}
                    before = _service_state(client, f"{stack}_{name}") or {}
                    watches.append(
                        _Watch(
                            name=name,
                            expected=_digest(images[name]),
                            job=dep.get("mode") == "replicated-job",
                            replicas=int(dep.get("replicas") or 1),
                            previous_update=str((before.get("UpdateStatus") or {}).get("StartedAt") or ""),
                            previous_job_iteration=int(
                                ((before.get("JobStatus") or {}).get("JobIteration") or {}).get("Index") or 0
                            )
                            if before
                            else -1,
                        )
                    )
                file = workdir / f"{stack}.swarm.{len(outcome.phases)}.yaml"
                file.write_text(dump(_phase_file(stack_file, names)), encoding="utf-8")
                say(f"swarm: phase {label}: {', '.join(names)}")
                current = watches
                for w in watches:
                    w.started = time.monotonic()
                _stack_deploy(tools, file, stack, registry_auth=registry_auth, log=say)
                limit = deadline_for(stack_file, names)
                if timeout is not None:
                    limit = max(limit, timeout)
                _watch(client, stack, watches, time.monotonic() + limit, say)
                outcome.phases.append(PhaseResult(tuple(names), time.monotonic() - phase_started))
            outcome.removed_secrets = _prune_secrets(client, stack, say)
        except Interrupted:  # Ctrl-C while a child ran (docker stack deploy)
            _abort(tools, client, stack, current, say)
            raise
        except KeyboardInterrupt:
            _abort(tools, client, stack, current, say)
            raise Interrupted(
                f"interrupted while deploying stack {stack}; updates under way were asked to roll back",
                hint=f"`docker stack ps {stack}` shows where it is; `pipelines rollback` restores the previous release",
            ) from None
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise _api_error(f"the Swarm manager refused a request while deploying stack {stack}", exc) from None
    outcome.seconds = time.monotonic() - started
    return outcome


def rollback(
    merged_compose: Project,
    previous_images: Mapping[str, str],
    *,
    stack: str,
    workdir: Path,
    tools: Toolchain,
    registry_auth: bool = False,
    timeout: float | None = None,
    log: Log | None = None,
) -> Outcome:
    """Deploy a previous release's digests, watched like any deploy; its one-shot jobs do not run again.

    Migrations move forward only: the schema a later job made stays, so a release must run against the
    schema of the next one (README).
    """
    return deploy(
        merged_compose,
        previous_images,
        stack=stack,
        workdir=workdir,
        tools=tools,
        run_jobs=False,
        registry_auth=registry_auth,
        timeout=timeout,
        log=log,
    )
