"""The project's own Compose hardening policy, on the merged, resolved config.

What is judged is what `docker compose -f base -f overlay config` produces, so
overlays, variables and `.env` count; findings are then mapped back to the
file and line where the service (or the offending key) is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import _proc, inputs
from .dockerfile_policy import SECRET_KEY, looks_secret
from .errors import InputError
from .findings import Finding, Rule, Severity
from .tools import Toolchain

TOOL = "pipelines-compose"
E, W = Severity.ERROR, Severity.WARNING


def _r(id_: str, sev: Severity, title: str, rationale: str, hint: str) -> Rule:
    return Rule(id_, sev, title, rationale, hint, TOOL)


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        _r(
            "PL-C001",
            E,
            "no privileged containers",
            "privileged gives the container every capability and device",
            "remove `privileged: true`; add only the capabilities the service proves it needs",
        ),
        _r(
            "PL-C002",
            E,
            "no Docker socket mounts",
            "the socket is root on the host for whoever can reach it",
            "remove the docker.sock volume",
        ),
        _r(
            "PL-C003",
            E,
            "no host namespaces",
            "network_mode/pid/ipc `host` removes the container's isolation",
            "use a user-defined network; drop pid/ipc: host",
        ),
        _r(
            "PL-C004",
            E,
            "drop all capabilities",
            "containers start with capabilities most services never use",
            "add `cap_drop: [ALL]` and `cap_add` only what is proven necessary",
        ),
        _r(
            "PL-C005",
            E,
            "set no-new-privileges",
            "setuid binaries could otherwise regain privileges",
            'add `security_opt: ["no-new-privileges:true"]`',
        ),
        _r(
            "PL-C006",
            E,
            "read-only root filesystem in production",
            "a writable root lets an attacker persist or tamper with the code",
            "add `read_only: true` and tmpfs mounts",
        ),
        _r(
            "PL-C007",
            E,
            "CPU, memory and PID limits in production",
            "one runaway container must not starve the host",
            "set `cpus`, `mem_limit` and `pids_limit` (or deploy.resources.limits)",
        ),
        _r(
            "PL-C008",
            E,
            "every long-running service needs a healthcheck",
            "without one, depends_on and deploys cannot wait for real readiness",
            "add a `healthcheck:` (exec form) or a HEALTHCHECK in the image",
        ),
        _r(
            "PL-C009",
            E,
            "depends_on must wait for health",
            "`service_started` only means the process exists",
            "use `condition: service_healthy` (or service_completed_successfully for one-shot jobs)",
        ),
        _r(
            "PL-C010",
            E,
            "publish ports on loopback",
            "a port without a host IP listens on every interface",
            'write "127.0.0.1:8000:8000" (or put a proxy in front)',
        ),
        _r(
            "PL-C011",
            E,
            "no secrets inline in environment",
            "environment values show up in `docker inspect`, logs and process listings",
            "use `secrets:` (files under /run/secrets) and *_FILE variables",
        ),
        _r(
            "PL-C012",
            E,
            "images must be tagged, never latest",
            "`latest` and untagged images change under you",
            "reference the tag or digest the build produced",
        ),
        _r(
            "PL-C013",
            E,
            "bounded restart policy in production",
            "`always`/`unless-stopped` restart a crash-looping service forever and hide the failure",
            'use `restart: "on-failure:5"` or deploy.restart_policy with max_attempts',
        ),
    )
}


@dataclass
class Rendered:
    files: list[Path]
    displays: list[str]
    config: dict[str, Any]
    nodes: list[yaml.Node | None]  # parsed source files, for line numbers


def _load_yaml_node(path: Path, display: str) -> yaml.Node | None:
    text = inputs.read_text(path, display)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError(f"{display}: not usable YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{display}:{mark.line + 1}" if mark else display
        raise InputError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
            hint="fix the YAML; docker compose rejects it too",
        ) from None
    inputs.check_yaml_expansion(node, display)
    return node


def render(
    tools: Toolchain, files: list[Path], displays: list[str], *, project_dir: Path, env_file: Path | None = None
) -> Rendered:
    nodes = [_load_yaml_node(f, d) for f, d in zip(files, displays, strict=True)]
    argv = [tools.docker, "compose", "--project-directory", str(project_dir)]
    for f in files:
        argv += ["-f", str(f)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    argv += ["config", "--format", "json"]
    r = _proc.run(argv, timeout=60, check=False, quiet=True, what="docker compose config")
    if r.returncode != 0:
        raise InputError(
            f"{' + '.join(displays)}: docker compose rejects this configuration",
            seen=_proc.tail(r.stderr or r.stdout, 10),
            hint="`docker compose config` shows the same",
        )
    try:
        config = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise InputError(f"{' + '.join(displays)}: docker compose config gave no JSON ({exc})") from None
    return Rendered(files, displays, config, nodes)


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return v if isinstance(v, yaml.Node) else None
    return None


def _key_line(node: yaml.Node | None, key: str) -> int:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if getattr(k, "value", None) == key:
                return int(k.start_mark.line) + 1
    return 0


def locate(r: Rendered, service: str, key: str | None) -> tuple[str, int]:
    """Where to point: the last file that sets services.SERVICE.KEY, else where SERVICE is first defined."""
    if key:
        for node, display in reversed(list(zip(r.nodes, r.displays, strict=True))):
            svc = _child(_child(node, "services"), service)
            line = _key_line(svc, key)
            if line:
                return display, line
    for node, display in zip(r.nodes, r.displays, strict=True):
        line = _key_line(_child(node, "services"), service)
        if line:
            return display, line
    return r.displays[0], 0


@dataclass(frozen=True)
class Context:
    profile: str  # "prod" adds read-only, limits and restart rules
    environment: str
    # service -> whether its image (built from a Dockerfile we know) has a HEALTHCHECK
    image_healthchecks: Mapping[str, bool]


def check(r: Rendered, ctx: Context) -> list[Finding]:
    services: dict[str, Any] = r.config.get("services") or {}
    one_shot = {
        dep
        for svc in services.values()
        for dep, d in (svc.get("depends_on") or {}).items()
        if (d or {}).get("condition") == "service_completed_successfully"
    }
    out: list[Finding] = []
    for name, svc in sorted(services.items()):
        for rule, key, message in _service_findings(name, svc, ctx, name in one_shot):
            file, line = locate(r, name, key)
            rr = RULES[rule]
            out.append(
                Finding(
                    TOOL,
                    rule,
                    rr.severity,
                    f"[{ctx.environment}] service {name}: {message}",
                    file,
                    line,
                    service=name,
                    hint=rr.hint,
                )
            )
    return out


def _limits(svc: Mapping[str, Any]) -> dict[str, Any]:
    return dict(((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})


def _service_findings(
    name: str, svc: Mapping[str, Any], ctx: Context, one_shot: bool
) -> Iterator[tuple[str, str | None, str]]:
    prod = ctx.profile == "prod"
    if svc.get("privileged"):
        yield "PL-C001", "privileged", "privileged: true"
    for v in svc.get("volumes") or []:
        src = str(v.get("source", "")) if isinstance(v, dict) else str(v)
        if src.rstrip("/").endswith("docker.sock"):
            yield "PL-C002", "volumes", f"mounts the Docker socket ({src})"
    for key in ("network_mode", "pid", "ipc"):
        if svc.get(key) == "host":
            yield "PL-C003", key, f"{key}: host"
    if "ALL" not in [str(c).upper() for c in svc.get("cap_drop") or []]:
        yield "PL-C004", "cap_drop", "does not drop ALL capabilities"
    opts = [str(o).replace("=", ":") for o in svc.get("security_opt") or []]
    if "no-new-privileges:true" not in opts and "no-new-privileges" not in opts:
        yield "PL-C005", "security_opt", "no-new-privileges is not set"
    if prod and not svc.get("read_only"):
        yield "PL-C006", "read_only", "root filesystem is writable"
    if prod:
        lim = _limits(svc)
        missing = [
            k
            for k, alt in (("cpus", "cpus"), ("mem_limit", "memory"), ("pids_limit", "pids"))
            if not svc.get(k) and not lim.get(alt)
        ]
        if missing:
            yield "PL-C007", None, f"no {', '.join(missing)}"
    hc = svc.get("healthcheck") or {}
    if hc.get("disable"):
        yield "PL-C008", "healthcheck", "healthcheck is disabled"
    elif not hc.get("test") and not ctx.image_healthchecks.get(name) and not one_shot:
        yield "PL-C008", "healthcheck", "no healthcheck (none in the file, none known in the image)"
    for dep, d in (svc.get("depends_on") or {}).items():
        cond = (d or {}).get("condition", "service_started")
        if cond == "service_started":
            yield "PL-C009", "depends_on", f"depends_on {dep} without a health condition"
    for port in svc.get("ports") or []:
        if isinstance(port, dict) and port.get("published") and port.get("host_ip") in (None, "", "0.0.0.0", "::"):  # noqa: S104 - detecting it, not binding
            yield "PL-C010", "ports", f"port {port.get('published')} is published on all interfaces"
    env = svc.get("environment") or {}
    for key, value in env.items():
        if value is None:
            continue
        named = SECRET_KEY.search(key) and not key.upper().endswith(("_FILE", "_PATH", "_DIR"))
        if (named and str(value)) or looks_secret(str(value)):
            yield "PL-C011", "environment", f"environment {key} holds a secret inline"
    image = str(svc.get("image") or "")
    if image and "@sha256:" not in image:
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            yield "PL-C012", "image", f"image {image} has no tag"
        elif last.endswith(":latest"):
            yield "PL-C012", "image", f"image {image} uses latest"
    if prod and not one_shot:
        restart = str(svc.get("restart") or "")
        policy = (svc.get("deploy") or {}).get("restart_policy") or {}
        bounded = restart.startswith("on-failure:") or bool(policy.get("max_attempts"))
        if not bounded:
            yield "PL-C013", "restart", f"restart policy {restart or 'unset'!s} is not bounded"
