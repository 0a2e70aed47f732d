"""The records of a rendered Compose config: services and what they hold, the top-level sections, the project."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..errors import InputError
from .frozen import EMPTY, Frozen, Scalar
from .shape import At

COMPLETED = "service_completed_successfully"


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
        at = At(source, path)
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
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Mount:
    """One `volumes:` entry of a service (long syntax): bind, volume, tmpfs, ..."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    bind: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    volume: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    tmpfs: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    given: frozenset[str] = frozenset()

    def options(self, kind: str) -> Mapping[str, Frozen]:
        """The `bind:`, `volume:` or `tmpfs:` sub-options (empty for any other kind)."""
        return {"bind": self.bind, "volume": self.volume, "tmpfs": self.tmpfs}.get(kind, EMPTY)


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
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Resources:
    """`deploy.resources.limits` or `.reservations`."""

    cpus: Scalar | None = None
    memory: Scalar | None = None
    pids: int | None = None
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Deploy:
    """A service's `deploy:` section."""

    replicas: int | None = None
    mode: str | None = None
    limits: Resources = field(default_factory=Resources)
    reservations: Resources = field(default_factory=Resources)
    restart_policy: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    update_config: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    rollback_config: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    placement: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    endpoint_mode: str | None = None
    resource_extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)  # besides limits/reservations
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
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
    environment: Mapping[str, str | None] = field(default_factory=lambda: EMPTY)
    healthcheck: Healthcheck | None = None
    user: str | None = None
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    networks: Mapping[str, Attachment] | None = None  # None: the file names none (the default network)
    depends_on: Mapping[str, Dependency] = field(default_factory=lambda: EMPTY)
    deploy: Deploy | None = None
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    profiles: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    restart: str | None = None
    stop_grace_period: Scalar | None = None
    container_name: str | None = None
    cpus: Scalar | None = None
    mem_limit: Scalar | None = None
    mem_reservation: Scalar | None = None
    pids_limit: int | None = None
    scale: int | None = None
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)  # every key not above
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
    labels: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    extras: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Volume:
    """A top-level `volumes:` entry."""

    name: str | None = None
    external: bool = False
    driver: str | None = None
    driver_opts: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class FileObject:
    """A top-level `secrets:` or `configs:` entry."""

    name: str | None = None
    file: str | None = None
    external: bool = False
    environment: str | None = None
    content: str | None = None
    labels: Mapping[str, Frozen] = field(default_factory=lambda: EMPTY)
    given: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Project:
    """The whole render: the project's name and its top-level sections."""

    name: str = ""
    services: Mapping[str, Service] = field(default_factory=lambda: EMPTY)
    networks: Mapping[str, Network] = field(default_factory=lambda: EMPTY)
    volumes: Mapping[str, Volume] = field(default_factory=lambda: EMPTY)
    secrets: Mapping[str, FileObject] = field(default_factory=lambda: EMPTY)
    configs: Mapping[str, FileObject] = field(default_factory=lambda: EMPTY)
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
