"""The project's own Compose hardening policy, on the merged, resolved config.

What is judged is what `docker compose -f base -f overlay config` produces, so
overlays, variables and `.env` count; findings are then mapped back to the
file and line where the service (or the offending key) is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .. import datastores
from ..compose_model import Project, Resources, Service, thaw
from ..composefile import Rendered, locate, source_environment
from ..credentials import PUBLIC_KEY, auth_disabled, looks_secret, passed_by_variable, secret_name, url_credential
from ..findings import Finding, Rule, Severity

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
        _r(
            "PL-C014",
            E,
            "authentication must not be switched off",
            "`trust` authentication, empty passwords or disabled security let anyone who reaches the service in",
            "remove the setting and give the service a password through `secrets:` (*_FILE)",
        ),
        _r(
            "PL-C015",
            E,
            "services must not run as root",
            "`user: root` / `0` undoes a non-root image user and makes any escape a root escape",
            "drop `user:` (the image's user applies) or set a non-zero UID",
        ),
        _r(
            "PL-C016",
            E,
            "no dangerous added capabilities",
            "SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE and the like are most of root on the host",
            "remove the capability; if the service truly needs it, waive it with a reason",
        ),
        _r(
            "PL-C017",
            E,
            "keep seccomp, AppArmor and SELinux confinement",
            "`seccomp:unconfined`, `apparmor:unconfined` and `label=disable` remove the kernel-level sandbox",
            "remove the security_opt entry (or give a custom profile)",
        ),
        _r(
            "PL-C018",
            E,
            "no sensitive host paths mounted",
            "mounting /, /etc, /proc, /sys, /dev, /run or /var/run hands the container the host",
            "mount only the files the service needs, read-only",
        ),
        _r(
            "PL-C019",
            E,
            "no host devices",
            "a device node gives direct access to host hardware, outside the container's limits",
            "remove `devices:`; if the service needs the device, waive it with a reason",
        ),
        _r(
            "PL-C020",
            E,
            "datastores on an internal network only",
            "a database on a network that also carries a published service is one hop from the outside",
            "put the datastore on its own `internal: true` network shared only with its clients",
        ),
    )
}


# Rules about keeping a service up rather than keeping it contained: warnings outside a prod profile.
AVAILABILITY = {"PL-C006", "PL-C007", "PL-C008", "PL-C009", "PL-C013"}
DANGEROUS_CAPS = {
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "SYSLOG",
}
SENSITIVE_HOST_PATHS = ("/", "/etc", "/proc", "/sys", "/dev", "/run", "/var/run", "/boot", "/root", "/var/lib/docker")
WEAK_SECRETS = {
    "changeit",
    "changeme",
    "change_me",
    "password",
    "passw0rd",
    "secret",
    "admin",
    "root",
    "postgres",
    "example",
    "test",
    "123456",
    "12345678",
    "default",
}


@dataclass(frozen=True)
class Context:
    profile: str  # "prod" makes the availability rules errors
    environment: str
    # service -> whether its image (built from a Dockerfile we know) has a HEALTHCHECK
    image_healthchecks: Mapping[str, bool]


def check(r: Rendered, ctx: Context) -> list[Finding]:
    services = r.project.services
    one_shot = r.project.jobs()
    healthy = {
        name
        for name, svc in services.items()
        if (svc.healthcheck is not None and svc.healthcheck.test and not svc.healthcheck.disable)
        or ctx.image_healthchecks.get(name)
    }
    out: list[Finding] = []
    findings = [
        (name, *x)
        for name, svc in sorted(services.items())
        for x in _service_findings(name, svc, ctx, name in one_shot, healthy, source_environment(r, name))
    ]
    findings += [(name, *x) for name, x in _network_findings(r.project)]
    for name, rule, key, message in findings:
        file, line = locate(r, name, key)
        rr = RULES[rule]
        severity = rr.severity
        if rule in AVAILABILITY and ctx.profile != "prod":
            severity = Severity.WARNING
        out.append(
            Finding(
                TOOL,
                rule,
                severity,
                (f"[{ctx.environment}] " if ctx.environment else "") + f"service {name}: {message}",
                file,
                line,
                service=name,
                hint=rr.hint,
            )
        )
    return out


def _limits(svc: Service) -> Resources:
    return svc.limits


EDGE_PROXIES = {"traefik", "nginx", "nginx-proxy", "caddy", "haproxy", "envoy", "openresty", "httpd", "apache"}


def _is_edge_proxy(name: str, svc: Service) -> bool:
    image = svc.image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return image in EDGE_PROXIES or name in ("proxy", "reverse-proxy", "ingress", "edge", *EDGE_PROXIES)


def is_datastore(svc: Service) -> bool:
    return bool(datastores.kind_of(svc.image))


def _publishes(svc: Service) -> bool:
    return any(p.published for p in svc.ports)


def _network_findings(config: Project) -> Iterator[tuple[str, tuple[str, str | None, str]]]:
    services = config.services
    networks = config.networks

    def nets(svc: Service) -> set[str]:
        if svc.value("network_mode"):
            return set()
        return set(svc.networks) if svc.networks else {"default"}

    for name, svc in sorted(services.items()):
        if not is_datastore(svc):
            continue
        for net in sorted(nets(svc)):
            if net in networks and networks[net].internal:
                continue
            exposed = sorted(o for o, s in services.items() if o != name and net in nets(s) and _publishes(s))
            if exposed:
                yield (
                    name,
                    (
                        "PL-C020",
                        "networks",
                        f"datastore on network {net}, which also carries {', '.join(exposed)} with published ports",
                    ),
                )


def _service_findings(
    name: str,
    svc: Service,
    ctx: Context,
    one_shot: bool,
    healthy: set[str],
    source_env: Mapping[str, str | None],
) -> Iterator[tuple[str, str | None, str]]:
    if svc.value("privileged"):
        yield "PL-C001", "privileged", "privileged: true"
    for v in svc.volumes:
        src = v.source
        kind = v.type or "bind"
        if src.rstrip("/").endswith("docker.sock") or src.rstrip("/").endswith("podman.sock"):
            yield "PL-C002", "volumes", f"mounts the Docker socket ({src})"
        elif kind == "bind" and (src.rstrip("/") or "/") in SENSITIVE_HOST_PATHS:
            yield "PL-C018", "volumes", f"mounts the host path {src}"
    for key in ("network_mode", "pid", "ipc", "uts", "userns_mode"):
        if svc.value(key) == "host":
            yield "PL-C003", key, f"{key}: host"
    if "ALL" not in [c.upper() for c in svc.cap_drop]:
        yield "PL-C004", "cap_drop", "does not drop ALL capabilities"
    added = sorted({c.upper().removeprefix("CAP_") for c in svc.cap_add} & DANGEROUS_CAPS)
    if added:
        yield "PL-C016", "cap_add", f"adds {', '.join(added)}"
    opts = [o.replace("=", ":") for o in svc.security_opt]
    if "no-new-privileges:true" not in opts and "no-new-privileges" not in opts:
        yield "PL-C005", "security_opt", "no-new-privileges is not set"
    for o in opts:
        if o.replace(" ", "") in (
            "seccomp:unconfined",
            "apparmor:unconfined",
            "label:disable",
            "systempaths:unconfined",
        ):
            yield "PL-C017", "security_opt", f"security_opt {o}"
    user = (svc.user or "").split(":", 1)[0]
    if user in ("root", "0"):
        yield "PL-C015", "user", f"user: {svc.user}"
    devices = thaw(svc.value("devices"))
    if devices:
        listed = devices if isinstance(devices, list) else [devices]
        shown = ", ".join(str(d.get("source", d) if isinstance(d, dict) else d) for d in listed)
        yield "PL-C019", "devices", f"host devices: {shown}"
    # A dev profile relaxes these on purpose; without a profile they are warnings, in prod errors.
    relaxed = ctx.profile == "dev"
    if not svc.read_only and not relaxed:
        yield "PL-C006", "read_only", "root filesystem is writable"
    lim = _limits(svc)
    missing = [
        k
        for k, own, alt in (("cpus", svc.cpus, lim.cpus), ("mem_limit", svc.mem_limit, lim.memory),
                            ("pids_limit", svc.pids_limit, lim.pids))
        if not own and not alt
    ]  # fmt: skip
    if missing and not one_shot and not relaxed:
        yield "PL-C007", None, f"no {', '.join(missing)}"
    hc = svc.healthcheck
    if hc is not None and hc.disable:
        yield "PL-C008", "healthcheck", "healthcheck is disabled"
    elif not (hc is not None and hc.test) and name not in healthy and not one_shot:
        yield "PL-C008", "healthcheck", "no healthcheck (none in the file, none known in the image)"
    for dep, d in svc.depends_on.items():
        cond = d.condition
        # Waiting for health needs a healthcheck on the dependency; without one, PL-C008 there is the finding.
        if cond == "service_started" and dep in healthy:
            yield "PL-C009", "depends_on", f"depends_on {dep} without a health condition"
    for port in svc.ports:
        if port.published and port.host_ip in ("", "0.0.0.0", "::"):  # noqa: S104 - detecting it, not binding
            if _is_edge_proxy(name, svc) and port.target in (80, 443):
                continue  # a reverse proxy's HTTP(S) entry point is meant to face the network
            yield "PL-C010", "ports", f"port {port.published} is published on all interfaces"
    env = svc.environment
    for key, value in env.items():
        if value is None or str(value) == "":
            continue
        written = source_env.get(key, str(value))
        raw = "" if written is None else written
        # A pass-through or a `${VAR}` / `${VAR:?message}` reference: the secret is not in this file.
        from_variable = passed_by_variable(written)
        if auth_disabled(key, str(value)):
            yield "PL-C014", "environment", f"{key}={value} switches authentication off"
        elif secret_name(key) and from_variable and str(value).strip().lower() in WEAK_SECRETS:
            # Passed by variable, but the value it resolves to (from .env or a default) is a well-known one.
            yield "PL-C011", "environment", f"environment {key} resolves to the well-known password {value!r}"
        elif secret_name(key) and not from_variable:
            default = re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-", raw)
            how = "a default written in the file" if default else "a value written in the file"
            yield "PL-C011", "environment", f"environment {key} holds a secret inline ({how})"
        elif url_credential(str(value)) and not from_variable and url_credential(raw):
            yield "PL-C011", "environment", f"environment {key}: a URL with a password in it"
        elif looks_secret(str(value)) and not from_variable and not PUBLIC_KEY.search(key):
            yield "PL-C011", "environment", f"environment {key} holds a secret-looking value inline"
    image = svc.image
    # A service built here gets its image name from the build; the tag is the build's business.
    if image and "@sha256:" not in image and svc.build is None:
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            yield "PL-C012", "image", f"image {image} has no tag"
        elif last.endswith(":latest"):
            yield "PL-C012", "image", f"image {image} uses latest"
    if not one_shot and not relaxed:
        restart = svc.restart or ""
        policy = svc.deploy.restart_policy if svc.deploy else {}
        bounded = restart.startswith("on-failure:") or bool(policy.get("max_attempts"))
        # Unset or "no" never restarts: not unbounded.
        if restart in ("always", "unless-stopped") and not bounded:
            yield "PL-C013", "restart", f"restart: {restart} is not bounded"
        elif policy and not policy.get("max_attempts") and policy.get("condition", "any") in ("any", "on-failure"):
            yield "PL-C013", "deploy", "deploy.restart_policy has no max_attempts"
