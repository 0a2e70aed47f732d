"""A Compose stack for one run: unique project, rendered config, health wait, guaranteed teardown.

Smoke tests and the load check bring the same stack up; this is the one place
that knows how to start it, how to tell when it is healthy (one-shot jobs that
exit 0 count as done), how to collect evidence when it is not, and how to
remove every container, network and volume of the run.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _proc, build
from .config import Config
from .errors import CommandFailed, GateFailed, InputError, PipelineError
from .tools import Toolchain

SECRET_FILES = ("db_password", "metrics_user", "metrics_password")
LOG_TAIL = 20


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


@dataclass
class Stack:
    cfg: Config
    env_name: str
    project: str
    run_dir: Path
    tools: Toolchain
    extra_files: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
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
            secrets=[self.secret(n) for n in SECRET_FILES if (self.secrets_dir / n).exists()],
        )

    # ------------------------------------------------------------------ set-up
    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "secrets"

    def secret(self, name: str) -> str:
        return (self.secrets_dir / name).read_text().strip()

    def prepare(self) -> None:
        """Image tags from the build, fresh secrets, the rendered config; nothing started yet."""
        if not self.cfg.compose.files:
            raise InputError(f"{self.cfg.file}: [compose].files is empty: there is no stack to bring up")
        manifest = build.load_manifest(self.cfg, self.env_name)
        images: dict[str, Any] = manifest.get("images", {})  # type: ignore[assignment]
        tags = {i["tags"][0].rsplit(":", 1)[1] for i in images.values() if i.get("kind") == "service" and i["tags"]}
        if len(tags) != 1:
            raise PipelineError(
                f"the recorded build of {self.env_name!r} has no single commit tag",
                seen=str(tags),
                hint=f"run `pipelines build --env {self.env_name}`",
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        for name in SECRET_FILES:
            value = "metrics" if name == "metrics_user" else secrets.token_urlsafe(24)
            path = self.secrets_dir / name
            path.write_text(value + "\n")
            # Bind-mounted into containers that run as other UIDs (65532, 999).
            path.chmod(0o644)
        self.env.update(
            {
                "REGISTRY": self.cfg.registry.address,
                "NAMESPACE": self.cfg.registry.namespace,
                "IMAGE_TAG": tags.pop(),
                "SECRETS_DIR": str(self.secrets_dir),
                "API_PORT": "",  # a free host port: stacks running at once do not collide
            }
        )
        r = self.compose("config", "--format", "json", what="docker compose config")
        self.config = json.loads(r.stdout)
        (self.run_dir / "compose.rendered.json").write_text(json.dumps(self.config, indent=2))
        missing = [
            s.get("image", name)
            for name, s in self.config.get("services", {}).items()
            if _proc.run(
                [self.tools.docker, "image", "inspect", s.get("image", "")], timeout=30, check=False, quiet=True
            ).returncode
            != 0
        ]
        if missing:
            raise PipelineError(
                f"images for {self.env_name!r} are not in the engine: {', '.join(missing)}",
                hint=f"run `pipelines build --env {self.env_name}` first",
            )

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
        return any(
            (d or {}).get("condition") == "service_completed_successfully"
            for s in self.config.get("services", {}).values()
            for name, d in (s.get("depends_on") or {}).items()
            if name == service
        )

    def wait_healthy(self, deadline_s: float) -> float:
        """Seconds until every service is healthy (or done, for one-shot jobs); raises on failure or timeout."""
        start = time.monotonic()
        expected = set(self.config.get("services", {}))
        states: dict[str, ServiceState] = {}
        while time.monotonic() - start < deadline_s:
            states = self.ps()
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
            time.sleep(0.5)
        raise GateFailed(f"the stack was not healthy within {deadline_s:.0f} s", seen=self.states_table(states))

    def states_table(self, states: Mapping[str, ServiceState] | None = None) -> str:
        from .report import terminal_table

        states = states if states is not None else self.ps()
        return terminal_table(
            ["service", "state", "health", "exit"],
            [[s.service, s.state, s.health or "-", str(s.exit_code)] for s in states.values()],
        )

    def port(self, service: str, container_port: int) -> str:
        r = self.compose("port", service, str(container_port), timeout=30)
        return r.stdout.strip()

    def copy_in(self, src: Path, service: str, dest: str) -> None:
        self.compose("cp", str(src), f"{service}:{dest}", timeout=60)

    def copy_out(self, service: str, src: str, dest: Path) -> bool:
        return self.compose("cp", f"{service}:{src}", str(dest), timeout=60, check=False).returncode == 0

    def save_logs(self) -> dict[str, str]:
        """Full logs per service under run_dir/logs; returns the last lines of each."""
        logs_dir = self.run_dir / "logs"
        logs_dir.mkdir(exist_ok=True)
        tails = {}
        for service in self.config.get("services", {}):
            r = self.compose("logs", "--no-color", "--timestamps", service, timeout=60, check=False)
            text = r.stdout + r.stderr
            (logs_dir / f"{service}.log").write_text(text)
            tails[service] = _proc.tail(text, LOG_TAIL)
        return tails

    def down(self) -> None:
        # Ctrl-C during teardown would leave the run's resources behind: ignore
        # it until `down` (which has its own timeout) is over.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
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
        finally:
            signal.signal(signal.SIGINT, previous)


def leftovers(docker: str, project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes still labelled with ``project``."""
    label = f"label=com.docker.compose.project={project}"
    out = {}
    for kind, args in (
        ("containers", ["ps", "--all", "--quiet", "--filter", label]),
        ("networks", ["network", "ls", "--quiet", "--filter", label]),
        ("volumes", ["volume", "ls", "--quiet", "--filter", label]),
    ):
        r = _proc.run([docker, *args], timeout=30, quiet=True)
        out[kind] = r.stdout.split()
    return out


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
        yield round(time.monotonic() - start, 2)
    finally:
        if keep:
            print(
                f"kept the stack up: docker compose -p {stack.project} ... down --volumes to remove it "
                f"(secrets in {stack.secrets_dir})",
                file=sys.stderr,
            )
        else:
            stack.down()
