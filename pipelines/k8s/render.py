"""The Kubernetes objects of an environment's Compose stack, each field's source recorded on the object.

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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compose_model import Mount, Project, Service
from ..config import Config
from ..engine import ImageInfo
from ..manifest import BuildRecord, BuiltImage
from .container import _probes, _resources, _tmpfs_entries, _user
from .model import (
    DEFAULTS,
    IMAGE_REF_ANNOTATION,
    NOT_RENDERED_ANNOTATION,
    SECRETS,
    SOURCE_ANNOTATION,
    SUPPLY_ANNOTATION,
    Obj,
    RenderError,
)
from .policy import _check_refused
from .values import _bytes, _dns, _fail, _quantity

# Compose keys that have no place in a pod spec: reported per object, never silently dropped.
_NOT_RENDERED = {
    "pids_limit": "no per-container PID limit in Kubernetes (the node's podPidsLimit applies)",
    "restart": "a Deployment always restarts; CrashLoopBackOff bounds it",
    "logging": "the cluster's log collection applies",
    "networks": "Compose networks are not rendered: add NetworkPolicies for the cluster's network",
    "depends_on": "no start ordering in Kubernetes; readiness probes gate traffic",
    "stop_grace_period": "not rendered",
}
_ONE_SHOT = "one-shot: others wait for it with service_completed_successfully"
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


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
        probes, psrc = _probes(name, spec, info, image)
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
