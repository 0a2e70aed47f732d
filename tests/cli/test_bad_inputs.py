"""The bad-input corpus: every case runs the real `pipelines` command line.

Each case is one input a user could plausibly hand the pipeline: a config value
out of range, a path that leaves the project, a config that is a FIFO, an
impossible date in the waiver ledger, a YAML bomb, nothing to lint, an image
reference that is an option in disguise. For every one the contract is the
same: the documented exit code (2 "could not run" for bad input, 1 where a bad
ledger entry is reported as a finding that closes the gate), one clear message
naming the file, key or line, never a traceback, never a hang, never a green
exit. Ctrl-C at any moment exits 130 without a traceback or temp files.

Cases that are files live under tests/cli/bad_inputs/; the rest are edits of one
small valid project, built fresh in a temporary directory for each case.

The full suite runs every case as a child process. The unit tier runs the first
case of each class as a child and the others through the command's main() in
this process (AS_CHILD), which decides the same at a tenth of the cost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import ROOT, UNIT_TIER, run_cli_in_process

DATA = Path(__file__).resolve().parent / "bad_inputs"
TIMEOUT = 60  # seconds; a case still running then is a hang, and a failure

BASE = """\
default_env = "dev"

[project]
name = "bad-inputs"

[registry]
address = "127.0.0.1:5000"
namespace = "bad-inputs"

[images.debian]
kind = "rootfs"

[images.runtime]
context = "images/runtime"
bases = { BASE_IMAGE = "debian" }

[services.web]
context = "services/web"
target = "runtime"
bases = { RUNTIME_IMAGE = "runtime" }

[environments.dev]

[environments.prod]
push = true
tags = ["prod"]

[lint]
waivers = "waivers.yaml"
"""

DOCKERFILE = "FROM scratch AS runtime\nCOPY app /app\n"
LEDGER_HEAD = "waivers:\n"


@dataclass(frozen=True)
class Case:
    id: str
    klass: str  # values | filesystem | odd | nothing | exit-codes
    argv: tuple[str, ...]
    expect: int = 2
    # Every one of these must appear in stderr (stdout too for exit 1, where findings are the message).
    mentions: tuple[str, ...] = ()
    edit: tuple[str, str] | None = None  # (old, new) in BASE
    append: str = ""  # appended to BASE
    files: Mapping[str, str | bytes] = field(default_factory=dict)  # extra project files
    env: Mapping[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None  # for what files cannot express (FIFOs, huge files)
    engine: bool = False  # the command reaches its error only after asking the engine: not a unit test


def cfg(
    id: str, old: str, new: str, *mentions: str, klass: str = "values", argv: tuple[str, ...] = ("config",)
) -> Case:
    return Case(id, klass, argv, 2, ("pipeline.toml", *mentions), edit=(old, new))


def extra(id: str, text: str, *mentions: str, klass: str = "values", files: Mapping[str, str] | None = None) -> Case:
    return Case(id, klass, ("config",), 2, ("pipeline.toml", *mentions), append=text, files=files or {})


def ledger(id: str, text: str | bytes, *mentions: str, expect: int = 2, klass: str = "odd") -> Case:
    return Case(id, klass, ("lint",), expect, ("waivers.yaml", *mentions), files={"waivers.yaml": text})


# --------------------------------------------------------------------------- values, not only types

VALUES = [
    cfg(
        "dockerfile-escapes",
        'target = "runtime"',
        'target = "runtime"\ndockerfile = "../../../../../../etc/passwd"',
        "services.web.dockerfile",
        "inside the project",
    ),
    cfg(
        "dockerfile-absolute",
        'target = "runtime"',
        'target = "runtime"\ndockerfile = "/etc/passwd"',
        "services.web.dockerfile",
        "inside the project",
    ),
    cfg(
        "context-escapes",
        'context = "services/web"',
        'context = "../../../../../../etc"',
        "services.web.context",
        "inside the project",
    ),
    cfg(
        "context-absolute", 'context = "services/web"', 'context = "/etc"', "services.web.context", "inside the project"
    ),
    cfg(
        "context-symlink-out",
        'context = "services/web"',
        'context = "linked"',
        "services.web.context",
        "inside the project",
    ),
    extra(
        "compose-file-escapes",
        '[compose]\nfiles = ["../../../../../../etc/hostname"]\n',
        "compose.files[0]",
        "inside the project",
    ),
    cfg(
        "env-compose-escapes",
        'tags = ["prod"]',
        'tags = ["prod"]\ncompose = ["/etc/hostname"]',
        "environments.prod.compose[0]",
        "inside the project",
    ),
    cfg(
        "waivers-escapes",
        'waivers = "waivers.yaml"',
        'waivers = "../../../../../../etc/shadow"',
        "lint.waivers",
        "inside the project",
    ),
    extra("hadolint-config-escapes", 'hadolint_config = "/etc/passwd"\n', "lint.hadolint_config", "inside the project"),
    cfg(
        "artifacts-escapes",
        'name = "bad-inputs"',
        'name = "bad-inputs"\nartifacts = "../../../../../../tmp/x"',
        "project.artifacts",
        "inside the project",
    ),
    cfg(
        "lock-escapes",
        'name = "bad-inputs"',
        'name = "bad-inputs"\nlock = "/etc/pipeline.lock.json"',
        "project.lock",
        "inside the project",
    ),
    cfg("env-file-escapes", 'name = "bad-inputs"', 'name = "bad-inputs"', "compose.env_file"),  # replaced below
    cfg(
        "registry-scheme",
        'address = "127.0.0.1:5000"',
        'address = "http://127.0.0.1:5000"',
        "registry.address",
        "host[:port]",
    ),
    cfg("registry-port-too-big", 'address = "127.0.0.1:5000"', 'address = "localhost:99999"', "registry.address"),
    cfg("registry-port-zero", 'address = "127.0.0.1:5000"', 'address = "localhost:0"', "registry.address"),
    cfg("registry-port-word", 'address = "127.0.0.1:5000"', 'address = "localhost:http"', "registry.address"),
    cfg("registry-space", 'address = "127.0.0.1:5000"', 'address = "my registry"', "registry.address"),
    cfg("registry-empty", 'address = "127.0.0.1:5000"', 'address = ""', "registry.address"),
    cfg("registry-path", 'address = "127.0.0.1:5000"', 'address = "host:5000/some/path"', "registry.address"),
    cfg("registry-two-colons", 'address = "127.0.0.1:5000"', 'address = "a:1:2"', "registry.address"),
    cfg("registry-dash-host", 'address = "127.0.0.1:5000"', 'address = "-host:5000"', "registry.address"),
    cfg("namespace-upper", 'namespace = "bad-inputs"', 'namespace = "Bad/Inputs"', "registry.namespace"),
    cfg("namespace-double-slash", 'namespace = "bad-inputs"', 'namespace = "a//b"', "registry.namespace"),
    cfg("namespace-trailing-dash", 'namespace = "bad-inputs"', 'namespace = "team-"', "registry.namespace"),
    cfg("env-name-space", "[environments.prod]", '[environments."pro d"]', "environments.pro d"),
    cfg("env-name-dash", "[environments.prod]", '[environments."-prod"]', "environments.-prod"),
    cfg("env-name-slash", "[environments.prod]", '[environments."prod/x"]', "environments.prod/x"),
    cfg("env-name-upper-colon", "[environments.prod]", '[environments."PROD:1"]', "environments.PROD:1"),
    cfg("tag-leading-dash", 'tags = ["prod"]', 'tags = ["-prod"]', "environments.prod.tags[0]"),
    cfg("tag-leading-dot", 'tags = ["prod"]', 'tags = [".prod"]', "environments.prod.tags[0]"),
    cfg("tag-empty", 'tags = ["prod"]', 'tags = [""]', "environments.prod.tags[0]"),
    cfg("tag-too-long", 'tags = ["prod"]', f'tags = ["{"t" * 129}"]', "environments.prod.tags[0]"),
    cfg("tag-colon", 'tags = ["prod"]', 'tags = ["prod:1"]', "environments.prod.tags[0]"),
    cfg("tag-duplicate", 'tags = ["prod"]', 'tags = ["prod", "prod"]', "environments.prod.tags[1]"),
    cfg("image-upper", 'target = "runtime"', 'target = "runtime"\nimage = "Web"', "services.web.image"),
    cfg("image-leading-dash", 'target = "runtime"', 'target = "runtime"\nimage = "-web"', "services.web.image"),
    cfg("image-double-dot", 'target = "runtime"', 'target = "runtime"\nimage = "web..app"', "services.web.image"),
    cfg("image-trailing-slash", 'target = "runtime"', 'target = "runtime"\nimage = "web/"', "services.web.image"),
    cfg("image-trailing-dash", 'target = "runtime"', 'target = "runtime"\nimage = "web-"', "services.web.image"),
    cfg("image-with-tag", 'target = "runtime"', 'target = "runtime"\nimage = "web:1"', "services.web.image"),
    cfg("service-name-trailing-dot", "[services.web]", '[services."web."]', "services.web."),
    cfg("service-name-double-underscore-dash", "[services.web]", '[services."web_-x"]', "services.web_-x"),
    cfg("target-space", 'target = "runtime"', 'target = "run time"', "services.web.target"),
    cfg("target-dash", 'target = "runtime"', 'target = "-runtime"', "services.web.target"),
    cfg("parallel-zero", "[lint]", "[build]\nparallel = 0\n[lint]", "build.parallel"),
    cfg("parallel-negative", "[lint]", "[build]\nparallel = -3\n[lint]", "build.parallel"),
    cfg("parallel-huge", "[lint]", "[build]\nparallel = 100000\n[lint]", "build.parallel"),
    cfg("parallel-float", "[lint]", "[build]\nparallel = 2.5\n[lint]", "build.parallel"),
    cfg("parallel-bool", "[lint]", "[build]\nparallel = true\n[lint]", "build.parallel"),
    cfg("build-timeout-zero", "[lint]", "[build]\ntimeout = 0\n[lint]", "build.timeout"),
    cfg("build-timeout-huge", "[lint]", "[build]\ntimeout = 10000000000\n[lint]", "build.timeout"),
    cfg("scan-timeout-huge", "[lint]", "[scan]\ntimeout = 9999999999999\n[lint]", "scan.timeout"),
    cfg("download-timeout-huge", "[lint]", "[scan]\ndownload_timeout = 99999999\n[lint]", "scan.download_timeout"),
    cfg("db-max-age-zero", "[lint]", "[scan]\ndb_max_age_hours = 0\n[lint]", "scan.db_max_age_hours"),
    cfg(
        "waiver-max-days-huge",
        'waivers = "waivers.yaml"',
        'waivers = "waivers.yaml"\nwaiver_max_days = 100000',
        "lint.waiver_max_days",
    ),
    cfg("rebuild-percent-huge", "[lint]", "[bench]\nmax_rebuild_percent = 1000\n[lint]", "bench.max_rebuild_percent"),
    cfg(
        "size-budget-huge",
        "[lint]",
        "[bench]\nsize_budgets_mb = { web = 99999999999 }\n[lint]",
        "bench.size_budgets_mb.web",
    ),
    cfg("project-name-empty", 'name = "bad-inputs"', 'name = ""', "project.name"),
    cfg(
        "mirror-not-url", 'kind = "rootfs"', 'kind = "rootfs"\nmirror = "deb.debian.org/debian"', "images.debian.mirror"
    ),
    cfg("suite-path", 'kind = "rootfs"', 'kind = "rootfs"\nsuite = "../../bookworm"', "images.debian.suite"),
    # A mirror goes into debootstrap's argv and the image's sources.list: a bare http(s) URL, no apt options.
    cfg(
        "mirror-trusted-option",
        'kind = "rootfs"',
        'kind = "rootfs"\nmirror = "[trusted=yes] http://deb.debian.org/debian"',
        "images.debian.mirror",
        "not a plain http:// or https:// mirror URL",
    ),
    cfg(
        "security-mirror-trusted-option",
        'kind = "rootfs"',
        'kind = "rootfs"\nsecurity_mirror = "[trusted=yes] http://deb.debian.org/debian-security"',
        "images.debian.security_mirror",
        "not a plain http:// or https:// mirror URL",
    ),
    cfg(
        "security-mirror-space",
        'kind = "rootfs"',
        'kind = "rootfs"\nsecurity_mirror = "http://x y"',
        "images.debian.security_mirror",
        "'http://x y'",
    ),
    cfg(
        "security-mirror-scheme",
        'kind = "rootfs"',
        'kind = "rootfs"\nsecurity_mirror = "file:///srv/debian-security"',
        "images.debian.security_mirror",
    ),
    cfg(
        "security-mirror-option-after",
        'kind = "rootfs"',
        'kind = "rootfs"\nsecurity_mirror = "http://deb.debian.org/debian-security [trusted=yes]"',
        "images.debian.security_mirror",
    ),
    cfg("default-env-int", 'default_env = "dev"', "default_env = 3", "default_env"),
    cfg("build-arg-newline", 'target = "runtime"', 'target = "runtime"\nargs = { A = "x\\ny" }', "services.web.args.A"),
    # The [smoke] and [load] schema.
    extra("smoke-deadline-zero", "[smoke]\ndeadline = 0\n", "smoke.deadline"),
    extra("smoke-deadline-huge", "[smoke]\ndeadline = 86400\n", "smoke.deadline"),
    extra("smoke-suite-escapes", '[smoke]\nsuite = "../../../../../../etc"\n', "smoke.suite", "inside the project"),
    extra("smoke-suite-missing", '[smoke]\nsuite = "tests/nothing"\n', "smoke.suite"),
    extra("probe-missing-path", '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\n', "smoke.probes[0].path"),
    extra(
        "probe-path-relative",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "health"\n',
        "smoke.probes[0].path",
    ),
    extra(
        "probe-port-zero",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 0\npath = "/"\n',
        "smoke.probes[0].port",
    ),
    extra(
        "probe-port-huge",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 70000\npath = "/"\n',
        "smoke.probes[0].port",
    ),
    extra(
        "probe-port-string",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = "80"\npath = "/"\n',
        "smoke.probes[0].port",
    ),
    extra(
        "probe-method",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\nmethod = "FETCH"\n',
        "smoke.probes[0].method",
    ),
    extra(
        "probe-status-low",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\nstatus = 99\n',
        "smoke.probes[0].status",
    ),
    extra(
        "probe-status-high",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\nstatus = 600\n',
        "smoke.probes[0].status",
    ),
    extra(
        "probe-json-nested",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\njson = { a = { b = 1 } }\n',
        "smoke.probes[0].json.a",
    ),
    extra(
        "probe-duplicate-name",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\n'
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 81\npath = "/"\n',
        "smoke.probes[1].name",
    ),
    extra(
        "probe-unknown-env",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\nenvironments = ["qa"]\n',
        "smoke.probes[0].environments",
    ),
    extra(
        "probe-auth-half",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\nauth_user_secret = "u"\n',
        "smoke.probes[0]",
        "auth_password_secret",
    ),
    extra(
        "probe-deadline-zero",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\ndeadline = 0.0\n',
        "smoke.probes[0].deadline",
    ),
    extra(
        "probe-unknown-key",
        '[[smoke.probes]]\nname = "a"\nservice = "web"\nport = 80\npath = "/"\ntimeout = 3\n',
        "smoke.probes[0].timeout",
    ),
    extra(
        "probe-empty-name",
        '[[smoke.probes]]\nname = ""\nservice = "web"\nport = 80\npath = "/"\n',
        "smoke.probes[0].name",
    ),
    extra("load-no-service", '[load]\nport = 8000\npaths = ["/"]\n', "load.service"),
    extra("load-no-paths", '[load]\nservice = "web"\nport = 8000\npaths = []\n', "load.paths"),
    extra("load-path-relative", '[load]\nservice = "web"\nport = 8000\npaths = ["health"]\n', "load.paths[0]"),
    extra(
        "load-connections-zero",
        '[load]\nservice = "web"\nport = 8000\npaths = ["/"]\nconnections = 0\n',
        "load.connections",
    ),
    extra(
        "load-duration-huge",
        '[load]\nservice = "web"\nport = 8000\npaths = ["/"]\nduration = 100000\n',
        "load.duration",
    ),
    extra("load-p99-zero", '[load]\nservice = "web"\nport = 8000\npaths = ["/"]\np99_ms = 0\n', "load.p99_ms"),
]
VALUES[[c.id for c in VALUES].index("env-file-escapes")] = extra(
    "env-file-escapes",
    '[compose]\nenv_file = "../../../../../../etc/hostname"\n',
    "compose.env_file",
    "inside the project",
)


# --------------------------------------------------------------------------- the file system is input too


def _fifo(name: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).unlink(missing_ok=True)
        os.mkfifo(root / name)

    return setup


def _dir(name: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).unlink(missing_ok=True)
        (root / name).mkdir(parents=True, exist_ok=True)

    return setup


def _big(name: str, size: int, fill: bytes = b"#") -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        with open(root / name, "wb") as f:
            f.truncate(0)
            chunk = fill * (1 << 20)
            for _ in range(size // len(chunk)):
                f.write(chunk)

    return setup


FILESYSTEM = [
    Case("config-is-directory", "filesystem", ("--config", "cfgdir", "config"), 2, ("cfgdir",), setup=_dir("cfgdir")),
    Case("config-is-fifo", "filesystem", ("--config", "cfg.fifo", "config"), 2, ("cfg.fifo",), setup=_fifo("cfg.fifo")),
    Case("config-is-device", "filesystem", ("--config", "/dev/zero", "config"), 2, ("/dev/zero",)),
    Case("config-missing", "filesystem", ("--config", "nope.toml", "config"), 2, ("nope.toml",)),
    Case(
        "config-huge",
        "filesystem",
        ("--config", "big.toml", "config"),
        2,
        ("big.toml", "too large"),
        setup=_big("big.toml", 8 << 20),
    ),
    Case("config-under-file", "filesystem", ("--config", "pipeline.toml/x.toml", "config"), 2, ("x.toml",)),
    Case(
        "lint-output-is-directory",
        "filesystem",
        ("lint", "--no-config", "--output", "outdir", "services/web/Dockerfile"),
        2,
        ("outdir",),
        setup=_dir("outdir"),
    ),
    Case(
        "lint-output-missing-parent",
        "filesystem",
        ("lint", "--no-config", "--output", "no/such/dir/out.txt", "services/web/Dockerfile"),
        2,
        ("no/such/dir",),
    ),
    Case(
        "lint-output-parent-is-file",
        "filesystem",
        ("lint", "--no-config", "--output", "pipeline.toml/out.txt", "services/web/Dockerfile"),
        2,
        ("pipeline.toml/out.txt",),
    ),
    Case(
        "lint-output-is-fifo",
        "filesystem",
        ("lint", "--no-config", "--output", "out.fifo", "services/web/Dockerfile"),
        2,
        ("out.fifo",),
        setup=_fifo("out.fifo"),
    ),
    Case(
        "artifacts-is-file",
        "filesystem",
        ("lint",),
        2,
        ("project.artifacts",),
        edit=('name = "bad-inputs"', 'name = "bad-inputs"\nartifacts = "afile"'),
        files={"afile": "x"},
    ),
    Case(
        "artifacts-under-file",
        "filesystem",
        ("lint",),
        2,
        ("project.artifacts",),
        edit=('name = "bad-inputs"', 'name = "bad-inputs"\nartifacts = "afile/sub"'),
        files={"afile": "x"},
    ),
    Case(
        "lock-is-directory",
        "filesystem",
        ("config",),
        2,
        ("project.lock",),
        edit=('name = "bad-inputs"', 'name = "bad-inputs"\nlock = "lockdir"'),
        setup=_dir("lockdir"),
    ),
    Case("ledger-is-directory", "filesystem", ("lint",), 2, ("waivers.yaml",), setup=_dir("waivers.yaml")),
    Case("ledger-is-fifo", "filesystem", ("lint",), 2, ("waivers.yaml",), setup=_fifo("waivers.yaml")),
    Case("ledger-huge", "filesystem", ("lint",), 2, ("waivers.yaml", "too large"), setup=_big("waivers.yaml", 8 << 20)),
    Case(
        "step-summary-is-directory",
        "filesystem",
        ("lint",),
        2,
        ("GITHUB_STEP_SUMMARY",),
        env={"GITHUB_STEP_SUMMARY": "{root}/summary"},
        setup=_dir("summary"),
    ),
    Case(
        "step-summary-missing-parent",
        "filesystem",
        ("lint",),
        2,
        ("GITHUB_STEP_SUMMARY",),
        env={"GITHUB_STEP_SUMMARY": "{root}/no/such/summary.md"},
    ),
    Case(
        "hadolint-config-is-directory",
        "filesystem",
        ("lint",),
        2,
        ("lint.hadolint_config",),
        edit=('waivers = "waivers.yaml"', 'waivers = "waivers.yaml"\nhadolint_config = "hcfg"'),
        setup=_dir("hcfg"),
    ),
    Case("lint-path-is-fifo", "filesystem", ("lint", "--no-config", "p.fifo"), 2, ("p.fifo",), setup=_fifo("p.fifo")),
    Case(
        "lint-dockerfile-is-fifo",
        "filesystem",
        ("lint", "--no-config", "Dockerfile"),
        2,
        ("Dockerfile",),
        setup=_fifo("Dockerfile"),
    ),
    Case(
        "vulndb-from-is-file",
        "filesystem",
        ("vulndb", "build", "--from", "pipeline.toml", "--out", "db"),
        2,
        ("pipeline.toml",),
    ),
    Case(
        "vulndb-out-is-file",
        "filesystem",
        ("vulndb", "build", "--from", "osv", "--out", "pipeline.toml"),
        2,
        ("pipeline.toml",),
        files={"osv/a.json": (DATA / "osv/valid_pypi.json").read_text()},
    ),
    Case("vulndb-info-empty-dir", "filesystem", ("vulndb", "info", "emptydb"), 2, ("emptydb",), setup=_dir("emptydb")),
    Case(
        "osv-file-is-fifo",
        "filesystem",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("x.json",),
        files={"osv/a.json": (DATA / "osv/valid_pypi.json").read_text()},
        setup=_fifo("osv/x.json"),
    ),
]


# --------------------------------------------------------------------------- odd values


def _deep(name: str, opener: str, closer: str, depth: int, prefix: str = "") -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(prefix + opener * depth + closer * depth + "\n")

    return setup


def _bomb(root: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join('*' + chr(96 + i) for _ in range(9))}]")
    lines.append(f"waivers:\n  - id: PL-D001\n    reason: *{chr(97 + 11)}\n    owner: x\n    expires: 2026-12-01")
    (root / "waivers.yaml").write_text("\n".join(lines) + "\n")


def _compose_bomb(root: Path) -> None:
    lines = ["x-a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"x-{chr(97 + i)}: &{chr(97 + i)} [{', '.join('*' + chr(96 + i) for _ in range(9))}]")
    lines.append(f"services:\n  a:\n    image: x:1\n    command: *{chr(97 + 11)}")
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")


# tests/cli/bad_inputs/osv/NAME.json: what the message must name besides the file.
OSV_BAD: dict[str, tuple[str, ...]] = {
    "bad_id_int": ("id",),
    "bad_top_list": ("expected an object",),
    "bad_affected_string": ("affected",),
    "bad_version_object": ("affected[0].ranges[0].events[0].introduced",),
    "bad_pip_version_exotic": ("affected[0]", "1.0 || rm -rf /"),
    "bad_pip_version_spaces": ("affected[0]", "not a version"),
    "bad_debian_version": ("affected[0]", "1:2:3:::~~!!"),
    "bad_debian_version_empty_upstream": ("affected[0]", "1:-1"),
    "bad_two_events": ("affected[0].ranges[0].events[0]",),
    "bad_cvss": ("severity[0].score",),
    "bad_severity_not_list": ("severity",),
    "bad_name_empty": ("affected[0].package.name",),
    "bad_pip_name_weird": ("affected[0].package.name",),
    "bad_trailing": ("line 1",),
    "bad_empty": ("line 1",),
    "bad_bom": ("BOM",),
}

W = "  - id: PL-D001\n    reason: r\n    owner: o\n"

ODD = [
    ledger("impossible-date", LEDGER_HEAD + W + "    expires: 2026-02-30\n", "waivers[0].expires", "line 5"),
    ledger("impossible-date-quoted", LEDGER_HEAD + W + "    expires: '2026-13-01'\n", "waivers[0].expires"),
    ledger("datetime-not-date", LEDGER_HEAD + W + "    expires: 2026-12-01T10:00:00\n", "waivers[0].expires", "date"),
    ledger("datetime-with-zone", LEDGER_HEAD + W + "    expires: 2026-12-01 10:00:00+02:00\n", "waivers[0].expires"),
    ledger("expires-int", LEDGER_HEAD + W + "    expires: 20261201\n", "waivers[0].expires"),
    ledger("expires-list", LEDGER_HEAD + W + "    expires: [2026-12-01]\n", "waivers[0].expires"),
    ledger(
        "id-int", LEDGER_HEAD + "  - id: 1234\n    reason: r\n    owner: o\n    expires: 2026-12-01\n", "waivers[0].id"
    ),
    ledger(
        "id-float",
        LEDGER_HEAD + "  - id: 3.14\n    reason: r\n    owner: o\n    expires: 2026-12-01\n",
        "waivers[0].id",
    ),
    ledger(
        "id-bool", LEDGER_HEAD + "  - id: yes\n    reason: r\n    owner: o\n    expires: 2026-12-01\n", "waivers[0].id"
    ),
    ledger(
        "id-list-with-int",
        LEDGER_HEAD + "  - id: [PL-D001, 7]\n    reason: r\n    owner: o\n    expires: 2026-12-01\n",
        "waivers[0].id",
    ),
    ledger(
        "id-mapping",
        LEDGER_HEAD + "  - id: {a: b}\n    reason: r\n    owner: o\n    expires: 2026-12-01\n",
        "waivers[0].id",
    ),
    ledger(
        "reason-list",
        LEDGER_HEAD + "  - id: PL-D001\n    reason: [a]\n    owner: o\n    expires: 2026-12-01\n",
        "waivers[0].reason",
    ),
    ledger(
        "owner-int",
        LEDGER_HEAD + "  - id: PL-D001\n    reason: r\n    owner: 5\n    expires: 2026-12-01\n",
        "waivers[0].owner",
    ),
    ledger(
        "scope-path-int", LEDGER_HEAD + W + "    expires: 2026-12-01\n    scope: {path: 5}\n", "waivers[0].scope.path"
    ),
    ledger(
        "scope-unknown", LEDGER_HEAD + W + "    expires: 2026-12-01\n    scope: {file: x}\n", "waivers[0].scope.file"
    ),
    ledger(
        "entry-unknown-key", LEDGER_HEAD + W + "    expires: 2026-12-01\n    until: 2026-12-01\n", "waivers[0].until"
    ),
    ledger("top-level-list", "- id: PL-D001\n", "waivers"),
    ledger("waivers-string", "waivers: none\n", "waivers"),
    ledger("entry-string", "waivers:\n  - PL-D001\n", "waivers[0]"),
    ledger("not-utf8", b"waivers:\n  - id: PL-D001\n    reason: caf\xe9\n", "UTF-8"),
    ledger("nul-byte", b"waivers:\n  - id: PL-D\x00001\n", ""),
    ledger(
        "duplicate-key",
        LEDGER_HEAD + W + "    expires: 2026-12-01\n    expires: 2026-12-02\n",
        "waivers[0].expires",
        "duplicate",
    ),
    Case(
        "ledger-deep-nesting",
        "odd",
        ("lint",),
        2,
        ("waivers.yaml", "nested"),
        setup=_deep("waivers.yaml", "[", "]", 20000, "waivers: "),
    ),
    Case(
        "ledger-deep-mappings",
        "odd",
        ("lint",),
        2,
        ("waivers.yaml",),
        setup=_deep("waivers.yaml", "{a: ", "}", 20000, "waivers: "),
    ),
    Case("ledger-yaml-bomb", "odd", ("lint",), 2, ("waivers.yaml", "line 2", "aliases"), setup=_bomb),
    ledger("ledger-expired", LEDGER_HEAD + W + "    expires: 2020-01-01\n", "expired on 2020-01-01", expect=1),
    ledger(
        "ledger-no-reason",
        LEDGER_HEAD + "  - id: PL-D001\n    owner: o\n    expires: 2026-12-01\n",
        "has no reason",
        expect=1,
    ),
    ledger("ledger-far-ahead", LEDGER_HEAD + W + "    expires: 2099-01-01\n", "days ahead", expect=1),
    # The config.
    Case(
        "config-not-utf8",
        "odd",
        ("config",),
        2,
        ("pipeline.toml", "UTF-8"),
        files={"pipeline.toml": BASE.encode().replace(b"bad-inputs", b"bad-\xff", 1)},
    ),
    Case(
        "config-deep-arrays",
        "odd",
        ("config",),
        2,
        ("pipeline.toml",),
        setup=_deep("pipeline.toml", "[", "]", 20000, "x = "),
    ),
    Case(
        "config-deep-inline-tables",
        "odd",
        ("config",),
        2,
        ("pipeline.toml",),
        setup=_deep("pipeline.toml", "{a = ", "}", 20000, "x = "),
    ),
    cfg("config-date-for-string", 'name = "bad-inputs"', "name = 2026-02-28", "project.name", klass="odd"),
    cfg(
        "config-datetime-for-int",
        "[lint]",
        "[build]\nparallel = 2026-02-28T10:00:00\n[lint]",
        "build.parallel",
        klass="odd",
    ),
    cfg("config-nan", "[lint]", "[build]\ntimeout = nan\n[lint]", "build.timeout", klass="odd"),
    cfg("config-inf-deadline", "[lint]", "[smoke]\ndeadline = inf\n[lint]", "smoke.deadline", klass="odd"),
    cfg("config-nan-deadline", "[lint]", "[smoke]\ndeadline = nan\n[lint]", "smoke.deadline", klass="odd"),
    cfg("config-impossible-date", 'name = "bad-inputs"', "name = 2026-02-30", "line", klass="odd"),
    cfg(
        "config-nul-in-path",
        'context = "services/web"',
        'context = "services/web\\u0000x"',
        "services.web.context",
        klass="odd",
    ),
    # Dockerfiles and Compose files handed to lint.
    Case(
        "dockerfile-not-utf8",
        "odd",
        ("lint", "--no-config", "Dockerfile"),
        2,
        ("Dockerfile", "UTF-8"),
        files={"Dockerfile": b"FROM scratch\nLABEL a=caf\xe9\n"},
    ),
    Case(
        "dockerfile-huge",
        "odd",
        ("lint", "--no-config", "Dockerfile"),
        2,
        ("Dockerfile", "too large"),
        setup=_big("Dockerfile", 8 << 20),
    ),
    Case(
        "compose-not-utf8",
        "odd",
        ("lint", "--no-config", "compose.yaml"),
        2,
        ("compose.yaml", "UTF-8"),
        files={"compose.yaml": b"services:\n  a:\n    image: caf\xe9:1\n"},
    ),
    Case(
        "compose-deep-nesting",
        "odd",
        ("lint", "--no-config", "compose.yaml"),
        2,
        ("compose.yaml:3", "nested too deeply"),
        setup=_deep("compose.yaml", "[", "]", 20000, "services:\n  a:\n    command: "),
    ),
    Case(
        "compose-yaml-bomb", "odd", ("lint", "--no-config", "compose.yaml"), 2, ("compose.yaml",), setup=_compose_bomb
    ),
    Case(
        "compose-huge",
        "odd",
        ("lint", "--no-config", "compose.yaml"),
        2,
        ("compose.yaml", "too large"),
        setup=_big("compose.yaml", 8 << 20, b"\n"),
    ),
    # OSV advisories.
    Case(
        "osv-deep-nesting",
        "odd",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("deep.json",),
        setup=_deep("osv/deep.json", "[", "]", 100000),
    ),
    Case(
        "osv-not-utf8",
        "odd",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("bad.json", "UTF-8"),
        files={"osv/bad.json": b'{"id": "caf\xe9"}'},
    ),
    Case(
        "osv-huge",
        "odd",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("big.json", "too large"),
        setup=_big("osv/big.json", 40 << 20, b" "),
    ),
    *[
        Case(
            f"osv-{name}",
            "odd",
            ("vulndb", "build", "--from", "osv", "--out", "db"),
            2,
            (f"{name}.json", *said),
            files={f"osv/{name}.json": (DATA / "osv" / f"{name}.json").read_bytes()},
        )
        for name, said in OSV_BAD.items()
    ],
]


# --------------------------------------------------------------------------- nothing is not success


def _empty_db(root: Path) -> None:
    from pipelines.scan import vulndb

    vulndb.build_db([], root / "emptydb", source="nothing")


NOTHING = [
    Case(
        "scan-empty-vulndb",
        "nothing",
        ("scan", "pipelines-bad-inputs-no-such-image:0", "--vulndb", "emptydb"),
        2,
        ("emptydb", "no advisories"),
        setup=_empty_db,
        engine=True,
    ),
    Case(
        "lint-empty-directory",
        "nothing",
        ("lint", "--no-config", "empty"),
        2,
        ("empty", "nothing to lint"),
        setup=_dir("empty"),
    ),
    Case(
        "lint-directory-without-targets",
        "nothing",
        ("lint", "--no-config", "docs"),
        2,
        ("docs", "nothing to lint"),
        files={"docs/README.md": "hello\n", "docs/notes.yaml": "a: 1\n"},
    ),
    Case(
        "lint-only-skipped-dirs",
        "nothing",
        ("lint", "--no-config", "tree"),
        2,
        ("nothing to lint",),
        files={"tree/node_modules/Dockerfile": DOCKERFILE},
    ),
    Case(
        "vulndb-empty-directory",
        "nothing",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("osv", "no advisories"),
        setup=_dir("osv"),
    ),
    Case(
        "vulndb-only-unsupported",
        "nothing",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("osv", "no advisories"),
        files={"osv/npm.json": (DATA / "osv/unsupported_npm.json").read_text()},
    ),
    Case(
        "vulndb-only-withdrawn",
        "nothing",
        ("vulndb", "build", "--from", "osv", "--out", "db"),
        2,
        ("osv", "no advisories"),
        files={"osv/w.json": (DATA / "osv/withdrawn.json").read_text()},
    ),
    Case(
        "build-bases-only-with-service",
        "nothing",
        ("build", "--bases-only", "--only", "web"),
        2,
        ("web", "--bases-only"),
    ),
    Case("build-only-unknown", "nothing", ("build", "--only", "nothing-here"), 2, ("nothing-here",)),
    Case(
        "empty-ledger-file-is-fine-but-empty-config-is-not",
        "nothing",
        ("config",),
        2,
        ("pipeline.toml",),
        files={"pipeline.toml": ""},
    ),
    cfg("config-no-services", "[services.web]", "[other.web]", "", klass="nothing"),
]


# --------------------------------------------------------------------------- exit codes mean what the README says

EXIT_CODES = [
    Case("scan-image-option", "exit-codes", ("scan", "--", "--output=/tmp/owned"), 2, ("--output=/tmp/owned",)),
    Case("scan-image-dash", "exit-codes", ("scan", "--", "-v"), 2, ("'-v'",)),
    Case("scan-image-upper", "exit-codes", ("scan", "NotAnImage:1"), 2, ("NotAnImage:1",)),
    Case("scan-image-space", "exit-codes", ("scan", "bad image"), 2, ("bad image",)),
    Case("scan-image-empty", "exit-codes", ("scan", ""), 2, ("''",)),
    Case("scan-image-bad-digest", "exit-codes", ("scan", "web@sha256:123"), 2, ("web@sha256:123",)),
    Case(
        "scan-image-missing",
        "exit-codes",
        ("scan", "pipelines-bad-inputs-no-such-image:0"),
        2,
        ("pipelines-bad-inputs-no-such-image:0",),
        engine=True,
    ),
    Case("scan-unknown-env", "exit-codes", ("scan", "--env", "qa"), 2, ("environments.qa",)),
    Case("build-parallel-zero", "exit-codes", ("build", "--parallel", "0"), 2, ("--parallel",)),
    Case("build-unknown-env", "exit-codes", ("build", "--env", "qa"), 2, ("environments.qa",)),
    Case("lint-missing-path", "exit-codes", ("lint", "--no-config", "missing/Dockerfile"), 2, ("missing/Dockerfile",)),
    Case(
        "scan-without-build",
        "exit-codes",
        ("scan",),
        2,
        ("pipelines build",),
        # Some vulnerability data, so the missing build is what stops the scan: three shared GHSA records.
        append=f"[scan]\noffline_advisories = {str(ROOT.parent / 'shared' / 'testdata' / 'osv' / 'ghsa')!r}\n"
        'offline_provenance = { repository = "github.com/github/advisory-database", commit = "313aa94", '
        'date = "2023-07-01" }\n',
        engine=True,
    ),
]

# Every file lint reads goes through the guarded reader; contradictory options are refused, not resolved.
NOT_UTF8 = b"failure-threshold: caf\xe9\n"
GUARDED = [
    Case(
        "hadolint-config-not-utf8",
        "odd",
        ("lint",),
        2,
        ("hcfg.yaml", "is not UTF-8 text (line 1: byte 0xe9)"),
        edit=('waivers = "waivers.yaml"', 'waivers = "waivers.yaml"\nhadolint_config = "hcfg.yaml"'),
        files={"hcfg.yaml": NOT_UTF8},
    ),
    Case(
        "hadolint-yaml-beside-not-utf8",
        "odd",
        ("lint", "--no-config", "Dockerfile"),
        2,
        (".hadolint.yaml", "is not UTF-8 text"),
        files={".hadolint.yaml": NOT_UTF8, "Dockerfile": "FROM scratch\nCOPY app /app\n"},
    ),
    Case(
        "dockerignore-not-utf8",
        "odd",
        ("lint", "--no-config", "ctx/Dockerfile"),
        2,
        ("ctx/.dockerignore", "is not UTF-8 text"),
        files={"ctx/Dockerfile": "FROM scratch\nCOPY . /app\n", "ctx/.dockerignore": b".git\n\xff\n"},
    ),
    Case(
        "dockerignore-is-fifo",
        "filesystem",
        ("lint", "--no-config", "ctx/Dockerfile"),
        2,
        ("ctx/.dockerignore", "a FIFO"),
        files={"ctx/Dockerfile": "FROM scratch\nCOPY . /app\n"},
        setup=_fifo("ctx/.dockerignore"),
    ),
    Case(
        "compose-env-is-fifo",
        "filesystem",
        ("lint", "--no-config", "c/compose.yaml"),
        2,
        ("c/.env", "a FIFO"),
        files={"c/compose.yaml": "services:\n  web:\n    image: x\n"},
        setup=_fifo("c/.env"),
    ),
    Case(
        "config-and-no-config",
        "exit-codes",
        ("--config", "pipeline.toml", "lint", "--no-config", "services/web/Dockerfile"),
        2,
        ("--config", "--no-config", "contradict"),
    ),
]

GUARDED += [
    extra(
        "offline-provenance-key", '[scan]\noffline_provenance = { owner = "x" }\n', "scan.offline_provenance", "'owner'"
    ),
    extra("offline-provenance-commit", '[scan]\noffline_provenance = { commit = "main" }\n', "not a git commit id"),
    extra("offline-provenance-date", '[scan]\noffline_provenance = { date = "July 2026" }\n', "not YYYY-MM-DD"),
    extra("offline-provenance-covers", '[scan]\noffline_provenance = { covers = "pypi" }\n', "covers 'pypi' is not"),
    extra("offline-advisories-empty", '[scan]\noffline_advisories = " "\n', "scan.offline_advisories", "is empty"),
]

CASES = VALUES + FILESYSTEM + ODD + NOTHING + EXIT_CODES + GUARDED


def make_project(root: Path, case: Case) -> None:
    text = BASE
    if case.edit is not None:
        old, new = case.edit
        if old not in text:
            raise ValueError(f"{case.id}: {old!r} is not in the base config")
        text = text.replace(old, new, 1)
    text += case.append
    for d in ("images/runtime", "services/web"):
        (root / d).mkdir(parents=True)
        (root / d / "Dockerfile").write_text(DOCKERFILE)
    (root / "linked").symlink_to("/etc")
    (root / "pipeline.toml").write_text(text)
    (root / "waivers.yaml").write_text("waivers: []\n")
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.setup is not None:
        case.setup(root)


def run(
    root: Path, argv: tuple[str, ...], env: Mapping[str, str], *, child: bool = True
) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.pop("GITHUB_STEP_SUMMARY", None)
    full.update({k: v.replace("{root}", str(root)) for k, v in env.items()})
    full["TMPDIR"] = str(root / ".tmp")
    (root / ".tmp").mkdir(exist_ok=True)
    if not child:
        return run_cli_in_process(*argv, cwd=root, env={"GITHUB_STEP_SUMMARY": "", **full})
    try:
        return subprocess.run(
            [sys.executable, "-m", "pipelines", *argv],
            cwd=root,
            env=full,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`pipelines {' '.join(argv)}` still ran after {TIMEOUT}s: a hang")


UNIT = [c for c in CASES if not c.engine]
ENGINE = [c for c in CASES if c.engine]
# The first case of each class runs as a child in every tier: the process boundary (the interpreter's start and
# exit, its exit code, no traceback of its own) holds for every kind of bad input. The unit tier runs the other
# cases in this process, where what the command decides is the same at a tenth of the cost; the full suite runs
# every case as a child.
AS_CHILD = frozenset(next(c.id for c in UNIT if c.klass == k) for k in dict.fromkeys(c.klass for c in UNIT))


def as_child(case: Case) -> bool:
    return not UNIT_TIER or case.id in AS_CHILD


# In this process a hang is stopped by pytest-timeout, later than a child's own bound.
@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("case", UNIT, ids=[f"{c.klass}:{c.id}" for c in UNIT])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)


@pytest.mark.usefixtures("tools")
@pytest.mark.parametrize("case", ENGINE, ids=[f"{c.klass}:{c.id}" for c in ENGINE])
def test_bad_input_after_asking_the_engine(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)


def check(case: Case, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    make_project(root, case)
    r = run(root, case.argv, case.env, child=as_child(case))
    said = r.stderr + (r.stdout if case.expect == 1 else "")
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == case.expect, f"exit {r.returncode}, expected {case.expect}\n{r.stderr[-3000:]}"
    for m in case.mentions:
        assert m in said, f"{m!r} not in the message:\n{said[-3000:]}"
    if case.expect == 2:
        # One clear message, not pages: the first line says what and where.
        assert r.stderr.lstrip().startswith("error:"), r.stderr[-3000:]
    leftovers = list((root / ".tmp").iterdir())
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_the_corpus_covers_every_class_many_times() -> None:
    by_class: dict[str, int] = {}
    for c in CASES:
        by_class[c.klass] = by_class.get(c.klass, 0) + 1
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    assert set(by_class) == {"values", "filesystem", "odd", "nothing", "exit-codes"}
    assert all(n >= 8 for n in by_class.values()), by_class


# --------------------------------------------------------------------------- Ctrl-C at any moment


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.6, 1.0, 2.0])
@pytest.mark.parametrize("command", ["config", "lint"])
def test_ctrl_c_exits_130_without_traceback_or_leftovers(tmp_path: Path, delay: float, command: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    make_project(root, Case("ctrl-c", "interrupt", (command,)))
    (root / ".tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(root / ".tmp"))
    env.pop("GITHUB_STEP_SUMMARY", None)
    child = subprocess.Popen(
        # The delay counts from the moment the package exists (-X importtime says so): a signal
        # inside the interpreter's own start-up (site), before any code of ours, is Python's.
        [sys.executable, "-X", "importtime", "-m", "pipelines", command],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if child.stderr is None:
        pytest.fail("no stderr pipe")
    seen = []
    for line in child.stderr:
        seen.append(line)
        if line.rstrip().endswith("| pipelines"):
            break
    time.sleep(delay)
    finished_first = child.poll() is not None
    if not finished_first:
        child.send_signal(signal.SIGINT)
    try:
        _, rest = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail(f"`pipelines {command}` still ran {TIMEOUT}s after Ctrl-C")
    err = "".join(x for x in [*seen, rest] if not x.startswith("import time:"))
    assert "Traceback" not in err, err[-3000:]
    if not finished_first:
        # It may have finished in the instant before the signal arrived; otherwise: 130.
        # Killed by the SIGINT itself (-2) happens when it lands in the interpreter's own shutdown,
        # after the command finished: a shell reports that as 130 too.
        assert child.returncode in (130, -signal.SIGINT, 0, 1), f"exit {child.returncode}\n{err[-3000:]}"
    assert not list((root / ".tmp").iterdir())


def test_ctrl_c_during_imports_exits_130() -> None:
    """The interpreter is importing the package's modules when the signal lands."""
    child = subprocess.Popen(
        # -X importtime reports each import as it completes: the signal is sent right after the
        # package itself is imported, while its stage modules are still loading.
        [sys.executable, "-X", "importtime", "-m", "pipelines", "config"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert child.stderr is not None
    seen = []
    for line in child.stderr:
        seen.append(line)
        if line.rstrip().endswith("| pipelines"):
            child.send_signal(signal.SIGINT)
            break
    _, rest = child.communicate(timeout=TIMEOUT)
    err = "".join(seen) + rest
    assert any(x.rstrip().endswith("| pipelines") for x in seen), "the package was never imported"
    assert "Traceback" not in err, err[-3000:]
    assert child.returncode in (130, 0), f"exit {child.returncode}\n{err[-2000:]}"


def test_base_project_itself_is_valid(tmp_path: Path) -> None:
    """The corpus edits a valid project: a case fails for its own edit, not the base's."""
    root = tmp_path / "proj"
    root.mkdir()
    make_project(root, Case("base", "none", ("config",)))
    r = run(root, ("config",), {}, child=not UNIT_TIER)
    assert r.returncode == 0, r.stderr
    assert textwrap.dedent(BASE).count("[environments.") == 2
    # Lint runs to its verdict (findings or none), so the lint cases fail for their own input.
    r = run(root, ("lint",), {"GITHUB_STEP_SUMMARY": "{root}/summary.md"}, child=not UNIT_TIER)
    assert r.returncode in (0, 1), r.stderr
    assert "Lint:" in (root / "summary.md").read_text()
    r = run(root, ("lint", "--no-config", "services/web/Dockerfile"), {}, child=not UNIT_TIER)
    assert r.returncode in (0, 1), r.stderr
