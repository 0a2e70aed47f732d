"""The project's own Dockerfile hardening policy, on BuildKit's real parse.

Each rule has a stable ID, a severity, a one-line rationale and a fix hint.
Rules look at stages and instructions (with line numbers) as BuildKit's
parser returns them, not at regex matches over the text.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile

from . import inputs
from .errors import InputError
from .findings import Finding, Rule, Severity

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
            W,
            "files copied into the final stage should be owned by the runtime user",
            "root-owned defaults hide permission problems that surface only at run time",
            "add --chown=UID:GID to COPY/ADD in the final stage",
        ),
        _r(
            "PL-D016",
            E,
            "the build context needs a strict .dockerignore",
            "without it .git, .env files, virtualenvs and tests are sent to the builder and can land in layers",
            "add a .dockerignore (an allow-list starting with `*` is best)",
        ),
        _r(
            "PL-D017",
            W,
            "OCI labels missing",
            "org.opencontainers.image.* labels tie an image to its source and revision",
            "add LABELs, or build through the pipeline, which sets them",
        ),
    )
}

DOCKERIGNORE_MUST_EXCLUDE = (
    ".git",
    ".env",
    ".env.local",
    ".venv",
    "venv",
    "__pycache__",
    "pkg/__pycache__",
    "node_modules",
    "tests",
)
BUILD_TOOLS = re.compile(
    r"^(gcc|g\+\+|cc|clang|make|build-essential|git|subversion|mercurial|cmake|"
    r"python3?-dev|libc6?-dev|[a-z0-9.+-]+-dev)$"
)
SECRET_KEY = re.compile(
    r"(?i)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|"
    r"CREDENTIAL|(^|_)KEY$)"
)
SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
DEP_INSTALL = re.compile(
    r"\b(pip3?|python3? -m pip)\b[^&;|]*\binstall\b[^&;|]*(\s-r\s|\s--requirement)|"
    r"\bpoetry install\b|\buv sync\b|\bpipenv install\b|\bnpm (ci|install)\b|\byarn install\b"
)
MANIFESTS = re.compile(
    r"(^|/)(requirements[^/]*\.(txt|in)|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile(\.lock)?|"
    r"package(-lock)?\.json|yarn\.lock|setup\.(py|cfg))$"
)
ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tar\.xz|txz|zip)$")
VAR = re.compile(r"\$(?:\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)(?::?[-+](?P<d>[^}]*))?\}|(?P<n>[A-Za-z_][A-Za-z0-9_]*))")


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
                global_args[k] = v
        else:
            stages[-1].commands.append(c)
    if not stages:
        raise InputError(f"{display}: no FROM instruction", hint="a Dockerfile needs at least one stage")
    return Parsed(path, display, text, stages, global_args)


def substitute(value: str, args: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group("b") or m.group("n")
        if args.get(name):
            return args[name]
        if m.group("d") is not None and m.group(0).startswith("${") and ":-" in m.group(0):
            return m.group("d")
        return m.group(0)

    return VAR.sub(one, value)


def final_stage(p: Parsed, target: str | None) -> Stage:
    if target:
        for s in p.stages:
            if s.name == target:
                return s
        raise InputError(
            f"{p.display}: build target {target!r} is not a stage",
            hint=f"stages: {', '.join(s.name for s in p.stages)}",
        )
    return p.stages[-1]


# Rules that judge an image as a running service; base images skip some.
NOT_FOR_ROLE = {
    "builder": {"PL-D001", "PL-D002", "PL-D006", "PL-D015"},  # root and compilers are its purpose
    "runtime": {"PL-D002", "PL-D015"},  # no app to probe yet; system files belong to root
    "service": set(),
}


@dataclass(frozen=True)
class Context:
    profile: str  # "prod" makes a missing digest an error
    target: str | None = None
    labels_by_pipeline: bool = False
    context_dir: Path | None = None
    role: str = "service"


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
    ):
        out.extend(rule(p, final, ctx))
    skip = NOT_FOR_ROLE[ctx.role]
    return [f for f in out if f.rule not in skip]


def _f(p: Parsed, rule: str, line: int, message: str, severity: Severity | None = None) -> Finding:
    r = RULES[rule]
    return Finding(TOOL, rule, severity or r.severity, message, p.display, line, hint=r.hint)


Check = Callable[[Parsed, Stage, Context], Iterator[Finding]]


def _stage_name(s: Stage) -> str:
    return repr(s.name) if not s.name.isdigit() else f"#{s.name} (FROM {s.base})"


def _user(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    users = [c for c in final.commands if c.cmd == "USER"]
    if not users:
        yield _f(
            p,
            "PL-D001",
            final.line,
            f"final stage {_stage_name(final)} sets no USER: it runs as the base "
            "image's user, root unless that image says otherwise",
        )
        return
    last = users[-1]
    user = last.value[0].split(":", 1)[0] if last.value else ""
    if not user.isdigit():
        yield _f(p, "PL-D001", last.start_line, f"USER {last.value[0]!r} is a name, not a numeric UID")
    elif int(user) == 0:
        yield _f(p, "PL-D001", last.start_line, "the final stage runs as root (UID 0)")


def _healthcheck(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    checks = [c for c in final.commands if c.cmd == "HEALTHCHECK"]
    if not checks:
        yield _f(p, "PL-D002", final.line, f"final stage {_stage_name(final)} has no HEALTHCHECK")
        return
    c = checks[-1]
    if c.value and c.value[0].upper() == "NONE":
        yield _f(p, "PL-D002", c.start_line, "HEALTHCHECK NONE disables health checking")
    elif not c.json:
        yield _f(p, "PL-D002", c.start_line, "HEALTHCHECK uses shell form (needs /bin/sh in the image)")


def _pinned(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    names = set()
    for s in p.stages:
        ref = s.resolved
        if ref == "scratch" or ref in names:
            names.add(s.name)
            continue
        names.add(s.name)
        if "$" in ref:
            yield _f(
                p,
                "PL-D003",
                s.line,
                f"FROM {s.base}: build arg has no value to check; pass it "
                "(--build-arg) or give the ARG a pinned default",
                Severity.WARNING,
            )
            continue
        name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
        last = name.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        shown = f"FROM {s.base}" + (f" (= {ref})" if ref != s.base else "")
        if not digest and not tag:
            yield _f(p, "PL-D003", s.line, f"{shown}: no tag and no digest (means latest)")
        elif tag == "latest" and not digest:
            yield _f(p, "PL-D003", s.line, f"{shown}: the `latest` tag")
        elif not digest:
            sev = Severity.ERROR if ctx.profile == "prod" else Severity.WARNING
            yield _f(p, "PL-D003", s.line, f"{shown}: tag without a digest", sev)


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
        # *_FILE points at a mounted secret file: the recommended pattern, not a leak.
        named = bool(SECRET_KEY.search(key)) and not key.upper().endswith(("_FILE", "_PATH", "_DIR"))
        if named and (kind == "ARG" or value):
            yield _f(p, "PL-D004", line, f"{kind} {key}: a secret-looking name ({kind} values are kept in the image)")
        elif value and looks_secret(value):
            yield _f(p, "PL-D004", line, f"{kind} {key}: the value looks like a credential")


def _exec_form(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd in ("ENTRYPOINT", "CMD") and not c.json:
            yield _f(p, "PL-D005", c.start_line, f"{c.cmd} uses shell form: {c.original}")


def _segments(run: str) -> list[list[str]]:
    """A RUN's shell text split into simple commands, each as words (best effort)."""
    out = []
    for part in re.split(r"&&|\|\||;|\n", run):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        if words:
            out.append(words)
    return out


def _run_text(c: dockerfile.Command) -> str:
    return " ".join(c.value)


def _mounts(c: dockerfile.Command) -> str:
    return " ".join(f for f in c.flags if f.startswith("--mount"))


def _installs(words: list[str]) -> list[str]:
    if (
        len(words) >= 2
        and words[0] in ("apt-get", "apt", "apk", "yum", "dnf", "microdnf")
        and ("install" in words or "add" in words)
    ):
        return [
            w for w in words[words.index("install" if "install" in words else "add") + 1 :] if not w.startswith("-")
        ]
    return []


def _final_tooling(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd != "RUN":
            continue
        for words in _segments(_run_text(c)):
            pkgs = [w.split("=", 1)[0] for w in _installs(words)]
            bad = [w for w in pkgs if BUILD_TOOLS.match(w)]
            if bad:
                yield _f(p, "PL-D006", c.start_line, f"final stage installs build tooling: {', '.join(bad)}")
            if (
                ("pip" in words[0] or words[:3] == ["python3", "-m", "pip"] or words[:3] == ["python", "-m", "pip"])
                and "install" in words
                and "--no-cache-dir" not in words
                and "/root/.cache" not in _mounts(c)
            ):
                yield _f(
                    p,
                    "PL-D006",
                    c.start_line,
                    "pip install in the final stage leaves its cache (use --no-cache-dir or a cache mount)",
                )


def _apt(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "RUN":
                continue
            segs = _segments(_run_text(c))
            apt = [w for w in segs if w and w[0] in ("apt-get", "apt")]
            updates = [w for w in apt if "update" in w]
            installs = [w for w in apt if "install" in w]
            for w in installs:
                if "--no-install-recommends" not in w:
                    yield _f(p, "PL-D007", c.start_line, "apt-get install without --no-install-recommends")
            if updates and not installs:
                yield _f(p, "PL-D008", c.start_line, "apt-get update in a RUN that installs nothing")
            if installs and not updates:
                yield _f(p, "PL-D008", c.start_line, "apt-get install without apt-get update in the same RUN")
            text = _run_text(c)
            if updates and "/var/lib/apt/lists" not in text and "target=/var/lib/apt/lists" not in _mounts(c):
                yield _f(p, "PL-D009", c.start_line, "apt lists are not removed in the RUN that fetched them")
            if any(x in w for w in apt for x in ("upgrade", "dist-upgrade", "full-upgrade")):
                yield _f(p, "PL-D010", c.start_line, "apt upgrade in an image build")


def _is_source_copy(c: dockerfile.Command) -> bool:
    if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
        return False
    # Remote sources are not the build context's source code.
    sources = [src for src in c.value[:-1] if not re.match(r"^(https?|git)://|^git@", src)]
    return any(not MANIFESTS.search(src.rstrip("/")) for src in sources)


def _layer_order(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        copied_at = 0
        for c in s.commands:
            if _is_source_copy(c) and not copied_at:
                copied_at = c.start_line
            elif c.cmd == "RUN" and copied_at and DEP_INSTALL.search(_run_text(c)):
                yield _f(
                    p,
                    "PL-D011",
                    c.start_line,
                    f"dependencies are installed after the source was copied (line {copied_at})",
                )


def _add(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "ADD":
                continue
            for src in c.value[:-1]:
                if re.match(r"^(https?|git)://|^git@", src):
                    yield _f(p, "PL-D012", c.start_line, f"ADD fetches a remote source: {src}", Severity.ERROR)
                elif ARCHIVE.search(src):
                    yield _f(p, "PL-D012", c.start_line, f"ADD unpacks the archive {src} implicitly")
                else:
                    yield _f(p, "PL-D012", c.start_line, f"ADD {src}: use COPY for local files")


def _pipe_to_shell(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    pattern = re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(env\s+\S+\s+)?(ba|z|da|k)?sh\b")
    for s in p.stages:
        for c in s.commands:
            if c.cmd == "RUN" and pattern.search(_run_text(c)):
                yield _f(p, "PL-D013", c.start_line, "a download is piped into a shell")


def _sudo(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            if c.cmd == "RUN" and any(w and w[0] == "sudo" for w in _segments(_run_text(c))):
                yield _f(p, "PL-D014", c.start_line, "RUN uses sudo")


def _chown(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd in ("COPY", "ADD") and not any(f.startswith("--chown") for f in c.flags):
            yield _f(
                p, "PL-D015", c.start_line, f"{c.cmd} into the final stage without --chown: files are owned by root"
            )


def _dockerignore(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    if ctx.context_dir is None:
        return
    path = ctx.context_dir / ".dockerignore"
    # BuildKit also reads <Dockerfile>.dockerignore next to the Dockerfile.
    alt = p.path.with_name(p.path.name + ".dockerignore")
    source = path if path.exists() else alt if alt.exists() else None
    if source is None:
        yield _f(p, "PL-D016", 0, f"no .dockerignore in the build context {ctx.context_dir}")
        return
    patterns = parse_dockerignore(source.read_text())
    leaked = [s for s in DOCKERIGNORE_MUST_EXCLUDE if not ignored(s, patterns)]
    if leaked:
        yield _f(p, "PL-D016", 0, f"{source.name} lets these into the build context: {', '.join(leaked)}")


def parse_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per pattern, in order: the last matching pattern wins."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:].strip() if negate else line
        pat = pat.lstrip("/").rstrip("/")
        if pat.startswith("./"):
            pat = pat[2:]
        out.append((negate, re.compile("^" + _glob_to_regex(pat) + "(/.*)?$")))
    return out


def _glob_to_regex(pat: str) -> str:
    i, out = 0, []
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return "".join(out)


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    result = False
    for negate, rx in patterns:
        if rx.match(path):
            result = not negate
    return result


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
        yield _f(p, "PL-D017", final.line, f"missing OCI labels: {', '.join(missing)}")
