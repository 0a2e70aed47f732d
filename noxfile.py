"""Nox sessions: each one is a thin call into the `pipelines` package.

Sessions share their pinned requirements (requirements/dev.txt) and skip the
install when neither the lock nor pyproject.toml changed since the last run,
so a warm session starts in well under two seconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["build", "scan", "smoke"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
LOCK = ROOT / "requirements" / "dev.txt"


def _install(session: nox.Session) -> None:
    """Install the pinned tools and the package, once per change of the lock."""
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".pipelines-installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    session.install("--require-hashes", "-r", str(LOCK))
    session.install("--no-deps", "-e", ".")
    stamp.write_text(digest)


@nox.session
def build(session: nox.Session) -> None:
    """Build golden base images and every service (args go to `pipelines build`, e.g. -- --env prod)."""
    _install(session)
    session.run("pipelines", "build", *session.posargs, external=False)


@nox.session
def patch(session: nox.Session) -> None:
    """Security patch flow: rebuild what has pending Debian security updates, then scan and smoke-test it."""
    _install(session)
    session.run("pipelines", "build", "--refresh-bases", *session.posargs, external=False)
    session.run("pipelines", "scan", *session.posargs, external=False)
    session.run("pipelines", "smoke", *session.posargs, external=False)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: unit tests and real-engine integration tests (args go to pytest)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint Dockerfiles and Compose files (Hadolint + hardening policy), then the Python code (ruff, mypy)."""
    _install(session)
    session.run("pipelines", "lint", *session.posargs)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def scan(session: nox.Session) -> None:
    """Scan the built images: Trivy (+ Snyk with a token), HIGH/CRITICAL gate, SBOM and reports."""
    _install(session)
    session.run("pipelines", "scan", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """Bring the stack up, run the end-to-end probes, tear it down (args go to `pipelines smoke`)."""
    _install(session)
    session.run("pipelines", "smoke", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """Load-check the API inside the prod stack with wrk (args go to `pipelines load`)."""
    _install(session)
    session.run("pipelines", "load", *session.posargs)


@nox.session
def render(session: nox.Session) -> None:
    """Kubernetes manifests of an environment (args go to `pipelines render k8s`, e.g. -- --env prod)."""
    _install(session)
    session.run("pipelines", "render", "k8s", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark builds and image sizes (JSON + Markdown); -- --lint or -- --scan for those stages."""
    _install(session)
    session.run("pipelines", "bench", *session.posargs)


@nox.session
def doctor(session: nox.Session) -> None:
    """Report the Docker engine, buildx, compose and builder versions."""
    _install(session)
    session.run("pipelines", "doctor")


@nox.session(venv_backend="none")
def provision(session: nox.Session) -> None:
    """Install and start the container toolchain on a bare Debian host (root only, idempotent)."""
    if os.geteuid() != 0:
        session.error("provisioning installs packages and starts dockerd: run it as root")
    session.run("bash", str(ROOT / "scripts" / "provision.sh"), external=True)
