"""Locate external tools and check that they are new enough.

Nothing here runs at import time: a :class:`Toolchain` is made by the command
that needs it, asks each tool once for its version (as JSON where the tool can
say it) and remembers the answer for the rest of the run.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import cached_property

from . import _proc
from .errors import CommandFailed, EngineUnavailable, ToolNotFound

MIN_ENGINE = (20, 10)
MIN_BUILDX = (0, 10)
MIN_COMPOSE = (2, 17)

PROVISION_HINT = "run `sudo scripts/provision.sh` on a Debian host, or install it with your platform's packages"

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """The first dotted version in ``text``: '20.10.24+dfsg1' -> (20, 10, 24)."""
    m = _VERSION.search(text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


def which(name: str, *, hint: str | None = None) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolNotFound(f"{name} is not installed (not found on PATH)", hint=hint or PROVISION_HINT)
    return path


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    buildkit: str

    @property
    def cache_backends(self) -> tuple[str, ...]:
        """Cache exporters this builder can use, best first."""
        if self.driver == "docker":
            # The docker driver only exports cache inline in the image.
            return ("inline",)
        return ("registry", "local", "gha", "inline")


class Toolchain:
    """The Docker CLI, engine and plugins, checked lazily and once."""

    def __init__(self, docker: str = "docker", *, timeout: float = 30.0) -> None:
        self._docker_name = docker
        self.timeout = timeout

    @cached_property
    def docker(self) -> str:
        return which(self._docker_name)

    def _docker(self, *args: str, what: str) -> _proc.Result:
        return _proc.run([self.docker, *args], timeout=self.timeout, check=False, what=what, quiet=True)

    @cached_property
    def engine_version(self) -> str:
        r = self._docker("version", "--format", "{{json .}}", what="docker version")
        try:
            data = json.loads(r.stdout or "{}")
        except json.JSONDecodeError:
            data = {}
        server = (data or {}).get("Server") or {}
        if r.returncode != 0 or not server.get("Version"):
            raise EngineUnavailable(
                "the Docker engine is not reachable",
                seen=_proc.tail(r.stderr or r.stdout, 5) or f"docker version exited {r.returncode}",
                hint="start dockerd (as root: `scripts/provision.sh` starts it) or check DOCKER_HOST",
            )
        version = str(server["Version"])
        if parse_version(version)[:2] < MIN_ENGINE:
            raise ToolNotFound(
                f"the Docker engine is too old: found {version}, need >= {_fmt(MIN_ENGINE)}",
                hint="upgrade the engine (Debian bookworm's docker.io is 20.10 and works)",
            )
        return version

    @cached_property
    def buildx_version(self) -> str:
        r = self._docker("buildx", "version", what="docker buildx version")
        if r.returncode != 0:
            raise ToolNotFound(
                "the docker buildx plugin is missing or broken",
                seen=_proc.tail(r.stderr or r.stdout, 5),
                hint="install buildx into a Docker cli-plugins directory; " + PROVISION_HINT,
            )
        try:
            version = parse_version(r.stdout.split(" ", 1)[1] if " " in r.stdout else r.stdout)
        except ValueError:
            raise ToolNotFound("could not read the buildx version", seen=r.stdout.strip()) from None
        if version[:2] < MIN_BUILDX:
            raise ToolNotFound(
                f"docker buildx is too old: found {_fmt(version)}, need >= {_fmt(MIN_BUILDX)}", hint=PROVISION_HINT
            )
        return _fmt(version)

    @cached_property
    def compose_version(self) -> str:
        r = self._docker("compose", "version", "--format", "json", what="docker compose version")
        version = None
        if r.returncode == 0:
            try:
                version = str(json.loads(r.stdout)["version"])
            except (json.JSONDecodeError, KeyError, TypeError):
                version = None
        if version is None:
            raise ToolNotFound(
                "docker compose v2 is missing (the `docker compose` plugin; docker-compose v1 is not supported)",
                seen=_proc.tail(r.stderr or r.stdout, 5),
                hint="install the compose v2 plugin into a Docker cli-plugins directory; " + PROVISION_HINT,
            )
        if parse_version(version)[:2] < MIN_COMPOSE:
            raise ToolNotFound(
                f"docker compose is too old: found {version}, need >= {_fmt(MIN_COMPOSE)}", hint=PROVISION_HINT
            )
        return version

    @cached_property
    def builder(self) -> BuilderInfo:
        self.buildx_version  # noqa: B018 - a clear message if buildx itself is missing
        r = self._docker("buildx", "inspect", what="docker buildx inspect")
        if r.returncode != 0:
            raise CommandFailed("could not inspect the active buildx builder", seen=_proc.tail(r.stderr, 5))
        fields: dict[str, str] = {}
        for line in r.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields:
                fields[key.strip()] = value.strip()
        return BuilderInfo(
            name=fields.get("Name", "default"),
            driver=fields.get("Driver", "docker"),
            buildkit=fields.get("Buildkit", fields.get("BuildKit version", "unknown")),
        )

    def require_build(self) -> None:
        """Everything `pipelines build` needs, with the first problem raised."""
        self.engine_version  # noqa: B018
        self.buildx_version  # noqa: B018

    def summary(self) -> dict[str, str]:
        """Versions of every tool that answers, and the problem for those that do not."""
        out: dict[str, str] = {}
        for key in ("engine_version", "buildx_version", "compose_version"):
            try:
                out[key.removesuffix("_version")] = getattr(self, key)
            except ToolNotFound as exc:
                out[key.removesuffix("_version")] = f"unavailable: {exc.what}"
        try:
            b = self.builder
            out["builder"] = f"{b.name} (driver {b.driver}, BuildKit {b.buildkit})"
        except (ToolNotFound, CommandFailed) as exc:
            out["builder"] = f"unavailable: {exc.what}"
        return out
