"""The watch: follows each service of a phase until it converged healthy on the new digests, or fails."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import _proc
from ...errors import GateFailed
from ...tools import Toolchain
from .engine_api import _container_health, _digest, _service_state, _tasks
from .policy import Log

if TYPE_CHECKING:
    import docker


@dataclass
class _Watch:
    """One service's state as the watch last saw it."""

    name: str
    expected: str  # image digest the tasks must run
    job: bool
    replicas: int
    previous_update: str  # UpdateStatus.StartedAt before our deploy, "" when none
    previous_job_iteration: int
    started: float = 0.0  # monotonic time of the stack deploy
    done: bool = False
    seen: str = ""
    state: str = ""  # the UpdateStatus state of this deploy's update, once it failed


_FAILED_STATES = {
    "rollback_started": "Swarm is rolling the update back",
    "rollback_completed": "Swarm rolled the update back",
    "rollback_paused": "Swarm paused the rollback of the update (neither release is sure to serve)",
    "paused": "Swarm paused the update",
}


def _task_line(t: Mapping[str, Any]) -> str:
    st = t.get("Status") or {}
    image = ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")
    err = st.get("Err") or st.get("Message") or ""
    return (
        f"task {str(t.get('ID'))[:12]} {st.get('State')} (desired {t.get('DesiredState')}) {_digest(image)[:19]} {err}"
    )


def _check(client: docker.DockerClient, stack: str, w: _Watch) -> str | None:
    """None while the service is still converging; "" once converged; a failure text when it failed."""
    full = f"{stack}_{w.name}"
    svc = _service_state(client, full)
    if svc is None:
        w.seen = "service not found"
        return None
    spec_image = str(svc["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image") or "")
    us = svc.get("UpdateStatus") or {}
    tasks = _tasks(client, full)
    current = [
        t for t in tasks if _digest(((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")) == w.expected
    ]
    if w.job:
        iteration = int(((svc.get("JobStatus") or {}).get("JobIteration") or {}).get("Index") or 0)
        mine = [t for t in current if int((t.get("JobIteration") or {}).get("Index") or 0) == iteration]
        states = sorted(str((t.get("Status") or {}).get("State")) for t in mine)
        w.seen = "; ".join(_task_line(t) for t in mine) or "no task yet"
        if iteration <= w.previous_job_iteration:
            return None  # Swarm bumps the iteration of an updated job; this deploy's run has not begun
        if any(s in ("failed", "rejected", "orphaned", "shutdown") for s in states):
            return f"one-shot job {w.name} failed: {w.seen}"
        if mine and all(s == "complete" for s in states):
            return ""
        return None
    started = str(us.get("StartedAt") or "")
    state = str(us.get("State") or "")
    fresh = bool(us) and started != w.previous_update
    w.seen = f"update {state or 'none'}{': ' + us['Message'] if us.get('Message') else ''}; " + "; ".join(
        _task_line(t) for t in tasks if t.get("DesiredState") in ("running", "ready") or t in current[-3:]
    )
    if fresh and state in _FAILED_STATES:
        w.state = state
        return f"service {w.name}: {_FAILED_STATES[state]}: {us.get('Message') or 'no message'}"
    if _digest(spec_image) != w.expected:
        if fresh:
            return f"service {w.name}: its spec runs {_digest(spec_image)[:19]} after the update, not {w.expected[:19]}"
        return None
    if fresh and state == "updating":
        return None  # Swarm still replaces tasks or watches the new ones for `monitor`
    if not svc.get("PreviousSpec"):
        failed = [t for t in current if (t.get("Status") or {}).get("State") in ("failed", "rejected")]
        if len(failed) >= 3:
            return f"service {w.name}: new service, {len(failed)} tasks failed: {_task_line(failed[-1])}"
    live = [t for t in tasks if t.get("DesiredState") == "running"]
    if not live or any(t not in current for t in live):
        return None
    running = [t for t in live if (t.get("Status") or {}).get("State") == "running"]
    if len(running) < w.replicas or len(running) < len(live):
        return None
    # Swarm marks a task "running" only after its first healthy check; on this node the engine says so too.
    if any(_container_health(client, t) not in ("", "healthy") for t in running):
        return None
    return ""


def _settle(client: docker.DockerClient, stack: str, w: _Watch, deadline: float, log: Log) -> str:
    """Wait for Swarm's rollback of ``w`` to end (completed or paused); the verdict to report."""
    full = f"{stack}_{w.name}"
    # The rollback replaces tasks one by one like an update: give it the same time again.
    until = max(deadline, time.monotonic() + 60)
    while time.monotonic() < until:
        us = (_service_state(client, full) or {}).get("UpdateStatus") or {}
        state = str(us.get("State") or "")
        if state in ("rollback_completed", "rollback_paused"):
            w.state = state
            return f"service {w.name}: {_FAILED_STATES[state]}: {us.get('Message') or 'no message'}"
        time.sleep(0.5)
    log(f"swarm: {w.name}: the rollback did not end in time")
    return f"service {w.name}: {_FAILED_STATES['rollback_started']} (still rolling back when the deploy gave up)"


def _abort(tools: Toolchain, client: docker.DockerClient, stack: str, watches: Iterable[_Watch], log: Log) -> None:
    """Ctrl-C: ask Swarm to roll back the updates this deploy started and that have not finished."""
    for w in watches:
        if w.done or w.job:
            continue
        us = (_service_state(client, f"{stack}_{w.name}") or {}).get("UpdateStatus") or {}
        if us.get("State") != "updating" or str(us.get("StartedAt") or "") == w.previous_update:
            continue
        r = _proc.run(
            [tools.docker, "service", "rollback", "--detach", f"{stack}_{w.name}"],
            timeout=30,
            check=False,
            log=log,
            what="docker service rollback",
        )
        log(f"swarm: {w.name}: {'rolling back' if r.ok else 'could not roll back: ' + _proc.tail(r.stderr, 3)}")


def _watch(client: docker.DockerClient, stack: str, watches: list[_Watch], deadline: float, log: Log) -> None:
    pending = [w for w in watches if not w.done]
    last_report = 0.0
    while pending:
        for w in list(pending):
            verdict = _check(client, stack, w)
            if verdict is None:
                continue
            if verdict:
                detected = time.monotonic()
                log(f"swarm: {verdict}")
                if w.state == "rollback_started":
                    verdict = _settle(client, stack, w, deadline, log)
                serving = {
                    "rollback_completed": "the previous digests serve again",
                    "rollback_paused": "a person must decide: `docker service rollback` or fix and deploy again",
                    "paused": "the update waits: `docker service update --rollback` or fix and deploy again",
                }.get(w.state, "")
                raise GateFailed(
                    verdict,
                    seen=f"{w.seen}\n(failure seen {detected - w.started:.1f} s after the stack deploy)",
                    hint=f"{serving + '; ' if serving else ''}`docker service ps --no-trunc {stack}_{w.name}` and "
                    f"`docker service logs {stack}_{w.name}` show why",
                )
            w.done = True
            pending.remove(w)
            log(f"swarm: {w.name}: {'completed' if w.job else 'converged, tasks healthy'} on {w.expected[:19]}")
        if not pending:
            return
        now = time.monotonic()
        if now > deadline:
            raise GateFailed(
                f"stack {stack}: {', '.join(w.name for w in pending)} did not converge in time",
                seen="\n".join(f"{w.name}: {w.seen}" for w in pending),
                hint="the deadline comes from each service's healthcheck window; see `docker service ps` for why "
                "its tasks did not become healthy",
            )
        if now - last_report > 15:
            last_report = now
            log(f"swarm: waiting for {', '.join(w.name for w in pending)}")
        time.sleep(0.5)
