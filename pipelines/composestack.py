"""A Compose stack for one run: unique project, rendered config, health wait, guaranteed teardown.

Smoke tests, the load check and deploys bring stacks up; this is the one
place that knows how to start one, how to tell when it is healthy (one-shot
jobs that exit 0 count as done), how to collect evidence when it is not, and
how to remove every container, network and volume of the run. It knows
nothing of the services inside: their names come from the rendered Compose
config, their secrets from its top-level ``secrets:``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _proc, compose_model
from .compose_model import Project
from .composespec import duration_ns
from .errors import CommandFailed, GateFailed, InputError, PipelineError
from .tools import Toolchain

if TYPE_CHECKING:  # the config and build record (pydantic) are the stage's; a smoke suite re-opening the stack
    # from its handle needs neither, and its start-up is on the stage's clock.
    from . import manifest
    from .config import Config
    from .engine import Engine

LOG_TAIL = 20
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HANDLE = "stack.json"  # written beside a running stack for its test suite (pipelines.testing)
LOAD_PATHS = "load-paths.txt"  # where a load seed test lists the paths it wants driven
HEALTH_OVERRIDE = "compose.health.yaml"  # written beside a smoke stack: faster health probes while it starts
IMAGES_OVERRIDE = "compose.images.yaml"  # written beside a stack: the build's images by image ID, not by tag
# Engines from 25 (API 1.44) probe every start_interval during start_period;
# Compose refuses the key on older engines, which probe every `interval` from
# the start, so a short-lived smoke stack gets a short interval there instead.
# Only checks with a start_period are touched: failures within it do not count,
# so asking sooner cannot fail a service that the check as written would pass.
START_INTERVAL_ENGINE = (25, 0)
# From 25 the short interval lasts only while the service is starting; then the
# written interval applies again. Shorter is not faster on a small machine:
# at 100 ms the probes compete with the services' own start-up (measured on
# 26.1.5 with 2 cores: 4.2-5.3 s to healthy, against 3.4-5.1 s at 250 ms).
START_INTERVAL = "250ms"
# Before 25 the interval lasts the whole run, and every probe takes CPU from
# the services starting beside it. 500 ms: 250 ms for all checks, or for the
# database alone, gained nothing measurable on 20.10 (2 cores, load 3-4).
OLD_ENGINE_INTERVAL = "500ms"
THROWAWAY_STOP_S = 2  # a throwaway stack's containers: SIGKILL after this (the services stop within it)


def go_seconds(value: object) -> float | None:
    """Seconds in a Compose duration ("1m30s", "500ms", or a number of seconds); None when it is none."""
    if value is None:
        return None
    try:
        return duration_ns(value) / 1e9
    except ValueError:
        return None


def health_override(config: Project, engine_version: tuple[int, int, int]) -> dict[str, Any] | None:
    """A Compose overlay that makes health visible sooner, or None when there is nothing to speed up.

    Only enabled healthchecks with a start_period are touched: the test, its
    retries and its start_period stay as written, so a service is judged by
    the same probe, just asked earlier, and a probe that fails while the
    service starts still does not count. An interval already shorter than
    ours is kept.
    """
    new_engine = engine_version[:2] >= START_INTERVAL_ENGINE
    key, value = ("start_interval", START_INTERVAL) if new_engine else ("interval", OLD_ENGINE_INTERVAL)
    ours = go_seconds(value) or 0.0
    services: dict[str, Any] = {}
    for name, svc in config.services.items():
        hc = svc.healthcheck
        if hc is None or hc.disable or hc.test in (("NONE",), "NONE"):
            continue
        if not go_seconds(hc.start_period):
            continue
        # Unset, start_interval is the engine's default (5 s, or the interval on some 25.x/26.x releases).
        written = go_seconds(hc.start_interval if new_engine else hc.interval)
        if written is not None and 0 < written <= ours:
            continue
        services[name] = {"healthcheck": {key: value}}
    return {"services": services} if services else None


@dataclass
class ServiceState:
    service: str
    state: str  # running, exited, created, restarting, ...
    health: str  # healthy, unhealthy, starting, "" (no healthcheck)
    exit_code: int

    @property
    def done(self) -> bool:
        return self.state == "exited" and self.exit_code == 0

    @property
    def ready(self) -> bool:
        return self.health == "healthy" or (self.state == "running" and self.health == "")


def http(
    method: str,
    url: str,
    *,
    auth: tuple[str, str] | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to a stack on loopback: (status, headers, body); HTTP errors are answers, not exceptions."""
    import base64

    req = urllib.request.Request(url, method=method, data=body)  # noqa: S310 - loopback URL of our own stack
    if body is not None:
        req.add_header("Content-Type", content_type)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    finally:
        _proc.record_interval("stack http", time.monotonic() - start)


@dataclass
class Stack:
    cfg: Config | None
    env_name: str
    project: str
    run_dir: Path
    tools: Toolchain
    extra_files: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    compose_files: tuple[Path, ...] = ()  # set for a stack re-opened from its handle
    fast_health: bool = False  # add health_override(): smoke wants "healthy" the moment it is true
    via: dict[str, str] = field(default_factory=dict)  # [smoke].via: an unpublished port -> the front door's
    throwaway: bool = False  # smoke and load runs: nothing of it outlives the run (see down())
    # Set by prepare(): each build image's ID (proven to be the record's), and the Compose services running one.
    subjects: dict[str, str] = field(default_factory=dict)  # build image name -> image ID
    pins: dict[str, str] = field(default_factory=dict)  # Compose service -> the image ID it runs
    # Where the run's secret files live. prepare() makes a private directory (0700) outside run_dir when none
    # is given: run_dir is under artifacts/, which CI uploads, and down() removes it with the stack.
    secrets_path: Path | None = None
    owns_secrets: bool = False  # secrets_path is the one prepare() made

    @property
    def files(self) -> list[Path]:
        if self.compose_files:
            return list(self.compose_files)
        if self.cfg is None:
            raise PipelineError(f"stack {self.project} has neither a config nor recorded Compose files")
        return [*self.cfg.compose.files, *self.cfg.env(self.env_name).compose, *self.extra_files]

    def compose(
        self, *args: str, timeout: float = 120, check: bool = True, what: str | None = None, quiet: bool = True
    ) -> _proc.Result:
        argv = [
            self.tools.docker,
            "compose",
            "--project-name",
            self.project,
            "--project-directory",
            str(self.files[0].parent),
        ]
        for f in self.files:
            argv += ["-f", str(f)]
        return _proc.run(
            [*argv, *args],
            timeout=timeout,
            check=check,
            env=self.env,
            quiet=quiet,
            what=what or f"docker compose {args[0]}",
            secrets=self.secret_values(),
        )

    # ------------------------------------------------------------------ set-up
    @property
    def secrets_dir(self) -> Path:
        return self.secrets_path if self.secrets_path is not None else self.run_dir / "secrets"

    def remove_secrets(self) -> None:
        """Delete the private secrets directory prepare() made; a given one belongs to whoever gave it."""
        if self.owns_secrets and self.secrets_path is not None:
            shutil.rmtree(self.secrets_path, ignore_errors=True)

    def secret(self, name: str) -> str:
        path = self.secrets_dir / name
        try:
            return path.read_text().strip()
        except OSError:
            raise InputError(
                f"stack {self.project} has no secret {name!r}",
                hint="name a secret of the Compose file's top-level `secrets:` whose file lies in ${SECRETS_DIR}",
            ) from None

    def secret_values(self) -> list[str]:
        if not self.secrets_dir.is_dir():
            return []
        return [p.read_text().strip() for p in sorted(self.secrets_dir.iterdir()) if p.is_file()]

    def prepare(self) -> None:
        """Image tags from the build, fresh secrets, the rendered config; nothing started yet."""
        if self.cfg is None:
            raise PipelineError(f"stack {self.project} was re-opened from its handle and cannot be prepared again")
        if not self.cfg.compose.files:
            raise InputError(f"{self.cfg.file}: [compose].files is empty: there is no stack to bring up")
        from . import manifest

        record = manifest.load(self.cfg.project.artifacts, self.env_name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.secrets_path is None:
            # mkdtemp: 0700 and a fresh name, in TMPDIR (which the engine must be able to bind-mount from).
            self.secrets_path = Path(tempfile.mkdtemp(prefix=f"pipelines-secrets-{self.project}-"))
            self.owns_secrets = True
        self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        reg = self.cfg.registry_for(self.env_name)
        self.env.update(
            {
                "REGISTRY": reg.address,
                "NAMESPACE": reg.namespace,
                "IMAGE_TAG": record.image_tag(),
                "SECRETS_DIR": str(self.secrets_dir),
                **self.cfg.smoke.environment,
            }
        )
        self.config = self._render()
        overlays = [self._pin_images(record)]
        if self.fast_health:
            from .tools import parse_version

            override = health_override(self.rendered, parse_version(self.tools.engine_version))
            if override is not None:
                path = self.run_dir / HEALTH_OVERRIDE
                path.write_text(json.dumps(override, indent=2) + "\n")  # JSON is YAML
                overlays.append(path)
        if any(overlays):
            self.extra_files = (*self.extra_files, *(p for p in overlays if p is not None))
            self.config = self._render()
        # Every secret the stack reads from ${SECRETS_DIR} gets a fresh random value for this run.
        made = 0
        for name, spec in self.rendered.secrets.items():
            file = Path(spec.file or "")
            if file.parent == self.secrets_dir:
                file.write_text(secrets.token_urlsafe(24) + "\n")
                # Bind-mounted into containers that run as other UIDs.
                file.chmod(0o644)
                made += 1
            elif name and not file.is_file():
                raise InputError(
                    f"the stack's secret {name!r} names {file}, which does not exist",
                    hint="point it at ${SECRETS_DIR:-...}/NAME so each run gets a fresh value",
                )
        (self.run_dir / "compose.rendered.json").write_text(json.dumps(self.config, indent=2))
        from .engine import Engine

        with Engine.connect() as engine:
            missing = [s.image or name for name, s in self.rendered.services.items() if not engine.has_image(s.image)]
        if missing:
            raise PipelineError(
                f"images for {self.env_name!r} are not in the engine: {', '.join(missing)}",
                hint=f"run `pipelines build --env {self.env_name}` first",
            )
        self.save_handle()

    def _pin_images(self, record: manifest.BuildRecord) -> Path | None:
        """An overlay that runs each of the build's images by its image ID; None when no service runs one.

        Compose would take them by tag, which anyone can move (and a pushed
        build may never have written locally): each is resolved against the
        build record first, and a tag naming another image stops the run
        (exit 2). check_images() holds the started containers to these IDs.
        """
        from . import subjects
        from .engine import Engine

        with Engine.connect() as engine:
            found = {b.name: subjects.resolve(engine, b) for b in record.services}
        by_ref = {r: b.name for b in record.services for r in (b.ref, *b.tags)}
        ran = {
            service: by_ref[image]
            for service, spec in self.rendered.services.items()
            if (image := spec.image) in by_ref
        }
        self.pins = {service: found[name].image_id for service, name in ran.items()}
        # The verdict speaks for what this stack runs: a built image no service of it uses was resolved
        # (a moved tag still stops the run) but never examined, so it is no subject of smoke's.
        self.subjects = {name: found[name].image_id for name in ran.values()}
        if not self.pins:
            return None
        path = self.run_dir / IMAGES_OVERRIDE
        pinned = {"services": {service: {"image": image_id} for service, image_id in sorted(self.pins.items())}}
        path.write_text(json.dumps(pinned, indent=2) + "\n")  # JSON is YAML
        return path

    def check_images(self) -> None:
        """Every container of a pinned service runs the image ID it was pinned to, as the engine reports it."""
        from . import subjects
        from .engine import Engine

        with Engine.connect() as engine:
            for c in engine.containers({"com.docker.compose.project": self.project}):
                service = c.labels.get("com.docker.compose.service", "")
                if service in self.pins:
                    subjects.check_container(engine, c.id, self.pins[service], f"{self.project} service {service}")

    @property
    def rendered(self) -> Project:
        """The rendered config as typed records (``config`` is what is written beside the run)."""
        return compose_model.parse(self.config, source=f"the Compose config of {self.env_name!r}")

    def _render(self) -> dict[str, Any]:
        r = self.compose("config", "--format", "json", what="docker compose config")
        try:
            data: dict[str, Any] = json.loads(r.stdout)
        except json.JSONDecodeError as exc:
            raise PipelineError("docker compose config printed no JSON", seen=str(exc)) from None
        return data

    def save_handle(self) -> Path:
        """What a test suite needs to reach this stack, written beside it (no secret values)."""
        path = self.run_dir / HANDLE
        data = {
            "project": self.project,
            "env_name": self.env_name,
            "run_dir": str(self.run_dir),
            "secrets_dir": str(self.secrets_dir),
            "docker": self.tools.docker,
            "files": [str(f) for f in self.files],
            "env": self.env,
            "via": self.routes(),
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def from_handle(cls, path: Path) -> Stack:
        try:
            data = json.loads(path.read_text())
            st = cls(
                None,
                str(data["env_name"]),
                str(data["project"]),
                Path(data["run_dir"]),
                Toolchain(str(data["docker"])),
                env={str(k): str(v) for k, v in data["env"].items()},
                compose_files=tuple(Path(f) for f in data["files"]),
                via={str(k): str(v) for k, v in (data.get("via") or {}).items()},
                secrets_path=Path(data["secrets_dir"]) if data.get("secrets_dir") else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: not a stack handle ({exc})") from None
        rendered = st.run_dir / "compose.rendered.json"
        st.config = json.loads(rendered.read_text()) if rendered.is_file() else {}
        return st

    # ------------------------------------------------------------------ running
    def up(self) -> None:
        self.compose(
            "up", "--detach", "--no-build", "--pull", "never", "--quiet-pull", timeout=300, what="docker compose up"
        )

    def ps(self) -> dict[str, ServiceState]:
        r = self.compose("ps", "--all", "--format", "json", timeout=60)
        rows: list[dict[str, Any]] = []
        text = r.stdout.strip()
        if text.startswith("["):
            rows = json.loads(text)
        else:  # compose >= 2.21 prints one object per line
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {
            row["Service"]: ServiceState(
                row["Service"], row.get("State", ""), row.get("Health", ""), int(row.get("ExitCode", 0) or 0)
            )
            for row in rows
        }

    def one_shot(self, service: str) -> bool:
        """A job others wait for with service_completed_successfully."""
        return service in self.rendered.jobs()

    def engine_states(self, engine: Engine) -> dict[str, ServiceState]:
        """What `compose ps --all` says per service, from the engine's API by the project's labels.

        A few milliseconds where `docker compose ps` takes 0.1-0.3 s (a CLI
        start-up that loads the whole Compose project): the health wait asks
        every 0.1 s instead of about every 0.4 s.
        """
        states = {}
        for c in engine.containers({"com.docker.compose.project": self.project}):
            service = c.labels.get("com.docker.compose.service", "")
            if service and c.labels.get("com.docker.compose.oneoff", "False") != "True":
                # As Compose shows it: health only while running. A one-shot job built from an image with a
                # healthcheck (migrate) keeps its last probe's "unhealthy" after exiting 0.
                health = c.health if c.status == "running" else ""
                states[service] = ServiceState(service, c.status, health, c.exit_code)
        return states

    def wait_healthy(self, deadline_s: float) -> float:
        """Seconds until every service is healthy (or done, for one-shot jobs); raises on failure or timeout.

        A throwaway run's stack (smoke, load) is asked through the engine's API
        (engine_states); any other (a deploy's) through `docker compose ps`.
        """
        if not self.throwaway:
            return self._wait_healthy(self.ps, deadline_s, every=0.2)
        from .engine import Engine

        with Engine.connect() as engine:
            return self._wait_healthy(lambda: self.engine_states(engine), deadline_s, every=0.1)

    def _wait_healthy(
        self, states_now: Callable[[], dict[str, ServiceState]], deadline_s: float, every: float
    ) -> float:
        start = time.monotonic()
        expected = set(self.rendered.services)
        states: dict[str, ServiceState] = {}
        while time.monotonic() - start < deadline_s:
            states = states_now()
            failed = [
                s
                for s in states.values()
                if s.health == "unhealthy"
                or (s.state == "exited" and s.exit_code != 0)
                or (s.state == "exited" and not self.one_shot(s.service))
            ]
            if failed:
                raise GateFailed(
                    "the stack did not come up: "
                    + ", ".join(
                        f"{s.service} {s.state}{f' (exit {s.exit_code})' if s.state == 'exited' else ''}"
                        f"{f' {s.health}' if s.health else ''}"
                        for s in failed
                    ),
                    seen=self.states_table(states),
                )
            if set(states) >= expected and all(
                s.done if self.one_shot(s.service) else s.ready for s in states.values()
            ):
                return round(time.monotonic() - start, 2)
            _proc.wait(every)
        raise GateFailed(f"the stack was not healthy within {deadline_s:.0f} s", seen=self.states_table(states))

    def states_table(self, states: Mapping[str, ServiceState] | None = None) -> str:
        from .report import terminal_table

        states = states if states is not None else self.ps()
        return terminal_table(
            ["service", "state", "health", "exit"],
            [[s.service, s.state, s.health or "-", str(s.exit_code)] for s in states.values()],
        )

    def routes(self) -> dict[str, str]:
        return dict(self.via) if self.via or self.cfg is None else dict(self.cfg.smoke.via)

    def port(self, service: str, container_port: int, *, _hop: bool = False) -> str:
        """HOST:PORT where ``service``'s container port is published, or where [smoke].via reaches it."""
        r = self.compose("port", service, str(container_port), timeout=30, check=False)
        found = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if r.returncode == 0 and found and not found.endswith(":0"):
            return found
        target = self.routes().get(f"{service}:{container_port}")
        if target and not _hop:
            front, _, port = target.rpartition(":")
            return self.port(front, int(port), _hop=True)
        raise PipelineError(
            f"{service} publishes no host port for its port {container_port} in {self.env_name}",
            seen=(r.stderr or r.stdout).strip()[-500:] or None,
            hint="publish it in the environment's Compose files, or name the service in front of it in "
            f'[smoke].via (e.g. "{service}:{container_port}" = "proxy:8080")',
        )

    def copy_in(self, src: Path, service: str, dest: str) -> None:
        self.compose("cp", str(src), f"{service}:{dest}", timeout=60)

    def copy_out(self, service: str, src: str, dest: Path) -> bool:
        return self.compose("cp", f"{service}:{src}", str(dest), timeout=60, check=False).returncode == 0

    def save_logs(self) -> dict[str, str]:
        """Full logs per service under run_dir/logs; returns the last lines of each."""
        logs_dir = self.run_dir / "logs"
        logs_dir.mkdir(exist_ok=True)
        tails = {}
        for service in self.rendered.services:
            r = self.compose("logs", "--no-color", "--timestamps", service, timeout=60, check=False)
            # Compose still sends terminal control sequences with --no-color; a log file wants text.
            text = _ANSI.sub("", r.stdout + r.stderr)
            (logs_dir / f"{service}.log").write_text(text)
            tails[service] = _proc.tail(text, LOG_TAIL)
        return tails

    def stop_all(self) -> None:
        """Stop every running container of the run at once, each with its own stop signal.

        `compose down` stops in dependency order, one level after the other
        (api and the worker, then the database), each level up to its
        timeout. A throwaway run's containers have nothing to hand over:
        one `docker stop` stops them all in parallel, SIGKILL after
        THROWAWAY_STOP_S. Whatever this misses, `down` still stops.
        """
        from .engine import Engine

        try:
            with Engine.connect() as engine:
                running = [
                    c.id
                    for c in engine.containers({"com.docker.compose.project": self.project})
                    if c.status in ("running", "restarting")
                ]
        except PipelineError:
            return
        if running:
            _proc.run(
                [self.tools.docker, "stop", "--time", str(THROWAWAY_STOP_S), *running],
                timeout=60,
                check=False,
                quiet=True,
                what="docker stop (the run's containers, at once)",
            )

    def down(self) -> None:
        # Ctrl-C during teardown would leave the run's resources behind: ignore
        # it until `down` (which has its own timeout) is over.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.throwaway:
                self.stop_all()
            self.compose(
                "down",
                "--volumes",
                "--remove-orphans",
                "--timeout",
                "5",
                timeout=120,
                what="docker compose down",
                check=False,
            )
            self.remove_secrets()
        finally:
            signal.signal(signal.SIGINT, previous)


def leftovers(project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes still labelled with ``project``."""
    from .engine import Engine

    labels = {"com.docker.compose.project": project}
    with Engine.connect() as engine:
        return {
            "containers": [c.name for c in engine.containers(labels)],
            "networks": engine.networks(labels),
            "volumes": engine.volumes(labels),
        }


def project_name(prefix: str, env: str) -> str:
    return f"{prefix}-{env}-{secrets.token_hex(3)}"


@contextmanager
def running(stack: Stack, *, keep: bool, deadline_s: float) -> Iterator[float]:
    """Bring the stack up and yield seconds-to-healthy; always tear down unless keep."""
    stack.prepare()
    try:
        start = time.monotonic()
        try:
            stack.up()
        except CommandFailed as exc:
            raise GateFailed(
                f"docker compose up failed for {stack.project}",
                seen=exc.seen,
                hint="see the service states and logs below",
            ) from None
        stack.wait_healthy(max(1.0, deadline_s - (time.monotonic() - start)))
        healthy = round(time.monotonic() - start, 2)
        stack.check_images()
        yield healthy
    finally:
        if keep:
            print(
                f"kept the stack up: docker compose -p {stack.project} ... down --volumes to remove it "
                f"(secrets in {stack.secrets_dir})",
                file=sys.stderr,
            )
        else:
            stack.down()
