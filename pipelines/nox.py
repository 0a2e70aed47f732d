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
import nox.registry

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


# A doc's first line is what `nox -l` shows.
SESSIONS = (
    Spec(
        "lint",
        ("lint",),
        "ci",
        "Lint Dockerfiles and Compose files: Hadolint and the hardening policy (args go to `pipelines lint`).",
    ),
    Spec(
        "build",
        ("build",),
        "ci",
        "Build the golden base images, then every service (args go to `pipelines build`, e.g. -- --env prod).",
    ),
    Spec(
        "scan",
        ("scan",),
        "ci",
        "Scan the last build's images (after build): Trivy (+ Snyk with a token), the severity gate, SBOMs, reports.",
    ),
    Spec(
        "verify",
        ("verify",),
        "ci",
        "Prove the hardening matrix of the last build's images (after build), cell by cell (args: `pipelines verify`).",
    ),
    Spec(
        "smoke",
        ("smoke",),
        "ci",
        "Start the last build's stack (after build), probe it end to end, tear it down (args: `pipelines smoke`).",
    ),
    Spec(
        "sign",
        ("sign",),
        "release",
        "Sign an environment's scanned images with cosign, offline (args go to `pipelines sign`: -- --env ENV).",
    ),
    Spec(
        "deploy",
        ("deploy",),
        "release",
        "Deploy an environment's verified, signed images, health-gated (args go to `pipelines deploy`).\n\n"
        "In CI, pass `-- --env ENV --expect-commit SHA`: a release of another commit is refused. The history\n"
        "and rollback are `pipelines releases --env ENV` and `pipelines rollback --env ENV [--to rN]`.",
    ),
    Spec(
        "render",
        ("render", "k8s"),
        "release",
        "Render an environment's Kubernetes manifests (args go to `pipelines render k8s`, e.g. -- --env prod).",
    ),
    Spec(
        "load",
        ("load",),
        "dev",
        "Load-check the stack's [load] service with wrk (after build; args go to `pipelines load`).",
    ),
    Spec(
        "bench",
        ("bench",),
        "dev",
        "Benchmark builds and image sizes, JSON and Markdown (-- --lint, --scan, --verify or --deploy for those).",
    ),
    Spec(
        "doctor",
        ("doctor",),
        "dev",
        "Report the Docker engine, buildx, Compose and builder versions; fail when the build lacks one.",
    ),
)


def stage(session: nox.Session, *command: str) -> None:
    """Run one `pipelines` command with the session's arguments, in the session's environment."""
    if session.virtualenv.is_sandboxed:  # ``install`` put the package, and so its command, there
        session.run("pipelines", *command, *session.posargs)
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
    # A noxfile's own session defined above this call would be replaced without a word (Nox only warns).
    taken = sorted((({s.name for s in SESSIONS} | {"ci"}) - skip) & set(nox.registry.get()))
    if taken:
        raise ValueError(
            f"pipelines.nox.sessions(): the noxfile defines {', '.join(taken)} already: "
            f"pass exclude={taken!r} to keep its own"
        )
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
