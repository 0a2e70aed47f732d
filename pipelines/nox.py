"""Reusable Nox sessions: a repository's `noxfile.py` is a few lines.

    # /// script
    # dependencies = ["nox", "hardened-pipelines[tools]"]
    # ///
    import pipelines.nox

    pipelines.nox.sessions()

Each session is one call into the `pipelines` command (arguments after `--` go to it). By default a session
runs in Nox's own environment, the one that imported this module and so has the package: no virtualenv per
session, nothing to install. With the script block above, `nox` installed the ordinary way (`pipx install
nox`) makes that environment itself when the package is missing. A repository that pins its tools in a
lock file passes ``install`` to set each session's virtualenv up instead, and ``exclude`` to define a session
of its own under the same name (for example a `lint` that also runs its Python linters, calling :func:`stage`
first).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import nox

# What a CI job runs, in order; `nox -s ci` runs them all and stops at the first red one.
CI_SESSIONS = ("lint", "build", "scan", "verify", "smoke")
# What ships a change to an environment, one `nox -s NAME -- --env ENV` step each.
RELEASE_SESSIONS = ("build", "scan", "verify", "smoke", "sign", "deploy")

Install = Callable[[nox.Session], None]


@dataclass(frozen=True)
class Spec:
    name: str
    command: tuple[str, ...]  # the `pipelines` command and any fixed arguments
    tag: str  # ci | release | dev
    doc: str


SESSIONS = (
    Spec("lint", ("lint",), "ci", "Lint Dockerfiles and Compose files: Hadolint and the hardening policy."),
    Spec("build", ("build",), "ci", "Build the golden bases and every service (e.g. -- --env prod)."),
    Spec("scan", ("scan",), "ci", "Scan the last build's images: Trivy, the severity gate, SBOMs, reports."),
    Spec("verify", ("verify",), "ci", "Prove the hardening matrix of the last build's images, cell by cell."),
    Spec("smoke", ("smoke",), "ci", "Start the last build's stack, probe it end to end, tear it down."),
    Spec("sign", ("sign",), "release", "Sign an environment's scanned images with cosign (-- --env ENV)."),
    Spec("deploy", ("deploy",), "release", "Deploy an environment's verified, signed images, health-gated."),
    Spec("render", ("render", "k8s"), "release", "Render an environment's Kubernetes manifests (-- --env ENV)."),
    Spec("bench", ("bench",), "dev", "Benchmarks, JSON and Markdown (-- --lint, --scan, --deploy, ...)."),
    Spec("doctor", ("doctor",), "dev", "Check the engine, buildx, Compose, cosign and the registry."),
)


def stage(session: nox.Session, *command: str) -> None:
    """Run one `pipelines` command with the session's arguments, in the session's environment."""
    if session.virtualenv.is_sandboxed:
        session.run("python", "-m", "pipelines", *command, *session.posargs)
    else:  # no virtualenv: the interpreter running Nox, which has the package
        session.run(sys.executable, "-m", "pipelines", *command, *session.posargs, external=True)


def sessions(
    *,
    install: Install | None = None,
    exclude: Iterable[str] = (),
    ci: Iterable[str] = CI_SESSIONS,
) -> dict[str, Callable[[nox.Session], None]]:
    """Register the standard sessions with Nox (and a `ci` session running ``ci`` in order); return them by name.

    ``install`` sets a session's virtualenv up (None: no virtualenv, Nox's own environment is used).
    ``exclude`` names sessions the noxfile defines itself; ``ci`` may name them too.
    """
    skip = set(exclude)
    unknown = skip - {s.name for s in SESSIONS} - {"ci"}
    if unknown:
        raise ValueError(f"pipelines.nox.sessions(exclude=...): no such session: {', '.join(sorted(unknown))}")
    made: dict[str, Callable[[nox.Session], None]] = {}
    for spec in SESSIONS:
        if spec.name not in skip:
            made[spec.name] = _register(spec, install)
    if "ci" not in skip:
        order = list(ci)

        def run_ci(session: nox.Session) -> None:
            session.log("CI sessions passed: " + ", ".join(order))

        run_ci.__doc__ = f"Everything CI runs, in order: {', '.join(order)}."
        run_ci.__name__ = "ci"
        made["ci"] = nox.session(name="ci", venv_backend="none", requires=order, tags=["ci"])(run_ci)
    return made


def _register(spec: Spec, install: Install | None) -> Callable[[nox.Session], None]:
    def run(session: nox.Session) -> None:
        if install is not None:
            install(session)
        stage(session, *spec.command)

    run.__doc__ = spec.doc
    run.__name__ = spec.name
    backend = None if install is not None else "none"
    return nox.session(name=spec.name, venv_backend=backend, tags=[spec.tag])(run)
