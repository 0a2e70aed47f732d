"""The project's own Dockerfile hardening policy, on BuildKit's real parse.

Each rule has a stable ID, a severity, a one-line rationale and a fix hint.
Rules look at stages and instructions (with line numbers) as BuildKit's
parser returns them, not at regex matches over the text.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile
from docker.utils.build import PatternMatcher

from .. import inputs
from ..errors import InputError
from ..findings import Finding, Rule, Severity

TOOL = "pipelines-dockerfile"
INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}
OCI_KEYS = ("title", "version", "created", "revision", "source")
PINNED_BY_PIPELINE = "@sha256:" + "0" * 64  # stands for "the pipeline passes a digest here"


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

# What must never reach the builder: repository history and secrets files.
DOCKERIGNORE_MUST_EXCLUDE = (".git", ".env", ".env.local")
# What should not, when the context holds it: local environments, caches and tests.
DOCKERIGNORE_SHOULD_EXCLUDE = (".venv", "venv", "__pycache__", "node_modules", "tests")
BUILD_TOOLS = re.compile(
    r"^(gcc|g\+\+|cc|clang|make|build-essential|git|subversion|mercurial|cmake|"
    r"python3?-dev|libc6?-dev|[a-z0-9.+-]+-dev)$"
)
SECRET_KEY = re.compile(
    r"(?i)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|"
    r"CREDENTIAL|(^|_)KEY$|(^|_)(PASS|PWD)$)"
)
# Names that say the value is public by design: signing keys people verify with, key IDs,
# keyservers, and settings that only name where a secret lives.
PUBLIC_KEY = re.compile(
    r"(?i)(^|_)(GPG|PGP|GNUPG|MINISIGN|COSIGN|SIGNING|PUBLIC|PUB)(_|$)|KEYSERVER|KEYRING|FINGERPRINT|"
    r"(_|^)KEYS?_?(ID|IDS|URL|URI)$|(_FILE|_PATH|_DIR|_LENGTH|_MIN_LENGTH|_ENABLED|_EXPIRY|_TTL|_URL_PATH|_REQUIRED)$"
)
SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
# user:password@ inside a URL; a ${VAR} or $VAR password comes from elsewhere and is not inline.
URL_CREDENTIAL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<pw>[^@\s/]+)@")
DEP_INSTALL = re.compile(
    r"\b(pip3?|python3? -m pip|uv pip)\b[^&;|]*\binstall\b[^&;|]*(\s-r\s|\s--requirement|\s-c\s)|"
    r"\bpoetry install\b|\buv sync\b|\bpipenv (install|sync)\b|\bnpm (ci|install)\b|\byarn( install)?\s*($|&|;)|"
    r"\bpnpm install\b|\bgo mod download\b|\bbundle install\b|\bcomposer install\b|\bdotnet restore\b"
)
# Dependency manifests and lock files, matched against COPY sources (which may be globs).
MANIFEST_NAMES = (
    "requirements.txt",
    "requirements.in",
    "requirements-dev.txt",
    "constraints.txt",
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "Pipfile",
    "Pipfile.lock",
    "setup.py",
    "setup.cfg",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "Cargo.toml",
    "Cargo.lock",
    "pom.xml",
    "build.gradle",
)
MANIFEST_DIR = re.compile(r"(^|/)(requirements|constraints)(/|$)|\.csproj$|(^|/)requirements[^/]*\.(txt|in)$")
ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tar\.xz|txz|zip)$")
VAR = re.compile(r"\$(?:\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)(?::?[-+](?P<d>[^}]*))?\}|(?P<n>[A-Za-z_][A-Za-z0-9_]*))")
REMOTE = re.compile(r"^(https?|git)://|^git@")
# Interpreters a download must never be piped into.
_RUNNER = r"((ba|z|da|k|a)?sh|python[0-9.]*|perl|ruby|node|php|pwsh)"
PIPE_TO_INTERPRETER = re.compile(
    r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+(-\S+\s+)*)?(env\s+)?([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
    rf"(/usr)?(/local)?(/bin/)?{_RUNNER}\b"
)
EVAL_DOWNLOAD = re.compile(
    r"\b(((ba|z|da)?sh|python[0-9.]*)\s+-c\s+|eval\s+)[\"']?\$\((curl|wget)\b"
    # Process substitution: `bash <(curl URL)`, `source <(wget -O- URL)`.
    rf"|(\b{_RUNNER}|\bsource|(^|[;&|]\s*)\.)\s+<\(\s*(curl|wget)\b"
)
# Fetched to a file, then run, with no check in between: `curl -o i.sh URL && sh i.sh`.
DOWNLOAD_TO_FILE = re.compile(r"\b(curl|wget)\b[^|;&]*?\s(-o|-O|--output|--output-document)[= ]\s*(?P<file>[^\s;&|]+)")
VERIFIED = re.compile(r"\b(sha(1|256|512)sum|gpg|gpgv|cosign|minisign|openssl\s+dgst)\b")
HEREDOC_MARKER = re.compile(r"<<-?\s*['\"]?[A-Za-z_][A-Za-z0-9_]*['\"]?")
SHELLS = re.compile(r"^(/usr)?(/bin/)?(ba|z|da|k|a)?sh$")
PRIVILEGE_DROP = re.compile(r"\b(gosu|su-exec|setpriv|chroot --userspec|runuser)\b")


@dataclass
class Stage:
    index: int
    name: str
    base: str  # as written
    resolved: str  # with build args substituted
    line: int
    commands: list[dockerfile.Command] = field(default_factory=list)


@dataclass
class Parsed:
    path: Path
    display: str
    text: str
    stages: list[Stage]
    global_args: dict[str, str]
    # First and last line of every instruction (FROM and global ARGs too): what an inline waiver covers.
    spans: tuple[tuple[int, int], ...] = ()


def parse(path: Path, display: str, build_args: Mapping[str, str]) -> Parsed:
    """Parse with BuildKit's parser; anything it or BuildKit would reject is an InputError with file:line."""
    text = inputs.read_text(path, display)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise InputError(
            f"{display}: not a valid Dockerfile: {exc}",
            hint="fix the syntax; `docker buildx build` would reject it too",
        ) from None
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for c in commands:
        if c.cmd not in INSTRUCTIONS:
            raise InputError(
                f"{display}:{c.start_line}: unknown instruction {c.cmd}",
                seen=c.original,
                hint="BuildKit rejects it; check the spelling",
            )
        if c.cmd == "FROM":
            words = [w for w in c.value]
            if not words:
                raise InputError(f"{display}:{c.start_line}: FROM without an image")
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            args = {**global_args, **{k: v for k, v in build_args.items()}}
            stages.append(Stage(len(stages), name, words[0], substitute(words[0], args), c.start_line))
        elif not stages:
            if c.cmd != "ARG":
                raise InputError(
                    f"{display}:{c.start_line}: {c.cmd} before the first FROM", hint="only ARG may come before FROM"
                )
            for word in c.value:
                k, _, v = word.partition("=")
                # ARG A=${B}: the default may name an earlier ARG (or a --build-arg).
                global_args[k] = substitute(v.strip("'\""), {**global_args, **build_args})
        else:
            stages[-1].commands.append(c)
    if not stages:
        raise InputError(f"{display}: no FROM instruction", hint="a Dockerfile needs at least one stage")
    return Parsed(path, display, text, stages, global_args, tuple((c.start_line, c.end_line) for c in commands))


def substitute(value: str, args: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group("b") or m.group("n")
        if args.get(name):
            return args[name]
        if m.group("d") is not None and m.group(0).startswith("${") and ":-" in m.group(0):
            return m.group("d")
        return m.group(0)

    return VAR.sub(one, value)


# Trailing stages with these names are development or test targets, not the image that ships.
DEV_TOOLING = re.compile(r"(?i)^(dev-?envs?|devcontainer)$")
NOT_SHIPPED = re.compile(r"(?i)^(dev|devel|development|dev-?envs?|devcontainer|debug|test|tests|testing|ci|lint)$")


def final_stage(p: Parsed, target: str | None) -> Stage:
    if target:
        for s in p.stages:
            if s.name == target:
                return s
        raise InputError(
            f"{p.display}: build target {target!r} is not a stage",
            hint=f"stages: {', '.join(s.name for s in p.stages)}",
        )
    shipped = [s for s in p.stages if not NOT_SHIPPED.match(s.name)]
    if shipped:
        return shipped[-1]
    # Only development targets: judge the development image, not the editor tooling stacked on it.
    not_tooling = [s for s in p.stages if not DEV_TOOLING.match(s.name)]
    return not_tooling[-1] if not_tooling else p.stages[-1]


def shipped_stages(p: Parsed, final: Stage) -> list[Stage]:
    """The final stage and the stages it is built FROM: what ends up in the image."""
    by_name = {s.name.lower(): s for s in p.stages}
    out, cur = [final], final
    while cur.resolved.lower() in by_name and by_name[cur.resolved.lower()] not in out:
        cur = by_name[cur.resolved.lower()]
        out.append(cur)
    return out


# Rules that judge an image as a running service; base images skip some.
RUNTIME_RULES = {"PL-D001", "PL-D002", "PL-D005", "PL-D006", "PL-D015", "PL-D017"}
NOT_FOR_ROLE = {
    "builder": {"PL-D001", "PL-D002", "PL-D006", "PL-D015"},  # root and compilers are its purpose
    "runtime": {"PL-D002", "PL-D015"},  # no app to probe yet; system files belong to root
    "service": set(),
    # A final stage that only collects files for `docker build --output` is never run.
    "export": RUNTIME_RULES,
}


@dataclass(frozen=True)
class Context:
    profile: str  # "prod" makes a missing digest an error
    target: str | None = None
    labels_by_pipeline: bool = False
    context_dir: Path | None = None
    role: str = "service"
    labels_required: bool = False


def is_export_stage(final: Stage) -> bool:
    """`FROM scratch` holding only copied files, with nothing to run: an artifact export stage."""
    if final.resolved != "scratch":
        return False
    return all(c.cmd in ("COPY", "ADD", "ARG", "LABEL", "WORKDIR") for c in final.commands)


def check(p: Parsed, ctx: Context) -> list[Finding]:
    final = final_stage(p, ctx.target)
    out: list[Finding] = []
    for rule in (
        _user,
        _healthcheck,
        _pinned,
        _secrets,
        _exec_form,
        _final_tooling,
        _apt,
        _layer_order,
        _add,
        _pipe_to_shell,
        _sudo,
        _chown,
        _dockerignore,
        _labels,
        _remote_packages,
        _world_writable,
    ):
        out.extend(rule(p, final, ctx))
    skip = NOT_FOR_ROLE["export"] if is_export_stage(final) else NOT_FOR_ROLE[ctx.role]
    return [f for f in out if f.rule not in skip]


def _f(p: Parsed, rule: str, line: int, message: str, severity: Severity | None = None) -> Finding:
    r = RULES[rule]
    return Finding(TOOL, rule, severity or r.severity, message, p.display, line, hint=r.hint)


Check = Callable[[Parsed, Stage, Context], Iterator[Finding]]


def _stage_name(s: Stage) -> str:
    return repr(s.name) if not s.name.isdigit() else f"#{s.name} (FROM {s.base})"


def stage_vars(p: Parsed, stage: Stage, upto: int | None = None) -> dict[str, str]:
    """ARG defaults (global ones the stage re-declares, chains resolved) and ENV values known in a stage."""
    known: dict[str, str] = {}
    for c in stage.commands:
        if upto is not None and c.start_line >= upto:
            break
        if c.cmd == "ARG":
            for w in c.value:
                k, eq, v = w.partition("=")
                if eq:
                    known[k] = substitute(v.strip("'\""), known)
                elif k in p.global_args:
                    known[k] = p.global_args[k]
        elif c.cmd == "ENV":
            for k, v in env_pairs(c):
                known[k] = substitute(v, known)
    return known


def _user(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    users = [c for c in final.commands if c.cmd == "USER"]
    if not users:
        if any(PRIVILEGE_DROP.search(text) for c in final.commands for text, _ in scripts(c)):
            # The entrypoint starts as root only to fix ownership, then drops to a service user
            # (the official database images do this); USER would break that design.
            return
        yield _f(
            p,
            "PL-D001",
            final.line,
            f"final stage {_stage_name(final)} sets no USER: it runs as the base "
            "image's user, root unless that image says otherwise",
        )
        return
    last = users[-1]
    written = last.value[0] if last.value else ""
    value = substitute(written.strip("'\""), stage_vars(p, final, last.start_line)).strip("'\"")
    user = value.split(":", 1)[0]
    if "$" in user:
        return  # a build arg without a default: nothing to judge until it is passed
    if not user.isdigit():
        yield _f(p, "PL-D001", last.start_line, f"USER {written!r} is a name, not a numeric UID")
    elif int(user) == 0:
        yield _f(p, "PL-D001", last.start_line, "the final stage runs as root (UID 0)")


INTERPRETERS = {"python", "python3", "node", "bash", "sh", "ash", "zsh", "irb", "php", "jshell", "pwsh", "ruby"}


def _is_service(p: Parsed, final: Stage) -> bool:
    """Whether the image runs a service: it exposes a port, or its command is more than a bare interpreter."""
    chain = shipped_stages(p, final)
    if any(c.cmd == "EXPOSE" for s in chain for c in s.commands):
        return True
    runs = [c for s in chain for c in s.commands if c.cmd in ("CMD", "ENTRYPOINT")]
    if not runs:
        return False
    words = [w for c in runs[-1:] for w in c.value]
    program = words[0].rsplit("/", 1)[-1] if words else ""
    # `python3 server.py`, `python -m app`: an interpreter given something to run is the service.
    return program not in INTERPRETERS or any(not w.startswith("-") for w in words[1:])


def _healthcheck(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    checks = [c for s in shipped_stages(p, final) for c in s.commands if c.cmd == "HEALTHCHECK"]
    if not checks:
        if not _is_service(p, final):
            return  # a base or tool image with nothing to probe (an interpreter, a CLI)
        yield _f(p, "PL-D002", final.line, f"final stage {_stage_name(final)} has no HEALTHCHECK")
        return
    c = checks[-1]
    if c.value and c.value[0].upper() == "NONE":
        yield _f(p, "PL-D002", c.start_line, "HEALTHCHECK NONE disables health checking")
    elif not c.json:
        yield _f(p, "PL-D002", c.start_line, "HEALTHCHECK uses shell form (needs /bin/sh in the image)")


def _image_pin(ref: str) -> str | None:
    """Why a resolved image reference is not pinned, or None when it is."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if digest:
        return None
    if not tag:
        return "no tag and no digest (means latest)"
    if tag == "latest":
        return "the `latest` tag"
    return "tag without a digest"


def _pinned(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    names: set[str] = set()
    for s in p.stages:
        ref = s.resolved
        if ref == "scratch" or ref.lower() in names:
            names.add(s.name.lower())
            continue
        names.add(s.name.lower())
        if "$" in ref:
            continue  # nothing to judge until the build arg is passed: a note (unresolved_bases), not a finding
        why = _image_pin(ref)
        shown = f"FROM {s.base}" + (f" (= {ref})" if ref != s.base else "")
        if why == "tag without a digest":
            sev = Severity.ERROR if ctx.profile == "prod" else Severity.WARNING
            yield _f(p, "PL-D003", s.line, f"{shown}: tag without a digest", sev)
        elif why:
            yield _f(p, "PL-D003", s.line, f"{shown}: {why}")
    # COPY --from=IMAGE pulls from an image as surely as FROM does.
    stage_names = {s.name.lower() for s in p.stages} | {str(i) for i in range(len(p.stages))}
    for s in p.stages:
        known = {**p.global_args, **stage_vars(p, s)}
        for c in s.commands:
            if c.cmd not in ("COPY", "ADD"):
                continue
            for flag in c.flags:
                if not flag.startswith("--from="):
                    continue
                src = substitute(flag.split("=", 1)[1].strip("'\""), known)
                if src.lower() in stage_names or "$" in src:
                    continue
                why = _image_pin(src)
                if why:
                    sev = Severity.ERROR if ctx.profile == "prod" or why != "tag without a digest" else Severity.WARNING
                    yield _f(p, "PL-D003", c.start_line, f"{c.cmd} --from={src}: an external image, {why}", sev)


def unresolved_bases(p: Parsed) -> list[str]:
    """Notes for FROM lines whose build arg has no value here: their pin cannot be checked."""
    return [
        f"{p.display}:{s.line}: FROM {s.base}: the build arg has no value here, so its pin is not checked; "
        "pass --build-arg or give the ARG a pinned default"
        for s in p.stages
        if "$" in s.resolved
    ]


def _entropy(s: str) -> float:
    counts = {ch: s.count(ch) for ch in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def looks_secret(value: str) -> bool:
    if SECRET_VALUE.search(value):
        return True
    v = value.strip("'\"")
    return (
        len(v) >= 24
        and " " not in v
        and "/" not in v
        and "$" not in v
        and _entropy(v) >= 4.2
        and any(c.isdigit() for c in v)
        and any(c.isalpha() for c in v)
    )


def secret_name(key: str) -> bool:
    """A name that says its value is a secret, and not one of the public-by-design ones."""
    return bool(SECRET_KEY.search(key)) and not PUBLIC_KEY.search(key)


def url_credential(value: str) -> bool:
    m = URL_CREDENTIAL.search(value)
    return m is not None and not m.group("pw").startswith("$")


# Settings that switch authentication off; (name pattern, values that mean "off").
AUTH_OFF = (
    (re.compile(r"(?i)HOST_AUTH_METHOD$"), {"trust"}),
    (re.compile(r"(?i)ALLOW_EMPTY_PASSWORD$"), {"yes", "true", "1"}),
    (re.compile(r"(?i)^xpack\.security\.enabled$|(^|_)AUTH(ENTICATION)?_(ENABLED|REQUIRED)$"), {"false", "no", "0"}),
    (re.compile(r"(?i)(^|_)(DISABLE|SKIP)_AUTH(ENTICATION)?$"), {"true", "yes", "1"}),
    (re.compile(r"(?i)ANONYMOUS_ENABLED$"), {"true", "yes", "1"}),
)


def auth_disabled(key: str, value: str) -> bool:
    v = value.strip().strip("'\"").lower()
    return any(rx.search(key) and v in off for rx, off in AUTH_OFF)


def env_pairs(c: dockerfile.Command) -> list[tuple[str, str]]:
    """Key/value pairs of ENV, LABEL or ARG, quotes removed."""
    words = list(c.value)
    if c.cmd in ("ENV", "LABEL"):
        # BuildKit's parser already flattens both `k=v ...` and legacy `k v` into pairs.
        return [(k.strip("'\""), v.strip("'\"")) for k, v in zip(words[0::2], words[1::2], strict=False)]
    pairs = []
    for w in words:
        k, _, v = w.partition("=")
        pairs.append((k, v.strip("'\"")))
    return pairs


def _secrets(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    global_args = [(k, v) for k, v in p.global_args.items()]
    if global_args:
        yield from _secret_pairs(p, "ARG", p.stages[0].line, global_args)
    for s in p.stages:
        for c in s.commands:
            if c.cmd in ("ENV", "ARG"):
                yield from _secret_pairs(p, c.cmd, c.start_line, env_pairs(c))


def _secret_pairs(p: Parsed, kind: str, line: int, pairs: list[tuple[str, str]]) -> Iterator[Finding]:
    for key, value in pairs:
        named = secret_name(key)
        if auth_disabled(key, value):
            yield _f(p, "PL-D020", line, f"{kind} {key}={value}: switches authentication off")
        elif named and value and not value.startswith("$"):
            yield _f(p, "PL-D004", line, f"{kind} {key}: a secret-looking name ({kind} values are kept in the image)")
        elif named and kind == "ARG" and not value:
            yield _f(p, "PL-D004", line, f"ARG {key}: a secret passed as a build arg is kept in the image history")
        elif value and url_credential(value):
            yield _f(p, "PL-D004", line, f"{kind} {key}: a URL with a password in it")
        elif value and looks_secret(value) and not PUBLIC_KEY.search(key):
            yield _f(p, "PL-D004", line, f"{kind} {key}: the value looks like a credential")


def _exec_form(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd in ("ENTRYPOINT", "CMD") and not c.json:
            yield _f(p, "PL-D005", c.start_line, f"{c.cmd} uses shell form: {c.original}")


def scripts(c: dockerfile.Command) -> list[tuple[str, int]]:
    """The shell text a RUN executes, with the line each part starts on: the command line and every heredoc body."""
    if c.cmd != "RUN":
        return []
    out: list[tuple[str, int]] = []
    main = HEREDOC_MARKER.sub("", " ".join(c.value)).strip()
    if main:
        out.append((main, c.start_line))
    # `RUN <<EOF` and `RUN bash -e <<EOF` run the body as shell; `RUN python3 <<EOF` or `cat <<EOF > f` do not.
    words = command_words(main.split())
    program = words[0] if words else ""
    body_is_shell = not program or bool(SHELLS.match(program))
    original_lines = c.original.split("\n")
    cursor = 1
    for h in c.heredocs:
        body = h.content.split("\n")
        first = body[0] if body else ""
        line = c.start_line + cursor
        for i in range(cursor, len(original_lines)):
            if original_lines[i] == first:
                line = c.start_line + i
                cursor = i + len(body)
                break
        if body_is_shell:
            out.append((h.content, line))
    return out


def segments(c: dockerfile.Command) -> list[tuple[list[str], int]]:
    """A RUN's shell text split into simple commands, each as words with its line (best effort)."""
    out: list[tuple[list[str], int]] = []
    for text, first in scripts(c):
        # Join backslash-continued lines but remember where each logical line starts.
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            start = i
            logical = lines[i]
            while logical.endswith("\\") and i + 1 < len(lines):
                i += 1
                logical = logical[:-1] + " " + lines[i]
            i += 1
            for part in re.split(r"&&|\|\||;|\|", logical):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    words = part.split()
                words = command_words(words)
                if words:
                    out.append((words, first + start))
    return out


def logical_lines(c: dockerfile.Command) -> list[tuple[str, int]]:
    out = []
    for text, first in scripts(c):
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            start = i
            logical = lines[i]
            while logical.endswith("\\") and i + 1 < len(lines):
                i += 1
                logical = logical[:-1] + " " + lines[i]
            i += 1
            out.append((logical, first + start))
    return out


def command_words(words: list[str]) -> list[str]:
    """Drop what runs a command rather than being it: VAR=value prefixes, env, command, exec, time, nice."""
    i = 0
    while i < len(words):
        w = words[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) or w in ("env", "command", "exec", "time", "nice", "(", "{"):
            i += 1
        else:
            break
    return words[i:]


def _run_text(c: dockerfile.Command) -> str:
    return "\n".join(t for t, _ in scripts(c))


def _mounts(c: dockerfile.Command) -> str:
    return " ".join(f for f in c.flags if f.startswith("--mount"))


def _installs(words: list[str]) -> list[str]:
    if words and words[0] == "sudo":
        words = command_words(words[1:])
    if (
        len(words) >= 2
        and words[0] in ("apt-get", "apt", "apk", "yum", "dnf", "microdnf")
        and ("install" in words or "add" in words)
    ):
        rest = words[words.index("install" if "install" in words else "add") + 1 :]
        out, skip = [], False
        for w in rest:
            if skip:
                skip = False
            elif w in ("--virtual", "-t"):
                skip = True  # apk's virtual package name, not a package
            elif not w.startswith("-"):
                out.append(w)
        return out
    return []


def _removed_in_same_run(c: dockerfile.Command) -> set[str] | None:
    """Packages the RUN removes again; None means "everything it installed" (apt-mark auto + autoremove)."""
    text = _run_text(c)
    if re.search(r"apt-mark auto\b", text) and re.search(r"(purge|remove)\b[^&;]*--auto-remove|autoremove", text):
        return None
    removed: set[str] = set()
    virtual: dict[str, list[str]] = {}
    for words, _ in segments(c):
        if words[:1] == ["apk"] and "add" in words and "--virtual" in words:
            i = words.index("--virtual")
            if i + 1 < len(words):
                virtual[words[i + 1]] = _installs(words)
        if words[:1] in (["apt-get"], ["apt"]) and ({"purge", "remove"} & set(words)):
            removed |= {w for w in words[2:] if not w.startswith("-")}
        if words[:1] == ["apk"] and "del" in words:
            for w in words[words.index("del") + 1 :]:
                removed.add(w)
                removed |= set(virtual.get(w, []))
    return removed


def _final_tooling(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd != "RUN":
            continue
        removed = _removed_in_same_run(c)
        for words, line in segments(c):
            pkgs = [w.split("=", 1)[0] for w in _installs(words)]
            bad = [w for w in pkgs if BUILD_TOOLS.match(w) and removed is not None and w not in removed]
            if bad:
                yield _f(p, "PL-D006", line, f"final stage installs build tooling: {', '.join(bad)}")
            if (
                ("pip" in words[0] or words[:3] == ["python3", "-m", "pip"] or words[:3] == ["python", "-m", "pip"])
                and "install" in words
                and "--no-cache-dir" not in words
                and "/root/.cache" not in _mounts(c)
                and "PIP_NO_CACHE_DIR" not in stage_vars(p, final, c.start_line)
            ):
                yield _f(
                    p,
                    "PL-D006",
                    line,
                    "pip install in the final stage leaves its cache (use --no-cache-dir or a cache mount)",
                )


def _apt_lists_cached(c: dockerfile.Command) -> bool:
    return bool(re.search(r"type=cache[^ ]*target=/var/lib/apt(/lists)?/?(,|$|\s)", _mounts(c))) or bool(
        re.search(r"target=/var/lib/apt(/lists)?/?[^ ]*type=cache", _mounts(c))
    )


def _apt(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    # A builder stage's package lists and recommends are thrown away with the stage: those two rules
    # judge only what ships; stale lists and upgrades matter wherever they happen.
    shipped = shipped_stages(p, final)
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "RUN":
                continue
            segs = segments(c)
            apt = [(w, ln) for w, ln in segs if w and w[0] in ("apt-get", "apt")]
            updates = [(w, ln) for w, ln in apt if "update" in w]
            installs = [(w, ln) for w, ln in apt if "install" in w]
            for w, ln in installs:
                if s in shipped and "--no-install-recommends" not in w and "APT::Install-Recommends" not in " ".join(w):
                    yield _f(p, "PL-D007", ln, "apt-get install without --no-install-recommends")
            if updates and not installs and not any(w[:2] in (["apt-get", "upgrade"],) for w, _ in apt):
                yield _f(p, "PL-D008", updates[0][1], "apt-get update in a RUN that installs nothing")
            if installs and not updates:
                yield _f(p, "PL-D008", installs[0][1], "apt-get install without apt-get update in the same RUN")
            text = _run_text(c)
            # `apt-get dist-clean` (apt >= 2.7) removes the lists as well as the package cache.
            cleaned = "/var/lib/apt/lists" in text or bool(re.search(r"\bapt(-get)? dist-clean\b", text))
            if s in shipped and updates and not cleaned and not _apt_lists_cached(c):
                yield _f(p, "PL-D009", updates[0][1], "apt lists are not removed in the RUN that fetched them")
            for w, ln in apt:
                if {"upgrade", "dist-upgrade", "full-upgrade"} & set(w):
                    yield _f(p, "PL-D010", ln, "apt upgrade in an image build")


def _is_manifest(src: str) -> bool:
    src = src.rstrip("/")
    base = src.rsplit("/", 1)[-1]
    if MANIFEST_DIR.search(src):
        return True
    # Sources may be globs (`package*.json`, `poetry.lock*`): a glob that matches a manifest name counts.
    return any(fnmatch.fnmatchcase(name, base) for name in MANIFEST_NAMES)


def _is_source_copy(c: dockerfile.Command) -> bool:
    if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
        return False
    if any(w.startswith("<<") for w in c.value):
        return False  # a heredoc writes a file; it is not the project's source
    # Remote sources are not the build context's source code.
    sources = [src for src in c.value[:-1] if not REMOTE.match(src)]
    return any(not _is_manifest(src) for src in sources)


def _installs_deps(c: dockerfile.Command) -> bool:
    return c.cmd == "RUN" and any(DEP_INSTALL.search(t) for t, _ in logical_lines(c))


def _layer_order(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        copied_at = 0
        deps_first = False
        for c in s.commands:
            if _is_source_copy(c) and not copied_at:
                copied_at = c.start_line
            elif _installs_deps(c):
                if not copied_at:
                    # Installed from manifests copied or bind-mounted first: dependency-first already;
                    # a later install after the source copy only adds the project itself.
                    deps_first = True
                elif not deps_first:
                    yield _f(
                        p,
                        "PL-D011",
                        c.start_line,
                        f"dependencies are installed after the source was copied (line {copied_at})",
                    )
                    deps_first = True  # one finding per stage


def _add(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "ADD":
                continue
            for src in c.value[:-1]:
                if REMOTE.match(src):
                    checksum = any(f.startswith("--checksum") for f in c.flags)
                    if not checksum:
                        yield _f(p, "PL-D012", c.start_line, f"ADD fetches a remote source: {src}", Severity.ERROR)
                elif ARCHIVE.search(src):
                    continue  # unpacking a local archive is what ADD is for
                # A plain local ADD is hadolint's DL3020; one finding per problem.


def _pipe_to_shell(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for text, line in logical_lines(c):
                m = PIPE_TO_INTERPRETER.search(text) or EVAL_DOWNLOAD.search(text)
                if m:
                    yield _f(p, "PL-D013", line, f"a download is run unverified: {m.group(0).strip()}")
                    continue
                got = DOWNLOAD_TO_FILE.search(text)
                if got and got.group("file") != "-":
                    rest = text[got.end() :]
                    name = re.escape(got.group("file"))
                    run = re.search(
                        rf"(^|[;&|]\s*|\s){_RUNNER}\s+(-\S+\s+)*{name}(\s|$|;|&)|(^|[;&|]\s*)(\./|\.\s+|source\s+){name}\b",
                        rest,
                    )
                    if run and not VERIFIED.search(rest[: run.start()]):
                        what = f"{got.group(0).strip()} ... {run.group(0).strip(' ;&|')}"
                        yield _f(p, "PL-D013", line, f"a download is run unverified: {what}")


def _sudo(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                if words[0] == "sudo":
                    yield _f(p, "PL-D014", line, "RUN uses sudo")


# Where a service keeps what it writes (FHS state, caches, logs, scratch): a copy there owned by the
# runtime user is a data directory handed over on purpose, not code.
STATE_DIRS = ("/var/lib/", "/var/cache/", "/var/log/", "/var/run/", "/run/", "/tmp/", "/var/tmp/", "/data/")  # noqa: S108 (paths in images, not ours)


def _user_part(value: str) -> str:
    return value.split(":", 1)[0].strip()


def _owner_may_write(flags: Sequence[str]) -> bool:
    """False only when --chmod gives the owner no write bit (e.g. 0555): then ownership grants nothing."""
    for f in flags:
        if f.startswith("--chmod="):
            mode = f.split("=", 1)[1]
            if re.fullmatch(r"0?[0-7]{3,4}", mode):
                return bool(int(mode[-3], 8) & 2)
    return True


def _chown(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    # Files the runtime user owns are files the running process can rewrite; root-owned, read-only
    # application files are the safe default. Only a --chown to the very user the stage runs as is
    # certain (a name and a numeric id cannot be matched without the image's passwd).
    runtime = ""
    for c in final.commands:
        if c.cmd == "USER" and c.value:
            runtime = _user_part(c.value[0])
    if runtime in ("", "root", "0"):
        return
    for c in final.commands:
        if c.cmd not in ("COPY", "ADD"):
            continue
        owner = next((_user_part(f.split("=", 1)[1]) for f in c.flags if f.startswith("--chown=")), "")
        dest = c.value[-1] if c.value else ""
        is_state = (dest.rstrip("/") + "/").startswith(STATE_DIRS)
        if owner == runtime and _owner_may_write(c.flags) and not is_state:
            yield _f(
                p,
                "PL-D015",
                c.start_line,
                f"{c.cmd} --chown={owner}: the runtime user ({runtime}) owns these files and can rewrite them",
            )


def _copies_whole_context(p: Parsed) -> bool:
    for s in p.stages:
        for c in s.commands:
            local = c.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in c.flags)
            if local and any(src.rstrip("/") in (".", "./", "*", "") for src in c.value[:-1]):
                return True
    return False


def _beside(p: Parsed, other: Path) -> str:
    """How to name a file read for a Dockerfile: beside it as the Dockerfile is named, else its own path."""
    return str(Path(p.display).with_name(other.name)) if other.parent == p.path.parent else str(other)


def _dockerignore(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    if ctx.context_dir is None:
        return
    path = ctx.context_dir / ".dockerignore"
    # BuildKit also reads <Dockerfile>.dockerignore next to the Dockerfile.
    alt = p.path.with_name(p.path.name + ".dockerignore")
    source = path if path.exists() else alt if alt.exists() else None
    whole = _copies_whole_context(p)
    present = [s for s in (*DOCKERIGNORE_MUST_EXCLUDE, *DOCKERIGNORE_SHOULD_EXCLUDE) if (ctx.context_dir / s).exists()]
    if source is None:
        # Copying named files only, from a context holding none of the risky paths: nothing can leak.
        if whole or present:
            what = "copies the whole context" if whole else f"the context holds {', '.join(present)}"
            yield _f(p, "PL-D016", 0, f"no .dockerignore in the build context, and it {what}")
        return
    if not whole and not present:
        return
    matcher = PatternMatcher(dockerignore_patterns(inputs.read_text(source, _beside(p, source))))
    candidates = [*DOCKERIGNORE_MUST_EXCLUDE, *(s for s in DOCKERIGNORE_SHOULD_EXCLUDE if s in present)]
    leaked = [s for s in candidates if not matcher.matches(s)]
    if leaked:
        yield _f(p, "PL-D016", 0, f"{source.name} lets these into the build context: {', '.join(leaked)}")


def dockerignore_patterns(text: str) -> list[str]:
    """Patterns as Docker reads them: comments and blank lines dropped, then Docker's own matcher applies."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:].strip() if negate else line
        pat = os.path.normpath(pat.lstrip("/")) if pat not in ("", "/") else pat
        out.append(("!" if negate else "") + pat)
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    return bool(PatternMatcher(patterns).matches(path))


def _labels(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    if ctx.labels_by_pipeline:
        return
    present = set()
    for s in p.stages[: final.index + 1]:
        for c in s.commands:
            if c.cmd == "LABEL":
                for k, _ in env_pairs(c):
                    present.add(k.strip("'\""))
    missing = [k for k in OCI_KEYS if f"org.opencontainers.image.{k}" not in present]
    if missing:
        sev = Severity.WARNING if ctx.labels_required else Severity.INFO
        yield _f(p, "PL-D017", final.line, f"missing OCI labels: {', '.join(missing)}", sev)


def _remote_packages(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                pip = words[:1] in (["pip"], ["pip3"]) or words[:3] in (
                    ["python", "-m", "pip"],
                    ["python3", "-m", "pip"],
                )
                pip = pip or words[:2] == ["uv", "pip"]
                if not pip or "install" not in words or "--require-hashes" in words:
                    continue
                option_values = {
                    words[i + 1]
                    for i, w in enumerate(words[:-1])
                    if w
                    in ("-i", "--index", "--default-index", "--index-url", "--extra-index-url", "-f", "--find-links")
                }
                for w in words:
                    if w in option_values or w.startswith("--"):
                        continue  # an index or find-links URL is where packages come from, not a package
                    remote = re.match(r"^(git\+|hg\+|svn\+|bzr\+)?(https?|git|ssh)://", w) or "@ git+" in w
                    if remote and "#sha256=" not in w and "--hash" not in " ".join(words):
                        yield _f(p, "PL-D018", line, f"pip installs a remote package without a hash: {w}")


WORLD_MODE = re.compile(r"^[0-7]?[0-7]{2}[2367]$")


def _world_writable(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                if words[0] != "chmod":
                    continue
                args = [w for w in words[1:] if not w.startswith("-") or re.match(r"^-[rwx]+$", w)]
                if len(args) < 2:
                    continue
                mode, paths = args[0], args[1:]
                world = False
                if WORLD_MODE.match(mode):
                    # The sticky bit (1777) is /tmp's shared-scratch pattern: each user keeps their own files.
                    world = not (len(mode) == 4 and int(mode[0]) & 1)
                elif re.search(r"(^|,)[oa]*[oa][oa]*\+[rx]*w|(^|,)\+[rx]*w", mode):
                    world = "t" not in mode
                if world:
                    yield _f(p, "PL-D019", line, f"chmod {mode} makes {' '.join(paths)} world-writable")
