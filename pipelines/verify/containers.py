"""The throwaway container run: one per image, with the hardening every environment uses, watched and timed."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _proc
from ..config import Config
from ..engine import Engine, ImageInfo
from ..errors import PipelineError
from .limits import Limits
from .parse import ProcStatus, parse_status
from .specs import HEALTH_INTERVAL_NS, NO_HEALTHCHECK_RUN_S, STAYS_HEALTHY_S, STOP_GRACE_S
from .targets import Target


@dataclass
class RunFacts:
    """What one throwaway container showed. ``problem`` is set when it could not be run at all."""

    argv: str = ""  # the equivalent `docker run` line: the evidence of every run cell
    status: ProcStatus | None = None
    status_source: str = ""
    status_problem: str = ""
    health: str = ""  # healthy, unhealthy, starting, exited, "" (no healthcheck)
    healthy_after: float | None = None
    stayed: str = ""  # healthy/running after the stay period, or what it turned into
    writable_health: str = ""  # health of the attribution run with a writable root, when done
    stop_s: float | None = None
    exit_code: int | None = None
    exited_early: str = ""  # the logs' tail when the process ended before it was stopped
    problem: str = ""


def host_status(engine: Engine, container: str) -> tuple[ProcStatus | None, str, str]:
    """The kernel's view of a container's PID 1: /proc/PID/status on the engine host.

    The PID is only trusted when /proc/PID/cgroup names the container: a remote
    engine's PID read on this host would describe some other process.
    """
    attrs = engine.inspect_container(container)
    pid = int((attrs.get("State") or {}).get("Pid") or 0)
    if not pid:
        return None, "", "the process had already exited (State.Pid 0)"
    base = Path("/proc") / str(pid)
    try:
        cgroup = (base / "cgroup").read_text()
        text = (base / "status").read_text()
    except OSError as exc:
        return None, "", f"/proc/{pid} not readable on this host ({exc.strerror}): is the engine remote?"
    if container not in cgroup:
        return None, "", f"/proc/{pid}/cgroup does not name container {container[:12]}: the engine is not local"
    return parse_status(text), f"/proc/{pid}/status (container PID 1, cgroup {container[:12]})", ""


def run_kwargs(cfg: Config, t: Target, info: ImageInfo, limits: Limits, *, read_only: bool) -> dict[str, Any]:
    vc = cfg.verify
    extra = vc.run.get(t.name)
    tmpfs = {"/tmp": "rw,nosuid,nodev,size=16m,mode=1777"}  # noqa: S108 - the container's own tmpfs
    for entry in (*limits.tmpfs, *(extra.tmpfs if extra else ())):
        # Compose's short syntax: PATH[:OPTIONS] (uid=999,gid=999,mode=0755 for a server's socket dir).
        path, _, options = entry.partition(":")
        tmpfs[path] = ",".join(o for o in ("rw,nosuid,nodev,size=16m", options) if o)
    kwargs: dict[str, Any] = {
        "name": f"pipelines-verify-{re.sub(r'[^a-zA-Z0-9_.-]', '-', t.name)[:40]}-{uuid.uuid4().hex[:8]}",
        "read_only": read_only,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": limits.memory,
        "pids_limit": limits.pids,
        "nano_cpus": limits.nano_cpus,
        "tmpfs": tmpfs,
        "network_mode": "none",
        "labels": {"pipelines.stage": "verify"},
        "environment": dict(extra.environment) if extra else {},
    }
    if info.healthcheck and info.healthcheck[0] != "NONE":
        # The image's own command, start period, timeout and retries; asked more often, so the
        # first answer comes in half a second instead of the image's interval.
        kwargs["healthcheck"] = {
            "test": list(info.healthcheck),
            "interval": HEALTH_INTERVAL_NS,
            "timeout": info.health_timeout_ns or 30_000_000_000,
            "retries": info.health_retries or 3,
            "start_period": info.health_start_period_ns,
        }
    if not t.role.app:
        # A base's entrypoint is an interpreter or a shell: with stdin open it waits, so PID 1 can be read.
        kwargs["stdin_open"] = True
    return kwargs


def _argv(kwargs: Mapping[str, Any], ref: str) -> str:
    parts = ["docker run -d", "--read-only" if kwargs["read_only"] else "", "--cap-drop ALL"]
    parts += [
        "--security-opt no-new-privileges",
        f"--memory {kwargs['mem_limit']}",
        f"--pids-limit {kwargs['pids_limit']}",
    ]
    parts += [f"--cpus {kwargs['nano_cpus'] / 1e9:g}", "--network none"] + [f"--tmpfs {p}" for p in kwargs["tmpfs"]]
    parts += ["--health-interval 0.5s"] if "healthcheck" in kwargs else []
    parts += ["-i"] if kwargs.get("stdin_open") else []
    parts += [f"-e {k}" for k in kwargs["environment"]]
    return " ".join(p for p in parts if p) + f" {ref}"


def health_deadline(cfg: Config, info: ImageInfo) -> float:
    """The image's start period (plus one check's timeout) is its promise; [verify].health_deadline caps it."""
    start = info.health_start_period_ns / 1e9
    timeout = (info.health_timeout_ns or 30_000_000_000) / 1e9
    if not start:
        start = (info.health_interval_ns or 30_000_000_000) / 1e9 * (info.health_retries or 3)
    return min(start + min(timeout, 3.0), float(cfg.verify.health_deadline))


def run_container(engine: Engine, cfg: Config, t: Target, info: ImageInfo, limits: Limits) -> RunFacts:
    from ..subjects import SubjectMismatch, check_container

    facts = RunFacts()
    kwargs = run_kwargs(cfg, t, info, limits, read_only=True)
    facts.argv = _argv(kwargs, t.ref) + f" ({limits.source})"
    stack_only = t.name in cfg.verify.stack_only
    has_hc = "healthcheck" in kwargs
    try:
        with engine.running(t.ref, **kwargs) as c:
            started = time.monotonic()  # the start period counts from here, as the engine counts it
            check_container(engine, c.id, info.id, f"verify {t.name}")
            facts.status, facts.status_source, facts.status_problem = host_status(engine, c.id)
            if not t.role.app:
                return facts
            if stack_only:
                facts.health = "skipped"
            elif has_hc:
                before = time.monotonic() - started
                facts.health, took = engine.wait_health(c.id, health_deadline(cfg, info) - before)
                if facts.health == "healthy":
                    facts.healthy_after = round(before + took, 2)
                    _proc.wait(STAYS_HEALTHY_S)
                    st = engine.state(c.id)
                    facts.stayed = st.health if st.status == "running" else f"{st.status} (exit {st.exit_code})"
            else:
                _proc.wait(NO_HEALTHCHECK_RUN_S)
                st = engine.state(c.id)
                facts.stayed = "running" if st.status == "running" else f"{st.status} (exit {st.exit_code})"
            st = engine.state(c.id)
            if st.status == "running":
                facts.stop_s = engine.stop(c.id, timeout_s=STOP_GRACE_S)
                facts.exit_code = engine.state(c.id).exit_code
            else:
                facts.exited_early = _proc.tail(engine.logs(c.id, tail=20), 5)
                facts.exit_code = st.exit_code
        if has_hc and not stack_only and facts.health != "healthy":
            # Who is to blame: the read-only root, or the image's health itself? One more run, writable.
            with engine.running(t.ref, **run_kwargs(cfg, t, info, limits, read_only=False)) as c:
                facts.writable_health, _ = engine.wait_health(c.id, health_deadline(cfg, info))
    except SubjectMismatch:
        raise  # not a finding about this image: the stage cannot say which image it ran (exit 2)
    except PipelineError as exc:
        facts.problem = exc.what + (f": {exc.seen}" if exc.seen else "")
    return facts
