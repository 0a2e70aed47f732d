"""The Docker Swarm engine: `pipelines deploy --env ENV --engine swarm`.

Two halves:

* :func:`render_stack` turns the environment's merged Compose render (what
  ``docker compose config`` prints, see :mod:`pipelines.composefile`) and the
  images to deploy (compose service -> ``repo@sha256:...``) into a stack file
  that ``docker stack deploy`` (docker/cli 20.10 and newer, Compose file
  format 3.9) runs as meant. Every value that is not read from the Compose
  render or the image map comes from :data:`DEFAULTS`; every Compose key that
  Swarm ignores or rejects is dropped with a notice naming the service, the
  key and why (kept in the file under ``x-pipelines.notices``), never
  silently. Output is byte-identical for identical input.
* :func:`deploy` runs ``docker stack deploy`` in phases (the services one-shot
  jobs wait for, then each job to completion, then the rest) and WATCHES the
  update: docker/cli exits 0 even when Swarm then rolls the update back, so
  success is decided here, from the services' UpdateStatus and their tasks:
  every service converged, tasks running (Swarm marks a task running only
  once its healthcheck passed) on the new digests, no rollback, no pause.

Decisions (README "Deploying to Docker Swarm" states them for users):

* Published ports use ``mode: host``: the ingress routing mesh needs IPVS in
  the kernel, which not every host has; a host port also cannot be bound by
  two tasks, so such a service updates stop-first. A ``host_ip`` (Compose
  ``127.0.0.1:8000:8000``) has no Swarm equivalent: the port is published on
  every interface, and the notice says so.
* Services are found by DNS round robin (``endpoint_mode: dnsrr``): the
  virtual IP endpoint mode is IPVS too.
* Secrets are immutable in Swarm: each is named ``STACK_KEY_HASH`` with a hash
  of its content, so a changed secret is a new secret that the update rolls
  out like an image; secrets no service uses any more are removed after a
  deploy converged.
* One-shot jobs (restart "no", another service depends on them with
  ``service_completed_successfully``) become ``mode: replicated-job``
  services, deployed alone and waited on before the services that need them.
  Swarm re-runs a job on every update of its service, so a job is in exactly
  one phase of a deploy, and a rollback to earlier digests does not run jobs.
* Named volumes are the stack's (``STACK_KEY``), not Compose's implied
  ``PROJECT_KEY``, so two stacks of one project never share data; a volume
  the Compose file names explicitly keeps that name.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import _proc, compose_model
from ..compose_model import Deploy, FileObject, FileRef, Healthcheck, Project, Service, thaw
from ..composespec import DOCKER_HEALTHCHECK, Default
from ..engine import Engine
from ..errors import GateFailed, InputError, Interrupted, PipelineError
from ..tools import Toolchain
from . import steps as steps_mod
from .steps import DeployInterrupted, Step

if TYPE_CHECKING:
    import docker

    from ..result import Context
    from .plan import Deployment

# The Compose file format docker/cli 20.10 (Engine API 1.41) reads; newer CLIs read it too.
STACK_VERSION = "3.9"
NOTICES_KEY = "x-pipelines"
STACK_LABEL = "com.docker.stack.namespace"
_DIGEST_REF = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
_STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")
# Swarm names objects STACK_NAME; secret and config names are capped at 64 characters.
_MAX_OBJECT_NAME = 64

Log = Callable[[str], None]

# Every value not read from the Compose render or the image map.
DEFAULTS: dict[str, Default] = {
    "version": Default(STACK_VERSION, "the Compose file format of docker/cli 20.10 (Engine API 1.41)"),
    "update.parallelism": Default(1, "one task at a time: the others keep serving"),
    "update.order": Default(
        "start-first",
        "the new task runs beside the old one until healthy; stop-first for a service that publishes a host "
        "port (a port cannot be bound twice) or mounts a named volume (two writers on one data directory)",
    ),
    "update.failure_action": Default("rollback", "a task that fails its healthcheck rolls the service back"),
    "update.monitor": Default(
        "start_period + interval x retries + timeout",
        "a task that fails within this window of its start counts as a failed update; from the healthcheck",
    ),
    "rollback.failure_action": Default("pause", "a rollback that fails too stops and waits for a person"),
    "endpoint_mode": Default("dnsrr", "the virtual-IP endpoint mode needs IPVS in the kernel"),
    "ports.mode": Default("host", "the ingress routing mesh needs IPVS in the kernel"),
    "networks.driver": Default("overlay", "networks of a multi-host swarm"),
    "secret.name": Default("STACK_KEY_SHA256[:12]", "Swarm secrets are immutable: new content, new secret"),
    "job.restart_policy": Default({"condition": "none"}, "a one-shot job that fails is not retried: it aborts"),
    "job.healthcheck": Default({"disable": True}, "a one-shot job serves nothing: its image's healthcheck is off"),
    "replicas": Default(1, "Compose runs one container per service"),
    "docker.healthcheck": DOCKER_HEALTHCHECK,
}

# Service keys a 3.9 stack file carries with the meaning Compose gives them: copied as they are.
_COPIED = (
    "cap_add",
    "cap_drop",
    "command",
    "dns",
    "dns_search",
    "entrypoint",
    "expose",
    "extra_hosts",
    "hostname",
    "init",
    "labels",
    "logging",
    "read_only",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tty",
    "ulimits",
    "user",
    "working_dir",
)
# Service keys turned into their Swarm form by this module.
_MAPPED = {
    "image",
    "environment",
    "healthcheck",
    "ports",
    "networks",
    "secrets",
    "configs",
    "volumes",
    "tmpfs",
    "deploy",
    "restart",
    "cpus",
    "mem_limit",
    "mem_reservation",
    "pids_limit",
    "scale",
    "depends_on",
}
# Why a key that Swarm ignores or rejects is dropped; any other unknown key: "not in the 3.9 format".
_DROPPED_WHY = {
    "depends_on": "Swarm has no start order; one-shot jobs run first, the rest wait on their healthchecks",
    "security_opt": "docker stack deploy ignores security_opt (no-new-privileges, seccomp, apparmor); "
    "cap_drop still applies",
    "container_name": "Swarm names each task's container itself",
    "privileged": "Swarm services cannot run privileged",
    "devices": "Swarm services cannot map host devices",
    "network_mode": "Swarm services join overlay networks only",
    "links": "links are a single-host feature; services find each other by name on shared networks",
    "external_links": "links are a single-host feature",
    "cgroup_parent": "docker stack deploy ignores it",
    "userns_mode": "docker stack deploy ignores it",
    "ipc": "docker stack deploy ignores it",
    "pid": "docker stack deploy ignores it",
    "shm_size": "not in the 3.9 format",
    "mac_address": "not in the 3.9 format",
    "build": "Swarm deploys built images only",
    "profiles": "Swarm has no profiles: every service of the render is deployed",
    "pull_policy": "Swarm pulls the digest a task needs",
    "platform": "Swarm places tasks by the image's platforms",
    "env_file": "its variables are in the render's environment already",
    "mem_swappiness": "no swap control in Swarm services",
    "memswap_limit": "no swap control in Swarm services",
    "oom_score_adj": "docker stack deploy ignores it",
    "cpu_shares": "a forbidden property in the 3.9 format; use deploy.resources",
    "cpuset": "a forbidden property in the 3.9 format",
    "runtime": "Swarm services use the default runtime",
}
_UPDATE_KEYS = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
_DEPLOY_KEYS = ("labels", "placement", "resources", "restart_policy", "replicas", "endpoint_mode", "mode")
_VOLUME_KEYS = {"type", "source", "target", "read_only", "consistency"}
_VOLUME_SUB = {"bind": {"propagation"}, "volume": {"nocopy"}, "tmpfs": {"size"}}


class SwarmNotReady(PipelineError):
    """The engine is not a Swarm manager: nothing can be deployed to it (exit 2)."""


class SwarmRenderError(InputError):
    """The Compose render asks for something a stack cannot hold."""


@dataclass(frozen=True)
class Window:
    """A service's healthcheck window, in seconds."""

    start_period: float
    interval: float
    retries: int
    timeout: float

    @property
    def seconds(self) -> float:
        return self.start_period + self.interval * self.retries + self.timeout


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


# --------------------------------------------------------------------------- rendering


def _fail(service: str, key: str, problem: str, hint: str) -> InputError:
    return compose_model.service_error(SwarmRenderError, service, key, problem, hint)


def _duration_ns(value: object, service: str, key: str) -> int:
    return compose_model.duration(value, service, key, SwarmRenderError)


def _bytes(value: object, service: str, key: str) -> int:
    return compose_model.size(value, service, key, SwarmRenderError)


def _secs(ns: int) -> str:
    """A duration in the stack file's format, whole milliseconds ("1500ms", "30s")."""
    ms = -(-ns // 1_000_000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def health_window(name: str, spec: Service) -> Window | None:
    """The Compose healthcheck's window (Docker's defaults for unset fields); None when disabled.

    The image's own healthcheck is not known to the render: an unset field counts with Docker's
    default, which is never shorter than what the reference images set, so the window only errs long.
    """
    hc = spec.healthcheck
    if hc is not None and (hc.disable or hc.test == ("NONE",)):
        return None
    hc = hc or Healthcheck()
    dflt = DEFAULTS["docker.healthcheck"].value

    def dur(key: str) -> float:
        value = getattr(hc, key) or dflt[key]
        return _duration_ns(value, name, f"healthcheck.{key}") / 1e9

    retries = int(hc.retries or dflt["retries"])
    return Window(dur("start_period"), dur("interval"), retries, dur("timeout"))


def _healthcheck(name: str, hc: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hc.disable:
        return {"disable": True}
    if hc.test:
        out["test"] = hc.test if isinstance(hc.test, str) else list(hc.test)
    for key, value in (("interval", hc.interval), ("timeout", hc.timeout), ("start_period", hc.start_period)):
        if value:
            out[key] = _secs(_duration_ns(value, name, f"healthcheck.{key}"))
    if hc.retries:
        out["retries"] = hc.retries
    return out


def _restart_policy(value: str) -> dict[str, Any]:
    policy, _, count = value.partition(":")
    if policy == "no":
        return {"condition": "none"}
    if policy == "on-failure":
        return {"condition": "on-failure", **({"max_attempts": int(count)} if count.isdigit() else {})}
    return {"condition": "any"}  # always, unless-stopped


def _cpus(value: object, name: str, key: str) -> str:
    return f"{compose_model.cpus(value, name, key, SwarmRenderError):g}"


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _file_object(kind: str, key: str, spec: FileObject, stack: str, notices: list[str]) -> dict[str, Any]:
    """A top-level secret or config: external ones by name, files by a name carrying their content hash."""
    if spec.external:
        return {"external": True, "name": spec.name or key}
    if spec.environment or spec.content:
        source = "an environment variable" if spec.environment else "inline content"
        raise SwarmRenderError(
            f"compose {kind}.{key}: comes from {source}",
            hint=f"docker stack deploy 20.10 reads {kind} from files only: use `file:`",
        )
    path = Path(spec.file or "")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SwarmRenderError(
            f"compose {kind}.{key}: file {path} cannot be read ({exc.strerror})",
            hint=f"create it (the {kind} directory is the environment's) or point `file:` at it",
        ) from None
    name = f"{stack}_{key}_{_hash(data)}"
    if len(name) > _MAX_OBJECT_NAME:
        raise SwarmRenderError(
            f"compose {kind}.{key}: the Swarm name {name!r} is longer than {_MAX_OBJECT_NAME} characters",
            hint="use a shorter stack or secret name",
        )
    for extra in sorted(spec.given - {"file", "name", "labels"}):
        notices.append(f"{kind}.{key}: {extra} dropped: not in the 3.9 format")
    out: dict[str, Any] = {"file": str(path), "name": name}
    if spec.labels:
        out["labels"] = thaw(spec.labels)
    return out


def _mounted(name: str, kind: str, refs: Sequence[FileRef], declared: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, r in enumerate(refs):
        if r.source not in declared:
            raise _fail(name, f"{kind}[{i}]", f"names {r.source!r}, which the top level does not declare", "declare it")
        item: dict[str, Any] = {"source": r.source}
        target = r.target
        if kind == "secrets" and target.startswith("/run/secrets/"):
            # Swarm mounts secrets under /run/secrets/ by file name; the render writes the full path.
            target = target.removeprefix("/run/secrets/")
        if kind == "secrets" and "/" in target:
            raise _fail(
                name,
                f"{kind}[{i}].target",
                f"{r.target} is not a file directly under /run/secrets",
                "use the default target",
            )
        if target and target != r.source:
            item["target"] = target
        if r.uid is not None:
            item["uid"] = r.uid
        if r.gid is not None:
            item["gid"] = r.gid
        if r.mode is not None:
            item["mode"] = r.mode
        out.append(item)
    return out


def _tmpfs(name: str, spec: Service, notices: list[str]) -> list[dict[str, Any]]:
    """Compose's `tmpfs:` as long-syntax tmpfs volumes: docker stack deploy ignores the short key without a word."""
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(spec.tmpfs):
        path, _, opts = entry.partition(":")
        vol: dict[str, Any] = {"type": "tmpfs", "target": path}
        for opt in [o for o in opts.split(",") if o]:
            if opt.startswith("size="):
                vol["tmpfs"] = {"size": _bytes(opt.removeprefix("size="), name, f"tmpfs[{i}]")}
            elif opt.startswith(("uid=", "gid=")):
                notices.append(
                    f"services.{name}.tmpfs[{i}] {path}: {opt} dropped: Swarm cannot set a tmpfs's owner; the "
                    "mount takes the owner and mode of the image's directory under it (root, 1777 where there is "
                    "none): a service writing there as another user fails its healthcheck"
                )
            else:
                notices.append(
                    f"services.{name}.tmpfs[{i}] {path}: {opt} dropped: a Swarm tmpfs takes a size only (the "
                    "image's directory under it gives the mode, 1777 where there is none)"
                )
        out.append(vol)
    return out


def _volumes(name: str, spec: Service, notices: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """Long-syntax volumes with the keys the 3.9 format has; whether a named volume is mounted."""
    out: list[dict[str, Any]] = []
    named = False
    for i, m in enumerate(spec.volumes):
        fields: dict[str, Any] = {
            "type": m.type,
            "source": m.source,
            "target": m.target,
            "read_only": m.read_only,
            "consistency": thaw(m.extras.get("consistency")),
        }
        vol = {k: fields[k] for k in sorted(_VOLUME_KEYS & m.given)}
        for k in sorted(set(m.extras) - _VOLUME_KEYS):
            notices.append(f"services.{name}.volumes[{i}]: {k} dropped: not in the 3.9 format")
        for sub, allowed in _VOLUME_SUB.items():
            opts = m.options(sub)
            kept = {k: thaw(opts[k]) for k in sorted(allowed & set(opts))}
            for k in sorted(set(opts) - allowed):
                notices.append(f"services.{name}.volumes[{i}].{sub}.{k} dropped: not in the 3.9 format")
            if kept and sub == m.type:
                vol[sub] = kept
        if m.type == "volume" and m.source:
            named = True
        if m.type == "bind":
            notices.append(
                f"services.{name}.volumes[{i}]: bind mount of {m.source}: the path must exist on every "
                "node a task can be placed on"
            )
        out.append(vol)
    return out, named


def _ports(name: str, spec: Service, notices: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, p in enumerate(spec.ports):
        port: dict[str, Any] = {"target": p.target, "protocol": p.protocol or "tcp"}
        published = p.published
        if published:
            if not published.isdigit():
                raise _fail(
                    name,
                    f"ports[{i}].published",
                    f"{published!r} is a range or not a number",
                    "publish one port per entry",
                )
            port["published"] = int(published)
        port["mode"] = DEFAULTS["ports.mode"].value
        if p.host_ip not in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            notices.append(
                f"services.{name}.ports[{i}]: host_ip {p.host_ip} dropped: Swarm publishes on every interface "
                f"of the node (port {published or 'chosen by Swarm'}); firewall it if it must stay private"
            )
        if p.mode not in ("", "ingress", "host"):
            raise _fail(name, f"ports[{i}].mode", f"{p.mode!r} is not a publish mode", "use host")
        for k in sorted(p.extras):
            notices.append(f"services.{name}.ports[{i}]: {k} dropped: not in the 3.9 format")
        out.append(port)
    return out


def _resources(name: str, spec: Service, notices: list[str]) -> dict[str, Any]:
    for section, res in (("limits", spec.limits), ("reservations", spec.reservations)):
        unhandled = set(res.extras) | ({"pids"} if section == "reservations" and res.pids is not None else set())
        for k in sorted(unhandled):
            notices.append(f"services.{name}.deploy.resources.{section}.{k} dropped: not in the 3.9 format")
    lim, res = spec.limits, spec.reservations
    limits: dict[str, Any] = {k: v for k, v in (("cpus", lim.cpus), ("memory", lim.memory), ("pids", lim.pids))
                              if v is not None}  # fmt: skip
    reserv: dict[str, Any] = {k: v for k, v in (("cpus", res.cpus), ("memory", res.memory)) if v is not None}
    # The 3.9 format forbids the service-level keys: they become deploy.resources.
    if spec.cpus not in (None, "", 0) and "cpus" not in limits:
        limits["cpus"] = spec.cpus
    if spec.mem_limit not in (None, "", 0) and "memory" not in limits:
        limits["memory"] = spec.mem_limit
    if spec.pids_limit not in (None, 0) and "pids" not in limits:
        limits["pids"] = spec.pids_limit
    if spec.mem_reservation not in (None, "", 0) and "memory" not in reserv:
        reserv["memory"] = spec.mem_reservation
    out: dict[str, Any] = {}
    for section, values, key in (("limits", limits, "deploy.resources.limits"),
                                 ("reservations", reserv, "deploy.resources.reservations")):  # fmt: skip
        sec: dict[str, Any] = {}
        if values.get("cpus") not in (None, "", 0):
            sec["cpus"] = _cpus(values["cpus"], name, f"{key}.cpus")
        if values.get("memory") not in (None, "", 0):
            sec["memory"] = str(_bytes(values["memory"], name, f"{key}.memory"))
        if section == "limits" and values.get("pids") not in (None, "", 0):
            sec["pids"] = int(values["pids"])
        if sec:
            out[section] = sec
    return out


def _copied(spec: Service, key: str) -> Any:
    """A key the stack file carries as Compose wrote it, as plain JSON."""
    typed: dict[str, Any] = {
        "cap_add": list(spec.cap_add),
        "cap_drop": list(spec.cap_drop),
        "command": None if spec.command is None else list(spec.command),
        "entrypoint": None if spec.entrypoint is None else list(spec.entrypoint),
        "labels": dict(spec.labels),
        "read_only": spec.read_only if "read_only" in spec.given else None,
        "stop_grace_period": spec.stop_grace_period,
        "user": spec.user,
        "working_dir": spec.working_dir,
    }
    return typed[key] if key in typed else thaw(spec.value(key))


def _service(
    name: str,
    spec: Service,
    image: str,
    is_job: bool,
    networks: Mapping[str, Any],
    secrets: Mapping[str, Any],
    configs: Mapping[str, Any],
    notices: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {"image": image}
    for key in _COPIED:
        value = _copied(spec, key)
        if value not in (None, [], {}):
            out[key] = value
    env = spec.environment
    for k, v in env.items():
        if v is None:
            raise _fail(name, f"environment.{k}", "has no value (set in neither the file nor the environment)",
                        f"give {k} a value")  # fmt: skip
    if env:
        out["environment"] = {k: str(v) for k, v in sorted(env.items())}
    if spec.healthcheck is not None and not is_job:
        out["healthcheck"] = _healthcheck(name, spec.healthcheck)
    elif is_job:
        out["healthcheck"] = dict(DEFAULTS["job.healthcheck"].value)
        if spec.healthcheck is not None and not spec.healthcheck.disable:
            notices.append(f"services.{name}.healthcheck dropped: a one-shot job is judged by its exit code")
    ports = _ports(name, spec, notices)
    if ports and is_job:
        notices.append(f"services.{name}.ports dropped: a one-shot job serves nothing")
    elif ports:
        out["ports"] = ports
    if spec.networks:
        svc_nets: dict[str, Any] = {}
        for net, att in sorted(spec.networks.items()):
            if net not in networks:
                raise _fail(name, f"networks.{net}", "is not declared at the top level", "declare it under networks:")
            svc_nets[net] = {"aliases": list(att.aliases)} if att.aliases else None
            for k in sorted(att.extras):
                if thaw(att.extras[k]) not in (None, "", 0):
                    notices.append(f"services.{name}.networks.{net}.{k} dropped: Swarm assigns addresses itself")
        out["networks"] = svc_nets
    if spec.secrets:
        out["secrets"] = _mounted(name, "secrets", spec.secrets, secrets)
    if spec.configs:
        out["configs"] = _mounted(name, "configs", spec.configs, configs)
    vols, named = _volumes(name, spec, notices)
    vols += _tmpfs(name, spec, notices)
    if vols:
        out["volumes"] = sorted(vols, key=lambda v: (str(v.get("target")), str(v.get("type"))))

    given = spec.deploy or Deploy()
    deploy: dict[str, Any] = {}
    for k, value in (("labels", given.labels), ("placement", given.placement), ("endpoint_mode", given.endpoint_mode)):
        if value not in (None, {}, []):
            deploy[k] = thaw(value)
    for k in sorted(given.extras):
        notices.append(f"services.{name}.deploy.{k} dropped: not in the 3.9 format")
    resources = _resources(name, spec, notices)
    if resources:
        deploy["resources"] = resources
    restart = spec.restart or "no"
    if given.restart_policy:
        deploy["restart_policy"] = thaw(given.restart_policy)
    elif is_job and not restart.startswith("on-failure"):
        deploy["restart_policy"] = dict(DEFAULTS["job.restart_policy"].value)
    elif spec.restart:
        deploy["restart_policy"] = _restart_policy(restart)
    if spec.restart:
        notices.append(
            f"services.{name}.restart {restart!r}: written as deploy.restart_policy "
            f"{deploy['restart_policy']} (Swarm ignores `restart`)"
        )
    if given.mode not in (None, "replicated", "global"):
        raise _fail(name, "deploy.mode", f"{given.mode!r} is not a mode a stack service takes here",
                    "use replicated or global")  # fmt: skip
    if is_job:
        deploy["mode"] = "replicated-job"
    else:
        if given.mode == "global":
            deploy["mode"] = "global"
        else:
            deploy["replicas"] = int(given.replicas or spec.scale or DEFAULTS["replicas"].value)
        deploy.setdefault("endpoint_mode", DEFAULTS["endpoint_mode"].value)
        window = health_window(name, spec)
        if window is None:
            raise _fail(
                name,
                "healthcheck",
                "is disabled: Swarm cannot tell a good update from a bad one",
                "give the service a healthcheck (only one-shot jobs may have none)",
            )
        stop_first = bool(ports) or named
        order = "stop-first" if stop_first else DEFAULTS["update.order"].value
        monitor = _secs(int(window.seconds * 1e9))
        for k, value in (("update_config", given.update_config), ("rollback_config", given.rollback_config)):
            if value:
                notices.append(f"services.{name}.deploy.{k} replaced by the pipeline's update policy (README)")
        deploy["update_config"] = {
            "parallelism": DEFAULTS["update.parallelism"].value,
            "order": order,
            "failure_action": DEFAULTS["update.failure_action"].value,
            "monitor": monitor,
        }
        deploy["rollback_config"] = {
            "parallelism": DEFAULTS["update.parallelism"].value,
            "order": order,
            "failure_action": DEFAULTS["rollback.failure_action"].value,
            "monitor": monitor,
        }
    out["deploy"] = deploy

    for key in sorted(spec.given):
        if key in _COPIED or key in _MAPPED:
            continue
        why = _DROPPED_WHY.get(key, "not in the Compose file format docker stack deploy 20.10 reads")
        notices.append(f"services.{name}.{key} dropped: {why}")
    if spec.depends_on:
        waits = ", ".join(f"{d} ({c.condition})" for d, c in sorted(spec.depends_on.items()))
        notices.append(f"services.{name}.depends_on dropped ({waits}): {_DROPPED_WHY['depends_on']}")
    return out


def _ordered_jobs(services: Mapping[str, Service], jobs: set[str]) -> list[str]:
    """Jobs in the order their dependencies allow (a job that waits for another runs after it)."""
    done: list[str] = []
    pending = sorted(jobs)
    while pending:
        ready = [j for j in pending if not (set(services[j].depends_on) & (set(pending) - {j}))]
        if not ready:
            raise SwarmRenderError(f"one-shot jobs wait for each other in a cycle: {', '.join(pending)}")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


def render_stack(compose: Project, images: Mapping[str, str], *, stack: str) -> dict[str, Any]:
    """The stack file of a merged Compose render, every image by digest; notices under ``x-pipelines``."""
    if not _STACK_NAME.match(stack):
        raise SwarmRenderError(
            f"stack name {stack!r} is not usable",
            hint="lowercase letters, digits, '-' and '_', at most 30, starting with a letter or digit",
        )
    services = compose.services
    if not services:
        raise SwarmRenderError("the Compose render has no services: there is nothing to deploy")
    for svc, ref in sorted(images.items()):
        if svc not in services:
            raise SwarmRenderError(f"image map: service {svc!r} is not in the Compose render")
        if not _DIGEST_REF.match(ref):
            raise SwarmRenderError(
                f"image map: {svc} -> {ref!r} is not a reference by digest",
                hint="deploy the recorded build's pushed images: repository@sha256:...",
            )
    missing = sorted(set(services) - set(images))
    if missing:
        raise SwarmRenderError(
            f"no image digest for service(s) {', '.join(missing)}",
            hint="every service deploys a pushed, checked image by digest; build and push the environment",
        )
    notices: list[str] = []
    networks: dict[str, Any] = {}
    for key, spec in sorted(compose.networks.items()):
        if spec.external:
            networks[key] = {"external": True, "name": spec.name or key}
            continue
        net: dict[str, Any] = {"driver": DEFAULTS["networks.driver"].value}
        if spec.driver not in (None, "bridge", "overlay"):
            raise SwarmRenderError(f"compose networks.{key}: driver {spec.driver!r} does not span a swarm",
                                   hint="use the default driver")  # fmt: skip
        if spec.internal:
            net["internal"] = True
        if spec.attachable:
            net["attachable"] = True
        if spec.labels:
            net["labels"] = thaw(spec.labels)
        for k in sorted(spec.extras):
            if thaw(spec.extras[k]) not in (None, {}, [], ""):
                notices.append(f"networks.{key}.{k} dropped: Swarm's overlay networks take their own")
        networks[key] = net
    secrets = {k: _file_object("secrets", k, v, stack, notices) for k, v in sorted(compose.secrets.items())}
    configs = {k: _file_object("configs", k, v, stack, notices) for k, v in sorted(compose.configs.items())}
    volumes: dict[str, Any] = {}
    for key, vspec in sorted(compose.volumes.items()):
        fields: dict[str, Any] = {
            "name": vspec.name,
            "external": vspec.external,
            "driver": vspec.driver,
            "driver_opts": thaw(vspec.driver_opts),
            "labels": thaw(vspec.labels),
        }
        vol = {k: v for k, v in fields.items() if v}
        if not vspec.external and vspec.name == f"{compose.name}_{key}":
            # Compose's implied PROJECT_KEY name: the stack's own (STACK_KEY) instead, so two stacks of one
            # project (staging, prod) never share data. A stack named like the project mounts the same volume.
            del vol["name"]
        volumes[key] = vol
    jobs = compose.jobs()
    rendered: dict[str, Any] = {}
    for name, spec_ in sorted(services.items()):
        rendered[name] = _service(name, spec_, images[name], name in jobs, networks, secrets, configs, notices)
    _ordered_jobs(services, jobs)  # a cycle is an input error now, not at deploy time
    for k in sorted(compose.top_level - {"name", "services", "networks", "secrets", "configs", "volumes"}):
        if not k.startswith("x-"):
            notices.append(f"{k} dropped: not a top-level key of the 3.9 format")
    out: dict[str, Any] = {"version": DEFAULTS["version"].value, "services": rendered}
    if networks:
        out["networks"] = networks
    if secrets:
        out["secrets"] = secrets
    if configs:
        out["configs"] = configs
    if volumes:
        out["volumes"] = volumes
    out[NOTICES_KEY] = {
        "stack": stack,
        "jobs": _ordered_jobs(services, jobs),
        "needs": {name: sorted(spec_.depends_on) for name, spec_ in sorted(services.items()) if spec_.depends_on},
        "notices": sorted(set(notices)),
        "defaults": {k: d.value for k, d in sorted(DEFAULTS.items())},
    }
    return out


def dump(stack_file: Mapping[str, Any]) -> str:
    """The stack file's text: sorted keys, no flow style, so identical input gives identical bytes."""
    return yaml.safe_dump(dict(stack_file), sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096)


def notices(stack_file: Mapping[str, Any]) -> list[str]:
    return list((stack_file.get(NOTICES_KEY) or {}).get("notices") or [])


# --------------------------------------------------------------------------- phases


def phases(stack_file: Mapping[str, Any], *, run_jobs: bool = True) -> list[tuple[str, list[str]]]:
    """(label, services) per `docker stack deploy`, in order.

    First the services nothing of which waits for a job (a job's own dependencies among them), then each
    job alone (Swarm re-runs a job whenever its service is updated, so a job is in one phase only), then
    every long-running service. Without jobs: one phase.
    """
    meta = stack_file.get(NOTICES_KEY) or {}
    jobs: list[str] = list(meta.get("jobs") or [])
    needs: Mapping[str, list[str]] = meta.get("needs") or {}
    services = sorted(stack_file.get("services") or {})
    longrun = [s for s in services if s not in jobs]
    if not jobs:
        return [("services", longrun)]

    def waits_for_job(s: str, seen: frozenset[str] = frozenset()) -> bool:
        deps = set(needs.get(s) or [])
        return bool(deps & set(jobs)) or any(waits_for_job(d, seen | {s}) for d in deps - seen - {s})

    first = [s for s in longrun if not waits_for_job(s)]
    out: list[tuple[str, list[str]]] = []
    if run_jobs:
        if first:
            out.append(("before jobs", first))
        out += [(f"job {j}", [j]) for j in jobs]
    out.append(("services", longrun))
    return out


def _phase_file(stack_file: Mapping[str, Any], services: Iterable[str]) -> dict[str, Any]:
    keep = set(services)
    out = {k: v for k, v in stack_file.items() if k != NOTICES_KEY}
    out["services"] = {k: v for k, v in (stack_file.get("services") or {}).items() if k in keep}
    return out


# --------------------------------------------------------------------------- the engine


def check_manager(engine: Engine) -> None:
    """Raise SwarmNotReady (exit 2) unless the engine is an active Swarm manager."""
    info = engine.client.info()
    swarm = info.get("Swarm") or {}
    state = str(swarm.get("LocalNodeState") or "inactive")
    if state != "active":
        raise SwarmNotReady(
            "the Docker engine is not part of a swarm: `--engine swarm` cannot deploy",
            seen=f"docker info: Swarm.LocalNodeState = {state}",
            hint="on a single host: `docker swarm init --advertise-addr 127.0.0.1`; otherwise point DOCKER_HOST "
            "at a manager of the swarm",
        )
    if not swarm.get("ControlAvailable"):
        raise SwarmNotReady(
            "the Docker engine is a swarm worker, not a manager: stacks are deployed through a manager",
            seen=f"docker info: node {swarm.get('NodeID')}, ControlAvailable = false",
            hint="point DOCKER_HOST at a manager (`docker node ls` on one lists them), or promote this node "
            "there with `docker node promote NODE`",
        )


def _digest(ref: str) -> str:
    return ref.rpartition("@")[2] if "@" in ref else ""


def _api_error(what: str, exc: Exception) -> PipelineError:
    return PipelineError(what, seen=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


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


def _service_state(client: docker.DockerClient, full: str) -> dict[str, Any] | None:
    import docker.errors

    try:
        return dict(client.api.inspect_service(full))
    except docker.errors.NotFound:
        return None


def _tasks(client: docker.DockerClient, full: str) -> list[dict[str, Any]]:
    return [dict(t) for t in client.api.tasks(filters={"service": full})]


def _container_health(client: docker.DockerClient, task: Mapping[str, Any]) -> str:
    """The task's container health when the container is on this engine's node ("" elsewhere or unknown)."""
    import docker.errors

    cid = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
    if not cid:
        return ""
    try:
        attrs = client.api.inspect_container(cid)
    except docker.errors.NotFound:
        return ""
    return str(((attrs.get("State") or {}).get("Health") or {}).get("Status") or "")


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


def _stack_deploy(tools: Toolchain, file: Path, stack: str, *, registry_auth: bool, log: Log) -> None:
    argv = [tools.docker, "stack", "deploy", "--resolve-image", "never", "-c", str(file)]
    if registry_auth:
        argv.append("--with-registry-auth")
    r = _proc.run([*argv, stack], timeout=300, check=False, log=log, what="docker stack deploy")
    for line in (r.stdout + "\n" + r.stderr).splitlines():
        if line.strip() and "detach" not in line:
            log(f"  {line.strip()}")
    if not r.ok:
        raise PipelineError(
            f"docker stack deploy {stack} failed with exit code {r.returncode}",
            seen=_proc.tail(r.stderr or r.stdout, 20),
            hint=f"the stack file is {file}; `docker stack config -c {file}` checks it",
        )


def _prune_secrets(client: docker.DockerClient, stack: str, log: Log) -> list[str]:
    """Remove the stack's secrets and configs no service uses any more (older hashes)."""
    import docker.errors

    used: set[str] = set()
    for svc in client.api.services(filters={"label": f"{STACK_LABEL}={stack}"}):
        cs = svc["Spec"]["TaskTemplate"]["ContainerSpec"]
        used |= {s["SecretName"] for s in cs.get("Secrets") or []}
        used |= {c["ConfigName"] for c in cs.get("Configs") or []}
        prev = ((svc.get("PreviousSpec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        # A rollback goes back to the previous spec: keep what it needs.
        used |= {s["SecretName"] for s in prev.get("Secrets") or []}
        used |= {c["ConfigName"] for c in prev.get("Configs") or []}
    removed: list[str] = []
    for kind, lister, remover in (
        ("secret", client.api.secrets, client.api.remove_secret),
        ("config", client.api.configs, client.api.remove_config),
    ):
        for obj in lister(filters={"label": f"{STACK_LABEL}={stack}"}):
            name = obj["Spec"]["Name"]
            if name in used:
                continue
            try:
                remover(obj["ID"])
            except docker.errors.APIError as exc:  # in use by a task still shutting down: next deploy removes it
                log(f"swarm: {kind} {name} kept for now ({str(exc).splitlines()[0]})")
                continue
            removed.append(name)
            log(f"swarm: removed unused {kind} {name}")
    return sorted(removed)


def deadline_for(stack_file: Mapping[str, Any], services: Iterable[str], *, pull: float = 180.0) -> float:
    """Seconds a phase may take: image pulls, then per service its replicas one by one, each start + monitor."""
    longest = 0.0
    for name in services:
        svc = (stack_file.get("services") or {})[name]
        dep = svc.get("deploy") or {}
        monitor = _duration_ns((dep.get("update_config") or {}).get("monitor") or "0s", name, "monitor") / 1e9
        replicas = int(dep.get("replicas") or 1)
        longest = max(longest, replicas * 2 * (monitor + 10))
    return pull + longest


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


# --------------------------------------------------------------------------- the deploy stage's engine contract


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
