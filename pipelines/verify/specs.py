"""What verify checks: one column per check, the roles that decide which apply, and the thresholds they judge by."""

from __future__ import annotations

from dataclasses import dataclass

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
