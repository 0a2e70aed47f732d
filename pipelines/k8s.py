"""Kubernetes manifests from an environment's Compose stack, held to the restricted Pod Security Standard.

``pipelines render k8s --env ENV`` reads three things and nothing else: the
environment's merged Compose config (rendered by ``docker compose config``
exactly as the stack runs it), the build record (which image, by digest when
the build pushed it) and the images' own configuration (numeric user,
healthcheck, exposed ports). Every field it writes comes from one of those or
from a named default in :data:`DEFAULTS`; ``provenance.json`` says which, per
object and field path, and each object carries the summary in its
``pipelines.dev/source`` annotation.

Output is byte-identical for identical input (sorted keys, fixed order, no
timestamps, no temporary paths), validated offline against the Kubernetes
schemas of several versions, and checked against the restricted profile
(https://kubernetes.io/docs/concepts/security/pod-security-standards/) by
:func:`restricted_violations` before anything is written.

Mapping decisions:

* A service that another waits for with ``service_completed_successfully``
  is a one-shot job: it becomes a Job (run once per rollout), not an
  initContainer (which would run it once per replica of every dependant, in
  parallel). Kubernetes has no ordering between objects, so the dependants
  start alongside it and become ready once it has finished (their probes fail
  until then); the Job retries while its own dependencies come up.
* Every other service becomes a Deployment; a Service fronts it when Compose
  publishes a port or the image exposes one, under the Compose service name, so
  the names the services use for each other on Compose networks resolve the
  same way in the namespace.
* Compose secrets become Secret objects with no data (never real values) in
  ``secrets.yaml``, projected at ``/run/secrets/NAME`` as Compose mounts them;
  a pod stays un-started until its Secrets are filled (see README).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import _proc, compose_model, manifest
from .compose_model import Healthcheck, Mount, Project, Service
from .composespec import DOCKER_HEALTHCHECK, Default
from .config import Config
from .engine import Engine, ImageInfo
from .errors import InputError, PipelineError
from .manifest import BuildRecord, BuiltImage
from .tools import Toolchain

SOURCE_ANNOTATION = "pipelines.dev/source"
NOT_RENDERED_ANNOTATION = "pipelines.dev/not-rendered"
IMAGE_REF_ANNOTATION = "pipelines.dev/image-reference"
SUPPLY_ANNOTATION = "pipelines.dev/supply"
# Kubernetes versions whose schemas the output is validated against (kubernetes-validate ships them).
K8S_VERSIONS = ("1.30.0", "1.33.0")
MANIFESTS = "manifests.yaml"
SECRETS = "secrets.yaml"
PROVENANCE = "provenance.json"


# Every value not read from Compose, the build record or an image. README "Kubernetes manifests" lists them too.
DEFAULTS: dict[str, Default] = {
    "apiVersion": Default("v1, apps/v1, batch/v1", "the stable API of each kind"),
    "annotations": Default(
        [SOURCE_ANNOTATION, NOT_RENDERED_ANNOTATION, IMAGE_REF_ANNOTATION, SUPPLY_ANNOTATION],
        "where each object's fields came from, what was left out and why, which image reference, how to fill",
    ),
    "replicas": Default(1, "Compose runs one container per service"),
    "requests": Default("= limits", "requests equal limits: Guaranteed QoS, nothing overcommitted"),
    "limits.cpu": Default("1", "a service without `cpus`/deploy limits still gets a CPU limit"),
    "limits.memory": Default("256Mi", "a service without `mem_limit`/deploy limits still gets a memory limit"),
    "readOnlyRootFilesystem": Default(True, "restricted hardening: the root filesystem is never writable"),
    "tmp.emptyDir": Default("16Mi", "with a read-only root, /tmp is an in-memory emptyDir when Compose names none"),
    "pvc.storage": Default("1Gi", "size of the claim for each named Compose volume"),
    "pvc.accessModes": Default(["ReadWriteOnce"], "one writer, as a named Docker volume on one host"),
    "strategy.Recreate": Default("Recreate", "a Deployment that mounts a ReadWriteOnce claim cannot surge"),
    "job.backoffLimit": Default(6, "retries while the job's dependencies come up (no ordering in Kubernetes)"),
    "service.type": Default("ClusterIP", "reachable inside the cluster only; exposure is the cluster's decision"),
    "automountServiceAccountToken": Default(False, "no service talks to the Kubernetes API"),
    "enableServiceLinks": Default(False, "no Docker-link style variables beyond the Compose environment"),
    "seccompProfile": Default("RuntimeDefault", "restricted profile"),
    "capabilities.drop": Default(["ALL"], "restricted profile"),
    "allowPrivilegeEscalation": Default(False, "restricted profile"),
    "runAsNonRoot": Default(True, "restricted profile"),
    "secret.defaultMode": Default(0o440, "secret files readable by the pod's user and group only"),
    "namespace.pod-security": Default("restricted", "the namespace enforces the restricted profile"),
    "namespace.name": Default("NAME-ENV", "Compose project name and environment"),
    "imagePullPolicy": Default("IfNotPresent", "a digest or commit tag names one image: no re-pull needed"),
    "docker.healthcheck": DOCKER_HEALTHCHECK,
    "configmap.max_bytes": Default(1024 * 1024, "a bind mount becomes a ConfigMap, which Kubernetes caps at 1 MiB"),
    "labels": Default(
        ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"],
        "Kubernetes' recommended labels: service, Compose project, pipelines",
    ),
}

# Compose keys that have no place in a pod spec: reported per object, never silently dropped.
_NOT_RENDERED = {
    "pids_limit": "no per-container PID limit in Kubernetes (the node's podPidsLimit applies)",
    "restart": "a Deployment always restarts; CrashLoopBackOff bounds it",
    "logging": "the cluster's log collection applies",
    "networks": "Compose networks are not rendered: add NetworkPolicies for the cluster's network",
    "depends_on": "no start ordering in Kubernetes; readiness probes gate traffic",
    "stop_grace_period": "not rendered",
}
# Compose keys that cannot be held to the restricted profile: an error, never an omission.
_REFUSED = {
    "privileged": "privileged containers",
    "devices": "host devices",
    "pid": "the host PID namespace",
    "ipc": "the host IPC namespace",
    "network_mode": "another network namespace",
    "userns_mode": "a user namespace mode",
    "sysctls": "sysctls",
    "cgroup_parent": "a cgroup parent",
}
_ONE_SHOT = "one-shot: others wait for it with service_completed_successfully"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class RenderError(InputError):
    """The Compose config or an image asks for something the manifests cannot hold."""


@dataclass
class Obj:
    """One Kubernetes object and where each of its fields came from."""

    body: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # field path prefix -> source
    file: str = MANIFESTS

    @property
    def key(self) -> str:
        return f"{self.body['kind']}/{self.body['metadata']['name']}"

    def src(self, path: str, source: str) -> None:
        self.sources[path] = source


@dataclass(frozen=True)
class Rendered:
    env: str
    objects: tuple[Obj, ...]
    files: tuple[Path, ...]
    versions: tuple[str, ...]
    seconds: float


# --------------------------------------------------------------------------- helpers


def _fail(service: str, key: str, problem: str, hint: str) -> InputError:
    return compose_model.service_error(RenderError, service, key, problem, hint)


def _dns(name: str, what: str) -> str:
    out = name.lower().replace("_", "-")
    if not _DNS_LABEL.match(out) or len(out) > 63:
        raise RenderError(
            f"{what} {name!r} does not make a Kubernetes name ({out!r})",
            hint="use lowercase letters, digits and '-' (at most 63), starting and ending with a letter or digit",
        )
    return out


def _duration_ns(value: object, service: str, key: str) -> int:
    """A Compose duration ("1m30s", "500ms") in nanoseconds."""
    return compose_model.duration(value, service, key, RenderError)


def _seconds(ns: int) -> int:
    """Kubernetes probe fields are whole seconds, at least 1: round up so nothing gets stricter."""
    return max(1, math.ceil(ns / 10**9))


def _bytes(value: object, service: str, key: str) -> int:
    return compose_model.size(value, service, key, RenderError)


def _quantity(n: int) -> str:
    for unit, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _cpu(value: object, service: str, key: str) -> str:
    milli = round(compose_model.cpus(value, service, key, RenderError) * 1000)
    if milli <= 0:
        raise _fail(service, key, f"{value!r} is no CPU at all", "give a positive number of CPUs")
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _user(info: ImageInfo, override: object, service: str, image: str) -> tuple[int, int, str]:
    """(uid, gid, source) from Compose `user` or the image's USER: numeric, not root."""
    if override not in (None, ""):
        text, source, key = str(override), f"compose services.{service}.user", "user"
    else:
        text, source, key = info.user, f"image {image} config User", "image"
    uid, _, gid = text.partition(":")
    hint = "run as a numeric non-root user with its group: USER 65532:65532 in the Dockerfile (or Compose user:)"
    if not text:
        raise _fail(service, key, f"image {image} sets no USER: it would run as root", hint)
    if uid.isdigit() and not gid:
        raise _fail(service, key, f"user {text!r} names no group (runAsGroup needs a numeric GID)", hint)
    if not uid.isdigit() or not gid.isdigit():
        raise _fail(service, key, f"user {text!r} is not numeric UID:GID (runAsUser needs numbers)", hint)
    if int(uid) == 0:
        raise _fail(service, key, f"user {text!r} is root; the restricted profile forbids UID 0", hint)
    return int(uid), int(gid), source


def _probe_command(test: Sequence[str], service: str, key: str) -> list[str] | None:
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD" and len(test) > 1:
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        raise _fail(
            service,
            key,
            "a shell-form healthcheck (CMD-SHELL) needs a shell the hardened images do not have",
            'write it in exec form: test: ["CMD", "/path/to/program", "arg"]',
        )
    raise _fail(service, key, f"healthcheck test {list(test)!r} is not understood", 'use ["CMD", "program", ...]')


# --------------------------------------------------------------------------- inputs


def compose_config(
    cfg: Config, env: str, record: BuildRecord, tools: Toolchain, extra_files: Sequence[Path] = ()
) -> Project:
    """The environment's merged Compose config, rendered as the pipeline's stacks render it."""
    files = [*cfg.compose.files, *cfg.env(env).compose, *extra_files]
    for f in extra_files:
        if not f.is_file():
            raise InputError(f"--compose-file {f}: no such file", hint="name an existing Compose overlay")
    if not files:
        raise InputError(f"{cfg.file}: [compose].files is empty: there is nothing to render")
    argv: list[str] = [tools.docker, "compose", "--project-directory", str(files[0].parent)]
    for f in files:
        argv += ["-f", str(f)]
    environ = {
        "REGISTRY": cfg.registry.address,
        "NAMESPACE": cfg.registry.namespace,
        "IMAGE_TAG": record.image_tag(),
        # Secret files are never read here: only their names reach the manifests.
        "SECRETS_DIR": "/nonexistent/pipelines-render",
    }
    r = _proc.run([*argv, "config", "--format", "json"], timeout=120, env=environ, quiet=True, what="compose config")
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise PipelineError("docker compose config printed no JSON", seen=str(exc)) from None
    return compose_model.parse(data, source=f"the Compose config of {env!r}")


# --------------------------------------------------------------------------- rendering


@dataclass
class _Ctx:
    cfg: Config
    env: str
    record: BuildRecord
    compose: Project
    infos: dict[str, ImageInfo]  # compose image -> its image facts
    built: dict[str, BuiltImage]  # compose image -> the build record's image
    project: str = ""
    namespace: str = ""

    def labels(self, service: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/managed-by": "pipelines",
            "app.kubernetes.io/name": service,
            "app.kubernetes.io/part-of": self.project,
        }


def _meta(ctx: _Ctx, obj: Obj, name: str, service: str | None) -> None:
    md: dict[str, Any] = {"name": name, "namespace": ctx.namespace}
    md["labels"] = (
        ctx.labels(service)
        if service
        else {"app.kubernetes.io/managed-by": "pipelines", "app.kubernetes.io/part-of": ctx.project}
    )
    obj.body["metadata"] = md
    obj.src("metadata.namespace", "default namespace.name (compose name + env)")
    obj.src("metadata.labels", "default labels (compose service and project names)")


def _check_refused(name: str, spec: Service) -> None:
    for key, what in _REFUSED.items():
        value = compose_model.thaw(spec.value(key))
        if not compose_model.is_set(value):
            continue
        if key == "network_mode" and value in ("bridge", "default"):
            continue
        raise _fail(name, key, f"asks for {what} ({value!r}), which the restricted profile forbids", f"remove `{key}`")
    allowed = {"NET_BIND_SERVICE"}
    for cap in spec.cap_add:
        bare = str(cap).upper().removeprefix("CAP_")
        if bare not in allowed:
            raise _fail(
                name,
                "cap_add",
                f"adds capability {cap}; the restricted profile allows adding only NET_BIND_SERVICE",
                "drop the cap_add entry (bind ports above 1024 instead of needing privileges)",
            )
    for opt in spec.security_opt:
        text = str(opt).replace("=", ":")
        if text.startswith(("seccomp:unconfined", "apparmor:unconfined", "label:disable")):
            raise _fail(name, "security_opt", f"{opt!r} turns a confinement off", f"remove {opt!r}")
    if spec.user in ("root", "0", "0:0"):
        raise _fail(name, "user", "runs as root", "run as a numeric non-root user")


def _probes(ctx: _Ctx, name: str, spec: Service, info: ImageInfo, image: str) -> tuple[dict[str, Any], str]:
    """liveness/readiness/startup probes from Compose's healthcheck (which wins) or the image's."""
    hc: Healthcheck | None = spec.healthcheck
    dflt = DEFAULTS["docker.healthcheck"].value
    image_src = f"image {image} config Healthcheck"
    # Docker merges a container's healthcheck with the image's field by field: what Compose leaves
    # unset (no test, a zero duration) comes from the image, then from Docker's own defaults.
    test: list[str] = list(info.healthcheck)
    interval, timeout = info.health_interval_ns, info.health_timeout_ns
    start, retries = info.health_start_period_ns, info.health_retries
    source, key = image_src, "image"
    if hc is not None:
        if hc.disable:
            return {}, f"compose services.{name}.healthcheck.disable"
        source = f"compose services.{name}.healthcheck (unset fields: {image_src})"
        if hc.test:
            test = ["CMD-SHELL", hc.test] if isinstance(hc.test, str) else list(hc.test)
            key = "healthcheck.test"
        if hc.interval:
            interval = _duration_ns(hc.interval, name, "healthcheck.interval")
        if hc.timeout:
            timeout = _duration_ns(hc.timeout, name, "healthcheck.timeout")
        if hc.start_period:
            start = _duration_ns(hc.start_period, name, "healthcheck.start_period")
        if hc.retries:
            retries = hc.retries
    command = _probe_command(test, name, key)
    if command is None:
        return {}, source
    interval = interval or _duration_ns(dflt["interval"], name, key)
    timeout = timeout or _duration_ns(dflt["timeout"], name, key)
    retries = retries or int(dflt["retries"])
    period_s = _seconds(interval)
    base = {"exec": {"command": command}, "periodSeconds": period_s, "timeoutSeconds": _seconds(timeout)}
    probes = {
        "livenessProbe": {**base, "failureThreshold": retries},
        "readinessProbe": {**base, "failureThreshold": retries},
        # Docker ignores failures during start_period: the startup probe gives the same grace.
        "startupProbe": {**base, "failureThreshold": max(1, math.ceil(_seconds(start) / period_s)) + retries},
    }
    return probes, source + "; default docker.healthcheck"


def _resources(name: str, spec: Service) -> tuple[dict[str, Any], dict[str, str]]:
    limits_src, reserv_src = spec.limits, spec.reservations
    limits: dict[str, str] = {}
    sources: dict[str, str] = {}
    if limits_src.cpus not in (None, "", 0):
        limits["cpu"] = _cpu(limits_src.cpus, name, "deploy.resources.limits.cpus")
        sources["limits.cpu"] = f"compose services.{name}.deploy.resources.limits.cpus"
    elif spec.cpus not in (None, "", 0):
        limits["cpu"] = _cpu(spec.cpus, name, "cpus")
        sources["limits.cpu"] = f"compose services.{name}.cpus"
    else:
        limits["cpu"] = str(DEFAULTS["limits.cpu"].value)
        sources["limits.cpu"] = "default limits.cpu"
    if limits_src.memory not in (None, "", 0):
        limits["memory"] = _quantity(_bytes(limits_src.memory, name, "deploy.resources.limits.memory"))
        sources["limits.memory"] = f"compose services.{name}.deploy.resources.limits.memory"
    elif spec.mem_limit not in (None, "", 0):
        limits["memory"] = _quantity(_bytes(spec.mem_limit, name, "mem_limit"))
        sources["limits.memory"] = f"compose services.{name}.mem_limit"
    else:
        limits["memory"] = str(DEFAULTS["limits.memory"].value)
        sources["limits.memory"] = "default limits.memory"
    requests = dict(limits)
    sources["requests"] = "default requests (= limits)"
    if reserv_src.cpus not in (None, "", 0):
        requests["cpu"] = _cpu(reserv_src.cpus, name, "deploy.resources.reservations.cpus")
        sources["requests.cpu"] = f"compose services.{name}.deploy.resources.reservations.cpus"
    if reserv_src.memory not in (None, "", 0):
        requests["memory"] = _quantity(_bytes(reserv_src.memory, name, "deploy.resources.reservations.memory"))
        sources["requests.memory"] = f"compose services.{name}.deploy.resources.reservations.memory"
    return {"limits": limits, "requests": requests}, sources


def _tmpfs_entries(name: str, spec: Service) -> list[tuple[str, int | None, str]]:
    """(path, size in bytes or None, source) for every tmpfs of the service."""
    out: list[tuple[str, int | None, str]] = []
    for i, entry in enumerate(spec.tmpfs):
        path, _, opts = str(entry).partition(":")
        size = None
        for opt in opts.split(","):
            if opt.startswith("size="):
                size = _bytes(opt.removeprefix("size="), name, f"tmpfs[{i}]")
        out.append((path, size, f"compose services.{name}.tmpfs[{i}]"))
    for i, v in enumerate(spec.volumes):
        if v.type == "tmpfs":
            given = v.tmpfs.get("size")
            out.append(
                (
                    v.target,
                    _bytes(given, name, f"volumes[{i}]") if given else None,
                    f"compose services.{name}.volumes[{i}]",
                )
            )
    return out


def _bind_configmap(ctx: _Ctx, name: str, index: int, vol: Mount, cm_name: str) -> tuple[Obj, list[Any]]:
    """A read-only bind mount as a ConfigMap of its files (what Kubernetes has for shipped files)."""
    key = f"volumes[{index}]"
    if not vol.read_only:
        raise _fail(
            name,
            key,
            f"bind mount {vol.source} -> {vol.target} is writable; a pod has no host directory",
            "mount it read-only (:ro) to ship its files as a ConfigMap, or use a named volume",
        )
    src = Path(vol.source)
    # Bytecode caches are the interpreter's, rewritten by whatever ran last: shipping them would make
    # the output depend on that rather than on the mounted sources.
    files = (
        sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(src).parts)
        if src.is_dir()
        else [src]
        if src.is_file()
        else []
    )
    if not files:
        raise _fail(name, key, f"bind mount source {src} has no files", "point it at a file or a directory of files")
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items: list[dict[str, str]] = []
    total = 0
    import base64

    for f in files:
        rel = f.relative_to(src).as_posix() if src.is_dir() else f.name
        ckey = rel.replace("/", "__")
        if not _CONFIGMAP_KEY.match(ckey) or ckey in data or ckey in binary:
            raise _fail(name, key, f"file {rel!r} makes no unique ConfigMap key", "rename it: letters, digits, -._")
        try:
            content = f.read_bytes()
        except OSError as exc:
            raise _fail(name, key, f"{f} cannot be read ({exc.strerror})", "make the mounted files readable") from None
        total += len(content)
        try:
            data[ckey] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[ckey] = base64.b64encode(content).decode("ascii")
        items.append({"key": ckey, "path": rel})
    cap = int(DEFAULTS["configmap.max_bytes"].value)
    if total > cap:
        raise _fail(
            name, key, f"bind mount {src} holds {total} bytes; a ConfigMap holds at most {cap}", "use a named volume"
        )
    obj = Obj({"apiVersion": "v1", "kind": "ConfigMap"})
    _meta(ctx, obj, cm_name, name)
    obj.src("metadata.name", f"compose services.{name}.{key} (service name + target)")
    obj.src("kind", f"compose services.{name}.{key} (a read-only bind mount ships its files)")
    obj.body["immutable"] = True
    obj.src("immutable", f"compose services.{name}.{key}.read_only")
    if data:
        obj.body["data"] = data
    if binary:
        obj.body["binaryData"] = binary
    rel_root = src.relative_to(ctx.cfg.root).as_posix() if src.is_relative_to(ctx.cfg.root) else str(src)
    obj.src("data", f"compose services.{name}.{key} (files of {rel_root})")
    obj.src("binaryData", f"compose services.{name}.{key} (files of {rel_root})")
    _annotate(obj, {})
    return obj, items


def _workload(ctx: _Ctx, name: str, spec: Service, is_job: bool, out: list[Obj]) -> None:
    kname = _dns(name, "Compose service")
    image = spec.image
    if not image:
        raise _fail(name, "image", "has no image", "every service needs an image the build produced")
    built, info = ctx.built[image], ctx.infos[image]
    _check_refused(name, spec)
    uid, gid, user_src = _user(info, spec.user, name, image)

    obj = Obj({"apiVersion": "batch/v1" if is_job else "apps/v1", "kind": "Job" if is_job else "Deployment"})
    _meta(ctx, obj, kname, name)
    obj.src("metadata.name", f"compose services.{name}")
    obj.src(
        "kind",
        f"compose services.{name} ({_ONE_SHOT if is_job else 'long-running service'})",
    )
    obj.src("apiVersion", "default apiVersion")
    pod = "spec.template.spec"
    c = f"{pod}.containers[{kname}]"
    annotations: dict[str, str] = {}

    container: dict[str, Any] = {"name": kname, "image": built.ref}
    obj.src(f"{c}.name", f"compose services.{name}")
    if built.pushed:
        obj.src(f"{c}.image", f"build record images.{built.name}.ref (pushed: repository@digest)")
        annotations[IMAGE_REF_ANNOTATION] = f"{built.ref} (pushed by the build: by digest)"
    else:
        obj.src(f"{c}.image", f"build record images.{built.name}.ref (not pushed: the commit tag)")
        annotations[IMAGE_REF_ANNOTATION] = (
            f"{built.ref} (environment {ctx.env} is not pushed: the commit tag, not a digest; "
            "push it to a registry the cluster can reach before applying)"
        )
    container["imagePullPolicy"] = DEFAULTS["imagePullPolicy"].value
    obj.src(f"{c}.imagePullPolicy", "default imagePullPolicy")
    if spec.entrypoint:
        container["command"] = list(spec.entrypoint)
        obj.src(f"{c}.command", f"compose services.{name}.entrypoint")
    if spec.command:
        container["args"] = list(spec.command)
        obj.src(f"{c}.args", f"compose services.{name}.command")
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
        obj.src(f"{c}.workingDir", f"compose services.{name}.working_dir")

    # Secrets: projected at the paths Compose mounts them.
    secret_items: list[dict[str, Any]] = []
    mounted: set[str] = set()
    for i, ref in enumerate(spec.secrets):
        source = ref.source
        target = ref.target or source
        if not target.startswith("/"):
            target = f"/run/secrets/{target}"
        if not target.startswith("/run/secrets/") or "/" in target.removeprefix("/run/secrets/"):
            raise _fail(
                name, f"secrets[{i}].target", f"{target} is not directly under /run/secrets", "use the default target"
            )
        if source not in ctx.compose.secrets:
            raise _fail(
                name,
                f"secrets[{i}]",
                f"names secret {source!r}, which the top level does not declare",
                "declare it under secrets:",
            )
        rel = target.removeprefix("/run/secrets/")
        mounted.add(target)
        secret_items.append({"secret": {"name": _dns(source, "secret"), "items": [{"key": source, "path": rel}]}})

    env: list[dict[str, str]] = []
    for k, v in sorted(spec.environment.items()):
        if v is None:
            raise _fail(
                name,
                f"environment.{k}",
                "has no value (set in neither the file nor the environment)",
                f"give {k} a value",
            )
        if k.endswith("_FILE") and str(v).startswith("/run/secrets/") and str(v) not in mounted:
            raise _fail(
                name,
                f"environment.{k}",
                f"points at {v}, but the service mounts no such secret",
                "list the secret under the service's secrets:",
            )
        env.append({"name": str(k), "value": str(v)})
    if env:
        container["env"] = env
        obj.src(f"{c}.env", f"compose services.{name}.environment")

    ports: list[tuple[int, str, str]] = []  # (port, protocol, source)
    for i, p in enumerate(spec.ports):
        ports.append((p.target, (p.protocol or "tcp").upper(), f"compose services.{name}.ports[{i}].target"))
    exposed = (info.raw.get("Config") or {}).get("ExposedPorts") or {}
    for key in sorted(exposed):
        port, _, proto = str(key).partition("/")
        if (int(port), (proto or "tcp").upper()) not in {(p, q) for p, q, _ in ports}:
            ports.append((int(port), (proto or "tcp").upper(), f"image {image} config ExposedPorts {key}"))
    ports.sort()
    if ports and not is_job:
        container["ports"] = [{"containerPort": p, "name": f"{q.lower()}-{p}", "protocol": q} for p, q, _ in ports]
        obj.src(f"{c}.ports", "; ".join(s for _, _, s in ports))

    resources, rsrc = _resources(name, spec)
    container["resources"] = resources
    for k, s in rsrc.items():
        obj.src(f"{c}.resources.{k}", s)

    csc: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    adds = sorted({x.upper().removeprefix("CAP_") for x in spec.cap_add})
    if adds:
        csc["capabilities"]["add"] = adds
        obj.src(f"{c}.securityContext.capabilities.add", f"compose services.{name}.cap_add")
    nnp = any("no-new-privileges" in o for o in spec.security_opt)
    obj.src(
        f"{c}.securityContext.allowPrivilegeEscalation",
        f"compose services.{name}.security_opt no-new-privileges" if nnp else "default allowPrivilegeEscalation",
    )
    dropped = "ALL" in [x.upper() for x in spec.cap_drop]
    obj.src(
        f"{c}.securityContext.capabilities.drop",
        f"compose services.{name}.cap_drop" if dropped else "default capabilities.drop",
    )
    obj.src(
        f"{c}.securityContext.readOnlyRootFilesystem",
        f"compose services.{name}.read_only" if spec.read_only else "default readOnlyRootFilesystem",
    )
    obj.src(f"{c}.securityContext.runAsNonRoot", "default runAsNonRoot")
    obj.src(f"{c}.securityContext.runAsUser", user_src)
    obj.src(f"{c}.securityContext.runAsGroup", user_src)
    obj.src(f"{c}.securityContext.seccompProfile", "default seccompProfile")
    container["securityContext"] = csc

    if not is_job:
        probes, psrc = _probes(ctx, name, spec, info, image)
        container.update(probes)
        for k in probes:
            obj.src(f"{c}.{k}", psrc)

    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    uses_claim = False
    tmpfs = _tmpfs_entries(name, spec)
    if not any(p == "/tmp" for p, _, _ in tmpfs):  # noqa: S108 - a mount path, not a temp file of ours
        tmpfs.append(("/tmp", _bytes(DEFAULTS["tmp.emptyDir"].value, name, "tmpfs"), "default tmp.emptyDir"))  # noqa: S108
    for j, (path, size, src) in enumerate(sorted(tmpfs)):
        vname = f"tmpfs-{j}"
        ed: dict[str, Any] = {"medium": "Memory"}
        if size:
            ed["sizeLimit"] = _quantity(size)
        volumes.append({"name": vname, "emptyDir": ed})
        mounts.append({"name": vname, "mountPath": path})
        obj.src(f"{pod}.volumes[{vname}]", src)
        obj.src(f"{c}.volumeMounts[{vname}]", src)
    for i, mount in enumerate(spec.volumes):
        vtype, target = mount.type, mount.target
        src = f"compose services.{name}.volumes[{i}]"
        if vtype == "tmpfs":
            continue
        if vtype == "volume" and mount.source:
            claim = _dns(mount.source, "Compose volume")
            vname = f"volume-{claim}"
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": claim}})
            uses_claim = True
        elif vtype == "volume":
            vname = f"anon-{i}"
            volumes.append({"name": vname, "emptyDir": {}})
        elif vtype == "bind":
            cm_name = _dns(
                f"{kname}-{target.strip('/').replace('/', '-').replace('_', '-')}", "ConfigMap for a bind mount"
            )
            cm, items = _bind_configmap(ctx, name, i, mount, cm_name)
            out.append(cm)
            vname = f"bind-{i}"
            volumes.append({"name": vname, "configMap": {"name": cm_name, "items": items}})
        else:
            raise _fail(
                name,
                f"volumes[{i}]",
                f"volume type {vtype!r} has no Kubernetes equivalent here",
                "use a named volume, tmpfs or a read-only bind mount",
            )
        m: dict[str, Any] = {"name": vname, "mountPath": target}
        if mount.read_only or vtype == "bind":
            m["readOnly"] = True
        mounts.append(m)
        obj.src(f"{pod}.volumes[{vname}]", src)
        obj.src(f"{c}.volumeMounts[{vname}]", src)
    if secret_items:
        volumes.append(
            {
                "name": "secrets",
                "projected": {"defaultMode": DEFAULTS["secret.defaultMode"].value, "sources": secret_items},
            }
        )
        mounts.append({"name": "secrets", "mountPath": "/run/secrets", "readOnly": True})
        obj.src(f"{pod}.volumes[secrets]", f"compose services.{name}.secrets; default secret.defaultMode")
        obj.src(f"{c}.volumeMounts[secrets]", f"compose services.{name}.secrets (Compose mounts them at /run/secrets)")
    container["volumeMounts"] = sorted(mounts, key=lambda m: (m["mountPath"], m["name"]))

    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "securityContext": {
            "fsGroup": gid,
            "runAsGroup": gid,
            "runAsNonRoot": True,
            "runAsUser": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": sorted(volumes, key=lambda v: v["name"]),
    }
    obj.src(f"{pod}.automountServiceAccountToken", "default automountServiceAccountToken")
    obj.src(f"{pod}.enableServiceLinks", "default enableServiceLinks")
    obj.src(f"{pod}.securityContext.runAsNonRoot", "default runAsNonRoot")
    obj.src(f"{pod}.securityContext.seccompProfile", "default seccompProfile")
    for k in ("runAsUser", "runAsGroup"):
        obj.src(f"{pod}.securityContext.{k}", user_src)
    obj.src(f"{pod}.securityContext.fsGroup", user_src + " (group owns mounted volumes and secrets)")
    template: dict[str, Any] = {"metadata": {"labels": ctx.labels(name)}, "spec": pod_spec}
    obj.src("spec.template.metadata.labels", "default labels (compose service and project names)")

    restart = spec.restart or "no"
    if is_job:
        pod_spec["restartPolicy"] = "OnFailure" if restart.startswith("on-failure") else "Never"
        obj.src(f"{pod}.restartPolicy", f"compose services.{name}.restart ({restart})")
        obj.body["spec"] = {"backoffLimit": DEFAULTS["job.backoffLimit"].value, "template": template}
        obj.src("spec.backoffLimit", "default job.backoffLimit")
    else:
        selector = {"matchLabels": {k: v for k, v in ctx.labels(name).items() if k != "app.kubernetes.io/managed-by"}}
        dspec: dict[str, Any] = {"replicas": DEFAULTS["replicas"].value, "selector": selector, "template": template}
        obj.src("spec.replicas", "default replicas")
        obj.src("spec.selector", "default labels (compose service and project names)")
        if uses_claim:
            dspec["strategy"] = {"type": "Recreate"}
            obj.src("spec.strategy", "default strategy.Recreate (mounts a ReadWriteOnce claim)")
        obj.body["spec"] = dspec

    skipped = sorted(
        f"{k}: {why}"
        for k, why in _NOT_RENDERED.items()
        if k in spec.given and not (is_job and k == "restart")  # a Job's restartPolicy
    )
    if skipped:
        annotations[NOT_RENDERED_ANNOTATION] = "; ".join(skipped)
    _annotate(obj, annotations)
    out.append(obj)

    if ports and not is_job:
        svc = Obj({"apiVersion": "v1", "kind": "Service"})
        _meta(ctx, svc, kname, name)
        svc.src("metadata.name", f"compose services.{name} (the name other services use on Compose networks)")
        svc.src("apiVersion", "default apiVersion")
        svc.src("kind", f"compose services.{name} (ports published or exposed by the image)")
        svc.body["spec"] = {
            "type": DEFAULTS["service.type"].value,
            "selector": selector["matchLabels"],
            "ports": [{"name": f"{q.lower()}-{p}", "port": p, "protocol": q, "targetPort": p} for p, q, _ in ports],
        }
        svc.src("spec.type", "default service.type")
        svc.src("spec.selector", "default labels (compose service and project names)")
        svc.src("spec.ports", "; ".join(s for _, _, s in ports))
        _annotate(svc, {})
        out.append(svc)


def _annotate(obj: Obj, extra: Mapping[str, str]) -> None:
    obj.src("metadata.annotations", "default annotations")
    if "kind" not in obj.sources:
        raise RuntimeError(f"{obj.key}: no source recorded for its kind")  # every builder names one
    obj.src("apiVersion", obj.sources.get("apiVersion", "default apiVersion"))
    sources = sorted({s for p, s in obj.sources.items() if p != "metadata.annotations"})
    obj.body["metadata"]["annotations"] = {SOURCE_ANNOTATION: "; ".join(sources), **extra}


def render(cfg: Config, env: str, record: BuildRecord, compose: Project, infos: Mapping[str, ImageInfo]) -> list[Obj]:
    """Every object of the environment, in a fixed order; raises RenderError on what cannot be held."""
    services = compose.services
    if not services:
        raise RenderError(f"the Compose config of {env!r} has no services: nothing to render")
    by_tag = {t: img for img in record.services for t in img.tags}
    built: dict[str, BuiltImage] = {}
    for name, spec in sorted(services.items()):
        image = spec.image
        if image not in by_tag:
            raise _fail(
                name,
                "image",
                f"{image or '(none)'} is not an image the recorded build of {env!r} produced",
                f"run `pipelines build --env {env}`; "
                "Compose must name ${REGISTRY}/${NAMESPACE}/NAME:${IMAGE_TAG}",
            )
        built[image] = by_tag[image]
    project = _dns(compose.name or cfg.project.name, "Compose project name")
    ctx = _Ctx(cfg, env, record, compose, dict(infos), built, project, _dns(f"{project}-{env}", "namespace"))
    out: list[Obj] = []

    ns = Obj({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.namespace}})
    level = DEFAULTS["namespace.pod-security"].value
    ns.body["metadata"]["labels"] = {
        "app.kubernetes.io/managed-by": "pipelines",
        "app.kubernetes.io/part-of": project,
        "pod-security.kubernetes.io/audit": level,
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": level,
    }
    ns.src("metadata.name", "default namespace.name (compose name + env)")
    ns.src("kind", "default namespace.pod-security (the namespace enforces the profile)")
    ns.src("metadata.labels", "default namespace.pod-security; default labels")
    _annotate(ns, {})
    out.append(ns)

    for sname in sorted(compose.secrets):
        sec = Obj({"apiVersion": "v1", "kind": "Secret"}, file=SECRETS)
        _meta(ctx, sec, _dns(sname, "Compose secret"), None)
        sec.src("metadata.name", f"compose secrets.{sname}")
        sec.src("kind", f"compose secrets.{sname}")
        sec.body["type"] = "Opaque"
        sec.src("type", f"compose secrets.{sname} (a file's content)")
        _annotate(
            sec,
            {
                SUPPLY_ANNOTATION: f"no value is rendered; fill key {sname!r}: kubectl -n {ctx.namespace} "
                f"create secret generic {_dns(sname, 'secret')} --from-file={sname}=PATH "
                "--dry-run=client -o yaml | kubectl apply -f -"
            },
        )
        out.append(sec)

    for vname in sorted(compose.volumes):
        pvc = Obj({"apiVersion": "v1", "kind": "PersistentVolumeClaim"})
        _meta(ctx, pvc, _dns(vname, "Compose volume"), None)
        pvc.src("metadata.name", f"compose volumes.{vname}")
        pvc.src("kind", f"compose volumes.{vname} (a named volume keeps its data)")
        pvc.body["spec"] = {
            "accessModes": list(DEFAULTS["pvc.accessModes"].value),
            "resources": {"requests": {"storage": DEFAULTS["pvc.storage"].value}},
        }
        pvc.src("spec.accessModes", "default pvc.accessModes")
        pvc.src("spec.resources", "default pvc.storage")
        _annotate(pvc, {})
        out.append(pvc)

    jobs = compose.jobs()
    for name, spec in sorted(services.items()):
        _workload(ctx, name, spec, name in jobs, out)

    order = {
        "Namespace": 0,
        "Secret": 1,
        "ConfigMap": 2,
        "PersistentVolumeClaim": 3,
        "Service": 4,
        "Job": 5,
        "Deployment": 6,
    }
    out.sort(key=lambda o: (order[o.body["kind"]], o.body["metadata"]["name"]))
    keys = [o.key for o in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise RenderError(f"two Compose names make the same Kubernetes object: {', '.join(dupes)}", hint="rename one")
    return out


# --------------------------------------------------------------------------- checks


_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
_BASELINE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """What breaks the restricted Pod Security Standard (baseline included), per object and field.

    The controls of https://kubernetes.io/docs/concepts/security/pod-security-standards/ as of v1.30+:
    host namespaces, privileged, capabilities, hostPath and volume types, host ports, AppArmor,
    SELinux, /proc mount, seccomp, sysctls, privilege escalation, non-root user and UID.
    """
    bad: list[str] = []
    for o in objects:
        kind = o.get("kind")
        if kind == "Pod":
            spec = o.get("spec") or {}
        elif kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
            spec = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
        else:
            continue
        where = f"{kind}/{(o.get('metadata') or {}).get('name')}"
        psc = spec.get("securityContext") or {}
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(k):
                bad.append(f"{where}: spec.{k} is true")
        for v in spec.get("volumes") or []:
            types = set(v) - {"name"}
            if not types <= _RESTRICTED_VOLUMES:
                bad.append(f"{where}: volume {v.get('name')} has type {sorted(types - _RESTRICTED_VOLUMES)}")
        for s in psc.get("sysctls") or []:
            if s.get("name") not in _BASELINE_SYSCTLS:
                bad.append(f"{where}: securityContext.sysctls {s.get('name')} is not a safe sysctl")
        pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
        if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{where}: securityContext.seccompProfile.type is {pod_seccomp}")
        if psc.get("runAsUser") == 0:
            bad.append(f"{where}: securityContext.runAsUser is 0")
        if (psc.get("seLinuxOptions") or {}).get("type") not in (None, "", *_SELINUX_TYPES):
            bad.append(f"{where}: securityContext.seLinuxOptions.type is not allowed")
        if (psc.get("windowsOptions") or {}).get("hostProcess"):
            bad.append(f"{where}: securityContext.windowsOptions.hostProcess is true")
        if (psc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{where}: securityContext.appArmorProfile is not RuntimeDefault/Localhost")
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(group) or []:
                at = f"{where}: {group}[{c.get('name')}]"
                sc = c.get("securityContext") or {}
                if sc.get("privileged"):
                    bad.append(f"{at}.securityContext.privileged is true")
                if (sc.get("windowsOptions") or {}).get("hostProcess"):
                    bad.append(f"{at}.securityContext.windowsOptions.hostProcess is true")
                if sc.get("allowPrivilegeEscalation") is not False:
                    bad.append(f"{at}.securityContext.allowPrivilegeEscalation is not false")
                caps = sc.get("capabilities") or {}
                if "ALL" not in (caps.get("drop") or []):
                    bad.append(f"{at}.securityContext.capabilities.drop does not contain ALL")
                extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
                if extra:
                    bad.append(f"{at}.securityContext.capabilities.add has {sorted(extra)}")
                non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
                if non_root is not True:
                    bad.append(f"{at}: runAsNonRoot is not true (container or pod)")
                if sc.get("runAsUser") == 0:
                    bad.append(f"{at}.securityContext.runAsUser is 0")
                seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
                if seccomp not in ("RuntimeDefault", "Localhost"):
                    bad.append(f"{at}: seccompProfile is not RuntimeDefault/Localhost (container or pod)")
                if (sc.get("seLinuxOptions") or {}).get("type") not in (None, "", *_SELINUX_TYPES):
                    bad.append(f"{at}.securityContext.seLinuxOptions.type is not allowed")
                if sc.get("procMount") not in (None, "Default"):
                    bad.append(f"{at}.securityContext.procMount is {sc.get('procMount')}")
                if (sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
                    bad.append(f"{at}.securityContext.appArmorProfile is not RuntimeDefault/Localhost")
                for p in c.get("ports") or []:
                    if p.get("hostPort"):
                        bad.append(f"{at}.ports hostPort {p.get('hostPort')}")
                # Probes and lifecycle hooks may not aim at another host (baseline "Host Probes / Lifecycle Hooks").
                handlers = {k: c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")}
                handlers.update({f"lifecycle.{k}": h for k, h in (c.get("lifecycle") or {}).items()})
                for hname, h in sorted(handlers.items()):
                    for how in ("httpGet", "tcpSocket"):
                        if ((h or {}).get(how) or {}).get("host"):
                            bad.append(f"{at}.{hname}.{how}.host is set")
        for k, v in ((o.get("metadata") or {}).get("annotations") or {}).items():
            if (
                k.startswith("container.apparmor.security.beta.kubernetes.io/")
                and v not in ("runtime/default",)
                and not str(v).startswith("localhost/")
            ):
                bad.append(f"{where}: annotation {k} is {v}")
    return bad


def validate(objects: Iterable[Mapping[str, Any]], versions: Sequence[str]) -> list[str]:
    """Schema errors of every object against every Kubernetes version (strict: unknown fields are errors)."""
    try:
        import kubernetes_validate
        import kubernetes_validate.utils as kv
    except ImportError:
        raise PipelineError(
            "kubernetes-validate is not installed: the manifests cannot be validated offline",
            hint="install kubernetes-validate (pinned in requirements/dev.txt) or pass --no-validate",
        ) from None
    errors: list[str] = []
    for o in objects:
        where = f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"
        for v in versions:
            try:
                kubernetes_validate.validate(dict(o), v, strict=True)
            except kv.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path) or "(object)"
                errors.append(f"{where}: {path}: {exc.message} (Kubernetes {v})")
            except kv.VersionNotSupportedError:
                raise PipelineError(
                    f"kubernetes-validate has no schemas for Kubernetes {v}",
                    hint=f"choose among {', '.join(kv.all_versions())}",
                ) from None
            except kv.SchemaNotFoundError as exc:
                errors.append(f"{where}: {exc.message}")
    return errors


def field_paths(value: Any, prefix: str = "") -> list[str]:
    """Every leaf path of an object (lists of named things by name, others by index)."""
    if isinstance(value, dict):
        if not value:
            return [prefix]
        out: list[str] = []
        for k, v in value.items():
            out += field_paths(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) and "name" in x for x in value):
        out = []
        for x in value:
            out += field_paths({k: v for k, v in x.items() if k != "name"}, f"{prefix}[{x['name']}]")
            out.append(f"{prefix}[{x['name']}].name")
        return out
    return [prefix]


def untraced(obj: Obj) -> list[str]:
    """Leaf paths of ``obj`` that no provenance entry covers (should be none)."""
    prefixes = sorted(obj.sources)

    def covered(path: str) -> bool:
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in prefixes)

    return [p for p in field_paths(obj.body) if not covered(p)]


# --------------------------------------------------------------------------- output


def dump(objects: Iterable[Obj], file: str) -> str:
    docs = [o.body for o in objects if o.file == file]
    return "".join(
        "---\n" + yaml.safe_dump(d, sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096)
        for d in docs
    )


def provenance(objects: Iterable[Obj]) -> str:
    data = {
        "defaults": {k: {"value": d.value, "why": d.why} for k, d in sorted(DEFAULTS.items())},
        "objects": {o.key: dict(sorted(o.sources.items())) for o in objects},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be written ({exc.strerror})", hint="name a writable directory") from None


def run(
    cfg: Config,
    tools: Toolchain,
    *,
    env: str | None,
    out: Path | None = None,
    versions: Sequence[str] = K8S_VERSIONS,
    check_schemas: bool = True,
    extra_files: Sequence[Path] = (),
) -> Rendered:
    started = time.monotonic()
    env_name = cfg.env(env).name
    for f in extra_files:
        if not f.is_file():
            raise InputError(f"--compose-file {f}: no such file", hint="name an existing Compose overlay")
    record = manifest.load(cfg.project.artifacts, env_name)
    compose = compose_config(cfg, env_name, record, tools, extra_files)
    images = sorted({s.image for s in compose} - {""})
    by_tag = {t: img for img in record.services for t in img.tags}
    infos: dict[str, ImageInfo] = {}
    with Engine.connect() as engine:
        for image in images:
            if image in by_tag:
                infos[image] = engine.image(by_tag[image].local_ref)
    objects = render(cfg, env_name, record, compose, infos)
    bad = restricted_violations(o.body for o in objects)
    if bad:
        # The renderer writes the profile into every pod: a violation here is our bug, not the input's.
        raise RuntimeError("rendered manifests break the restricted profile: " + "; ".join(bad))
    if check_schemas:
        errors = validate((o.body for o in objects), versions)
        if errors:
            raise RenderError(
                f"the rendered manifests of {env_name!r} do not validate against the Kubernetes schemas",
                seen="\n".join(errors[:20]),
                hint="the first field named is where the Compose value does not fit; fix it in the Compose file",
            )
    target = out or cfg.project.artifacts / "k8s" / env_name
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"--out {target}: cannot be created ({exc.strerror})", hint="name a writable directory"
        ) from None
    files = []
    for name, text in (
        (MANIFESTS, dump(objects, MANIFESTS)),
        (SECRETS, dump(objects, SECRETS)),
        (PROVENANCE, provenance(objects)),
    ):
        _write(target / name, text)
        files.append(target / name)
    return Rendered(
        env_name, tuple(objects), tuple(files), tuple(versions) if check_schemas else (), time.monotonic() - started
    )
