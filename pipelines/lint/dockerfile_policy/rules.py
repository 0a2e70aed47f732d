"""The rule catalogue, the context the rules judge in, and how a finding is made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ...findings import Finding, Rule, Severity
from .model import Parsed, Stage

TOOL = "pipelines-dockerfile"


def _r(id_: str, sev: Severity, title: str, rationale: str, hint: str) -> Rule:
    return Rule(id_, sev, title, rationale, hint, TOOL)


E, W = Severity.ERROR, Severity.WARNING
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        _r(
            "PL-D001",
            E,
            "final stage must run as a non-root numeric UID",
            "a user name can map to root in another base image; only a numeric UID is unambiguous",
            "add `USER 65532:65532` (or another non-zero UID) as the final stage's last USER",
        ),
        _r(
            "PL-D002",
            E,
            "final stage needs an exec-form HEALTHCHECK",
            "without one the engine cannot tell a hung service from a healthy one; shell form needs a shell",
            'add `HEALTHCHECK CMD ["/path/to/binary", "arg"]`',
        ),
        _r(
            "PL-D003",
            E,
            "base images must be pinned",
            "`latest` or a missing tag changes under you; only a digest names exactly one image",
            "use `name:tag@sha256:...` (or a build arg the pipeline fills with a digest)",
        ),
        _r(
            "PL-D004",
            E,
            "no secrets in ENV or ARG",
            "ENV and ARG values are stored in the image config and history for anyone who pulls it",
            "pass secrets with `RUN --mount=type=secret` at build time, or as files at run time",
        ),
        _r(
            "PL-D005",
            E,
            "ENTRYPOINT and CMD must use exec form",
            "shell form runs under /bin/sh, which swallows SIGTERM and needs a shell in the image",
            'write `ENTRYPOINT ["/usr/bin/tini", "--", "app"]`',
        ),
        _r(
            "PL-D006",
            E,
            "no build tooling or package caches in the final stage",
            "compilers, VCS clients and caches enlarge the attack surface and the image",
            "install them in a builder stage and copy only the results into the final stage",
        ),
        _r(
            "PL-D007",
            W,
            "apt-get install without --no-install-recommends",
            "recommended packages add size and attack surface nobody asked for",
            "add --no-install-recommends",
        ),
        _r(
            "PL-D008",
            W,
            "apt-get update and install belong in one RUN",
            "a cached `update` layer makes a later `install` use stale package lists",
            "write `apt-get update && apt-get install ...` in the same RUN",
        ),
        _r(
            "PL-D009",
            W,
            "apt lists left in the layer",
            "/var/lib/apt/lists adds tens of MB to the image",
            "end the RUN with `rm -rf /var/lib/apt/lists/*`, or mount it as a BuildKit cache",
        ),
        _r(
            "PL-D010",
            W,
            "no apt upgrade in image builds",
            "upgrading in a build hides drift; rebuild from an updated base image instead",
            "drop the upgrade and refresh the base image",
        ),
        _r(
            "PL-D011",
            W,
            "copy dependency manifests and install them before copying the source",
            "a source change otherwise invalidates the dependency layer and reinstalls everything",
            "COPY requirements.txt (or the lock file) first, install, then COPY the source",
        ),
        _r(
            "PL-D012",
            W,
            "prefer COPY over ADD",
            "ADD fetches remote URLs and unpacks archives implicitly",
            "use COPY; download with a checksum in a builder stage if you must",
        ),
        _r(
            "PL-D013",
            E,
            "no download piped into a shell",
            "`curl | sh` runs whatever the server sends, unverified",
            "download to a file, verify its checksum or signature, then run it",
        ),
        _r(
            "PL-D014",
            E,
            "no sudo in Dockerfiles",
            "builds already run as root where needed; sudo in an image is a privilege-escalation path",
            "switch USER around the step instead",
        ),
        _r(
            "PL-D015",
            Severity.INFO,
            "files copied into the final stage should not belong to the runtime user",
            "a process that owns its own code can rewrite it: one exploited request becomes a persistent "
            "backdoor (verify's VFY-APPFILES finds the same in the built image)",
            "copy as root (no --chown: read-only to the runtime user) and give the user only the directories "
            "it writes, e.g. `RUN install -d -o USER /var/lib/app` or a volume",
        ),
        _r(
            "PL-D016",
            E,
            "the build context needs a strict .dockerignore",
            "without it .git, .env files, virtualenvs and tests are sent to the builder and can land in layers",
            "add a .dockerignore (an allow-list starting with `*` is best)",
        ),
        _r(
            "PL-D018",
            E,
            "remote packages must be verified",
            "`pip install https://...` or `git+https://...` installs whatever the server or branch holds today",
            "install from a package index with `--require-hashes`, or pin the archive with `#sha256=...`",
        ),
        _r(
            "PL-D019",
            E,
            "no world-writable paths",
            "a world-writable file or directory lets any process in the container rewrite it",
            "give the path to the runtime user (`chown`/`--chown`) and use 755/644; a shared scratch "
            "directory needs the sticky bit (1777)",
        ),
        _r(
            "PL-D020",
            E,
            "authentication must not be switched off",
            "`trust` authentication or an empty password lets anyone who reaches the service in",
            "remove the setting and pass a password as a secret file (*_FILE)",
        ),
        _r(
            "PL-D017",
            Severity.INFO,
            "OCI labels missing",
            "org.opencontainers.image.* labels tie an image to its source and revision",
            "add LABELs, or build through the pipeline, which sets them",
        ),
    )
}


@dataclass(frozen=True)
class Context:
    profile: str  # "prod" makes a missing digest an error
    target: str | None = None
    labels_by_pipeline: bool = False
    context_dir: Path | None = None
    role: str = "service"
    labels_required: bool = False


def finding(p: Parsed, rule: str, line: int, message: str, severity: Severity | None = None) -> Finding:
    r = RULES[rule]
    return Finding(TOOL, rule, severity or r.severity, message, p.display, line, hint=r.hint)


Check = Callable[[Parsed, Stage, Context], Iterator[Finding]]
