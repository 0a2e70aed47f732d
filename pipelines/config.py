"""Read and validate ``pipeline.toml`` in one place.

The result is a tree of frozen dataclasses; nothing else in the package reads
the file. Every problem is reported as a :class:`ConfigError` naming the file
and the dotted key path, before any build starts.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from . import inputs, refs
from .errors import ConfigError, ConfigNotFound
from .findings import Severity

if TYPE_CHECKING:
    from .loadgen import Request as LoadRequest

DEFAULT_FILE = "pipeline.toml"
DAY = 24 * 3600  # no timeout in the config may exceed it
MAX_PARALLEL = 64
CACHE_BACKENDS = ("auto", "inline", "registry", "local", "gha", "none")
PROGRESS_MODES = ("auto", "plain", "tty", "quiet")
IMAGE_KINDS = ("rootfs", "dockerfile")
PROFILES = ("prod", "dev")
ROLES = ("builder", "runtime")
_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLUGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")  # what `pytest -p NAME` takes
# Environment names end up in tags, file names and Compose project names (lowercase only).
_ENV = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SUITE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# What debootstrap and the security-index check trust by default (Debian's debian-archive-keyring package).
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

T = TypeVar("T")


class _Table:
    """A TOML table being read: typed getters that know their key path.

    Each getter marks its key as used; :meth:`done` rejects every key nobody
    asked for, so a typo is an error instead of a silently ignored setting.
    """

    def __init__(self, file: str, path: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.path = path
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem, hint=hint)

    def _get(self, name: str, kind: type[T], kind_name: str, default: T | None, required: bool) -> T | None:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "is required but missing")
            return default
        value = self.data[name]
        # bool is an int subclass; a setting that wants a number must not take true.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(name, f"expected {kind_name}, got {_type_name(value)} {value!r}")
        if isinstance(value, str):
            _no_control(self, name, value)
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(name, str, "a string", default, required)
        return value if value is not None else ""

    def opt_string(self, name: str) -> str | None:
        return self._get(name, str, "a string", None, False)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, bool, "true or false", default, False)
        return bool(value)

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._get(name, int, "an integer", default, False)
        if value is None:
            raise self.error(name, "is required but missing")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(name, f"must be {bounds}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float, low_open: bool = False) -> float:
        """A float or integer in [low, high] (or (low, high] with ``low_open``); never nan or inf."""
        self.used.add(name)
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"expected a number, got {_type_name(value)} {value!r}")
        number = float(value)
        too_low = number <= low if low_open else number < low
        if not math.isfinite(number) or too_low or number > high:
            bounds = f"{'more than' if low_open else 'from'} {low:g} {'and at most' if low_open else 'to'} {high:g}"
            raise self.error(name, f"must be {bounds}, got {value}")
        return number

    def table_list(self, name: str) -> Iterator[_Table]:
        """Each ``[[name]]`` table; its key path carries the index."""
        value = self._get(name, list, "a list of tables ([[...]])", [], False) or []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{i}]", f"expected a table, got {_type_name(item)} {item!r}")
            yield _Table(self.file, f"{self.key(name)}[{i}]", item)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, list, "a list of strings", [], False) or []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{name}[{i}]", f"expected a string, got {_type_name(item)} {item!r}")
            _no_control(self, f"{name}[{i}]", item)
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self._get(name, dict, "a table of strings", {}, False) or {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"{name}.{k}", f"expected a string, got {_type_name(v)} {v!r}")
            _no_control(self, f"{name}.{k}", v)
        return dict(value)

    def table(self, name: str, *, required: bool = False) -> _Table:
        value = self._get(name, dict, "a table", {}, required)
        return _Table(self.file, self.key(name), value or {})

    def tables(self, name: str) -> Iterator[tuple[str, _Table]]:
        """Sub-tables of ``name``, e.g. each ``[services.X]``."""
        outer = self.table(name)
        for child, value in outer.data.items():
            outer.used.add(child)
            if not isinstance(value, dict):
                raise outer.error(child, f"expected a table, got {_type_name(value)} {value!r}")
            yield child, _Table(self.file, outer.key(child), value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used)) or "none"
            raise self.error(unknown[0], "unknown key", hint=f"keys allowed here: {allowed}")


def _no_control(t: _Table, name: str, value: str) -> None:
    m = _CONTROL.search(value)
    if m:
        raise t.error(name, f"contains the control character {m.group()!r}; settings are plain text")


def _type_name(value: object) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        dt.date: "a date",
        dt.datetime: "a date-time",
        dt.time: "a time",
    }.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    source: str
    artifacts: Path
    lock: Path


@dataclass(frozen=True)
class Registry:
    address: str
    namespace: str

    def repo(self, image: str) -> str:
        parts = [p for p in (self.address, self.namespace, image) if p]
        return "/".join(parts)


@dataclass(frozen=True)
class BuildSettings:
    cache: str
    ca_bundle: Path | None
    parallel: int
    progress: str
    timeout: int
    cache_dir: Path


@dataclass(frozen=True)
class Image:
    """One image to build: a golden base image or a service."""

    name: str
    kind: str  # rootfs | dockerfile
    is_base: bool
    image: str  # repository name under registry/namespace
    context: Path | None
    dockerfile: Path | None
    target: str | None
    args: Mapping[str, str]
    # build-arg name -> base image name; the arg gets that image's digest ref.
    bases: Mapping[str, str]
    # service | builder | runtime: which lint rules apply (a builder needs root and compilers).
    role: str = "service"
    # rootfs images only
    suite: str = ""
    variant: str = ""
    mirror: str = ""
    include: tuple[str, ...] = ()
    # Every suite apt uses, updates applied at build time; "*-security" ones come from security_mirror.
    suites: tuple[str, ...] = ()
    security_mirror: str = ""
    # The OpenPGP keyring the mirrors' InRelease files must be signed by.
    keyring: Path = DEBIAN_KEYRING


@dataclass(frozen=True)
class Environment:
    name: str
    push: bool
    tags: tuple[str, ...]
    args: Mapping[str, str]
    cache: str | None
    compose: tuple[Path, ...] = ()  # overlays on top of [compose].files
    profile: str = "prod"  # hardening expected: "prod" (staging too) or "dev"
    scan: Mapping[str, Any] = field(default_factory=dict)  # overrides of [scan] gate settings
    # Deploy promotes this environment's live release (its digests, verified again) instead of a build.
    promote_from: str | None = None
    # Deploy and verify-signatures refuse a scan verdict (record or signed attestation) whose vulnerability
    # data did not cover the images in full, even when scan.accept_limited_coverage let the scan pass.
    require_full_coverage: bool = False


@dataclass(frozen=True)
class LintSettings:
    threshold: Severity
    waivers: Path
    hadolint_config: Path | None
    waiver_max_days: int
    require_labels: bool = False  # PL-D017 (OCI labels) a warning instead of info


SCAN_LEVELS = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SCANNERS = ("vuln", "secret", "misconfig")
DB_SOURCES = ("cache", "download", "bundle")
OS_UPDATE_MODES = ("fail", "warn", "off")


@dataclass(frozen=True)
class ScanSettings:
    severity: str  # gate: findings at or above this fail
    ignore_unfixed: bool
    scanners: tuple[str, ...]
    vulndb: Path | None  # explicit database: used alone, never a fallback
    db_sources: tuple[str, ...]  # tried in this order when no explicit database is given
    db_max_age_hours: int
    db_repositories: tuple[str, ...]
    allow_no_vulndb: bool
    timeout: int
    download_timeout: int
    cache_dir: Path
    # Pending Debian security updates in the images: gate (fail), report (warn) or skip (off).
    os_updates: str = "fail"
    # Coverage: data older than this, or an ecosystem in an image the data does not cover, fails the gate ...
    max_data_age_days: int = 30
    # ... unless the site knowingly accepts it; reports then say COVERAGE LIMITED and why.
    accept_limited_coverage: bool = False
    # Severity of advisories that rate nothing, per OSV ecosystem family (Debian, PyPI); built-in: HIGH.
    default_severity: Mapping[str, str] = field(default_factory=dict)
    # The "bundle" source: a directory of OSV files built into a Trivy DB on first use, and where it comes from
    # (name, repository, commit, date, license; what is not given is read from its README).
    offline_advisories: Path | None = None
    offline_provenance: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposeSettings:
    files: tuple[Path, ...]
    env_file: Path | None


@dataclass(frozen=True)
class BenchSettings:
    change_service: str | None  # whose source gets the one-line change
    max_rebuild_ratio: float  # source-change rebuild / cold build
    size_budgets_mb: Mapping[str, int]  # image name -> MB
    scan_images: tuple[str, ...] = ()  # services the scan benchmark times (default: all)
    deploy: DeployBench | None = None  # [bench.deploy]: `pipelines bench --deploy`


@dataclass(frozen=True)
class DeployBench:
    """[bench.deploy]: the load the deploy benchmark keeps on the front door, and the two deploys it makes."""

    service: str  # the Compose service that publishes the stack's port (the front door)
    port: int  # its container port
    path: str  # what every request asks for
    rate: float = 20.0  # requests a second, for the whole run
    settle: float = 5.0  # seconds of load before, between and after the deploys
    # Compose variables the child `pipelines deploy` runs with: the good deploy's must change what it rolls,
    # the bad deploy's must make the new containers fail their health gate.
    good: Mapping[str, str] = field(default_factory=dict)
    bad: Mapping[str, str] = field(default_factory=dict)
    max_failed: int = 0  # failed requests allowed during each deploy
    max_rollback_s: float = 10.0  # seconds from the bad deploy's failed gate to its rollback complete
    # [[bench.deploy.requests]]: the load's mix (method, path, body, weight); empty: GET `path` only.
    requests: tuple[LoadRequest, ...] = ()


JsonScalar = str | int | float | bool


@dataclass(frozen=True)
class Probe:
    """One HTTP probe of the live stack: ``[[smoke.probes]]``."""

    name: str
    service: str  # a service of the Compose stack (checked when the stack runs)
    port: int  # container port
    path: str  # starts with "/"
    method: str = "GET"
    status: int = 200
    json: Mapping[str, JsonScalar] = field(default_factory=lambda: MappingProxyType({}))
    json_keys: tuple[str, ...] = ()
    auth_user_secret: str | None = None
    auth_password_secret: str | None = None
    body: str | None = None
    content_type: str = "application/json"
    deadline: float = 10.0  # seconds of retrying until it passes
    environments: tuple[str, ...] = ()  # empty: every environment


@dataclass(frozen=True)
class SmokeSettings:
    deadline: float = 120.0  # seconds from `up` to every service healthy
    suite: Path | None = None  # pytest directory or file run against the live stack
    probes: tuple[Probe, ...] = ()
    # Extra variables for the stack's Compose files in smoke and load runs (e.g. API_PORT = "").
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # "SERVICE:PORT" -> "FRONT:PORT": where a container port that is not published is reached instead
    # (an environment whose front door publishes for the service behind it).
    via: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The pytest plugins the suite needs: when set, only these load (no entry-point autoload, whose imports
    # cost a second per run); unset, pytest loads every installed plugin as usual.
    plugins: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LoadSettings:
    service: str
    port: int
    paths: tuple[str, ...]
    seed: str | None = None  # pytest node id run before driving
    connections: int = 50
    duration: int = 10  # seconds
    p99_ms: float = 100.0


@dataclass(frozen=True)
class VerifyRun:
    """What one image's throwaway container needs beyond the standard hardening ([verify.run.NAME])."""

    tmpfs: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifySettings:
    """[verify]: how the hardening matrix runs each image's throwaway container."""

    health_deadline: int = 60  # seconds; an image's own start period is the target within it
    stack_only: tuple[str, ...] = ()  # images whose health needs other services (smoke proves it)
    memory_mb: int = 256
    pids: int = 128
    # Paths in an image that may be world-writable (sticky tmp dirs) or the runtime user's.
    writable_paths: tuple[str, ...] = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")  # noqa: S108
    run: Mapping[str, VerifyRun] = field(default_factory=dict)


@dataclass(frozen=True)
class SigningSettings:
    """[signing]: cosign keys. Unset keys mean nothing is signed or verified until configured."""

    # The private key: a file outside the project tree, or "env://VAR" (the PEM in an environment variable).
    key: str = ""
    # The public key deploy verifies against: a file (may be committed: it is public) or "env://VAR".
    public_key: str = ""
    password_env: str = "COSIGN_PASSWORD"  # noqa: S105 - a variable's name, not a password; the variable holding the private key's password
    attest: bool = True  # attach the scan verdict and the SBOM as signed attestations, and require them

    def secret_variables(self, key: str | None = None) -> set[str]:
        """The variables holding signing secrets: password_env and the private key's when it is env://VAR.

        ``key``: a --key given on the command line, counted too when it names a variable. No child of a
        command inherits these; cosign is given them explicitly when it signs.
        """
        names = {self.password_env, "COSIGN_PASSWORD"}  # cosign's own: a password wherever it is set
        for k in (self.key, key or ""):
            if k.startswith("env://") and k[len("env://") :]:
                names.add(k[len("env://") :])
        return names


@dataclass(frozen=True)
class Readiness:
    """[deploy.readiness.SERVICE]: the HTTP route that says a new container can take traffic.

    A container's engine health is often only liveness; what a front door routes by is
    readiness (its dependencies answer). A deploy asks this route on the new container
    before it stops an old one.
    """

    service: str
    port: int  # container port
    path: str  # starts with "/"
    status: int = 200
    json: Mapping[str, JsonScalar] = field(default_factory=lambda: MappingProxyType({}))
    timeout: float = 2.0  # seconds one request may take


def default_state(project: str, environ: Mapping[str, str] | None = None) -> Path:
    """Where release history lives unless [deploy].state says: outside any checkout of the project.

    $XDG_STATE_HOME/pipelines/PROJECT when that is set; else /var/lib/pipelines/PROJECT for root (a deploy
    host's CI runs the pipeline as root) and ~/.local/state/pipelines/PROJECT for anyone else.
    """
    env = os.environ if environ is None else environ
    name = re.sub(r"[^A-Za-z0-9._-]", "-", project).strip(".") or "project"
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    elif os.geteuid() == 0:
        base = Path("/var/lib")
    else:
        base = Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "pipelines" / name


@dataclass(frozen=True)
class DeploySettings:
    """[deploy]: where release history lives and how long a deploy waits."""

    # Release history and locks: outside the project tree, never under the disposable artifacts.
    state: Path = field(default_factory=lambda: default_state("pipelines"))
    lock_wait: int = 600  # seconds a deploy waits for another one on the same environment
    stateful: tuple[str, ...] = ()  # services never replaced by a rolling deploy (besides those with volumes)
    gate_deadline: int = 0  # seconds; a health gate is never shorter than this (0: the healthcheck alone)
    readiness: Mapping[str, Readiness] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Config:
    file: Path
    root: Path
    project: Project
    registry: Registry
    build: BuildSettings
    images: Mapping[str, Image]  # bases and services, by name
    environments: Mapping[str, Environment]
    bench: BenchSettings
    lint: LintSettings
    compose: ComposeSettings
    scan: ScanSettings
    default_env: str = field(default="dev")
    smoke: SmokeSettings = field(default_factory=SmokeSettings)
    load: LoadSettings | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    deploy: DeploySettings = field(default_factory=DeploySettings)

    def scan_for(self, env: str) -> ScanSettings:
        """[scan] with the environment's [environments.ENV.scan] overrides applied."""
        from dataclasses import replace

        return replace(self.scan, **dict(self.env(env).scan))

    @property
    def bases(self) -> list[Image]:
        return [i for i in self.images.values() if i.is_base]

    @property
    def services(self) -> list[Image]:
        return [i for i in self.images.values() if not i.is_base]

    def env(self, name: str | None) -> Environment:
        name = name or self.default_env
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                str(self.file),
                f"environments.{name}",
                "no such environment",
                hint=f"choose one of: {', '.join(self.environments)}",
            ) from None

    def build_order(self, names: list[str] | None = None) -> list[list[Image]]:
        """Images in dependency levels: each level only needs earlier ones.

        ``names`` restricts the result to those images and what they need.
        """
        wanted: set[str] = set()

        def want(n: str) -> None:
            if n not in wanted:
                wanted.add(n)
                for dep in self.images[n].bases.values():
                    want(dep)

        for n in names if names is not None else list(self.images):
            if n not in self.images:
                raise ConfigError(
                    str(self.file), "", f"no image or service named {n!r}", hint=f"known: {', '.join(self.images)}"
                )
            want(n)
        levels: list[list[Image]] = []
        done: set[str] = set()
        while len(done) < len(wanted):
            level = [
                self.images[n]
                for n in self.images
                if n in wanted and n not in done and set(self.images[n].bases.values()) <= done
            ]
            if not level:  # cycles are rejected at load time; this guards against a bug there
                raise ConfigError(str(self.file), "images", "the images' bases form a cycle")
            levels.append(level)
            done.update(i.name for i in level)
        return levels


def find_config(start: Path | None = None) -> Path:
    """``pipeline.toml`` in ``start`` or the nearest parent directory."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / DEFAULT_FILE
        if candidate.is_file():
            return candidate
    raise ConfigNotFound(
        DEFAULT_FILE,
        "",
        f"not found in {here} or any parent directory",
        hint="run from the project directory or pass --config PATH",
    )


def load(path: Path) -> Config:
    name = str(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(name, "", "file not found", hint="pass --config PATH or create pipeline.toml")
    text = inputs.read_text(path, name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(name, "", "is not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an impossible date such as 2026-02-30 (older tomllib)
        raise ConfigError(name, "", f"is not valid TOML: {exc}") from None
    if not data:
        raise ConfigError(name, "", "is empty", hint="a config needs at least [project], [registry] and a service")
    return parse(data, path)


def parse(data: Mapping[str, Any], path: Path) -> Config:
    file = str(path)
    root = path.resolve().parent
    top = _Table(file, "", data)

    t = top.table("project", required=True)
    project_name = t.string("name", required=True)
    if not project_name.strip():
        raise t.error("name", "must not be empty")
    artifacts = _inside(t, "artifacts", t.string("artifacts", "artifacts"), root)
    inputs.check_output_dir(artifacts, file, "project.artifacts")
    lock = _inside(t, "lock", t.string("lock", "pipeline.lock.json"), root)
    if lock.exists() and not lock.is_file():
        raise t.error("lock", f"{lock} exists and is not a file")
    project = Project(
        name=project_name,
        version=t.string("version", "0.0.0"),
        source=t.string("source", ""),
        artifacts=artifacts,
        lock=lock,
    )
    t.done()

    t = top.table("registry", required=True)
    address = t.string("address", required=True)
    if problem := refs.address_problem(address):
        raise t.error("address", problem)
    namespace = t.string("namespace", "")
    if namespace and (problem := refs.repository_problem(namespace)):
        raise t.error("namespace", problem)
    registry = Registry(address=address, namespace=namespace)
    t.done()

    t = top.table("build")
    ca = t.opt_string("ca_bundle")
    ca_path = None
    if ca:
        ca_path = (root / ca).resolve()
        if not ca_path.is_file():
            raise t.error("ca_bundle", f"file {ca_path} does not exist")
    build = BuildSettings(
        cache=t.choice("cache", CACHE_BACKENDS, "auto"),
        ca_bundle=ca_path,
        parallel=t.integer("parallel", 2, minimum=1, maximum=MAX_PARALLEL),
        progress=t.choice("progress", PROGRESS_MODES, "auto"),
        timeout=t.integer("timeout", 1800, minimum=1, maximum=DAY),
        cache_dir=root / t.string("cache_dir", ".pipelines/cache"),
    )
    t.done()

    images: dict[str, Image] = {}
    for name, it in top.tables("images"):
        images[name] = _image(it, name, root, is_base=True)
    for name, it in top.tables("services"):
        if name in images:
            raise it.error("", f"service {name!r} has the same name as a base image")
        images[name] = _image(it, name, root, is_base=False)
    if not any(not i.is_base for i in images.values()):
        raise ConfigError(file, "services", "at least one service is required")

    for img in images.values():
        for arg, base in img.bases.items():
            key = f"{'images' if img.is_base else 'services'}.{img.name}.bases.{arg}"
            if base not in images:
                raise ConfigError(
                    file,
                    key,
                    f"names unknown image {base!r}",
                    hint=f"base images: {', '.join(i.name for i in images.values() if i.is_base)}",
                )
            if not images[base].is_base:
                raise ConfigError(file, key, f"{base!r} is a service; only [images.*] can be bases")
    _reject_cycles(file, images)

    envs: dict[str, Environment] = {}
    for name, et in top.tables("environments"):
        if not _ENV.match(name):
            raise et.error(
                "",
                "environment names are 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
            )
        tags = et.strings("tags")
        for i, tag in enumerate(tags):
            if problem := refs.tag_problem(tag):
                raise et.error(f"tags[{i}]", problem)
            if tag in tags[:i]:
                raise et.error(f"tags[{i}]", f"{tag!r} is listed twice")
        cache = et.opt_string("cache")
        if cache is not None and cache not in CACHE_BACKENDS:
            raise et.error("cache", f"must be one of {', '.join(CACHE_BACKENDS)}; got {cache!r}")
        envs[name] = Environment(
            name=name,
            push=et.boolean("push", False),
            tags=tags or (name,),
            args=_args(et, "args"),
            cache=cache,
            compose=_paths(et, "compose", root),
            # A "dev" environment may relax runtime hardening (bind mounts, reload); every other one is held
            # to the production rules unless it says otherwise.
            profile=et.choice("profile", PROFILES, "dev" if name == "dev" else "prod"),
            scan=_scan_overrides(et.table("scan")),
            promote_from=et.opt_string("promote_from"),
            require_full_coverage=et.boolean("require_full_coverage", False),
        )
        et.done()
    if not envs:
        raise ConfigError(file, "environments", "at least one environment is required (e.g. [environments.dev])")
    _check_promotions(file, envs)
    default_env = top.string("default_env", next(iter(envs)))
    if default_env not in envs:
        raise top.error("default_env", f"names unknown environment {default_env!r}")
    bt = top.table("bench")
    change = bt.opt_string("change_service")
    if change is not None and (change not in images or images[change].is_base):
        raise bt.error("change_service", f"names no service: {change!r}")
    ratio_pct = bt.integer("max_rebuild_percent", 10, minimum=1, maximum=100)
    budgets = bt.table("size_budgets_mb")
    sizes = {}
    for img_name in list(budgets.data):
        if img_name not in images:
            raise budgets.error(img_name, "names no image or service")
        sizes[img_name] = budgets.integer(img_name, 0, minimum=1, maximum=1_000_000)
    budgets.done()
    scan_images = bt.strings("scan_images")
    for n in scan_images:
        if n not in images or images[n].is_base:
            raise bt.error("scan_images", f"{n!r} is not a service")
    deploy_bench = _deploy_bench(bt.table("deploy")) if "deploy" in bt.data else None
    bt.done()
    lt = top.table("lint")
    threshold = lt.choice("threshold", ("error", "warning", "info", "style"), "warning")
    hadolint_explicit = "hadolint_config" in lt.data
    hadolint_cfg = _inside(lt, "hadolint_config", lt.string("hadolint_config", ".hadolint.yaml"), root)
    if hadolint_cfg.exists() and not hadolint_cfg.is_file():
        raise lt.error("hadolint_config", f"{hadolint_cfg} is not a file")
    if hadolint_explicit and not hadolint_cfg.exists():
        raise lt.error("hadolint_config", f"file {hadolint_cfg} does not exist")
    lint = LintSettings(
        threshold=Severity.parse(threshold),
        waivers=_inside(lt, "waivers", lt.string("waivers", "security/waivers.yaml"), root),
        hadolint_config=hadolint_cfg if hadolint_cfg.is_file() else None,
        waiver_max_days=lt.integer("waiver_max_days", 90, minimum=1, maximum=3650),
        require_labels=lt.boolean("require_labels", False),
    )
    lt.done()
    sc = top.table("scan")
    vdb = sc.opt_string("vulndb")
    scanners = sc.strings("scanners") or ("vuln", "secret", "misconfig")
    sources = sc.strings("db_sources") or DB_SOURCES
    for key, values, allowed in (("scanners", scanners, SCANNERS), ("db_sources", sources, DB_SOURCES)):
        for v in values:
            if v not in allowed:
                raise sc.error(key, f"{v!r} is not one of {', '.join(allowed)}")
    scan = ScanSettings(
        severity=sc.choice("severity", SCAN_LEVELS, "HIGH"),
        ignore_unfixed=sc.boolean("ignore_unfixed", False),
        scanners=scanners,
        vulndb=(root / vdb) if vdb else None,
        db_sources=sources,
        db_max_age_hours=sc.integer("db_max_age_hours", 72, minimum=1, maximum=24 * 365),
        db_repositories=sc.strings("db_repositories"),
        allow_no_vulndb=sc.boolean("allow_no_vulndb", False),
        timeout=sc.integer("timeout", 600, minimum=10, maximum=DAY),
        download_timeout=sc.integer("download_timeout", 120, minimum=5, maximum=3600),
        cache_dir=root / sc.string("cache_dir", ".pipelines/vulndb"),
        os_updates=sc.choice("os_updates", OS_UPDATE_MODES, "fail"),
        max_data_age_days=sc.integer("max_data_age_days", 30, minimum=1),
        accept_limited_coverage=sc.boolean("accept_limited_coverage", False),
        default_severity=_default_severity(sc, str(path)),
        offline_advisories=_offline_advisories(sc, root),
        offline_provenance=_offline_provenance(sc),
    )
    sc.done()
    ct = top.table("compose")
    env_file = ct.opt_string("env_file")
    compose = ComposeSettings(
        files=_paths(ct, "files", root), env_file=_inside(ct, "env_file", env_file, root) if env_file else None
    )
    ct.done()
    smoke = _smoke(top.table("smoke"), root, envs)
    load_settings = _load(top.table("load")) if "load" in top.data else None
    bench = BenchSettings(
        change_service=change,
        max_rebuild_ratio=ratio_pct / 100,
        size_budgets_mb=sizes,
        scan_images=scan_images,
        deploy=deploy_bench,
    )
    verify = _verify(top.table("verify"), images)
    signing = _signing(top.table("signing"), root)
    for e in envs.values():
        # Promotion and deploy read the coverage from the signed scan verdict: without attestations there is none.
        if e.require_full_coverage and not signing.attest:
            raise ConfigError(
                file,
                f"environments.{e.name}.require_full_coverage",
                "needs [signing].attest = true: the coverage is read from the signed scan verdict",
                hint="set [signing].attest = true, or drop require_full_coverage",
            )
    deploy = _deploy(top.table("deploy"), root, artifacts, project_name)
    top.done()
    return Config(
        file=path,
        root=root,
        project=project,
        registry=registry,
        build=build,
        images=images,
        environments=envs,
        bench=bench,
        lint=lint,
        compose=compose,
        scan=scan,
        default_env=default_env,
        smoke=smoke,
        load=load_settings,
        verify=verify,
        signing=signing,
        deploy=deploy,
    )


def _check_promotions(file: str, envs: Mapping[str, Environment]) -> None:
    """promote_from names another environment, and following it never comes back (no cycles)."""
    for name, e in envs.items():
        if e.promote_from is None:
            continue
        key = f"environments.{name}.promote_from"
        if e.promote_from not in envs:
            raise ConfigError(
                file, key, f"names unknown environment {e.promote_from!r}", hint=f"choose one of: {', '.join(envs)}"
            )
        seen = [name]
        step: str | None = e.promote_from
        while step is not None:
            if step in seen:
                raise ConfigError(
                    file,
                    key,
                    f"promotion goes round in a circle: {' <- '.join([*seen, step])}",
                    hint="one environment at the start of the chain must deploy its own build",
                )
            seen.append(step)
            step = envs[step].promote_from


def _deploy(t: _Table, root: Path, artifacts: Path, project: str) -> DeploySettings:
    state_rel = t.opt_string("state")
    if state_rel is not None and not state_rel.strip():
        raise t.error("state", "must not be empty")
    state = (root / Path(state_rel).expanduser()).resolve() if state_rel else default_state(project)
    # The artifacts directory is disposable (CI throws it away); release history must outlive it.
    if state.is_relative_to(artifacts.resolve()):
        raise t.error(
            "state",
            f"{state} is inside the artifacts directory {artifacts}, which is disposable",
            hint=f"leave it unset (default: {default_state(project)}) or name a directory outside the checkout",
        )
    # A checkout's clean (git clean -ffdx) wipes the tree, and the code under review can write it: history
    # kept there is lost, or rewritten, by the next run.
    if state.is_relative_to(root.resolve()):
        raise t.error(
            "state",
            f"{state} is inside the project tree {root}, where a checkout's clean wipes it",
            hint=f"leave it unset (default: {default_state(project)}) or name a directory outside the checkout",
        )
    if state.exists() and not state.is_dir():
        raise t.error("state", f"{state} exists and is not a directory")
    stateful = t.strings("stateful")
    for i, name in enumerate(stateful):
        if not name.strip() or name in stateful[:i]:
            raise t.error(f"stateful[{i}]", f"{name!r} is empty or listed twice")
    out = DeploySettings(
        state=state,
        lock_wait=t.integer("lock_wait", 600, minimum=0, maximum=DAY),
        stateful=stateful,
        gate_deadline=t.integer("gate_deadline", 0, minimum=0, maximum=DAY),
        readiness=MappingProxyType({name: _readiness(name, rt) for name, rt in t.tables("readiness")}),
    )
    t.done()
    return out


def _json_scalars(t: _Table) -> dict[str, JsonScalar]:
    """A probe's `json` table: top-level keys and the scalar each must have in the answer."""
    expected = t.table("json")
    values: dict[str, JsonScalar] = {}
    for key, value in expected.data.items():
        expected.used.add(key)
        if not isinstance(value, (str, int, float, bool)):
            raise expected.error(key, f"expected a string, number or boolean, got {_type_name(value)} {value!r}")
        values[key] = value
    return values


def _readiness(service: str, t: _Table) -> Readiness:
    if not service.strip():
        raise t.error("", "needs a service name: [deploy.readiness.SERVICE]")
    port = _required_int(t, "port", 1, 65535)
    path = _url_path(t, "path", t.string("path", required=True))
    status = t.integer("status", 200, minimum=100, maximum=599)
    json_values = _json_scalars(t)
    timeout = t.number("timeout", 2.0, low=0, high=60, low_open=True)
    t.done()
    return Readiness(service, port, path, status, MappingProxyType(json_values), timeout)


def _verify(t: _Table, images: Mapping[str, Image]) -> VerifySettings:
    stack_only = t.strings("stack_only")
    for n in stack_only:
        if n not in images:
            raise t.error("stack_only", f"{n!r} names no image or service")
    writable = t.strings("writable_paths") or VerifySettings.writable_paths
    for w in writable:
        if not w.startswith("/"):
            raise t.error("writable_paths", f"{w!r} is not an absolute path")
    runs = {}
    for name, rt in t.tables("run"):
        if name not in images:
            raise rt.error("", f"{name!r} names no image or service")
        tmpfs = rt.strings("tmpfs")
        if any(not p.startswith("/") for p in tmpfs):
            raise rt.error("tmpfs", "every entry must be an absolute path")
        runs[name] = VerifyRun(tmpfs=tmpfs, environment=rt.string_map("environment"))
        rt.done()
    out = VerifySettings(
        health_deadline=t.integer("health_deadline", 60, minimum=1),
        stack_only=stack_only,
        memory_mb=t.integer("memory_mb", 256, minimum=16),
        pids=t.integer("pids", 128, minimum=8),
        writable_paths=writable,
        run=runs,
    )
    t.done()
    return out


def _signing(t: _Table, root: Path) -> SigningSettings:
    def where(name: str, *, private: bool) -> str:
        value = t.string(name, "")
        if not value or value.startswith("env://"):
            if value == "env://" or (value and not _ARG.match(value[6:])):
                raise t.error(name, f"{value!r} names no environment variable", hint='write "env://VARIABLE"')
            return value
        path = (root / Path(value).expanduser()).resolve()
        # A private key inside the project tree is one `git add -A` away from being published.
        if private and path.is_relative_to(root):
            raise t.error(
                name,
                f"{path} is inside the project tree ({root}); a private key never lives in the repository",
                hint='keep it outside (e.g. ~/.config/pipelines/cosign.key) or use "env://VARIABLE"',
            )
        return str(path)

    out = SigningSettings(
        key=where("key", private=True),
        public_key=where("public_key", private=False),
        password_env=t.string("password_env", "COSIGN_PASSWORD"),
        attest=t.boolean("attest", True),
    )
    if not _ARG.match(out.password_env):
        raise t.error("password_env", f"{out.password_env!r} is not an environment variable name")
    t.done()
    return out


def _default_severity(t: _Table, file: str) -> dict[str, str]:
    from .dbseverity import check_default_severity  # not the scan stage: every stage reads the config

    return check_default_severity(t.string_map("default_severity"), where=f"{file}: {t.key('default_severity')}")


def _offline_advisories(t: _Table, root: Path) -> Path | None:
    """The one config path allowed outside the project tree: advisory data is shared between checkouts (a
    mirror beside them, ../shared in this workspace) and is read, never written or built from."""
    rel = t.opt_string("offline_advisories")
    if rel is None:
        return None
    if not rel.strip():
        raise t.error("offline_advisories", "is empty", hint="a directory of OSV files, relative to pipeline.toml")
    return Path(os.path.normpath(root / rel))


# covers: the OSV ecosystems the data declares in full, comma-separated ("PyPI"); nothing else counts as covered.
OFFLINE_PROVENANCE_KEYS = ("name", "repository", "commit", "date", "license", "covers")


def _offline_provenance(t: _Table) -> dict[str, str]:
    given = t.string_map("offline_provenance")
    for k, v in given.items():
        if k not in OFFLINE_PROVENANCE_KEYS:
            raise t.error("offline_provenance", f"{k!r} is not one of {', '.join(OFFLINE_PROVENANCE_KEYS)}")
        if k == "commit" and not re.fullmatch(r"[0-9a-f]{7,40}", v):
            raise t.error("offline_provenance", f"commit {v!r} is not a git commit id")
        if k == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            raise t.error("offline_provenance", f"date {v!r} is not YYYY-MM-DD")
        bad = [e for e in (x.strip() for x in v.split(",")) if not re.fullmatch(r"PyPI|Debian:\d+", e)]
        if k == "covers" and bad:
            raise t.error(
                "offline_provenance",
                f"covers {bad[0]!r} is not an ecosystem the offline database can hold",
                hint='name PyPI or Debian:N as OSV spells them, comma-separated (covers = "PyPI, Debian:12")',
            )
    return given


def _scan_overrides(t: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "severity" in t.data:
        out["severity"] = t.choice("severity", SCAN_LEVELS, "HIGH")
    if "ignore_unfixed" in t.data:
        out["ignore_unfixed"] = t.boolean("ignore_unfixed", False)
    if "scanners" in t.data:
        out["scanners"] = t.strings("scanners")
        for v in out["scanners"]:
            if v not in SCANNERS:
                raise t.error("scanners", f"{v!r} is not one of {', '.join(SCANNERS)}")
    t.done()
    return out


def _inside(t: _Table, name: str, rel: str, root: Path) -> Path:
    """``root / rel``, refused when it (or a symlink on the way) leads outside the project."""
    path = refs.inside(root, rel)
    if path is None:
        raise t.error(
            name,
            f"{rel!r} is not inside the project directory {root}",
            hint="paths in the config are relative to the directory of pipeline.toml and stay inside it",
        )
    return path


def _not_a(path: Path, kind: str) -> str:
    if path.exists():
        return f"{path} is not a {'directory' if kind == 'directory' else 'regular file'}"
    return f"{kind} {path} does not exist"


def _paths(t: _Table, name: str, root: Path) -> tuple[Path, ...]:
    out = []
    for i, rel in enumerate(t.strings(name)):
        path = _inside(t, f"{name}[{i}]", rel, root)
        if not path.is_file():
            raise t.error(f"{name}[{i}]", _not_a(path, "file"))
        out.append(path)
    return tuple(out)


def _args(t: _Table, name: str) -> dict[str, str]:
    args = t.string_map(name)
    for k in args:
        if not _ARG.match(k):
            raise t.error(f"{name}.{k}", "is not a valid build-arg name")
    return args


def _image(t: _Table, name: str, root: Path, *, is_base: bool) -> Image:
    if refs.component_problem(name):
        raise t.error(
            "",
            "image names must be lowercase letters and digits, separated by single '.', '_' or '__', or by '-' "
            "(they become repository names)",
        )
    kind = t.choice("kind", IMAGE_KINDS, "dockerfile") if is_base else "dockerfile"
    image = t.string("image", name)
    if problem := refs.repository_problem(image):
        raise t.error("image", problem, hint="a repository name such as 'api' or 'team/api', without tag")
    if kind == "rootfs":
        suites = t.strings("suites")
        for i, entry in enumerate(suites):
            # Each becomes a field of a sources.list line and part of the index URLs.
            if not _SUITE.match(entry):
                raise t.error(f"suites[{i}]", f"{entry!r} is not a Debian suite name such as bookworm-security")
        suite = _matching(
            t, "suite", suites[0] if suites else "bookworm", _SUITE, "a Debian suite name such as bookworm"
        )
        if not suites:
            suites = (suite, f"{suite}-updates", f"{suite}-security")
        elif suites[0] != suite:
            raise t.error("suites", f"must start with the debootstrap suite {suite!r}; got {list(suites)}")
        img = Image(
            name=name,
            kind=kind,
            is_base=is_base,
            image=image,
            context=None,
            dockerfile=None,
            target=None,
            args={},
            bases={},
            suite=suite,
            variant=_matching(t, "variant", "minbase", _SUITE, "a debootstrap variant such as minbase"),
            mirror=_mirror(t, "mirror", "http://deb.debian.org/debian"),
            include=t.strings("include"),
            suites=suites,
            security_mirror=_mirror(t, "security_mirror", "http://deb.debian.org/debian-security"),
            keyring=_keyring(t, root),
        )
        t.done()
        return img
    context = _inside(t, "context", t.string("context", required=True), root)
    if not context.is_dir():
        raise t.error("context", _not_a(context, "directory"))
    dockerfile = _inside(t, "dockerfile", str(context / t.string("dockerfile", "Dockerfile")), root)
    if not dockerfile.is_file():
        raise t.error("dockerfile", _not_a(dockerfile, "file"))
    target = t.opt_string("target")
    if target is not None and not _STAGE.match(target):
        raise t.error("target", f"{target!r} is not a build stage name (letters, digits, '_', '.', '-')")
    img = Image(
        name=name,
        kind=kind,
        is_base=is_base,
        role=t.choice("role", ROLES, "runtime") if is_base else "service",
        image=image,
        context=context,
        dockerfile=dockerfile,
        target=target,
        args=_args(t, "args"),
        bases=_args(t, "bases"),
    )
    t.done()
    return img


# A mirror URL goes verbatim into debootstrap's argv and the image's sources.list: it must be a bare
# http(s) URL, so that no apt option ("[trusted=yes] http://..."), second field, comment ('#') or
# credentials ('@') can ride along. IPv6 literals need brackets and are refused with them.
_URL = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+/-]*)?$")


def _mirror(t: _Table, name: str, default: str) -> str:
    value = t.string(name, default)
    if not _URL.fullmatch(value):
        raise t.error(
            name,
            f"{value!r} is not a plain http:// or https:// mirror URL",
            hint="give only the URL, e.g. http://deb.debian.org/debian: no apt options such as [trusted=yes], "
            "spaces, brackets, '#', '?' or user@; the archive's signature is always checked",
        )
    return value


def _keyring(t: _Table, root: Path) -> Path:
    value = t.string("keyring", str(DEBIAN_KEYRING))
    if not value.strip():
        raise t.error("keyring", "must not be empty", hint=f"the default is {DEBIAN_KEYRING}")
    # A host file (not a project input), so it may live outside the project; relative means the project's.
    return root / value if not Path(value).is_absolute() else Path(value)


def _matching(t: _Table, name: str, default: str, pattern: re.Pattern[str], what: str) -> str:
    value = t.string(name, default)
    if not pattern.match(value):
        raise t.error(name, f"{value!r} is not {what}")
    return value


_SERVICE_PORT = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*:[0-9]{1,5}$")


def _smoke(t: _Table, root: Path, envs: Mapping[str, Environment]) -> SmokeSettings:
    deadline = t.number("deadline", 120.0, low=1, high=3600)
    suite_rel = t.opt_string("suite")
    suite = None
    if suite_rel is not None:
        suite = _inside(t, "suite", suite_rel, root)
        if not suite.exists():
            raise t.error("suite", f"{suite} does not exist", hint="a pytest directory or file inside the project")
    probes: list[Probe] = []
    for pt in t.table_list("probes"):
        probe = _probe(pt, envs)
        if any(p.name == probe.name for p in probes):
            raise pt.error("name", f"{probe.name!r} is already the name of another probe")
        probes.append(probe)
    environment = t.string_map("environment")
    for key in environment:
        if not _ARG.match(key):
            raise t.error(f"environment.{key}", "is not a valid variable name")
    via = t.string_map("via")
    for key, value in via.items():
        for what in (key, value):
            if not _SERVICE_PORT.match(what) or not 1 <= int(what.rpartition(":")[2]) <= 65535:
                raise t.error(
                    f"via.{key}", f"{what!r} is not SERVICE:PORT", hint='e.g. via = { "api:8000" = "proxy:8080" }'
                )
        if value.partition(":")[0] == key.partition(":")[0]:
            raise t.error(f"via.{key}", "reaches a service through itself", hint="name the service in front of it")
    plugins = t.strings("plugins") if "plugins" in t.data else None
    for i, plugin in enumerate(plugins or ()):
        if not _PLUGIN.match(plugin):
            raise t.error(f"plugins[{i}]", f"{plugin!r} is not a pytest plugin's module or entry-point name")
    t.done()
    return SmokeSettings(
        deadline=deadline,
        suite=suite,
        probes=tuple(probes),
        environment=MappingProxyType(dict(environment)),
        via=MappingProxyType(dict(via)),
        plugins=plugins,
    )


def _probe(t: _Table, envs: Mapping[str, Environment]) -> Probe:
    name = _nonempty(t, "name")
    service = _nonempty(t, "service")
    port = _required_int(t, "port", 1, 65535)
    path = _url_path(t, "path", t.string("path", required=True))
    method = t.choice("method", HTTP_METHODS, "GET")
    status = t.integer("status", 200, minimum=100, maximum=599)
    json_values = _json_scalars(t)
    json_keys = t.strings("json_keys")
    user, password = t.opt_string("auth_user_secret"), t.opt_string("auth_password_secret")
    if (user is None) != (password is None):
        raise t.error(
            "", "auth_user_secret and auth_password_secret go together", hint="set both, or neither (no auth)"
        )
    body = t.opt_string("body")
    content_type = t.string("content_type", "application/json")
    deadline = t.number("deadline", 10.0, low=0.1, high=600)
    environments = t.strings("environments")
    for i, env in enumerate(environments):
        if env not in envs:
            raise t.error(f"environments[{i}]", f"names unknown environment {env!r}", hint=f"known: {', '.join(envs)}")
    t.done()
    return Probe(
        name=name,
        service=service,
        port=port,
        path=path,
        method=method,
        status=status,
        json=MappingProxyType(json_values),
        json_keys=json_keys,
        auth_user_secret=user,
        auth_password_secret=password,
        body=body,
        content_type=content_type,
        deadline=deadline,
        environments=environments,
    )


def _deploy_bench(t: _Table) -> DeployBench:
    from .loadgen import MAX_RATE

    requests = tuple(_load_request(rt) for rt in t.table_list("requests"))
    names = [f"{r.method} {r.path}" for r in requests]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise t.error(f"requests[{i}]", f"names {name} a second time", hint="give each method and path once")
    if requests and "path" in t.data:
        raise t.error("path", "is the load of a single GET; with [[bench.deploy.requests]] each request has its own")
    path = requests[0].path if requests else t.string("path", required=True)
    _url_path(t, "path", path)
    good, bad = t.string_map("good"), t.string_map("bad")
    if not bad:
        raise t.error(
            "bad",
            "needs the Compose variables that make a deploy fail its health gate",
            hint='e.g. bad = { API_WORKERS = "not-a-number" }',
        )
    settings = DeployBench(
        service=_nonempty(t, "service"),
        port=_required_int(t, "port", 1, 65535),
        path=path,
        rate=t.number("rate", 20.0, low=0, high=MAX_RATE, low_open=True),
        settle=t.number("settle", 5.0, low=0, high=600),
        good=good,
        bad=bad,
        max_failed=t.integer("max_failed", 0, minimum=0),
        max_rollback_s=t.number("max_rollback_s", 10.0, low=0, high=3600, low_open=True),
        requests=requests,
    )
    t.done()
    return settings


def _load_request(t: _Table) -> LoadRequest:
    from .loadgen import MAX_BODY, MAX_WEIGHT, Request

    method = t.choice("method", HTTP_METHODS, "GET")
    path = t.string("path", required=True)
    _url_path(t, "path", path)
    body = t.opt_string("body")
    if body is not None and len(body.encode()) > MAX_BODY:
        raise t.error("body", f"is over {MAX_BODY} bytes")
    if body is not None and method in ("GET", "HEAD"):
        raise t.error("body", f"a {method} request carries no body")
    content_type = t.string("content_type", "application/json")
    weight = t.integer("weight", 1, minimum=1, maximum=MAX_WEIGHT)
    t.done()
    return Request(method, path, body.encode() if body is not None else None, content_type, weight)


def _load(t: _Table) -> LoadSettings:
    service = _nonempty(t, "service")
    port = _required_int(t, "port", 1, 65535)
    paths = t.strings("paths")
    seed_given = t.data.get("seed")
    if not paths and not seed_given:
        raise t.error(
            "paths", 'needs at least one path to drive, e.g. paths = ["/health"] (or a seed test that hands paths over)'
        )
    for i, p in enumerate(paths):
        _url_path(t, f"paths[{i}]", p)
    seed = t.opt_string("seed")
    if seed is not None and not seed.strip():
        raise t.error("seed", "must not be empty (leave it out for no seeding)")
    settings = LoadSettings(
        service=service,
        port=port,
        paths=paths,
        seed=seed,
        connections=t.integer("connections", 50, minimum=1, maximum=10_000),
        duration=t.integer("duration", 10, minimum=1, maximum=3600),
        p99_ms=t.number("p99_ms", 100.0, low=0, high=3_600_000, low_open=True),
    )
    t.done()
    return settings


def _nonempty(t: _Table, name: str) -> str:
    value = t.string(name, required=True)
    if not value.strip():
        raise t.error(name, "must not be empty")
    return value


def _required_int(t: _Table, name: str, low: int, high: int) -> int:
    if name not in t.data:
        raise t.error(name, "is required but missing")
    return t.integer(name, low, minimum=low, maximum=high)


def _url_path(t: _Table, name: str, value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise t.error(name, f"{value!r} is not a URL path: it starts with '/' and has no spaces")
    return value


def _reject_cycles(file: str, images: Mapping[str, Image]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = [*path[path.index(n) :], n]
            raise ConfigError(file, f"images.{n}.bases", f"cycle between images: {' -> '.join(cycle)}")
        state[n] = 1
        for dep in images[n].bases.values():
            visit(dep, [*path, n])
        state[n] = 2

    for n in images:
        visit(n, [])
