"""Rendering: a merged Compose render plus an image map becomes a stack file, with a notice for every dropped key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ... import compose_model
from ...compose_model import Deploy, FileObject, FileRef, Healthcheck, Project, Service, thaw
from ...errors import InputError
from .policy import (
    _COPIED,
    _DIGEST_REF,
    _DROPPED_WHY,
    _MAPPED,
    _MAX_OBJECT_NAME,
    _STACK_NAME,
    _VOLUME_KEYS,
    _VOLUME_SUB,
    DEFAULTS,
    NOTICES_KEY,
)


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
    _ordered_jobs(services, jobs)  # a cycle is an input error, raised before anything is deployed
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
