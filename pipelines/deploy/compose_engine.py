"""The single-host engine: a rolling update per service with docker compose, health-gated.

For each service whose config changed, in dependency order:

* a one-shot job (migrations) runs first, once, with the new image; a failure
  stops the deploy before anything was switched;
* a stateless service gets new containers beside the old ones
  (``up --no-deps --no-recreate --scale S=2N``), each must turn healthy within
  the deadline its healthcheck allows, and ready too when the service has a
  ``[deploy.readiness]`` route (asked from this host, same deadline), then the
  old ones are stopped with the service's grace period and removed;
* a service that publishes a fixed host port cannot run twice: it is
  recreated in place (a short gap, said so), then gated;
* a stateful service (named volumes, or [deploy].stateful) is created when
  missing and otherwise kept as it runs unless it is named in
  ``--replace-stateful`` (stop, start, gate: documented downtime).

A failed gate removes only the new containers and restores every service this
deploy already switched to the previous release; Ctrl-C does the same (with
Ctrl-C ignored while it happens) and ends as an interruption. The first deploy
to an empty project is a plain ``up`` that waits for the whole stack.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..compose_model import thaw
from ..composestack import Stack
from ..engine import ContainerState, Engine
from ..errors import CommandFailed, GateFailed, Interrupted, PipelineError
from ..result import Context
from . import readiness
from .plan import Deployment, Service
from .steps import DeployInterrupted, GateBroken, Step

NAME = "compose"
JOB_DEADLINE = 300.0  # seconds a one-shot job may run (plus the [deploy] floor)
COMPOSE_TIMEOUT = 300.0
LOG_TAIL = 15


Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def stack_of(ctx: Context, d: Deployment) -> Stack:
    """The Stack that runs exactly the release's rendered file."""
    st = Stack(None, d.env, d.project, d.dir, ctx.tools, compose_files=(d.file,))
    st.config = thaw(d.config.data)  # the Stack keeps its render as the JSON it would have read itself
    return st


def _spec_text(d: Deployment | None, name: str) -> str:
    # As text: JSON tells true from 1, which equal Python values do not.
    if d is None or d.service(name) is None:
        return ""
    return json.dumps(thaw(d.config.spec(name)), sort_keys=True)


def changed(new: Deployment, old: Deployment | None, name: str) -> bool:
    return _spec_text(new, name) != _spec_text(old, name)


@contextmanager
def _no_interrupts() -> Iterator[None]:
    """Ctrl-C while restoring would leave two half-releases: hold it off until the restore is done."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to hold off
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Rollout:
    ctx: Context
    engine: Engine
    new: Deployment
    old: Deployment | None
    replace_stateful: tuple[str, ...] = ()
    floor: float = 0.0
    log: Log = _stderr
    steps: list[Step] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)  # services this deploy changed, in order
    # The step under way: its service, the containers that served before it, and whether they were replaced
    # in place (then nothing of the old release serves any more and a failure must bring it back).
    current: tuple[str, frozenset[str], bool] | None = None
    verdict_at: float | None = None  # monotonic time of a failed gate's verdict

    # ---- engine queries ----------------------------------------------------------------------

    def containers(self, service: str, *, live_only: bool = True) -> list[ContainerState]:
        labels = {"com.docker.compose.project": self.new.project, "com.docker.compose.service": service}
        found = self.engine.containers(labels)
        # One-off `compose run` containers are not the service's replicas.
        found = [c for c in found if c.labels.get("com.docker.compose.oneoff", "False") != "True"]
        if live_only:
            found = [c for c in found if c.status in ("running", "restarting", "created")]
        return found

    def project_containers(self) -> list[ContainerState]:
        return self.engine.containers({"com.docker.compose.project": self.new.project})

    def remove(self, ids: set[str] | frozenset[str] | list[str], grace: float | None = None) -> None:
        for cid in ids:
            try:
                if grace is not None:
                    self.engine.stop(cid, timeout_s=max(1, round(grace)))
                self.engine.remove(cid)
            except PipelineError as exc:
                self.log(f"deploy: could not remove container {cid[:12]}: {exc.what}")

    def logs(self, cid: str) -> str:
        try:
            return "\n".join(self.engine.logs(cid, tail=LOG_TAIL).splitlines()[-LOG_TAIL:])
        except PipelineError:
            return "(no logs)"

    def gate(self, svc: Service, ids: list[str]) -> tuple[bool, str, float]:
        """Every container in ``ids`` healthy (running, without a healthcheck), then ready, within the deadline.

        Readiness ([deploy.readiness.SERVICE]) is asked after the engine's health, in the same deadline:
        a container that lives but cannot serve (its database unreachable) must not replace one that can.
        """
        start = time.monotonic()
        deadline = svc.deadline
        for cid in ids:
            left = max(0.5, deadline - (time.monotonic() - start))
            if svc.health is None:
                st = self.engine.state(cid)
                if st.status != "running":
                    return False, f"{cid[:12]} is {st.status} (exit {st.exit_code})", time.monotonic() - start
                continue
            status, _ = self.engine.wait_health(cid, left)
            if status != "healthy":
                took = time.monotonic() - start
                what = "still starting" if status == "starting" else status
                return False, f"{cid[:12]} {what} after {took:.1f} s (deadline {deadline:.0f} s)", took
        healthy = round(time.monotonic() - start, 2)
        said = f"healthy in {healthy:.1f} s" if svc.health else "running"
        spec = self.ctx.cfg.deploy.readiness.get(svc.name)
        if spec is None:
            return True, said, healthy
        for cid in ids:
            left = max(0.5, deadline - (time.monotonic() - start))
            try:
                ready, seen, _ = readiness.wait_ready(self.engine, cid, spec, left)
            except PipelineError as exc:  # no address to ask: it cannot be shown ready
                ready, seen = False, exc.what
            if not ready:
                took = time.monotonic() - start
                return False, (f"{said}, {cid[:12]} not ready after {took:.1f} s (deadline {deadline:.0f} s): "
                               f"{seen}"), took  # fmt: skip
        took = round(time.monotonic() - start, 2)
        return True, f"{said}, ready in {took - healthy:.1f} s", took

    # ---- one service -------------------------------------------------------------------------

    def up(self, d: Deployment, *args: str) -> None:
        stack_of(self.ctx, d).compose(
            "up", "--detach", "--no-deps", "--pull", "never", *args, timeout=COMPOSE_TIMEOUT, what="docker compose up"
        )

    def run_job(self, svc: Service) -> Step:
        start = time.monotonic()
        self.log(f"deploy: running one-shot job {svc.name} with {svc.image}")
        self.up(self.new, "--force-recreate", svc.name)
        deadline = JOB_DEADLINE + self.floor
        ids = [c.id for c in self.containers(svc.name, live_only=False)]
        while True:
            states = [self.engine.state(cid) for cid in ids]
            if states and all(s.status == "exited" for s in states):
                break
            if time.monotonic() - start > deadline:
                raise GateBroken(
                    f"one-shot job {svc.name} did not finish within {deadline:.0f} s; nothing was switched",
                    steps=self.steps,
                    seen="\n".join(self.logs(cid) for cid in ids),
                )
            time.sleep(0.5)
        bad = [s for s in states if s.exit_code != 0]
        took = round(time.monotonic() - start, 2)
        if bad:
            self.steps.append(Step(svc.name, "job failed", svc.image, f"exit {bad[0].exit_code}", took, False))
            raise GateBroken(
                f"one-shot job {svc.name} exited {bad[0].exit_code}; nothing was switched",
                steps=self.steps,
                seen=self.logs(bad[0].id),
                hint="the previous release keeps serving; fix the job and deploy again",
            )
        return Step(svc.name, "job ran", svc.image, "exit 0", took)

    def switch(self, d: Deployment, svc: Service, *, in_place: bool) -> Step:
        """Put ``d``'s version of ``svc`` in service; raises GateBroken after removing what it started."""
        start = time.monotonic()
        before = [c.id for c in self.containers(svc.name)]
        self.current = (svc.name, frozenset(before), in_place and bool(before))
        if not before:
            action = "created"
            self.up(d, svc.name)
        elif in_place:
            action = "replaced in place"
            self.up(d, "--force-recreate", svc.name)
        else:
            action = "rolled"
            self.up(d, "--no-recreate", "--scale", f"{svc.name}={2 * len(before)}", svc.name)
        fresh = [c.id for c in self.containers(svc.name) if c.id not in before]
        if not fresh:
            raise PipelineError(f"docker compose up started no new container of {svc.name}")
        ok, gate, _ = self.gate(svc, fresh)
        if not ok:
            # The step ends at the gate's verdict: removing the new containers is the rollback, timed after it.
            self.verdict_at = time.monotonic()
            verdict_s = round(self.verdict_at - start, 2)
            evidence = "\n".join(self.logs(cid) for cid in fresh)
            self.remove(fresh)
            self.current = None
            if action != "replaced in place" and svc.name in self.switched:
                # The old containers never stopped: nothing of this service needs restoring.
                self.switched.remove(svc.name)
            step = Step(svc.name, f"{action}: gate failed", svc.image, gate, verdict_s, False)
            self.steps.append(step)
            raise GateBroken(f"{svc.name}: the new container failed its gate: {gate}", steps=self.steps,
                             seen=evidence)  # fmt: skip
        if action == "rolled":
            self.remove(before, grace=svc.grace)
        self.current = None
        return Step(svc.name, action, svc.image, gate, round(time.monotonic() - start, 2))

    # ---- the whole release -------------------------------------------------------------------

    def first_deploy(self) -> None:
        st = stack_of(self.ctx, self.new)
        finish: dict[str, float] = {}
        for s in self.new.services:
            finish[s.name] = max((finish.get(d, 0.0) for d in s.depends), default=0.0) + s.deadline
        start = time.monotonic()
        try:
            st.up()
            st.wait_healthy(max(finish.values(), default=60.0))
            self.first_ready()
        except (GateFailed, CommandFailed) as exc:
            verdict_at = time.monotonic()
            evidence = exc.seen or ""
            self.clear_project()
            self.steps.append(Step("(stack)", "first deploy: gate failed", "", exc.what, 0.0, False))
            broken = GateBroken(f"the first release did not come up: {exc.what}", steps=self.steps, seen=evidence)
            broken.rollback_s = round(time.monotonic() - verdict_at, 2)
            raise broken from None
        except (KeyboardInterrupt, Interrupted):
            with _no_interrupts():
                self.clear_project()
            raise DeployInterrupted(
                "interrupted during the first deploy; its containers were removed", steps=self.steps
            ) from None
        took = round(time.monotonic() - start, 2)
        for s in self.new.services:
            said = (
                "exit 0" if s.one_shot else "healthy, ready" if s.name in self.ctx.cfg.deploy.readiness else "healthy"
            )
            self.steps.append(Step(s.name, "created", s.image, said, took))
            self.switched.append(s.name)

    def first_ready(self) -> None:
        """Every container of a service with a readiness route answers it, within the service's deadline."""
        for svc in self.new.services:
            spec = self.ctx.cfg.deploy.readiness.get(svc.name)
            if spec is None or svc.one_shot:
                continue
            for c in self.containers(svc.name):
                try:
                    ready, seen, took = readiness.wait_ready(self.engine, c.id, spec, svc.deadline)
                except PipelineError as exc:  # no address to ask: it cannot be shown ready, the stack goes
                    raise GateFailed(f"{svc.name}: {exc.what}", seen=exc.seen, hint=exc.hint) from None
                if not ready:
                    raise GateFailed(f"{svc.name} is healthy but {c.id[:12]} not ready after {took:.1f} s", seen=seen)

    def clear_project(self) -> None:
        """Remove the containers of a first deploy that failed; named volumes stay (data is never deleted)."""
        st = stack_of(self.ctx, self.new)
        st.compose("down", "--remove-orphans", "--timeout", "5", check=False, timeout=COMPOSE_TIMEOUT)

    def apply(self) -> list[Step]:
        if not self.project_containers():
            self.first_deploy()
            return self.steps
        for svc in self.new.services:  # jobs first: nothing is switched when one fails
            if svc.one_shot and changed(self.new, self.old, svc.name):
                self.steps.append(self.run_job(svc))
        try:
            for svc in self.new.services:
                if svc.one_shot:
                    continue
                running = self.containers(svc.name)
                if running and not changed(self.new, self.old, svc.name):
                    self.steps.append(Step(svc.name, "unchanged", svc.image))
                    continue
                if svc.stateful and running and svc.name not in self.replace_stateful:
                    self.steps.append(
                        Step(svc.name, "kept", self.running_ref(svc.name, running), "", 0.0, True,
                             f"stateful ({svc.stateful}): the running container stays; "
                             f"`--replace-stateful {svc.name}` replaces it (downtime)")
                    )  # fmt: skip
                    continue
                in_place = bool(svc.fixed_ports) or bool(svc.stateful)
                self.switched.append(svc.name)
                self.steps.append(self.switch(self.new, svc, in_place=in_place))
            self.remove_orphans()
        except GateBroken as exc:
            with _no_interrupts():
                self.restore()
            exc.steps = self.steps
            if self.verdict_at is not None:
                exc.rollback_s = round(time.monotonic() - self.verdict_at, 2)
            raise
        except (KeyboardInterrupt, Interrupted):
            with _no_interrupts():
                if self.current is not None:
                    name, before, replaced = self.current
                    self.remove({c.id for c in self.containers(name, live_only=False)} - before)
                    self.steps.append(Step(name, "interrupted: new containers removed", ok=False))
                    if not replaced and name in self.switched:
                        self.switched.remove(name)
                    self.current = None
                self.restore()
            raise DeployInterrupted(
                "interrupted: the new containers were removed and the previous release keeps serving",
                steps=self.steps,
            ) from None
        return self.steps

    def restore(self) -> None:
        """Put every service this deploy switched back to the previous release."""
        for name in reversed(self.switched):
            svc_old = self.old.service(name) if self.old else None
            if svc_old is None or self.old is None:
                self.remove([c.id for c in self.containers(name, live_only=False)])
                self.steps.append(Step(name, "removed (not in the previous release)"))
                continue
            try:
                in_place = bool(svc_old.fixed_ports) or bool(svc_old.stateful)
                step = self.switch(self.old, svc_old, in_place=in_place)
                step.action = f"restored ({step.action})"
                self.steps.append(step)
            except PipelineError as exc:
                self.steps.append(Step(name, "restore failed", svc_old.image, exc.what, ok=False))
        self.switched.clear()

    def running_ref(self, name: str, running: list[ContainerState]) -> str:
        """The digest the kept containers run, as the previous release recorded it (else the engine's label)."""
        prev = self.old.service(name) if self.old else None
        return prev.image if prev else _running_image(running)

    def remove_orphans(self) -> None:
        wanted = {s.name for s in self.new.services}
        for c in self.project_containers():
            service = c.labels.get("com.docker.compose.service", "")
            if service and service not in wanted:
                self.remove([c.id], grace=10)
                self.steps.append(Step(service, "removed (not in this release)"))


def _running_image(cs: list[ContainerState]) -> str:
    return cs[0].labels.get("com.docker.compose.image", "") if cs else ""


def apply(
    ctx: Context,
    new: Deployment,
    old: Deployment | None,
    *,
    replace_stateful: tuple[str, ...] = (),
    floor: float = 0.0,
    log: Log = _stderr,
) -> list[Step]:
    """Roll ``new`` out over ``old`` (None: nothing recorded); the steps taken, or GateBroken/DeployInterrupted."""
    with Engine.connect(ctx.environ) as engine:
        for ref in sorted({s.image for s in new.services}):
            if not engine.has_image(ref):
                log(f"deploy: pulling {ref}")
                engine.pull(ref)
        r = Rollout(ctx, engine, new, old, replace_stateful=replace_stateful, floor=floor, log=log)
        return r.apply()
