"""The render parsed into records: every typed key read with its path, every other key kept in ``extras``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from .frozen import Frozen, freeze, given_keys
from .records import (
    Attachment,
    Build,
    Dependency,
    Deploy,
    FileObject,
    FileRef,
    Healthcheck,
    Mount,
    Network,
    Port,
    Project,
    Resources,
    Service,
    Volume,
)
from .shape import At


def parse(data: object, *, source: str) -> Project:
    """The render as a :class:`Project`; a value of the wrong shape is a :class:`ComposeShapeError`."""
    at = At(source, "")
    top = at.mapping(data)
    return Project(
        name=at("name").text(top.get("name")) or "",
        services=MappingProxyType(
            {
                str(n): _service(str(n), s, at("services")(str(n)))
                for n, s in at("services").mapping(top.get("services")).items()
            }
        ),
        networks=MappingProxyType(
            {
                str(n): _network(v, at("networks")(str(n)))
                for n, v in at("networks").mapping(top.get("networks")).items()
            }
        ),
        volumes=MappingProxyType(
            {str(n): _volume(v, at("volumes")(str(n))) for n, v in at("volumes").mapping(top.get("volumes")).items()}
        ),
        secrets=MappingProxyType(
            {
                str(n): _file_object(v, at("secrets")(str(n)))
                for n, v in at("secrets").mapping(top.get("secrets")).items()
            }
        ),
        configs=MappingProxyType(
            {
                str(n): _file_object(v, at("configs")(str(n)))
                for n, v in at("configs").mapping(top.get("configs")).items()
            }
        ),
        top_level=frozenset(str(k) for k in top),
    )


_PORT_TYPED: Final = frozenset({"target", "published", "protocol", "host_ip", "mode"})
_MOUNT_TYPED: Final = frozenset({"type", "target", "source", "read_only", "bind", "volume", "tmpfs"})
_NETWORK_TYPED: Final = frozenset({"name", "driver", "external", "internal", "attachable", "labels"})
_DEPLOY_TYPED: Final = frozenset(
    {"replicas", "mode", "resources", "restart_policy", "update_config", "rollback_config", "placement", "labels",
     "endpoint_mode"}
)  # fmt: skip
_SERVICE_TYPED: Final = frozenset(
    {
        "image",
        "build",
        "ports",
        "environment",
        "healthcheck",
        "user",
        "read_only",
        "cap_drop",
        "cap_add",
        "security_opt",
        "tmpfs",
        "volumes",
        "networks",
        "depends_on",
        "deploy",
        "secrets",
        "configs",
        "profiles",
        "command",
        "entrypoint",
        "working_dir",
        "labels",
        "restart",
        "stop_grace_period",
        "container_name",
        "cpus",
        "mem_limit",
        "mem_reservation",
        "pids_limit",
        "scale",
    }
)


def _service(name: str, data: object, at: At) -> Service:
    d = at.mapping(data)
    build: Build | None = None
    if d.get("build") is not None:
        if isinstance(d["build"], str):
            build = Build(context=d["build"])
        else:
            b = at("build").mapping(d["build"])
            build = Build(
                context=at("build")("context").text(b.get("context")) or "",
                dockerfile=at("build")("dockerfile").text(b.get("dockerfile")) or "",
            )
    nets = d.get("networks")
    networks: Mapping[str, Attachment] | None = None
    if nets is not None:
        if isinstance(nets, list | tuple):
            networks = MappingProxyType({at("networks")(i).text(n) or "": Attachment() for i, n in enumerate(nets)})
        else:
            networks = MappingProxyType(
                {str(k): _attachment(v, at("networks")(str(k))) for k, v in at("networks").mapping(nets).items()}
            )
    return Service(
        name=name,
        image=at("image").text(d.get("image")) or "",
        build=build,
        ports=tuple(_port(p, at("ports")(i)) for i, p in enumerate(at("ports").seq(d.get("ports")))),
        environment=_environment(d.get("environment"), at("environment")),
        healthcheck=(
            None
            if d.get("healthcheck") is None
            else Healthcheck.parse(d["healthcheck"], source=at.source, path=at("healthcheck").path)
        ),
        user=at("user").text(d.get("user")),
        read_only=at("read_only").flag(d.get("read_only")),
        cap_drop=at("cap_drop").texts(d.get("cap_drop")),
        cap_add=at("cap_add").texts(d.get("cap_add")),
        security_opt=at("security_opt").texts(d.get("security_opt")),
        tmpfs=at("tmpfs").texts(d.get("tmpfs")),
        volumes=tuple(_mount(v, at("volumes")(i)) for i, v in enumerate(at("volumes").seq(d.get("volumes")))),
        networks=networks,
        depends_on=_depends_on(d.get("depends_on"), at("depends_on")),
        deploy=None if d.get("deploy") is None else _deploy(d["deploy"], at("deploy")),
        secrets=tuple(_file_ref(r, at("secrets")(i)) for i, r in enumerate(at("secrets").seq(d.get("secrets")))),
        configs=tuple(_file_ref(r, at("configs")(i)) for i, r in enumerate(at("configs").seq(d.get("configs")))),
        profiles=at("profiles").texts(d.get("profiles")),
        command=_argv(d.get("command"), at("command")),
        entrypoint=_argv(d.get("entrypoint"), at("entrypoint")),
        working_dir=at("working_dir").text(d.get("working_dir")),
        labels=_labels(d.get("labels"), at("labels")),
        restart=at("restart").text(d.get("restart")),
        stop_grace_period=at("stop_grace_period").scalar(d.get("stop_grace_period")),
        container_name=at("container_name").text(d.get("container_name")),
        cpus=at("cpus").scalar(d.get("cpus")),
        mem_limit=at("mem_limit").scalar(d.get("mem_limit")),
        mem_reservation=at("mem_reservation").scalar(d.get("mem_reservation")),
        pids_limit=_pids(d.get("pids_limit"), at("pids_limit")),
        scale=at("scale").count(d.get("scale")),
        extras=at.extras(d, _SERVICE_TYPED),
        given=given_keys(d),
    )


def _pids(value: object, at: At) -> int | None:
    # -1 is Docker's "unlimited"; kept as it is, for the consumers to judge.
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return value
    return at.count(value)


def _environment(value: object, at: At) -> Mapping[str, str | None]:
    out: dict[str, str | None] = {}
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            k, eq, v = (at(i).text(item) or "").partition("=")
            out[k] = v if eq else None
    else:
        for k, v in at.mapping(value).items():
            out[str(k)] = at(str(k)).text(v)
    return MappingProxyType(out)


def _labels(value: object, at: At) -> Mapping[str, str]:
    env = _environment(value, at)  # the same two shapes: a mapping or KEY=VALUE strings
    return MappingProxyType({k: v or "" for k, v in env.items()})


def _object_labels(d: Mapping[str, object], at: At) -> Mapping[str, Frozen]:
    """A top-level object's or deploy's labels: a mapping kept as given, or KEY=VALUE strings read as labels."""
    value = d.get("labels")
    return _labels(value, at("labels")) if isinstance(value, list) else _frozen_map(value, at("labels"))


def _argv(value: object, at: At) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return at.texts(value)


def _port(value: object, at: At) -> Port:
    if not isinstance(value, Mapping):
        raise at.fail(f"{value!r} is not in the rendered long syntax")
    target = value.get("target")
    if isinstance(target, bool) or not isinstance(target, int | str) or not str(target).isdigit():
        raise at("target").fail(f"{target!r} is not a port number")
    return Port(
        target=int(target),
        published=at("published").text(value.get("published")) or "",
        protocol=at("protocol").text(value.get("protocol")) or "",
        host_ip=at("host_ip").text(value.get("host_ip")) or "",
        mode=at("mode").text(value.get("mode")) or "",
        extras=at.extras(value, _PORT_TYPED),
    )


def _mount(value: object, at: At) -> Mount:
    if not isinstance(value, Mapping) or not value:
        raise at.fail(f"{value!r} is not in the rendered long syntax")
    return Mount(
        type=at("type").text(value.get("type")) or "",
        target=at("target").text(value.get("target")) or "",
        source=at("source").text(value.get("source")) or "",
        read_only=at("read_only").flag(value.get("read_only")),
        bind=_frozen_map(value.get("bind"), at("bind")),
        volume=_frozen_map(value.get("volume"), at("volume")),
        tmpfs=_frozen_map(value.get("tmpfs"), at("tmpfs")),
        extras=at.extras(value, _MOUNT_TYPED),
        given=frozenset(str(k) for k, v in value.items() if v not in (None, "")),
    )


def _frozen_map(value: object, at: At) -> Mapping[str, Frozen]:
    return MappingProxyType({str(k): freeze(v) for k, v in at.mapping(value).items()})


def _file_ref(value: object, at: At) -> FileRef:
    if isinstance(value, str):
        return FileRef(source=value)
    r = at.mapping(value)
    mode = r.get("mode")
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int | str)):
        raise at("mode").fail(f"{mode!r} is not a file mode")
    return FileRef(
        source=at("source").text(r.get("source")) or "",
        target=at("target").text(r.get("target")) or "",
        uid=at("uid").text(r.get("uid")),
        gid=at("gid").text(r.get("gid")),
        mode=mode,
    )


def _depends_on(value: object, at: At) -> Mapping[str, Dependency]:
    if isinstance(value, list | tuple):
        return MappingProxyType({at(i).text(n) or "": Dependency() for i, n in enumerate(value)})
    out: dict[str, Dependency] = {}
    for dep, how in at.mapping(value).items():
        h = at(str(dep)).mapping(how)
        required = h.get("required")
        out[str(dep)] = Dependency(
            condition=at(str(dep))("condition").text(h.get("condition")) or "service_started",
            required=True if required is None else at(str(dep))("required").flag(required),
        )
    return MappingProxyType(out)


def _attachment(value: object, at: At) -> Attachment:
    d = at.mapping(value)
    return Attachment(aliases=at("aliases").texts(d.get("aliases")), extras=at.extras(d, frozenset({"aliases"})))


def _resources(value: object, at: At) -> Resources:
    d = at.mapping(value)
    return Resources(
        cpus=at("cpus").scalar(d.get("cpus")),
        memory=at("memory").scalar(d.get("memory")),
        pids=_pids(d.get("pids"), at("pids")),
        extras=at.extras(d, frozenset({"cpus", "memory", "pids"})),
    )


def _deploy(value: object, at: At) -> Deploy:
    d = at.mapping(value)
    res = at("resources").mapping(d.get("resources"))
    return Deploy(
        replicas=at("replicas").count(d.get("replicas")),
        mode=at("mode").text(d.get("mode")),
        limits=_resources(res.get("limits"), at("resources")("limits")),
        reservations=_resources(res.get("reservations"), at("resources")("reservations")),
        restart_policy=_frozen_map(d.get("restart_policy"), at("restart_policy")),
        update_config=_frozen_map(d.get("update_config"), at("update_config")),
        rollback_config=_frozen_map(d.get("rollback_config"), at("rollback_config")),
        placement=_frozen_map(d.get("placement"), at("placement")),
        labels=_object_labels(d, at),
        endpoint_mode=at("endpoint_mode").text(d.get("endpoint_mode")),
        resource_extras=at("resources").extras(res, frozenset({"limits", "reservations"})),
        extras=at.extras(d, _DEPLOY_TYPED),
        given=given_keys(d),
    )


def _network(value: object, at: At) -> Network:
    d = at.mapping(value)
    return Network(
        name=at("name").text(d.get("name")),
        driver=at("driver").text(d.get("driver")),
        external=at("external").flag(d.get("external")),
        internal=at("internal").flag(d.get("internal")),
        attachable=at("attachable").flag(d.get("attachable")),
        labels=_object_labels(d, at),
        extras=at.extras(d, _NETWORK_TYPED),
    )


def _volume(value: object, at: At) -> Volume:
    d = at.mapping(value)
    return Volume(
        name=at("name").text(d.get("name")),
        external=at("external").flag(d.get("external")),
        driver=at("driver").text(d.get("driver")),
        driver_opts=_frozen_map(d.get("driver_opts"), at("driver_opts")),
        labels=_object_labels(d, at),
    )


def _file_object(value: object, at: At) -> FileObject:
    d = at.mapping(value)
    return FileObject(
        name=at("name").text(d.get("name")),
        file=at("file").text(d.get("file")),
        external=at("external").flag(d.get("external")),
        environment=at("environment").text(d.get("environment")),
        content=at("content").text(d.get("content")),
        labels=_object_labels(d, at),
        given=frozenset(str(k) for k in d),
    )
