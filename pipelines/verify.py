"""The verify stage: the hardening matrix, computed from the images themselves.

One row per image, one column per check, every cell ``pass``, ``fail``,
``waived`` or ``n/a`` with the value read and the call that read it. The
facts come from three places only:

- inspection: ``docker image inspect`` and ``docker history --no-trunc``;
- the image's flattened filesystem (``docker export`` of a created, never
  started container): modes, owners and types of every entry;
- one throwaway container per image, started with the hardening every
  environment uses (read-only root with a tmpfs /tmp, cap_drop ALL,
  no-new-privileges, memory and PID limits, no network): the kernel's view of
  its PID 1 (``/proc/PID/status`` on the engine host), its health, and how
  long ``docker stop`` takes.

Secrets in layers are Trivy's secret scanner's result for exactly this image
ID (cached per ID under ARTIFACTS/verify/secrets/, and read back only when it
names that ID). A Trivy run that exits non-zero, or reports another image, is
an error (exit 2), never a pass. A throwaway container run
whose cells all passed is reused for the same image ID, the same run
settings, [verify] config, package version and code (ARTIFACTS/verify/runs/);
the report's first line names the images whose run was reused. What applies depends on
the image's role (see :data:`ROLE_RULES`): a build-time base (the debootstrap
rootfs, the builder) is where apt, a shell and compilers belong by design, so
those cells are ``n/a`` with the reason, never a silent pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import stat
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _proc, report, waivers
from .compose_model import Service
from .config import Config, Image
from .engine import Engine, ImageInfo, ImageTree, load_client
from .errors import InputError, PipelineError, ScanError
from .findings import Finding, Rule, Severity
from .result import Check, Context, Outcome, Result, Table
from .trivyresult import check_image_id, read_result, reported_image_id

if TYPE_CHECKING:
    from . import manifest

TOOL = "verify"
MB = 1_000_000
OCI = "org.opencontainers.image"
OCI_LABELS = ("title", "version", "created", "revision", "source")
BASE_LABEL = f"{OCI}.base.name"
# `docker stop` must end the process within this: SIGTERM reached the app.
STOP_TARGET_S = 2.0
STOP_GRACE_S = 5  # then SIGKILL: long enough to tell "slow" from "ignored"
HEALTH_INTERVAL_NS = 500_000_000  # the image's own healthcheck command, asked every 0.5 s
STAYS_HEALTHY_S = 1.2  # after turning healthy: still running and healthy this much later
NO_HEALTHCHECK_RUN_S = 2.0  # without a healthcheck: still running this long under a read-only root


@dataclass(frozen=True)
class Spec:
    id: str
    column: str
    title: str


CHECKS: tuple[Spec, ...] = (
    Spec("VFY-USER", "user", "runs as a numeric non-root UID/GID, in the config and effectively (PID 1)"),
    Spec("VFY-PRIVS", "privs", "PID 1 has no capabilities (CapEff 0), NoNewPrivs 1, seccomp filtering"),
    Spec("VFY-SHELL", "no shell", "runtime images: no shell, no package manager, no package caches"),
    Spec("VFY-BUILDTOOLS", "no build tools", "final images: no compilers, build tools, VCS clients or VCS metadata"),
    Spec("VFY-SETUID", "no setuid", "no setuid/setgid files"),
    Spec("VFY-WORLDWRITABLE", "no world-writable", "nothing world-writable outside /tmp-like paths"),
    Spec("VFY-APPFILES", "app read-only", "application files not writable by the runtime user"),
    Spec("VFY-HEALTHCHECK", "healthcheck", "a HEALTHCHECK in exec form"),
    Spec("VFY-HEALTHY", "healthy", "turns healthy within its start period and stays healthy"),
    Spec("VFY-SIGTERM", "SIGTERM", f"stops within {STOP_TARGET_S:.0f} s of SIGTERM (signals reach the app)"),
    Spec("VFY-READONLY", "read-only root", "starts and stays up with a read-only root filesystem"),
    Spec("VFY-SECRETS", "no secrets", "no secrets in ENV, labels, history or any layer"),
    Spec("VFY-BASE", "base pinned", "base images pinned by digest"),
    Spec("VFY-LABELS", "OCI labels", "OCI labels present: " + ", ".join(OCI_LABELS)),
    Spec("VFY-SIZE", "size", "size within the configured budget ([bench].size_budgets_mb)"),
    Spec("VFY-PYTHON", "python", "the same Python minor version in builder and runtime"),
)
SPECS = {s.id: s for s in CHECKS}

# Dockle's checkpoints and where each is proven. Dockle itself is not run: its
# checks read the same image config and filesystem this stage reads.
DOCKLE: tuple[tuple[str, str, str], ...] = (
    ("CIS-DI-0001", "Create a user for the container", "VFY-USER"),
    ("CIS-DI-0002", "Use trusted base images for containers", "VFY-BASE (golden bases, pinned by digest)"),
    ("CIS-DI-0003", "Do not install unnecessary packages", "VFY-SHELL, VFY-BUILDTOOLS, VFY-SIZE"),
    ("CIS-DI-0004", "Scan and rebuild images for security patches", "elsewhere: `pipelines scan` (os_updates gate)"),
    (
        "CIS-DI-0005",
        "Enable Content trust for Docker",
        "n/a: images are referenced by digest (VFY-BASE); Notary v1 content trust is not used",
    ),
    ("CIS-DI-0006", "Add HEALTHCHECK instruction", "VFY-HEALTHCHECK, VFY-HEALTHY"),
    ("CIS-DI-0007", "Do not use update instructions alone", "elsewhere: `pipelines lint` (hadolint DL3009, policy)"),
    ("CIS-DI-0008", "Confirm safety of setuid/setgid files", "VFY-SETUID"),
    ("CIS-DI-0009", "Use COPY instead of ADD", "elsewhere: `pipelines lint` (hadolint DL3020)"),
    ("CIS-DI-0010", "Do not store credentials in ENV/files", "VFY-SECRETS"),
    ("DKL-DI-0001", "Avoid sudo command", "VFY-SETUID (sudo is setuid root); lint PL-D014"),
    ("DKL-DI-0002", "Avoid sensitive directory mounting", "elsewhere: `pipelines lint` Compose policy (mounts)"),
    ("DKL-DI-0003", "Avoid apt-get dist-upgrade", "elsewhere: `pipelines lint` (hadolint DL3005)"),
    ("DKL-DI-0004", "Use apk add with --no-cache", "n/a: no Alpine images (apk is a package manager: VFY-SHELL)"),
    ("DKL-DI-0005", "Clear apt-get caches", "VFY-SHELL (runtime images); lint for the Dockerfiles"),
    ("DKL-DI-0006", "Avoid latest tag", "VFY-BASE"),
    ("DKL-LI-0001", "Avoid empty password", "VFY-USER (/etc/shadow read from the image)"),
    ("DKL-LI-0002", "Be unique UID/GROUPs", "VFY-USER (/etc/passwd, /etc/group read from the image)"),
    ("DKL-LI-0003", "Only put necessary files", "VFY-BUILDTOOLS (VCS metadata), VFY-SECRETS"),
)


@dataclass(frozen=True)
class Role:
    """Which groups of checks apply to an image, and why not when they do not."""

    name: str
    runs: bool  # something runs from it as its user: VFY-USER, VFY-PRIVS, VFY-APPFILES
    app: bool  # it is an application: healthcheck, health, SIGTERM, read-only root
    minimal: bool  # a runtime image: no shell, no package manager
    final: bool  # an image that ships: no build tools, no setuid files
    why: str  # the reason given in n/a cells


ROLE_RULES: dict[str, Role] = {
    "rootfs": Role(
        "rootfs",
        False,
        False,
        False,
        False,
        "build-time base (the rootfs every image starts from): apt and a shell are its purpose, nothing runs from it",
    ),
    "builder": Role(
        "builder",
        False,
        False,
        False,
        False,
        "build-time base (builder): runs as root with compilers by design; nothing ships from it",
    ),
    "runtime-base": Role(
        "runtime-base", True, False, True, True, "a runtime base: the services built on it declare how they run"
    ),
    "runtime": Role("runtime", True, True, True, True, ""),
    "service": Role("service", True, True, False, True, "a service not built on a runtime base"),
}


@dataclass(frozen=True)
class Options:
    images: tuple[str, ...] = ()  # local references; default: every image of the env's last build
    env: str | None = None
    explain: bool = False
    fresh: bool = False  # run every throwaway container again, even for an unchanged image and config


@dataclass(frozen=True)
class Target:
    name: str
    ref: str  # what is examined: once the run starts (pinned()), the image ID, never a tag
    role: Role
    image: Image | None  # its config entry, when the build record names it
    record: manifest.BuildRecord | None = None
    built: manifest.BuiltImage | None = None  # the build record's entry for it
    named: str = ""  # how it was named (a tag, a digest, the reference given), for the report

    def pinned(self, engine: Engine) -> Target:
        """This target examined by image ID: a recorded image proven to be the record's, a named one as named now."""
        from . import subjects

        if self.built is not None:
            subject = subjects.resolve(engine, self.built)
            return dataclasses.replace(self, ref=subject.ref, named=subject.source)
        return dataclasses.replace(self, ref=subjects.pin(engine, self.ref), named=self.ref)


# --------------------------------------------------------------------------- parsers


@dataclass(frozen=True)
class ProcStatus:
    """The fields of /proc/PID/status that say who a process is and what it may do."""

    uid: tuple[int, ...]  # real, effective, saved, filesystem
    gid: tuple[int, ...]
    cap_eff: int
    no_new_privs: int
    seccomp: int  # 0 off, 1 strict, 2 filter

    def summary(self) -> str:
        return (
            f"Uid {' '.join(map(str, self.uid))}; Gid {' '.join(map(str, self.gid))}; "
            f"CapEff {self.cap_eff:016x}; NoNewPrivs {self.no_new_privs}; Seccomp {self.seccomp}"
        )


def parse_status(text: str) -> ProcStatus:
    """Parse /proc/PID/status; a field missing is an error, never a default."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return ProcStatus(
            uid=tuple(int(v) for v in fields["Uid"].split()),
            gid=tuple(int(v) for v in fields["Gid"].split()),
            cap_eff=int(fields["CapEff"], 16),
            no_new_privs=int(fields["NoNewPrivs"]),
            seccomp=int(fields["Seccomp"]),
        )
    except (KeyError, ValueError) as exc:
        raise PipelineError("/proc status cannot be read", seen=f"missing or malformed field {exc}") from None


def parse_user(user: str) -> tuple[str, str]:
    """Config.User as (user, group); group is "" when not given."""
    u, _, g = user.partition(":")
    return u, g


def parse_passwd(text: str) -> list[tuple[str, int, int, str]]:
    """(name, uid, gid, home) of each well-formed /etc/passwd line."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            out.append((parts[0], int(parts[2]), int(parts[3]), parts[5]))
    return out


def empty_passwords(shadow: str) -> list[str]:
    """Accounts whose /etc/shadow password field is empty (anyone may log in as them)."""
    return [p[0] for p in (line.split(":") for line in shadow.splitlines()) if len(p) >= 2 and p[1] == ""]


def from_lines(dockerfile: str) -> list[tuple[str, str]]:
    """(image, stage alias) of each FROM, continuation lines joined, flags dropped; and ARG defaults before."""
    joined = re.sub(r"\\\r?\n", " ", dockerfile)
    out = []
    for line in joined.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            alias = rest[2] if len(rest) >= 3 and rest[1].upper() == "AS" else ""
            out.append((rest[0], alias))
    return out


def arg_defaults(dockerfile: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in dockerfile.splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and words[0].upper() == "ARG" and "=" in words[1]:
            k, _, v = words[1].strip().partition("=")
            out[k] = v.strip().strip('"')
        if words and words[0].upper() == "FROM":
            break
    return out


def expand(text: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


# Secrets in configuration: a credential-like name with a literal value, or a value shaped like a known token.
_SECRET_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)")
_NOT_A_VALUE = re.compile(r"(?i)(_FILE|_PATH|_DIR)$")
# Token shapes, each named: the name is what a report says instead of any part of the value.
_TOKEN_KINDS = {
    "aws_access_key_id": r"AKIA[0-9A-Z]{16}",
    "aws_temporary_access_key_id": r"ASIA[0-9A-Z]{16}",
    "github_token": r"gh[pousr]_[A-Za-z0-9]{36,}",
    "github_pat": r"github_pat_[A-Za-z0-9_]{40,}",
    "gitlab_pat": r"glpat-[A-Za-z0-9_-]{20}",
    "slack_token": r"xox[abprs]-[A-Za-z0-9-]{10,}",
    "stripe_live_key": r"sk_live_[A-Za-z0-9]{20,}",
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "google_api_key": r"AIza[0-9A-Za-z_-]{35}",
}
_SECRET_VALUE = re.compile("|".join(f"(?P<{kind}>{rx})" for kind, rx in _TOKEN_KINDS.items()))
_ASSIGN = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s;&|]+)")
FINGERPRINT_HEX = 8


# This process's key for secret fingerprints: random, made once at import (before any thread could race to make
# two), never written anywhere.
_FINGERPRINT_KEY = os.urandom(32)


def _redact(value: str, kind: str = "value") -> str:
    """What a report may say of a secret: its kind, its length and a fingerprint, no character of it.

    The fingerprint is an HMAC-SHA256 of the value under a random key of this
    run (``_FINGERPRINT_KEY``): within one report two findings of the same
    value share it, so a reader can tell one leaked credential from two. It
    confirms nothing offline: a plain hash (even a short prefix) with the
    exact length would let anyone holding the report (CI uploads it) test a
    dictionary of weak passwords against it, and the key that could do that
    dies with the run. The length is kept: without a checkable digest it
    confirms no guess, and it helps the owner tell which credential it is.
    """
    mac = hmac.new(_FINGERPRINT_KEY, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return f"<{kind.replace('_', '-')}, {len(value)} chars, run-hmac:{mac.hexdigest()[:FINGERPRINT_HEX]}>"


def secrets_in_config(info: ImageInfo, history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the image's ENV, labels or build history carry a literal secret (values redacted)."""
    hits: list[str] = []

    def judge(where: str, name: str, value: str) -> None:
        value = value.strip("\"'")
        token = _SECRET_VALUE.search(value)
        if token:
            hits.append(f"{where} {name}={_redact(value, token.lastgroup or 'token')} (token-shaped value)")
        elif (
            _SECRET_NAME.search(name)
            and not _NOT_A_VALUE.search(name)
            and value
            and not value.startswith(("/", "$"))
            and value.lower() not in ("true", "false", "none", "null")
        ):
            hits.append(f"{where} {name}={_redact(value)} (credential-like name with a value)")

    for e in info.env:
        k, _, v = e.partition("=")
        judge("ENV", k, v)
    for k, v in info.labels.items():
        judge("LABEL", k, v)
    for i, h in enumerate(history):
        created_by = str(h.get("CreatedBy") or "")
        for m in _ASSIGN.finditer(created_by):
            # ENV lines are in the config already; everything else (ARG values, RUN exports) is history only.
            judge(f"history[{i}]", m.group(1), m.group(2))
        if _SECRET_VALUE.search(created_by) and not any(f"history[{i}]" in x for x in hits):
            hits.append(f"history[{i}] carries a token-shaped value")
    return sorted(set(hits))


def trivy_secrets(data: Any) -> list[str]:
    """Secrets Trivy's secret scanner found: file, line and rule of each (matches redacted)."""
    out = []
    artifact = str((data or {}).get("ArtifactName", ""))
    for res in (data or {}).get("Results") or []:
        if not isinstance(res, dict) or res.get("Class") != "secret":
            continue
        target = str(res.get("Target", "?"))
        # A result on the artifact itself is the image's config (ENV, history), not a file in a layer.
        where = "image config" if target == artifact else "/" + target.lstrip("/")
        for s in res.get("Secrets") or []:
            out.append(f"{where}:{s.get('StartLine', 0)} {s.get('RuleID', '?')}")
    return out


# --------------------------------------------------------------------------- filesystem facts

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"}
PKG_MANAGERS = {
    "apt",
    "apt-get",
    "apt-cache",
    "dpkg",
    "rpm",
    "yum",
    "dnf",
    "microdnf",
    "apk",
    "zypper",
    "pip",
    "pip3",
    "pipx",
    "easy_install",
    "conda",
}
_PIP = re.compile(r"^pip3\.\d+$")
_COMPILER = re.compile(
    r"^((\w+-linux-gnu-)?(gcc|g\+\+|cpp|cc|c\+\+)(-\d+(\.\d+)*)?|clang(\+\+)?(-\d+)?|tcc|rustc|cargo|go|javac"
    r"|make|cmake|ninja|ld|as)$"
)
VCS = {"git", "svn", "hg", "bzr", "cvs", "fossil"}
VCS_DIRS = (".git", ".svn", ".hg")
_PYTHON = re.compile(r"^usr/(local/)?bin/python3\.(\d+)$")
PACKAGE_CACHES = ("var/lib/apt/lists/", "var/cache/apt/archives/")


def _in_bin(path: str) -> bool:
    parent = path.rpartition("/")[0]
    return parent.rpartition("/")[2] in ("bin", "sbin")


def executables(tree: ImageTree, match: Any) -> list[str]:
    """Files (or symlinks) in a bin/sbin directory whose name ``match`` accepts."""
    out = []
    for m in tree.entries:
        base = m.name.rpartition("/")[2]
        if (m.isfile() or m.issym()) and _in_bin(m.name) and match(base):
            out.append("/" + m.name)
    return sorted(out)


def python_minors(tree: ImageTree) -> set[str]:
    return {f"3.{m.group(2)}" for e in tree.entries if (m := _PYTHON.match(e.name)) and (e.isfile() or e.issym())}


def _under(path: str, roots: Iterable[str]) -> bool:
    p = "/" + path.strip("/")
    return any(p == r.rstrip("/") or p.startswith(r.rstrip("/") + "/") for r in roots)


# --------------------------------------------------------------------------- the container run


@dataclass
class RunFacts:
    """What one throwaway container showed. ``problem`` is set when it could not be run at all."""

    argv: str = ""  # the equivalent `docker run` line: the evidence of every run cell
    status: ProcStatus | None = None
    status_source: str = ""
    status_problem: str = ""
    health: str = ""  # healthy, unhealthy, starting, exited, "" (no healthcheck)
    healthy_after: float | None = None
    stayed: str = ""  # healthy/running after the stay period, or what it turned into
    writable_health: str = ""  # health of the attribution run with a writable root, when done
    stop_s: float | None = None
    exit_code: int | None = None
    exited_early: str = ""  # the logs' tail when the process ended before it was stopped
    problem: str = ""


def host_status(engine: Engine, container: str) -> tuple[ProcStatus | None, str, str]:
    """The kernel's view of a container's PID 1: /proc/PID/status on the engine host.

    The PID is only trusted when /proc/PID/cgroup names the container: a remote
    engine's PID read on this host would describe some other process.
    """
    attrs = engine.inspect_container(container)
    pid = int((attrs.get("State") or {}).get("Pid") or 0)
    if not pid:
        return None, "", "the process had already exited (State.Pid 0)"
    base = Path("/proc") / str(pid)
    try:
        cgroup = (base / "cgroup").read_text()
        text = (base / "status").read_text()
    except OSError as exc:
        return None, "", f"/proc/{pid} not readable on this host ({exc.strerror}): is the engine remote?"
    if container not in cgroup:
        return None, "", f"/proc/{pid}/cgroup does not name container {container[:12]}: the engine is not local"
    return parse_status(text), f"/proc/{pid}/status (container PID 1, cgroup {container[:12]})", ""


def repository(ref: str) -> str:
    """An image reference without its tag or digest (a registry's :port stays)."""
    ref = ref.split("@", 1)[0]
    head, sep, tail = ref.rpartition(":")
    return head if sep and "/" not in tail else ref


def compose_services(ctx: Context, env: str) -> dict[str, tuple[str, Service]]:
    """The environment's merged Compose services by image repository: (service name, its settings).

    Where several services run one image (a one-shot job and the server), the
    one that keeps the image's own entrypoint describes how the image runs.
    """
    from .composefile import render

    cfg = ctx.cfg
    files = [*cfg.compose.files, *cfg.env(env).compose]
    if not cfg.compose.files:
        return {}
    displays = [report.display_path(f, cfg.root) for f in files]
    rendered = render(ctx.tools, files, displays, project_dir=cfg.root, env_file=cfg.compose.env_file).project
    out: dict[str, tuple[str, Service]] = {}
    for name, svc in sorted(rendered.services.items()):
        if not svc.image:
            continue
        repo = repository(svc.image)
        if repo not in out or (out[repo][1].entrypoint and not svc.entrypoint):
            out[repo] = (name, svc)
    return out


@dataclass(frozen=True)
class Limits:
    """The limits a throwaway container gets, and where they come from."""

    memory: str | int
    pids: int
    nano_cpus: int
    tmpfs: tuple[str, ...]  # Compose's short syntax: PATH[:OPTIONS]
    source: str


def limits_for(cfg: Config, env: str, t: Target, services: Mapping[str, tuple[str, Service]]) -> Limits:
    """The environment's Compose limits for the service that runs this image, else [verify]'s."""
    vc = cfg.verify
    repo = repository(cfg.registry.repo(t.image.image) if t.image is not None else (t.named or t.ref))
    name, svc = services.get(repo, ("", Service("")))
    mem, pids, cpus = svc.mem_limit, svc.pids_limit, svc.cpus
    if name and (mem or pids or cpus):
        return Limits(
            int(mem) if mem else f"{vc.memory_mb}m",
            int(pids or vc.pids),
            int(float(cpus or 1) * 1e9),
            svc.tmpfs,
            f"limits of Compose service {name!r} in {env}",
        )
    why = f"{env}'s Compose sets no limits for {name!r}" if name else f"no Compose service of {env} runs it"
    return Limits(f"{vc.memory_mb}m", vc.pids, 1_000_000_000, (), f"[verify] limits ({why})")


def _run_kwargs(cfg: Config, t: Target, info: ImageInfo, limits: Limits, *, read_only: bool) -> dict[str, Any]:
    vc = cfg.verify
    extra = vc.run.get(t.name)
    tmpfs = {"/tmp": "rw,nosuid,nodev,size=16m,mode=1777"}  # noqa: S108 - the container's own tmpfs
    for entry in (*limits.tmpfs, *(extra.tmpfs if extra else ())):
        # Compose's short syntax: PATH[:OPTIONS] (uid=999,gid=999,mode=0755 for a server's socket dir).
        path, _, options = entry.partition(":")
        tmpfs[path] = ",".join(o for o in ("rw,nosuid,nodev,size=16m", options) if o)
    kwargs: dict[str, Any] = {
        "name": f"pipelines-verify-{re.sub(r'[^a-zA-Z0-9_.-]', '-', t.name)[:40]}-{uuid.uuid4().hex[:8]}",
        "read_only": read_only,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": limits.memory,
        "pids_limit": limits.pids,
        "nano_cpus": limits.nano_cpus,
        "tmpfs": tmpfs,
        "network_mode": "none",
        "labels": {"pipelines.stage": "verify"},
        "environment": dict(extra.environment) if extra else {},
    }
    if info.healthcheck and info.healthcheck[0] != "NONE":
        # The image's own command, start period, timeout and retries; asked more often, so the
        # first answer comes in half a second instead of the image's interval.
        kwargs["healthcheck"] = {
            "test": list(info.healthcheck),
            "interval": HEALTH_INTERVAL_NS,
            "timeout": info.health_timeout_ns or 30_000_000_000,
            "retries": info.health_retries or 3,
            "start_period": info.health_start_period_ns,
        }
    if not t.role.app:
        # A base's entrypoint is an interpreter or a shell: with stdin open it waits, so PID 1 can be read.
        kwargs["stdin_open"] = True
    return kwargs


def _argv(kwargs: Mapping[str, Any], ref: str) -> str:
    parts = ["docker run -d", "--read-only" if kwargs["read_only"] else "", "--cap-drop ALL"]
    parts += [
        "--security-opt no-new-privileges",
        f"--memory {kwargs['mem_limit']}",
        f"--pids-limit {kwargs['pids_limit']}",
    ]
    parts += [f"--cpus {kwargs['nano_cpus'] / 1e9:g}", "--network none"] + [f"--tmpfs {p}" for p in kwargs["tmpfs"]]
    parts += ["--health-interval 0.5s"] if "healthcheck" in kwargs else []
    parts += ["-i"] if kwargs.get("stdin_open") else []
    parts += [f"-e {k}" for k in kwargs["environment"]]
    return " ".join(p for p in parts if p) + f" {ref}"


def health_deadline(cfg: Config, info: ImageInfo) -> float:
    """The image's start period (plus one check's timeout) is its promise; [verify].health_deadline caps it."""
    start = info.health_start_period_ns / 1e9
    timeout = (info.health_timeout_ns or 30_000_000_000) / 1e9
    if not start:
        start = (info.health_interval_ns or 30_000_000_000) / 1e9 * (info.health_retries or 3)
    return min(start + min(timeout, 3.0), float(cfg.verify.health_deadline))


def run_container(engine: Engine, cfg: Config, t: Target, info: ImageInfo, limits: Limits) -> RunFacts:
    from .subjects import SubjectMismatch, check_container

    facts = RunFacts()
    kwargs = _run_kwargs(cfg, t, info, limits, read_only=True)
    facts.argv = _argv(kwargs, t.ref) + f" ({limits.source})"
    stack_only = t.name in cfg.verify.stack_only
    has_hc = "healthcheck" in kwargs
    try:
        with engine.running(t.ref, **kwargs) as c:
            started = time.monotonic()  # the start period counts from here, as the engine counts it
            check_container(engine, c.id, info.id, f"verify {t.name}")
            facts.status, facts.status_source, facts.status_problem = host_status(engine, c.id)
            if not t.role.app:
                return facts
            if stack_only:
                facts.health = "skipped"
            elif has_hc:
                before = time.monotonic() - started
                facts.health, took = engine.wait_health(c.id, health_deadline(cfg, info) - before)
                if facts.health == "healthy":
                    facts.healthy_after = round(before + took, 2)
                    _proc.wait(STAYS_HEALTHY_S)
                    st = engine.state(c.id)
                    facts.stayed = st.health if st.status == "running" else f"{st.status} (exit {st.exit_code})"
            else:
                _proc.wait(NO_HEALTHCHECK_RUN_S)
                st = engine.state(c.id)
                facts.stayed = "running" if st.status == "running" else f"{st.status} (exit {st.exit_code})"
            st = engine.state(c.id)
            if st.status == "running":
                facts.stop_s = engine.stop(c.id, timeout_s=STOP_GRACE_S)
                facts.exit_code = engine.state(c.id).exit_code
            else:
                facts.exited_early = _proc.tail(engine.logs(c.id, tail=20), 5)
                facts.exit_code = st.exit_code
        if has_hc and not stack_only and facts.health != "healthy":
            # Who is to blame: the read-only root, or the image's health itself? One more run, writable.
            with engine.running(t.ref, **_run_kwargs(cfg, t, info, limits, read_only=False)) as c:
                facts.writable_health, _ = engine.wait_health(c.id, health_deadline(cfg, info))
    except SubjectMismatch:
        raise  # not a finding about this image: the stage cannot say which image it ran (exit 2)
    except PipelineError as exc:
        facts.problem = exc.what + (f": {exc.seen}" if exc.seen else "")
    return facts


# --------------------------------------------------------------------------- secrets in layers


def scan_stage_secrets(artifacts: Path, image_id: str) -> tuple[list[str], str] | None:
    """The latest `pipelines scan` of exactly this image ID, when it found secrets.

    Only a finding is taken from there: a scan result without secrets does not
    say whether the secret scanner ran (scan.scanners may leave it out), so
    that is never read as a pass.
    """
    latest = artifacts / "scan" / "latest"
    files = sorted(latest.glob("*.trivy.json")) if latest.is_dir() else []
    stamps = []
    for raw in files:
        try:
            st = raw.stat()
        except OSError:
            continue
        stamps.append((str(raw), st.st_size, st.st_mtime_ns, st.st_ino))
    return _scan_stage_findings(tuple(stamps)).get(image_id)


@functools.lru_cache(maxsize=4)
def _scan_stage_findings(stamps: tuple[tuple[str, int, int, int], ...]) -> dict[str, tuple[list[str], str]]:
    """Image ID -> (secrets, evidence) of the scan results named (with size, mtime, inode) in ``stamps``.

    Read once per verify run, not once per image (each result is hundreds of kB
    of JSON); a result file that changed has other stamps, so it is read again.
    """
    out: dict[str, tuple[list[str], str]] = {}
    for name, *_ in stamps:
        raw = Path(name)
        try:
            data = json.loads(raw.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        # Keyed on the image ID Trivy reports having read, never on the file's name: a result of another image
        # (or of none) says nothing about this one.
        image_id = reported_image_id(data)
        found = trivy_secrets(data) if image_id else []
        if found and image_id not in out:
            out[image_id] = (found, f"pipelines scan: {raw} (trivy --scanners vuln,secret of this image ID)")
    return out


def cached_layer_secrets(cache: Path, image_id: str) -> list[str] | None:
    """The secrets a cached secret scan of ``image_id`` found; None (and the entry removed) when it is not one.

    The cache lives under the artifacts directory, which anyone with the
    workspace can write and CI uploads: an entry counts only when it is a
    Trivy result that names this very image ID (a forged ``{}``, another
    image's result or a torn write is discarded, and the image scanned again).
    """
    try:
        data = json.loads(cache.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if reported_image_id(data) != image_id or not _secret_result_shape(data):
        cache.unlink(missing_ok=True)
        return None
    return trivy_secrets(data)


def _secret_result_shape(data: Any) -> bool:
    """Whether ``data`` has the shape of a Trivy result (Results, and each one's Secrets: lists of objects)."""
    results = data.get("Results") if isinstance(data, dict) else None
    if results is None:
        return isinstance(data, dict)
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        return False
    for r in results:
        found = r.get("Secrets")
        if found is not None and not (isinstance(found, list) and all(isinstance(x, dict) for x in found)):
            return False
    return True


def read_layer_secrets(out: Path, r: _proc.Result, name: str, image_id: str) -> Any:
    """Trivy's secret-scan result of ``image_id`` from the run ``r``; ScanError (exit 2) unless it is exactly that.

    A non-zero exit is a scan that did not finish, whatever file it left: it
    can say neither "no secret" nor "secret", so the stage cannot run.
    """
    data = read_result(out, f"trivy secret scan of {name}", r)
    check_image_id(data, name, image_id)
    if not _secret_result_shape(data):
        raise ScanError(
            f"trivy secret scan of {name} wrote JSON that is not a Trivy result (Results or Secrets not lists)",
            hint="check the pinned Trivy version; a result that cannot be read is a failure, never a pass",
        )
    return data


def layer_secrets(cfg: Config, t: Target, info: ImageInfo) -> tuple[list[str] | None, str]:
    """Trivy's secret scanner on exactly this image ID: (secrets, evidence); ScanError when it could not run."""
    from .tools import TRIVY_QUIET, trivy_binary

    image_id = info.id.removeprefix("sha256:")
    found = scan_stage_secrets(cfg.project.artifacts, info.id)
    if found is not None:
        return found
    cache = cfg.project.artifacts / "verify" / "secrets" / f"{image_id}.json"
    cached = cached_layer_secrets(cache, info.id)
    if cached is not None:
        return cached, f"trivy image --scanners secret ({cache.name}, cached)"
    trivy, version = trivy_binary()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipelines-verify-") as tmp:
        tar = Path(tmp) / "image.tar"
        out = Path(tmp) / "secrets.json"
        _proc.run(
            ["docker", "save", "--output", str(tar), info.id], timeout=600, what=f"docker save {t.ref}", quiet=True
        )
        argv = [
            trivy,
            "image",
            "--input",
            str(tar),
            "--cache-dir",
            str(Path(tmp) / "cache"),
            "--cache-backend",
            "memory",
            "--skip-db-update",
            "--skip-java-db-update",
            "--offline-scan",
            *TRIVY_QUIET,
            "--scanners",
            "secret",
            "--format",
            "json",
            "--output",
            str(out),
        ]
        r = _proc.run(argv, timeout=600, check=False, quiet=True, what=f"trivy secret scan of {t.name}")
        data = read_layer_secrets(out, r, t.name, info.id)
        tmp_cache = cache.with_suffix(".tmp")
        tmp_cache.write_text(json.dumps(data))
        tmp_cache.replace(cache)
    return trivy_secrets(data), f"trivy {version} image --scanners secret (docker save {info.id[:19]})"


# --------------------------------------------------------------------------- the checks


@dataclass
class Facts:
    target: Target
    info: ImageInfo
    history: list[Mapping[str, Any]]
    tree: ImageTree
    run: RunFacts | None
    secrets: tuple[list[str] | None, str]
    seconds: dict[str, float] = field(default_factory=dict)
    stack_only: bool = False  # its health needs other services ([verify].stack_only)
    run_key: str = ""  # what the container run depended on (see run_key); empty when nothing ran
    run_reused: str = ""  # when the reused run was made; empty for a run made now


INSPECT = "docker image inspect"
EXPORT = "docker export (filesystem of a created container, indexed once per image ID)"


def _c(spec: str, t: Target, outcome: Outcome, detail: str, evidence: str, seconds: float = 0.0) -> Check:
    return Check(spec, outcome, detail, round(seconds, 2), group=t.name, evidence=evidence)


def _na(spec: str, t: Target, why: str) -> Check:
    return _c(spec, t, Outcome.NA, why, "role: " + t.role.name)


def _ok(cond: bool) -> Outcome:
    return Outcome.PASS if cond else Outcome.FAIL


def _list(items: Sequence[str], limit: int = 8) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_user(f: Facts) -> Check:
    t, info = f.target, f.info
    if not t.role.runs:
        return _na("VFY-USER", t, t.role.why)
    u, g = parse_user(info.user)
    problems = []
    if not info.user:
        problems.append("no USER: runs as root")
    elif not u.isdigit():
        problems.append(f"USER {info.user!r} is a name, not a numeric UID")
    elif int(u) == 0:
        problems.append(f"USER {info.user!r} is root")
    if g and (not g.isdigit() or int(g) == 0):
        problems.append(f"group {g!r} is not a numeric non-root GID")
    run = f.run
    evidence = f"{INSPECT} .Config.User"
    if run is not None:
        evidence += f"; {run.status_source or 'host /proc'} of `{run.argv}`"
        if run.status is None:
            problems.append(f"effective IDs not read: {run.problem or run.status_problem}")
        else:
            if 0 in run.status.uid or 0 in run.status.gid:
                problems.append(f"PID 1 runs as Uid {run.status.uid} Gid {run.status.gid}")
            elif u.isdigit() and run.status.uid[1] != int(u):
                problems.append(f"PID 1's effective UID {run.status.uid[1]} is not USER's {u}")
    passwd = f.tree.contents.get("etc/passwd", b"").decode("utf-8", "replace")
    uids = [p[1] for p in parse_passwd(passwd)]
    dupes = sorted({str(x) for x in uids if uids.count(x) > 1})
    if dupes:
        problems.append(f"/etc/passwd repeats UID {', '.join(dupes)}")
    empty = empty_passwords(f.tree.contents.get("etc/shadow", b"").decode("utf-8", "replace"))
    if empty:
        problems.append(f"/etc/shadow: empty password for {', '.join(empty)}")
    detail = "; ".join(problems) or (
        f"USER {info.user}; " + (run.status.summary().split("; CapEff")[0] if run and run.status else "")
    )
    return _c("VFY-USER", t, _ok(not problems), detail, evidence + "; /etc/passwd, /etc/shadow from " + EXPORT)


def check_privs(f: Facts) -> Check:
    t, run = f.target, f.run
    if not t.role.runs or run is None:
        return _na("VFY-PRIVS", t, t.role.why)
    evidence = f"{run.status_source or 'host /proc'} of `{run.argv}`"
    if run.status is None:
        return _c("VFY-PRIVS", t, Outcome.FAIL, f"not read: {run.problem or run.status_problem}", evidence)
    s = run.status
    bad = []
    if s.cap_eff:
        bad.append(f"CapEff {s.cap_eff:016x}")
    if s.no_new_privs != 1:
        bad.append(f"NoNewPrivs {s.no_new_privs}")
    if s.seccomp != 2:
        bad.append(f"Seccomp {s.seccomp} (2 = filtering)")
    detail = "; ".join(bad) if bad else f"CapEff {s.cap_eff:016x}; NoNewPrivs {s.no_new_privs}; Seccomp {s.seccomp}"
    return _c("VFY-PRIVS", t, _ok(not bad), detail, evidence)


def check_shell(f: Facts) -> Check:
    t = f.target
    if not t.role.minimal:
        return _na("VFY-SHELL", t, t.role.why)
    found = executables(f.tree, lambda n: n in SHELLS or n in PKG_MANAGERS or bool(_PIP.match(n)))
    caches = sorted(
        "/" + e.name for e in f.tree.entries if e.isfile() and any(e.name.startswith(c) for c in PACKAGE_CACHES)
    )
    bad = found + caches[:3]
    detail = ("found " + _list(bad)) if bad else "no shell, package manager or package cache in any bin directory"
    return _c("VFY-SHELL", t, _ok(not bad), detail, EXPORT + ": */bin, */sbin, var/lib/apt/lists, var/cache/apt")


def check_buildtools(f: Facts) -> Check:
    t = f.target
    if not t.role.final:
        return _na("VFY-BUILDTOOLS", t, t.role.why)
    found = executables(f.tree, lambda n: n in VCS or bool(_COMPILER.match(n)))
    vcs_dirs = sorted("/" + e.name for e in f.tree.entries if e.isdir() and e.name.rpartition("/")[2] in VCS_DIRS)
    bad = found + vcs_dirs
    detail = ("found " + _list(bad)) if bad else "no compiler, build tool, VCS client or VCS metadata"
    return _c("VFY-BUILDTOOLS", t, _ok(not bad), detail, EXPORT + ": */bin, */sbin, .git/.svn/.hg directories")


def check_setuid(f: Facts) -> Check:
    t = f.target
    if not t.role.final:
        return _na("VFY-SETUID", t, t.role.why + "; the images built on it are checked")
    bad = [
        f"/{e.name} ({stat.filemode(e.mode | stat.S_IFREG)})" for e in f.tree.entries if e.isfile() and e.mode & 0o6000
    ]
    detail = ("setuid/setgid: " + _list(bad)) if bad else f"none among {f.tree.entry_count} entries"
    return _c("VFY-SETUID", t, _ok(not bad), detail, EXPORT + ": tar mode bits 04000/02000")


def check_world_writable(f: Facts, writable: Sequence[str]) -> Check:
    t = f.target
    bad = [
        f"/{e.name} ({stat.filemode(e.mode | (stat.S_IFDIR if e.isdir() else stat.S_IFREG))})"
        for e in f.tree.entries
        if (e.isfile() or e.isdir()) and e.mode & 0o002 and not _under(e.name, writable)
    ]
    detail = ("world-writable: " + _list(bad)) if bad else f"none outside {', '.join(writable)}"
    return _c("VFY-WORLDWRITABLE", t, _ok(not bad), detail, EXPORT + ": tar mode bit 0002")


def check_appfiles(f: Facts, writable: Sequence[str]) -> Check:
    t, info = f.target, f.info
    if not t.role.runs:
        return _na("VFY-APPFILES", t, t.role.why)
    u, g = parse_user(info.user)
    passwd = parse_passwd(f.tree.contents.get("etc/passwd", b"").decode("utf-8", "replace"))
    by_name = {p[0]: p for p in passwd}
    by_uid = {p[1]: p for p in passwd}
    if u and not u.isdigit() and u in by_name:
        u = str(by_name[u][1])
    if not u.isdigit() or int(u) == 0:
        return _na("VFY-APPFILES", t, f"runs as {info.user or 'root'}: every file is its own (see VFY-USER)")
    uid = int(u)
    gid = int(g) if g.isdigit() else (by_uid[uid][2] if uid in by_uid else -1)
    home = by_uid[uid][3] if uid in by_uid else ""
    volumes = list((info.raw.get("Config") or {}).get("Volumes") or {})
    skip = [*writable, *volumes, *([home] if home and home != "/" else [])]
    bad = [
        f"/{e.name} ({e.uid}:{e.gid} {stat.filemode(e.mode | (stat.S_IFDIR if e.isdir() else stat.S_IFREG))})"
        for e in f.tree.entries
        # The ownership test first: it is cheap and rules out nearly every entry before the path test.
        if (e.isfile() or e.isdir())
        and ((e.uid == uid and e.mode & 0o200) or (e.gid == gid and e.mode & 0o020))
        and not _under(e.name, skip)
    ]
    detail = (
        f"writable by {uid}:{gid}: " + _list(bad)
        if bad
        else f"nothing writable by {uid}:{gid} outside {', '.join(skip)}"
    )
    return _c("VFY-APPFILES", t, _ok(not bad), detail, EXPORT + f": owner/group write bits vs {INSPECT} .Config.User")


def check_healthcheck(f: Facts) -> Check:
    t, hc = f.target, f.info.healthcheck
    if not t.role.app:
        return _na("VFY-HEALTHCHECK", t, t.role.why)
    ev = f"{INSPECT} .Config.Healthcheck.Test"
    if not hc or hc[0] == "NONE":
        return _c("VFY-HEALTHCHECK", t, Outcome.FAIL, "no HEALTHCHECK", ev)
    if hc[0] != "CMD":
        return _c("VFY-HEALTHCHECK", t, Outcome.FAIL, f"shell form needs a shell: {list(hc)}", ev)
    return _c("VFY-HEALTHCHECK", t, Outcome.PASS, "exec form: " + " ".join(hc[1:]), ev)


def check_healthy(f: Facts, cfg: Config) -> Check:
    t, run, info = f.target, f.run, f.info
    if not t.role.app or run is None:
        return _na("VFY-HEALTHY", t, t.role.why)
    if not info.healthcheck or info.healthcheck[0] == "NONE":
        return _na("VFY-HEALTHY", t, "no healthcheck to turn healthy (see VFY-HEALTHCHECK)")
    if run.health == "skipped":
        return _na("VFY-HEALTHY", t, "health needs other services ([verify].stack_only): smoke proves it")
    ev = f"docker inspect .State.Health of `{run.argv}`, polled"
    if run.problem:
        return _c("VFY-HEALTHY", t, Outcome.FAIL, run.problem, ev)
    promise = info.health_start_period_ns / 1e9
    deadline = health_deadline(cfg, info)
    if run.health == "healthy":
        after = run.healthy_after or 0.0
        in_time = not promise or after <= promise  # the start period is the promise; the grace only observes
        ok = in_time and run.stayed == "healthy"
        detail = f"healthy after {after:.1f} s (start period {promise:.0f} s" + (")" if in_time else ": too late)")
        detail += (
            f", then {run.stayed}" if run.stayed != "healthy" else f", still healthy {STAYS_HEALTHY_S:.1f} s later"
        )
        return _c("VFY-HEALTHY", t, _ok(ok), detail, ev, run.healthy_after or 0.0)
    if run.writable_health == "healthy":
        return _c(
            "VFY-HEALTHY",
            t,
            Outcome.PASS,
            f"healthy with a writable root only (read-only: {run.health}; see VFY-READONLY)",
            ev + "; again without --read-only",
        )
    tail = f"; last log lines: {run.exited_early}" if run.exited_early else ""
    detail = f"{run.health or 'starting'} after {deadline:.1f} s (start period {promise:.0f} s){tail}"
    return _c("VFY-HEALTHY", t, Outcome.FAIL, detail, ev, deadline)


def check_sigterm(f: Facts) -> Check:
    t, run = f.target, f.run
    if not t.role.app or run is None:
        return _na("VFY-SIGTERM", t, t.role.why)
    ev = f"docker stop --time {STOP_GRACE_S} (SIGTERM, then SIGKILL), timed; `{run.argv}`"
    if run.problem:
        return _c("VFY-SIGTERM", t, Outcome.FAIL, run.problem, ev)
    if run.stop_s is None:
        if f.stack_only:
            return _na("VFY-SIGTERM", t, "exited before the stop without its services ([verify].stack_only)")
        return _c("VFY-SIGTERM", t, Outcome.FAIL, f"exited on its own (exit {run.exit_code}) before the stop", ev)
    detail = f"stopped {run.stop_s:.1f} s after SIGTERM, exit {run.exit_code}"
    if run.stop_s >= STOP_TARGET_S:
        detail += " (SIGKILL: SIGTERM did not end it)" if run.exit_code == 137 else ""
    return _c("VFY-SIGTERM", t, _ok(run.stop_s < STOP_TARGET_S), detail, ev, run.stop_s)


def check_readonly(f: Facts) -> Check:
    t, run, info = f.target, f.run, f.info
    if not t.role.app or run is None:
        return _na("VFY-READONLY", t, t.role.why)
    ev = f"`{run.argv}`: docker inspect .State"
    if run.problem:
        return _c("VFY-READONLY", t, Outcome.FAIL, run.problem, ev)
    if run.health == "skipped":
        return _na("VFY-READONLY", t, "needs other services to run ([verify].stack_only): smoke runs it read-only")
    if not info.healthcheck or info.healthcheck[0] == "NONE":
        ok = run.stayed == "running"
        return _c(
            "VFY-READONLY", t, _ok(ok), f"{run.stayed} {NO_HEALTHCHECK_RUN_S:.0f} s after start, read-only root", ev
        )
    if run.health == "healthy":
        ok = run.stayed == "healthy"
        return _c("VFY-READONLY", t, _ok(ok), f"healthy with a read-only root, then {run.stayed}", ev)
    if run.writable_health == "healthy":
        return _c(
            "VFY-READONLY",
            t,
            Outcome.FAIL,
            f"{run.health} with a read-only root, healthy with a writable one",
            ev + "; again without --read-only",
        )
    return _na(
        "VFY-READONLY", t, f"never healthy, not even with a writable root ({run.writable_health}): see VFY-HEALTHY"
    )


def check_secrets(f: Facts) -> Check:
    t = f.target
    in_config = secrets_in_config(f.info, f.history)
    layers, layer_ev = f.secrets
    ev = f"{INSPECT} .Config.Env/.Labels; docker history --no-trunc; {layer_ev}"
    bad = in_config + [f"trivy: {s}" if s.startswith("image config") else f"layer {s}" for s in layers or []]
    if layers is None:
        bad.append(f"layers not scanned: {layer_ev}")
    detail = (
        _list(bad)
        if bad
        else f"none in {len(f.info.env)} ENV, {len(f.info.labels)} labels, {len(f.history)} history entries, layers"
    )
    return _c("VFY-SECRETS", t, _ok(not bad), detail, ev)


def _dockerfile_bases(t: Target) -> tuple[list[str], str] | None:
    img, record = t.image, t.record
    if img is None or img.dockerfile is None or record is None:
        return None
    try:
        text = img.dockerfile.read_text()
    except OSError:
        return None
    args = arg_defaults(text)
    args.update(img.args)
    for arg, base in img.bases.items():
        if base in record.images:
            args[arg] = record.images[base].ref
    stages: set[str] = set()
    refs = []
    for image, alias in from_lines(text):
        ref = expand(image, args)
        if ref.lower() != "scratch" and ref not in stages:
            refs.append(ref)
        if alias:
            stages.add(alias)
    return refs, f"{img.dockerfile.name} FROM lines with the build record's base refs"


def check_base(f: Facts) -> Check:
    t, info = f.target, f.info
    if t.image is not None and t.image.kind == "rootfs":
        return _na("VFY-BASE", t, "built from Debian packages with debootstrap: no base image")
    label = info.labels.get(BASE_LABEL, "")
    if label:
        return _c("VFY-BASE", t, _ok("@sha256:" in label), f"{BASE_LABEL}={label}", f"{INSPECT} .Config.Labels")
    found = _dockerfile_bases(t)
    if found is None:
        return _c(
            "VFY-BASE",
            t,
            Outcome.FAIL,
            f"no evidence of a pinned base: no {BASE_LABEL} label, and not an image of the recorded build",
            f"{INSPECT} .Config.Labels",
        )
    refs, ev = found
    loose = [r for r in refs if "@sha256:" not in r]
    detail = ("not pinned: " + _list(loose)) if loose else "pinned: " + _list(refs, 3)
    return _c("VFY-BASE", t, _ok(bool(refs) and not loose), detail, ev)


def check_labels(f: Facts) -> Check:
    t = f.target
    missing = [k for k in OCI_LABELS if not f.info.labels.get(f"{OCI}.{k}")]
    detail = ("missing " + ", ".join(f"{OCI}.{k}" for k in missing)) if missing else ", ".join(OCI_LABELS)
    return _c("VFY-LABELS", t, _ok(not missing), detail, f"{INSPECT} .Config.Labels")


def check_size(f: Facts, cfg: Config) -> Check:
    t = f.target
    budget = cfg.bench.size_budgets_mb.get(t.name)
    mb = f.info.size / MB
    if budget is None:
        return _c("VFY-SIZE", t, Outcome.NA, f"{mb:.1f} MB; no budget in [bench].size_budgets_mb", f"{INSPECT} .Size")
    return _c("VFY-SIZE", t, _ok(mb <= budget), f"{mb:.1f} MB, budget {budget} MB", f"{INSPECT} .Size")


def check_python(f: Facts, pythons: Mapping[str, set[str]], cfg: Config) -> Check:
    t = f.target
    img = t.image
    if img is None:
        return _na("VFY-PYTHON", t, "not an image of this build: no builder/runtime pair is known")
    own = pythons.get(t.name, set())
    if img.is_base and img.role == "builder":
        others = [b.name for b in cfg.bases if b.role == "runtime" and b.kind != "rootfs"]
    elif img.is_base and img.role == "runtime" and img.kind != "rootfs":
        others = [b.name for b in cfg.bases if b.role == "builder"]
    elif not img.is_base:
        builders = [b for b in img.bases.values() if cfg.images[b].role == "builder"]
        runtimes = [b for b in img.bases.values() if cfg.images[b].role == "runtime" and cfg.images[b].kind != "rootfs"]
        others = builders if builders and runtimes else []
    else:
        others = []
    if not others:
        return _na("VFY-PYTHON", t, "no builder/runtime pair in the config for this image")
    missing = [o for o in others if o not in pythons]
    if missing:
        return _na("VFY-PYTHON", t, f"{', '.join(missing)} not verified in this run: nothing to compare with")
    sets = {t.name: own, **{o: pythons[o] for o in others}}
    detail = "; ".join(f"{n} python {'/'.join(sorted(v)) or 'none'}" for n, v in sets.items())
    ok = bool(own) and all(v == own for v in sets.values())
    return _c("VFY-PYTHON", t, _ok(ok), detail, EXPORT + ": usr/bin/python3.N of each image")


# --------------------------------------------------------------------------- the stage


def targets(cfg: Config, opts: Options) -> list[Target]:
    # Here, not at the top: the build record's models (pydantic) load while Compose renders (see run).
    from . import manifest

    env = cfg.env(opts.env)
    try:
        record: manifest.BuildRecord | None = manifest.load(cfg.project.artifacts, env.name)
    except PipelineError:
        if not opts.images:
            raise
        record = None
    runtime_bases = {b.name for b in cfg.bases if b.role == "runtime" and b.kind != "rootfs"}

    def role_of(img: Image) -> Role:
        if img.is_base:
            if img.kind == "rootfs":
                return ROLE_RULES["rootfs"]
            return ROLE_RULES["builder" if img.role == "builder" else "runtime-base"]
        return ROLE_RULES["runtime" if runtime_bases & set(img.bases.values()) else "service"]

    if not opts.images:
        if record is None:  # pragma: no cover - load raised above
            raise PipelineError("no build record")
        return [
            Target(b.name, b.local_ref, role_of(cfg.images[b.name]), cfg.images[b.name], record, b)
            for b in record.images.values()
            if b.name in cfg.images
        ]
    out = []
    known: dict[str, manifest.BuiltImage] = {}
    if record is not None:
        for b in record.images.values():
            for r in (b.ref, b.local_ref, *b.tags):
                known[r] = b
    for ref in opts.images:
        built = known.get(ref)
        if built is not None and built.name in cfg.images:
            name = built.name
            out.append(Target(name, ref, role_of(cfg.images[name]), cfg.images[name], record, built))
        else:
            # Not from this build: held to the strictest role (an application on a runtime base).
            out.append(Target(ref.rpartition("/")[2], ref, ROLE_RULES["runtime"], None, None))
    return out


TREE_FILES = ("etc/passwd", "etc/group", "etc/shadow")
TREE_CACHE_VERSION = 1


def _sanitized_shadow(text: str) -> str:
    """Only what a check reads: which accounts have an empty password. Hashes never reach the cache."""
    return "".join(
        f"{p[0]}:{'' if p[1] == '' else '*'}:\n" for p in (ln.split(":") for ln in text.splitlines()) if len(p) >= 2
    )


def tree_from_record(data: Mapping[str, Any]) -> ImageTree:
    """An :class:`ImageTree` back from its cached record or summary (see :func:`image_tree`)."""
    entries = []
    for name, kind, mode, uid, gid, size, link in data["entries"]:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.size, ti.linkname = kind.encode(), mode, uid, gid, size, link
        entries.append(ti)
    count = data.get("count")
    return ImageTree(
        tuple(entries), {k: v.encode() for k, v in data["contents"].items()}, count if isinstance(count, int) else None
    )


TREE_SUMMARY_VERSION = 1


def tree_entry_matters(name: str, mode: int, uid: int) -> bool:
    """Whether a filesystem cell can name this entry; of every other entry the cells only count how many there are.

    The cells read: files in bin/sbin (shells, package managers, compilers,
    Python), package-manager caches, VCS directories, setuid/setgid bits, world-
    and group-writable entries, and entries a non-root owner can write (the
    image's user, VFY-APPFILES). A change to this module changes the summary's
    key (:func:`_code_digest`), so a new cell never reads an old summary.
    """
    return bool(
        _in_bin(name)
        or name.startswith(PACKAGE_CACHES)
        or name.rpartition("/")[2] in VCS_DIRS
        or mode & 0o6022
        or (uid != 0 and mode & 0o200)
    )


def tree_summary(record: Mapping[str, Any], code: str) -> dict[str, Any]:
    """The part of a filesystem record the cells read (see :func:`tree_entry_matters`), and how many entries it had."""
    return {
        "version": TREE_SUMMARY_VERSION,
        "image_id": record["image_id"],
        "code": code,
        "count": len(record["entries"]),
        "entries": [e for e in record["entries"] if tree_entry_matters(e[0], e[2], e[3])],
        "contents": record["contents"],
    }


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def image_tree(engine: Engine, cfg: Config, info: ImageInfo) -> ImageTree:
    """The image's filesystem index, exported once per image ID (its content never changes) and cached.

    The cache (ARTIFACTS/verify/trees/ID.json) holds each entry's path, type,
    mode, owner and size, /etc/passwd and /etc/group, and of /etc/shadow only
    which accounts have an empty password. Beside it, ID.summary.json holds
    only the entries a cell can name (a few hundred of tens of thousands),
    keyed by the image ID and this module's code: a warm verify reads that.
    """
    return cached_tree(cfg.project.artifacts / "verify" / "trees", info.id, lambda: _export_tree(engine, info))


def cached_tree(trees: Path, image_id: str, export: Callable[[], dict[str, Any]]) -> ImageTree:
    """The tree of ``image_id`` from its summary, else from its full record (writing the summary), else ``export()``."""
    name = image_id.removeprefix("sha256:")
    code = _code_digest()
    summary = trees / f"{name}.summary.json"
    try:
        data = json.loads(summary.read_text())
        if (
            data.get("version") == TREE_SUMMARY_VERSION
            and data.get("image_id") == image_id
            and data.get("code") == code
        ):
            return tree_from_record(data)
    except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
        pass  # no summary, or a torn one: made again from the full record
    full = trees / f"{name}.json"
    record: dict[str, Any] | None = None
    try:
        data = json.loads(full.read_text())
        if data.get("version") == TREE_CACHE_VERSION and data.get("image_id") == image_id:
            record = data
    except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
        pass  # no cache, or a torn one: export again
    if record is None:
        record = export()
        _write_json(full, record)
    tree = tree_from_record(record)  # before the summary: a record that does not parse is not summarised
    _write_json(summary, tree_summary(record, code))
    return tree


def _export_tree(engine: Engine, info: ImageInfo) -> dict[str, Any]:
    """The image's full filesystem record, exported from a created container."""
    tree = engine.walk_image(info.id, read=set(TREE_FILES))
    contents = {k: v.decode("utf-8", "replace") for k, v in tree.contents.items()}
    if "etc/shadow" in contents:
        contents["etc/shadow"] = _sanitized_shadow(contents["etc/shadow"])
    return {
        "version": TREE_CACHE_VERSION,
        "image_id": info.id,
        "entries": [[e.name, e.type.decode(), e.mode, e.uid, e.gid, e.size, e.linkname] for e in tree.entries],
        "contents": contents,
    }


def gather(engine: Engine, cfg: Config, t: Target, limits: Limits, *, fresh: bool = False) -> Facts:
    seconds: dict[str, float] = {}
    start = time.monotonic()
    info = engine.image(t.ref)
    history = engine.history(t.ref)
    seconds["inspect"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    tree = image_tree(engine, cfg, info)
    seconds["filesystem"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    run, key, reused = None, "", ""
    if t.role.runs:
        key = run_key(cfg, t, info, limits)
        found = None if fresh else load_run(cfg.project.artifacts, key)
        if found is not None:
            run, reused = found
        else:
            run = run_container(engine, cfg, t, info, limits)
    seconds["container"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    secrets = layer_secrets(cfg, t, info)
    seconds["secrets"] = round(time.monotonic() - start, 2)
    return Facts(t, info, history, tree, run, secrets, seconds, t.name in cfg.verify.stack_only, key, reused)


# --------------------------------------------------------------------------- reusing a passed container run

RUN_CACHE_VERSION = 1


@functools.cache
def _code_digest() -> str:
    """This module and the engine client: what runs, watches and judges the container (and reads the filesystem)."""
    from . import engine

    h = hashlib.sha256()
    for mod in (__file__, engine.__file__):
        h.update(Path(mod).read_bytes())
    return h.hexdigest()


def run_key(cfg: Config, t: Target, info: ImageInfo, limits: Limits) -> str:
    """Everything a throwaway container run depends on: the image ID, how it is run and judged, and by what.

    The run's settings (limits, tmpfs, environment, healthcheck timing), the
    whole [verify] table, the image's role and stack-only status, the package
    version and the source of this module and the engine client: a change to
    any of them runs the container again.
    """
    from . import __version__

    kwargs = _run_kwargs(cfg, t, info, limits, read_only=True)
    kwargs.pop("name")  # unique per run
    material = {
        "cache": RUN_CACHE_VERSION,
        "package": __version__,
        "code": _code_digest(),
        "image_id": info.id,
        "name": t.name,
        "role": t.role.name,
        "run": kwargs,
        "limits_source": limits.source,
        "health_deadline": health_deadline(cfg, info),
        "verify": dataclasses.asdict(cfg.verify),
        "timing": [STOP_GRACE_S, STOP_TARGET_S, HEALTH_INTERVAL_NS, STAYS_HEALTHY_S, NO_HEALTHCHECK_RUN_S],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _run_path(artifacts: Path, key: str) -> Path:
    return artifacts / "verify" / "runs" / f"{key[:40]}.json"


def load_run(artifacts: Path, key: str) -> tuple[RunFacts, str] | None:
    """A passed run recorded under ``key``, and when it was made; None when there is none (or a torn one)."""
    try:
        data = json.loads(_run_path(artifacts, key).read_text())
        if data.get("key") != key:
            return None
        facts = dict(data["facts"])
        status = facts.pop("status")
        if status is not None:
            status = ProcStatus(
                tuple(status["uid"]), tuple(status["gid"]), status["cap_eff"], status["no_new_privs"], status["seccomp"]
            )
        run = RunFacts(status=status, **facts)
        when = str(data["when"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    run.argv += f"; reused: the run of {when} (same image ID, run settings, [verify] config, package and code)"
    return run, when


def save_run(artifacts: Path, key: str, run: RunFacts) -> None:
    """Record a run whose cells all passed. A failed one is never reused: it runs again, so a flake shows as one."""
    path = _run_path(artifacts, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "key": key,
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "facts": dataclasses.asdict(run),
    }
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


# Cells read from the throwaway container: a run is reused only when these all passed (or did not apply).
RUN_CELLS = ("VFY-USER", "VFY-PRIVS", "VFY-HEALTHY", "VFY-SIGTERM", "VFY-READONLY")


def cells(f: Facts, cfg: Config, pythons: Mapping[str, set[str]]) -> list[Check]:
    writable = list(cfg.verify.writable_paths)
    return [
        check_user(f),
        check_privs(f),
        check_shell(f),
        check_buildtools(f),
        check_setuid(f),
        check_world_writable(f, writable),
        check_appfiles(f, writable),
        check_healthcheck(f),
        check_healthy(f, cfg),
        check_sigterm(f),
        check_readonly(f),
        check_secrets(f),
        check_base(f),
        check_labels(f),
        check_size(f, cfg),
        check_python(f, pythons, cfg),
    ]


def apply_waivers(checks: list[Check], ledger: list[waivers.Waiver]) -> list[Check]:
    """A failed cell a ledger entry covers (check id, image scope) becomes ``waived`` with the reason."""
    out = []
    for c in checks:
        if c.outcome is Outcome.FAIL:
            finding = Finding(TOOL, c.name, Severity.ERROR, c.detail, c.group, extra=(("image", c.group),))
            [f] = waivers.apply([finding], ledger)
            if f.waived:
                w = next(w for w in ledger if w.where == f.waived_by)
                c = Check(
                    c.name,
                    Outcome.WAIVED,
                    f"{c.detail} [waived: {f.waiver_reason} ({w.owner}, until {w.expires})]",
                    c.seconds,
                    c.group,
                    c.evidence + f"; waiver {f.waived_by}",
                )
        out.append(c)
    return out


def _cell(c: Check) -> str:
    return {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.WAIVED: "waived", Outcome.NA: "n/a"}[c.outcome]


def matrix(rows: Sequence[str], checks: Sequence[Check]) -> Table:
    by = {(c.group, c.name): c for c in checks}
    body = tuple((r, *(_cell(by[(r, s.id)]) if (r, s.id) in by else "-" for s in CHECKS)) for r in rows)
    return Table(("image", *(s.column for s in CHECKS)), body, "hardening matrix")


def explain() -> Result:
    rows = tuple((s.id, s.column, s.title) for s in CHECKS)
    roles = tuple(
        (r.name, *("yes" if v else "n/a" for v in (r.runs, r.app, r.minimal, r.final)), r.why)
        for r in ROLE_RULES.values()
    )
    return Result(
        stage="verify",
        headline=f"verify checks {len(CHECKS)} columns per image; Dockle's {len(DOCKLE)} checkpoints mapped",
        tables=(
            Table(("id", "column", "what it proves"), rows, "checks"),
            Table(
                (
                    "role",
                    "user/privs/app files",
                    "health/SIGTERM/read-only",
                    "no shell",
                    "no build tools/setuid",
                    "why n/a",
                ),
                roles,
                "roles",
            ),
            Table(("Dockle checkpoint", "title", "covered by"), DOCKLE, "Dockle mapping"),
        ),
        data={
            "columns": [s.__dict__ for s in CHECKS],
            "dockle": [dict(zip(("id", "title", "covered_by"), d, strict=True)) for d in DOCKLE],
        },
    )


def _app_time(run: RunFacts | None) -> float:
    if run is None or run.healthy_after is None:
        return 0.0
    return run.healthy_after + STAYS_HEALTHY_S + (run.stop_s or 0.0)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(ctx: Context, opts: Options) -> Result:
    if opts.explain:
        return explain()
    cfg = ctx.cfg
    env = cfg.env(opts.env)
    # The environment's own limits, as its Compose files give them to each service: `docker compose
    # config` mostly waits, so it runs while the build record and the ledger are read. An error of
    # those still comes first, as it did when the Compose files were rendered after them.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose")
    rendering = background.submit(compose_services, ctx, env.name)
    try:
        tgts = targets(cfg, opts)
        if not tgts:
            raise InputError(
                f"the build of {env.name!r} recorded no image to verify",
                hint=f"run `pipelines build --env {env.name}`",
            )
        ledger, problems = waivers.load_ledger(
            cfg.lint.waivers,
            display=report.display_path(cfg.lint.waivers, cfg.root),
            max_days=cfg.lint.waiver_max_days,
            today=dt.date.today(),
        )
        load_client()  # the engine client's imports, while Compose still renders
    except Exception:
        # This error comes first, as before; the render is let finish (it cleans up its temp files).
        rendering.exception()
        raise
    finally:
        background.shutdown(wait=False)
    services = rendering.result()
    mine = [w for w in ledger if all(r.startswith("VFY-") for r in w.rules)]
    out_dir = cfg.project.artifacts / "verify" / f"{ctx.stamp()}-{env.name}"
    facts: list[Facts] = []
    timings: dict[str, float] = {}
    with ctx.engine() as engine:
        # Every image by ID before any is examined: a tag moved since the build stops the run (exit 2)
        # before it judges anything.
        tgts = [t.pinned(engine) for t in tgts]
        for t in tgts:
            start = time.monotonic()
            log(f"verify: {t.name} ({t.named} = {t.ref}) as {t.role.name}")
            facts.append(gather(engine, cfg, t, limits_for(cfg, env.name, t, services), fresh=opts.fresh))
            timings[t.name] = round(time.monotonic() - start, 3)  # ms: a warm image takes a few
    # Only a run that read every image gets a directory.
    out_dir.mkdir(parents=True, exist_ok=True)
    # artifacts/verify/latest: the newest run's reports (CI uploads its SARIF from there).
    latest = out_dir.parent / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out_dir.name)
    pythons = {f.target.name: python_minors(f.tree) for f in facts if f.target.image is not None}
    checks: list[Check] = []
    for f in facts:
        own = cells(f, cfg, pythons)
        # Judged before waivers: a waived run cell is still a failed run, and runs again next time.
        passed = all(c.outcome in (Outcome.PASS, Outcome.NA) for c in own if c.name in RUN_CELLS)
        if f.run is not None and f.run_key and not f.run_reused and not f.run.problem and passed:
            save_run(cfg.project.artifacts, f.run_key, f.run)
        checks += apply_waivers(own, mine)
    reused = [f.target.name for f in facts if f.run_reused]
    notices = [
        f"verify {env.name}: {len(tgts)} images x {len(CHECKS)} checks; containers run read-only, cap_drop ALL, "
        f"no-new-privileges, no network, with the memory/PID/CPU limits and tmpfs mounts of {env.name}'s Compose "
        f"service for the image (else [verify]: {cfg.verify.memory_mb} MB, {cfg.verify.pids} PIDs, 1 CPU)"
    ]
    notices += [f"waiver ledger: {p.message}" for p in problems]
    if not opts.images:
        # Stale means "matched nothing in the whole build": a run on named images sees only part of it.
        notices += [f"waiver ledger: {s.message}" for s in waivers.stale(mine)]
    failed = [c for c in checks if c.outcome is Outcome.FAIL]
    waived = [c for c in checks if c.outcome is Outcome.WAIVED]
    worst = [c for c in checks if c.outcome in (Outcome.FAIL, Outcome.WAIVED)]
    tables = [matrix([t.name for t in tgts], checks)]
    if worst:
        tables.append(
            Table(
                ("image", "check", "result", "value read", "how it was read"),
                tuple((c.group, c.name, c.outcome.value, c.detail, c.evidence) for c in worst),
                "failed and waived cells",
            )
        )
    headline = (
        f"verify {env.name}: {'FAILED' if failed or problems else 'passed'}: {len(tgts)} images, "
        f"{len(checks)} cells: {sum(c.outcome is Outcome.PASS for c in checks)} pass, {len(failed)} fail, "
        f"{len(waived)} waived, {sum(c.outcome is Outcome.NA for c in checks)} n/a"
    )
    if reused:
        headline += (
            f"; container runs reused (unchanged image ID and config, passed before): {', '.join(reused)}"
            " (--fresh runs them again)"
        )
    gated = tuple(p for p in problems if p.severity >= Severity.ERROR)
    record = tgts[0].record
    # The IDs examined (each proven to be the record's before it was): what the verdict is about.
    examined = {f.target.name: f.info.id for f in facts}
    services_built = {b.name for b in record.services} if not opts.images and record is not None else set()
    judged = {n: i for n, i in examined.items() if n in services_built}
    # Failed and waived cells are also findings, so SARIF carries them (one run per image).
    cell_findings = tuple(
        Finding(
            TOOL,
            c.name,
            Severity.ERROR,
            f"{c.group}: {SPECS[c.name].title}: {c.detail}",
            c.group,
            hint=f"evidence: {c.evidence}",
            waived_by="waiver ledger (see evidence)" if c.outcome is Outcome.WAIVED else "",
            waiver_reason=c.detail if c.outcome is Outcome.WAIVED else "",
            extra=(("image", c.group),),
        )
        for c in worst
    )
    return Result(
        stage="verify",
        headline=headline,
        findings=(*problems, *cell_findings),
        rules={
            TOOL: {
                s.id: Rule(
                    s.id, Severity.ERROR, s.title, s.title, f"see `pipelines verify --explain` ({s.column})", TOOL
                )
                for s in CHECKS
            }
        },
        gated=gated,
        checks=tuple(checks),
        notices=tuple(notices),
        tables=tuple(tables),
        timings=timings,
        data={
            "env": env.name,
            "images": [
                {
                    "name": f.target.name,
                    "ref": f.target.named or f.target.ref,
                    "image_id": f.info.id,
                    "role": f.target.role.name,
                    "seconds": timings[f.target.name],
                    # The image's own part of that: start-up to healthy, watched staying healthy, stop.
                    "app_start_s": round(_app_time(f.run), 2),
                    "phases_s": f.seconds,
                    "run_reused_from": f.run_reused,
                }
                for f in facts
            ],
            "columns": [s.__dict__ for s in CHECKS],
            "dockle": [dict(zip(("id", "title", "covered_by"), d, strict=True)) for d in DOCKLE],
        },
        files=tuple(t.name for t in tgts),
        out_dir=out_dir,
        # The recorded build as a whole was judged: its verdict is recorded for exactly these images (deploy's gate).
        env=env.name if judged else "",
        subjects=judged,
    )
