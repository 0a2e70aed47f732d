"""Nox sessions: each one is a thin call into the `pipelines` package.

The stage sessions (build, scan, verify, smoke, sign, deploy, render, load, bench, doctor and the `ci`
chain) are `pipelines.nox`'s, as in any repository that adopts the pipeline; this file adds what is its
own: a `lint` that also runs the Python linters and checks the workflows, the test suite (`tests`,
`unit`), the security patch flow (`patch`) and the host's provisioning (`provision`).

Sessions share their pinned requirements (requirements/dev.txt) and skip the
install when neither the lock nor pyproject.toml changed since the last run,
so a warm session starts in well under two seconds.

Every session carries one group tag: `ci` (what CI runs), `release` (what
ships a change), `dev` (tools for a developer); `./noxw -l` shows them and
`./noxw -l -t ci` lists one group.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# Nox's own environment (./noxw's .venv, requirements/nox.txt) has nox but not the package: the stage sessions
# come from this checkout, whose `pipelines` and `pipelines.nox` import only the standard library and nox.
# First on the path, so that a `pipelines` installed beside nox never stands in for the checkout's.
sys.path.insert(0, str(ROOT))

import pipelines.nox  # noqa: E402  (needs the path above)

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# A bare `./noxw` lints: it needs neither root nor a build.
nox.options.sessions = ["lint"]
nox.options.error_on_missing_interpreters = True
# Stages feed each other (scan and smoke read the last build): stop at the
# first red one, as a CI job stops at its first red step.
nox.options.stop_on_first_error = True

# What CI runs, in order: the workflow's pipeline job has exactly one
# `./noxw -s NAME` step per entry, `./noxw -s ci` (.ci/run) runs them all, and
# tests/test_ci.py fails when the three drift apart.
CI_SESSIONS = ["lint", "build", "scan", "verify", "smoke", "tests"]
# What a deploy job runs, one `./noxw -s NAME -- --env ENV` step each: for an
# environment it builds from source, and for one that promotes another
# environment's release (`promote_from`) without building. The workflow's
# deploy jobs run exactly these (tests/test_ci.py).
RELEASE_SESSIONS = ["build", "scan", "verify", "smoke", "sign", "deploy"]
PROMOTE_SESSIONS = ["deploy"]
# These read the last build (artifacts/build/ENV.json): in CI_SESSIONS after `build`.
NEEDS_BUILD = ["scan", "verify", "smoke", "load"]
# These need root: provisioning installs packages; a build that has to make the
# debootstrap rootfs base (no base-image lock yet, or a changed one) runs
# debootstrap, and so do the tests, which build. Not the default.
NEEDS_ROOT = ["provision", "build", "patch", "tests", "ci"]

LOCK = ROOT / "requirements" / "dev.txt"


def _pinned_uv() -> None:
    """Tell nox which uv it has, so it does not run `uv self version` (0.1 s) on every invocation.

    The uv beside nox is pinned (requirements/nox.txt): its version is in its
    package metadata. nox reads these module attributes before asking uv; when
    uv is not installed there, nox finds and asks one itself, as before.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        from uv import find_uv_bin

        uv_bin, uv_version = find_uv_bin(), version("uv")
    except (ImportError, FileNotFoundError, PackageNotFoundError):
        return
    from nox import virtualenv
    from packaging.version import Version

    virtualenv.HAS_UV, virtualenv.UV, virtualenv.UV_VERSION = True, uv_bin, Version(uv_version)


_pinned_uv()


# Written into the stamp: a change here re-runs _install's steps in existing environments.
INSTALL_STEPS = b"requirements, package, bytecode"
# Bytecode for everything the session imports, written once per install: uv installs without it, and with
# PYTHONDONTWRITEBYTECODE set (as on hosts and images that keep trees clean) every `pipelines` start compiled
# pydantic, docker-py and the package from source again (0.6 s of a warm verify's 1.45 s).
_COMPILE = (
    "import compileall, sys, sysconfig; "
    "ok = compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=1, workers=0); "
    "ok = compileall.compile_dir(sys.argv[1], quiet=1, workers=0) and ok; "
    "sys.exit(0 if ok else 1)"
)


def _fresh_bytecode(session: nox.Session) -> None:
    """Compile the package's modules edited since the install (tools/bytecode.py says why), in this process.

    Only when the session's interpreter is this one's version: its bytecode is
    what this interpreter writes. Loaded by path, on its own: the module is
    standard library only, and nox's environment has nothing else of `tools`.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not (Path(session.virtualenv.location) / "lib" / version).is_dir():
        return
    spec = importlib.util.spec_from_file_location("_pipelines_bytecode", ROOT / "tools" / "bytecode.py")
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.refresh(ROOT / "pipelines")


def _install(session: nox.Session) -> None:
    """Install the pinned tools and the package, once per change of the lock."""
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes() + INSTALL_STEPS).hexdigest()
    stamp = Path(session.virtualenv.location) / ".pipelines-installed"
    if stamp.exists() and stamp.read_text() == digest:
        _fresh_bytecode(session)
        return
    session.install("--require-hashes", "-r", str(LOCK))
    session.install("--no-deps", "-e", ".")
    session.run("python", "-c", _COMPILE, str(ROOT / "pipelines"), silent=True)
    stamp.write_text(digest)


# Defined before the standard sessions are registered, so `nox -l` lists it first, as CI runs it.
@nox.session(tags=["ci"])
def lint(session: nox.Session) -> None:
    """Lint Dockerfiles and Compose files (Hadolint + policy), the Python code (ruff, mypy), the workflows (zizmor)."""
    _install(session)
    pipelines.nox.stage(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    # The workflow itself: GitHub's schema (vendored in check-jsonschema, no
    # network) and zizmor's offline audits, regular persona, with no config
    # file that could waive anything; medium or above fails.
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("zizmor", "--offline", "--no-config", "--persona", "regular", "--min-severity", "medium", *workflows)


# build, scan, verify, smoke, sign, deploy, render, load, bench, doctor, each `pipelines STAGE` in a virtualenv
# that _install set up, and `ci`, which requires CI_SESSIONS in order (`tests` is defined below).
pipelines.nox.sessions(install=_install, exclude=["lint"], ci=CI_SESSIONS)


@nox.session(tags=["ci"])
def tests(session: nox.Session) -> None:
    """Run the whole test suite: the unit tier and the real-engine tests (args go to pytest)."""
    _install(session)
    # JUnit beside the stages' reports, so CI keeps the tests' verdicts with
    # them; the stages the tests run must not fill the job summary, which is
    # for the CI sessions' own reports.
    junit = ROOT / "artifacts" / "tests" / "junit.xml"
    _fetch_schemas(session)
    # One process by default: on two cores, tests that time a stack's stop or health miss their bounds when
    # four workers share the machine. PIPELINES_TEST_WORKERS=N runs N workers with `--dist loadgroup`:
    # tests/harness.py keeps each test module whose engine tests share module fixtures or engine state on one
    # worker, in order, and its run-wide locks build each environment once and keep tests that change shared
    # state apart.
    n = os.environ.get("PIPELINES_TEST_WORKERS", "0")
    workers = ["-n", n, "--dist", "loadgroup"] if n.isdigit() and int(n) > 1 else ["-n", "0"]
    session.run("pytest", *workers, f"--junitxml={junit}", *session.posargs, env={"GITHUB_STEP_SUMMARY": ""})


def _fetch_schemas(session: nox.Session) -> None:
    # Published schemas the tests validate outputs against are fetched (pinned by hash), never committed; this
    # is the one step of a test session that needs the network, so the unit tier itself stays offline.
    session.run("python", str(ROOT / "tests" / "schemas.py"), "fetch")


# The unit tier: every test that needs no engine, network or root (tests/harness.py marks the others `engine`
# from the fixtures they use). The Docker socket is made unreachable and the test process refuses connections
# beyond loopback, so a test that reaches either fails here instead of quietly passing.
UNIT_TIER = ["-m", "not engine"]
UNIT_ENV = {"DOCKER_HOST": "unix:///nonexistent.sock", "PIPELINES_TEST_TIER": "unit", "GITHUB_STEP_SUMMARY": ""}


@nox.session(tags=["dev"])
def unit(session: nox.Session) -> None:
    """The unit tier: tests needing no engine, network or root; the Docker socket unreachable (args go to pytest)."""
    _install(session)
    # One worker a core and one more: some of these tests wait on a child process or a timer, and every
    # worker collects the whole suite (measured on 2 cores: 3 workers 58 s, 2 and 4 workers 62-66 s); at
    # most 8. Work stealing keeps the long ones (Hypothesis, the real-world lint corpus) from ending the
    # run alone. `-- -n 0` runs them in one process.
    workers = ["-n", str(min(8, len(os.sched_getaffinity(0)) + 1)), "--dist", "worksteal"]
    # The tier's selection comes last: a `-m` among the arguments cannot widen it.
    # Bytecode, pytest's rewritten test modules too, is kept in the session's directory, not the tree: with
    # PYTHONDONTWRITEBYTECODE set, each worker and each `pipelines` child compiled everything again (5 s a worker).
    cache = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(Path(session.virtualenv.location) / "pycache")}
    _fetch_schemas(session)
    session.run("pytest", "-p", "no:cacheprovider", *workers, *session.posargs, *UNIT_TIER, env={**UNIT_ENV, **cache})


@nox.session(tags=["release"])
def patch(session: nox.Session) -> None:
    """Security patch flow: rebuild what has pending Debian security updates, then scan, verify and smoke-test it."""
    _install(session)
    pipelines.nox.stage(session, "build", "--refresh-bases")
    for name in ("scan", "verify", "smoke"):
        pipelines.nox.stage(session, name)


@nox.session(venv_backend="none", tags=["dev"])
def provision(session: nox.Session) -> None:
    """Install and start the container toolchain on a bare Debian host (root only, idempotent)."""
    if os.geteuid() != 0:
        session.error("provisioning installs packages and starts dockerd: run it as root")
    session.run("bash", str(ROOT / "scripts" / "provision.sh"), external=True)
