"""The configuration's records: frozen dataclasses, the values their settings allow, and their defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..findings import Severity
from ..golden import UNSUPPORTED as UNSUPPORTED_STATUSES
from .images import Image, build_order

if TYPE_CHECKING:
    from ..loadgen import Request as LoadRequest

DAY = 24 * 3600  # no timeout in the config may exceed it
MAX_PARALLEL = 64
CACHE_BACKENDS = ("auto", "inline", "registry", "local", "gha", "none")
PROGRESS_MODES = ("auto", "plain", "tty", "quiet")
PROFILES = ("prod", "dev")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


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
    # Where this environment's services are pushed and pulled: [registry] with its own `registry` (address) and
    # `namespace` and the PIPELINES_* variables applied, as loaded (None: [registry]; see Config.registry_for).
    registry: Registry | None = None


@dataclass(frozen=True)
class LintSettings:
    threshold: Severity
    waivers: Path
    hadolint_config: Path | None
    waiver_max_days: int
    require_labels: bool = False  # PL-D017 (OCI labels) a warning instead of info
    # Findings accepted until a date (`pipelines baseline`), for lint and scan; a missing file is no baseline.
    baseline: Path | None = None
    baseline_days: int = 90  # how long `pipelines baseline` accepts what it records


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
class Setting:
    """A setting an environment variable may override: its effective value and where that came from."""

    key: str  # the config key path, e.g. "registry.address" or "environments.prod.registry"
    value: str
    source: str  # the variable's name, "FILE: KEY" of the key it was read from, or "default: WHY"


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
    # The overridable settings (pipelines.config.variables) as they took effect, each with its source.
    settings: tuple[Setting, ...] = ()

    def setting(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def registry_for(self, env: str | None) -> Registry:
        """The registry ``env``'s services are pushed to and pulled from: its own, else [registry]."""
        return self.env(env).registry or self.registry

    def repo(self, image: Image, env: str | None) -> str:
        """The repository ``image`` is pushed to when built for ``env``.

        A golden base is shared by every environment and pinned once in the lock, so it lives in [registry];
        a service lives in its environment's registry.
        """
        return (self.registry if image.is_base else self.registry_for(env)).repo(image.image)

    def scan_for(self, env: str) -> ScanSettings:
        """[scan] with the environment's [environments.ENV.scan] overrides applied."""
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

    def golden_notices(self, names: Iterable[str] | None = None) -> list[str]:
        """What every report about these images (default: all) says of their golden bases.

        A Python other than the one the config asked for; a Debian suite without security support (testing);
        a service whose bases carry different Pythons (a virtualenv made in one does not run in the other).
        """
        wanted = [self.images[n] for n in (self.images if names is None else names) if n in self.images]
        lines = [
            f"{i.name}: python {i.python_requested} requested, {i.python} used "
            f"({i.golden}, Debian {i.debian_suite or 'unknown'})"
            for i in wanted
            if i.python_requested and i.python_requested != i.python
        ]
        unsupported: dict[tuple[str, str], list[str]] = {}
        for i in wanted:
            if i.debian_status in UNSUPPORTED_STATUSES:
                unsupported.setdefault((i.debian_suite, i.debian_status), []).append(i.name)
        lines += [
            f"{', '.join(who)}: Debian {suite} is Debian {status}, without the Debian security team's support "
            "(security fixes arrive late or not at all)"
            for (suite, status), who in unsupported.items()
        ]
        for i in wanted:
            pythons = {
                f"{self.images[b].name} {self.images[b].python}"
                for b in i.bases.values()
                if b in self.images and self.images[b].python
            }
            if len({p.rsplit(" ", 1)[1] for p in pythons}) > 1:
                lines.append(
                    f"{i.name}: its bases carry different Pythons ({', '.join(sorted(pythons))}): "
                    "a virtualenv made in one does not run in the other"
                )
        return lines

    def build_order(self, names: list[str] | None = None) -> list[list[Image]]:
        """Images in dependency levels: each level only needs earlier ones.

        ``names`` restricts the result to those images and what they need.
        """
        return build_order(str(self.file), self.images, names)
