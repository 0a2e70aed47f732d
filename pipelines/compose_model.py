"""A rendered Compose config (`docker compose config --format json`) as frozen, typed records.

Lint, smoke, the deploy plan, Swarm and Kubernetes all read the same render. It
is parsed here once: every key a consumer interprets gets a typed field, a
value of the wrong shape is one :class:`ComposeShapeError` naming the file and
the key path (exit 2), and nothing downstream guards against ``None`` or a
list where a mapping belongs. Keys no consumer interprets stay in ``extras``
(deep-frozen JSON) so a renderer that copies them through, or names what it
drops, still sees them; ``given`` says which keys the render set at all, since
"unset" and "set to a false value" read differently to Compose.

Values whose meaning depends on the consumer (durations, sizes, CPU counts)
stay as written: :func:`duration`, :func:`size` and :func:`cpus` turn them
into numbers with an error that names the service and key, raised as the
caller's own error type.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from .composespec import duration_ns, size_bytes
from .errors import InputError

# A JSON value with every list a tuple and every object a read-only mapping.
Frozen: TypeAlias = "bool | int | float | str | tuple[Frozen, ...] | Mapping[str, Frozen] | None"
# A duration, size or CPU count as Compose wrote it ("1m30s", "256m", 0.5).
Scalar: TypeAlias = str | int | float

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
COMPLETED = "service_completed_successfully"


class ComposeShapeError(InputError):
    """A key of the rendered Compose config holds a value of the wrong shape."""


def freeze(value: object) -> Frozen:
    """A JSON value made immutable: lists become tuples, objects read-only mappings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return str(value)  # not JSON: kept as text rather than refused, nothing interprets it


def thaw(value: object) -> Any:
    """A frozen value as plain JSON again (lists and dicts), for writing it out."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def _empty(value: object) -> bool:
    # What Compose treats as "not set": null, an empty list or mapping, false.
    return value is None or value is False or (isinstance(value, list | tuple | Mapping) and not value)


def is_set(value: object) -> bool:
    """Whether a value says anything: not null, false, an empty string, list or mapping."""
    return not _empty(value) and value != ""


# --------------------------------------------------------------------------- reading with a path


@dataclass(frozen=True, slots=True)
class _At:
    """A position in the render, to name in an error."""

    source: str
    path: str

    def __call__(self, key: str | int) -> _At:
        if isinstance(key, int):
            return _At(self.source, f"{self.path}[{key}]")
        return _At(self.source, f"{self.path}.{key}" if self.path else key)

    def fail(self, problem: str) -> ComposeShapeError:
        return ComposeShapeError(
            f"{self.source}: {self.path}: {problem}" if self.path else f"{self.source}: {problem}",
            hint="`docker compose config` renders this key in another shape; check the Compose file",
        )

    def mapping(self, value: object) -> Mapping[str, Any]:
        if value is None:
            return _EMPTY
        if not isinstance(value, Mapping):
            raise self.fail(f"expected a mapping, got {_kind(value)}")
        return value

    def seq(self, value: object) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise self.fail(f"expected a list, got {_kind(value)}")
        return list(value)

    def text(self, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"expected a string, got {_kind(value)}")
        return str(value)

    def texts(self, value: object) -> tuple[str, ...]:
        """A list of strings; one string is a list of one (Compose accepts both for tmpfs)."""
        if isinstance(value, str):
            return (value,)
        return tuple(self(i).text(v) or "" for i, v in enumerate(self.seq(value)))

    def flag(self, value: object) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(f"expected true or false, got {_kind(value)}")

    def count(self, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{value!r} is not a count")
        return value

    def scalar(self, value: object) -> Scalar | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"expected a number or a string, got {_kind(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{value!r} is not a finite number")
        return value

    def extras(self, data: Mapping[str, Any], typed: frozenset[str]) -> Mapping[str, Frozen]:
        return MappingProxyType({str(k): freeze(v) for k, v in data.items() if k not in typed})


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"[:80]


def _given(data: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(k) for k, v in data.items() if not _empty(v))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """A `healthcheck:` (or an image's, in the same shape). ``test`` is a string in the shell form."""

    test: tuple[str, ...] | str = ()
    interval: Scalar | None = None
    timeout: Scalar | None = None
    start_period: Scalar | None = None
    start_interval: Scalar | None = None
    retries: int | None = None
    disable: bool = False

    @property
    def disabled(self) -> bool:
        return self.disable or (isinstance(self.test, tuple) and self.test[:1] == ("NONE",))

    @classmethod
    def parse(cls, data: object, *, source: str, path: str) -> Healthcheck:
        at = _At(source, path)
        d = at.mapping(data)
        raw = d.get("test")
        test: tuple[str, ...] | str = raw if isinstance(raw, str) else at("test").texts(raw)
        return cls(
            test=test,
            interval=at("interval").scalar(d.get("interval")),
            timeout=at("timeout").scalar(d.get("timeout")),
            start_period=at("start_period").scalar(d.get("start_period")),
            start_interval=at("start_interval").scalar(d.get("start_interval")),
            retries=at("retries").count(d.get("retries")),
            disable=at("disable").flag(d.get("disable")),
        )


@dataclass(frozen=True, slots=True)
class Port:
    """One `ports:` entry in the long syntax Compose renders."""

    target: int
    published: str = ""
    protocol: str = ""
    host_ip: str = ""
    mode: str = ""
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Mount:
    """One `volumes:` entry of a service (long syntax): bind, volume, tmpfs, ..."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    bind: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    volume: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    tmpfs: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    given: frozenset[str] = frozenset()

    def options(self, kind: str) -> Mapping[str, Frozen]:
        """The `bind:`, `volume:` or `tmpfs:` sub-options (empty for any other kind)."""
        return {"bind": self.bind, "volume": self.volume, "tmpfs": self.tmpfs}.get(kind, _EMPTY)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A service's `secrets:` or `configs:` entry."""

    source: str
    target: str = ""
    uid: str | None = None
    gid: str | None = None
    mode: int | str | None = None


@dataclass(frozen=True, slots=True)
class Dependency:
    """One `depends_on:` entry."""

    condition: str = "service_started"
    required: bool = True


@dataclass(frozen=True, slots=True)
class Attachment:
    """A service's entry under `networks:` (null in the file: no options)."""

    aliases: tuple[str, ...] = ()
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Resources:
    """`deploy.resources.limits` or `.reservations`."""

    cpus: Scalar | None = None
    memory: Scalar | None = None
    pids: int | None = None
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Deploy:
    """A service's `deploy:` section."""

    replicas: int | None = None
    mode: str | None = None
    limits: Resources = field(default_factory=Resources)
    reservations: Resources = field(default_factory=Resources)
    restart_policy: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    update_config: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    rollback_config: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    placement: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    labels: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    endpoint_mode: str | None = None
    resource_extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)  # besides limits/reservations
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    given: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Build:
    """A service's `build:` section (what the consumers read of it)."""

    context: str = ""
    dockerfile: str = ""


@dataclass(frozen=True, slots=True)
class Service:
    """One service of the render."""

    name: str
    image: str = ""
    build: Build | None = None
    ports: tuple[Port, ...] = ()
    environment: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY)
    healthcheck: Healthcheck | None = None
    user: str | None = None
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    networks: Mapping[str, Attachment] | None = None  # None: the file names none (the default network)
    depends_on: Mapping[str, Dependency] = field(default_factory=lambda: _EMPTY)
    deploy: Deploy | None = None
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    profiles: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    restart: str | None = None
    stop_grace_period: Scalar | None = None
    container_name: str | None = None
    cpus: Scalar | None = None
    mem_limit: Scalar | None = None
    mem_reservation: Scalar | None = None
    pids_limit: int | None = None
    scale: int | None = None
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)  # every key not above
    given: frozenset[str] = frozenset()  # keys the render set to something (not null, empty or false)

    def value(self, key: str) -> Frozen:
        """An untyped key's value (None when unset)."""
        return self.extras.get(key)

    def waits_for(self, condition: str) -> set[str]:
        return {dep for dep, d in self.depends_on.items() if d.condition == condition}

    @property
    def named_volumes(self) -> list[str]:
        return [m.source for m in self.volumes if m.type == "volume" and m.source]

    @property
    def limits(self) -> Resources:
        """`deploy.resources.limits` (empty when the service has no deploy section)."""
        return self.deploy.limits if self.deploy else Resources()

    @property
    def reservations(self) -> Resources:
        return self.deploy.reservations if self.deploy else Resources()


@dataclass(frozen=True, slots=True)
class Network:
    """A top-level `networks:` entry."""

    name: str | None = None
    driver: str | None = None
    external: bool = False
    internal: bool = False
    attachable: bool = False
    labels: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    extras: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Volume:
    """A top-level `volumes:` entry."""

    name: str | None = None
    external: bool = False
    driver: str | None = None
    driver_opts: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    labels: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class FileObject:
    """A top-level `secrets:` or `configs:` entry."""

    name: str | None = None
    file: str | None = None
    external: bool = False
    environment: str | None = None
    content: str | None = None
    labels: Mapping[str, Frozen] = field(default_factory=lambda: _EMPTY)
    given: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Project:
    """The whole render: the project's name and its top-level sections."""

    name: str = ""
    services: Mapping[str, Service] = field(default_factory=lambda: _EMPTY)
    networks: Mapping[str, Network] = field(default_factory=lambda: _EMPTY)
    volumes: Mapping[str, Volume] = field(default_factory=lambda: _EMPTY)
    secrets: Mapping[str, FileObject] = field(default_factory=lambda: _EMPTY)
    configs: Mapping[str, FileObject] = field(default_factory=lambda: _EMPTY)
    top_level: frozenset[str] = frozenset()  # every top-level key of the render

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services.values())

    def jobs(self) -> set[str]:
        """The one-shot jobs: services another waits for with condition service_completed_successfully."""
        return {dep for s in self.services.values() for dep in s.waits_for(COMPLETED)}

    def order(self) -> list[str]:
        """Services in dependency order (depends_on first), ties in the render's order."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise InputError(f"the Compose services' depends_on form a cycle through {name!r}")
            visiting.add(name)
            for dep in self.services[name].depends_on:
                if dep in self.services:
                    visit(dep)
            visiting.discard(name)
            done.append(name)

        for name in self.services:
            visit(name)
        return done


# --------------------------------------------------------------------------- parsing


def parse(data: object, *, source: str) -> Project:
    """The render as a :class:`Project`; a value of the wrong shape is a :class:`ComposeShapeError`."""
    at = _At(source, "")
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


def _service(name: str, data: object, at: _At) -> Service:
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
        given=_given(d),
    )


def _pids(value: object, at: _At) -> int | None:
    # -1 is Docker's "unlimited"; kept as it is, for the consumers to judge.
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return value
    return at.count(value)


def _environment(value: object, at: _At) -> Mapping[str, str | None]:
    out: dict[str, str | None] = {}
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            k, eq, v = (at(i).text(item) or "").partition("=")
            out[k] = v if eq else None
    else:
        for k, v in at.mapping(value).items():
            out[str(k)] = at(str(k)).text(v)
    return MappingProxyType(out)


def _labels(value: object, at: _At) -> Mapping[str, str]:
    env = _environment(value, at)  # the same two shapes: a mapping or KEY=VALUE strings
    return MappingProxyType({k: v or "" for k, v in env.items()})


def _argv(value: object, at: _At) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return at.texts(value)


def _port(value: object, at: _At) -> Port:
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


def _mount(value: object, at: _At) -> Mount:
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


def _frozen_map(value: object, at: _At) -> Mapping[str, Frozen]:
    return MappingProxyType({str(k): freeze(v) for k, v in at.mapping(value).items()})


def _file_ref(value: object, at: _At) -> FileRef:
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


def _depends_on(value: object, at: _At) -> Mapping[str, Dependency]:
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


def _attachment(value: object, at: _At) -> Attachment:
    d = at.mapping(value)
    return Attachment(aliases=at("aliases").texts(d.get("aliases")), extras=at.extras(d, frozenset({"aliases"})))


def _resources(value: object, at: _At) -> Resources:
    d = at.mapping(value)
    return Resources(
        cpus=at("cpus").scalar(d.get("cpus")),
        memory=at("memory").scalar(d.get("memory")),
        pids=_pids(d.get("pids"), at("pids")),
        extras=at.extras(d, frozenset({"cpus", "memory", "pids"})),
    )


def _deploy(value: object, at: _At) -> Deploy:
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
        labels=_frozen_map(d.get("labels"), at("labels"))
        if not isinstance(d.get("labels"), list)
        else _labels(d.get("labels"), at("labels")),
        endpoint_mode=at("endpoint_mode").text(d.get("endpoint_mode")),
        resource_extras=at("resources").extras(res, frozenset({"limits", "reservations"})),
        extras=at.extras(d, _DEPLOY_TYPED),
        given=_given(d),
    )


def _network(value: object, at: _At) -> Network:
    d = at.mapping(value)
    return Network(
        name=at("name").text(d.get("name")),
        driver=at("driver").text(d.get("driver")),
        external=at("external").flag(d.get("external")),
        internal=at("internal").flag(d.get("internal")),
        attachable=at("attachable").flag(d.get("attachable")),
        labels=_frozen_map(d.get("labels"), at("labels"))
        if not isinstance(d.get("labels"), list)
        else _labels(d.get("labels"), at("labels")),
        extras=at.extras(d, _NETWORK_TYPED),
    )


def _volume(value: object, at: _At) -> Volume:
    d = at.mapping(value)
    return Volume(
        name=at("name").text(d.get("name")),
        external=at("external").flag(d.get("external")),
        driver=at("driver").text(d.get("driver")),
        driver_opts=_frozen_map(d.get("driver_opts"), at("driver_opts")),
        labels=_frozen_map(d.get("labels"), at("labels"))
        if not isinstance(d.get("labels"), list)
        else _labels(d.get("labels"), at("labels")),
    )


def _file_object(value: object, at: _At) -> FileObject:
    d = at.mapping(value)
    return FileObject(
        name=at("name").text(d.get("name")),
        file=at("file").text(d.get("file")),
        external=at("external").flag(d.get("external")),
        environment=at("environment").text(d.get("environment")),
        content=at("content").text(d.get("content")),
        labels=_frozen_map(d.get("labels"), at("labels"))
        if not isinstance(d.get("labels"), list)
        else _labels(d.get("labels"), at("labels")),
        given=frozenset(str(k) for k in d),
    )


# --------------------------------------------------------------------------- values, for every renderer


def service_error(error: type[InputError], service: str, key: str, problem: str, hint: str) -> InputError:
    """The error a renderer raises about one service's key, in the renderer's own error type."""
    return error(f"compose services.{service}.{key}: {problem}", hint=hint)


def duration(value: object, service: str, key: str, error: type[InputError] = InputError) -> int:
    """A Compose duration ("1m30s", "500ms") in nanoseconds; a bad one names the service and key."""
    try:
        return duration_ns(value)
    except ValueError as exc:
        raise service_error(error, service, key, str(exc), "write it like 2s, 500ms or 1m30s") from None


def size(value: object, service: str, key: str, error: type[InputError] = InputError) -> int:
    """A Docker size ("256m", "1g", bytes) in bytes; a bad one names the service and key."""
    try:
        return size_bytes(value)
    except ValueError as exc:
        raise service_error(error, service, key, str(exc), "write it like 256m, 1g or a number of bytes") from None


def cpus(value: object, service: str, key: str, error: type[InputError] = InputError) -> float:
    """A number of CPUs (0.5, "1"); a bad one names the service and key."""
    try:
        n = float(str(value))
    except ValueError:
        raise service_error(
            error, service, key, f"{value!r} is not a number of CPUs", "write it like 0.5 or 1"
        ) from None
    if not math.isfinite(n):
        raise service_error(error, service, key, f"{value!r} is not a number of CPUs", "write it like 0.5 or 1")
    return n
