"""The lint stage: Hadolint plus the project's own Dockerfile and Compose policy.

With a pipeline config it lints everything the config declares (every image's
Dockerfile with the build args the pipeline passes, and every environment's
merged Compose config). Given paths, it lints those Dockerfiles, Compose files
or directories, with or without a config. Exit 0 clean, 1 findings at or above
the threshold, 2 could not run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .. import _proc, baseline, composefile, golden, inputs, lockfile, render, report, waivers
from ..config import Config
from ..errors import ConfigError, InputError
from ..findings import Finding, Rule, Severity
from ..result import Context as StageContext
from ..result import Result as StageResult
from ..result import Table as StageTable
from ..tools import Toolchain, hadolint_binary
from . import compose_policy, dockerfile_policy

SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    ".nox",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "artifacts",
}
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@dataclass(frozen=True)
class DockerfileTarget:
    path: Path
    display: str
    context_dir: Path
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels_by_pipeline: bool = False
    role: str = "service"


@dataclass(frozen=True)
class ComposeTarget:
    files: tuple[Path, ...]
    displays: tuple[str, ...]
    environment: str
    profile: str
    project_dir: Path
    env_file: Path | None = None


@dataclass
class Settings:
    threshold: Severity = Severity.WARNING
    profile: str = "prod"
    hadolint_config: Path | None = None
    waiver_file: Path | None = None
    waiver_display: str = ""
    waiver_max_days: int = 90
    root: Path = field(default_factory=Path.cwd)
    # An explicit --threshold overrides .hadolint.yaml's failure-threshold too.
    honour_hadolint_threshold: bool = True
    # Missing OCI labels are info unless the config asks for them.
    require_labels: bool = False
    # Findings accepted until a date (`pipelines baseline`); None or a missing file: no baseline.
    baseline_file: Path | None = None
    baseline_display: str = ""


@dataclass
class Result:
    findings: list[Finding]
    notices: list[str]
    threshold: Severity
    files: list[str]
    hadolint_threshold: Severity | None = None
    # Files that could not be linted at all (each with why); the others still were.
    errors: list[str] = field(default_factory=list)

    def gated(self) -> list[Finding]:
        out = []
        for f in self.findings:
            limit = self.hadolint_threshold if (f.tool == "hadolint" and self.hadolint_threshold) else self.threshold
            if not f.waived and f.severity >= limit:
                out.append(f)
        return out

    @property
    def failed(self) -> bool:
        return bool(self.gated())


# --------------------------------------------------------------------------- targets


def targets_from_config(cfg: Config) -> tuple[list[DockerfileTarget], list[ComposeTarget]]:
    lock = lockfile.load(cfg.project.lock)
    dockerfiles = []
    for img in cfg.images.values():
        if img.kind != "dockerfile" or img.dockerfile is None or img.context is None:
            continue
        if golden.installed_elsewhere(img.dockerfile, cfg.root):
            continue
        # What the pipeline passes: each base as a digest reference.
        args = {
            arg: (
                lock[base].ref
                if base in lock
                else cfg.repo(cfg.images[base], None) + dockerfile_policy.PINNED_BY_PIPELINE
            )
            for arg, base in img.bases.items()
        }
        args.update(img.args)
        dockerfiles.append(
            DockerfileTarget(
                img.dockerfile,
                report.display_path(img.dockerfile, cfg.root),
                img.context,
                args,
                img.target,
                labels_by_pipeline=True,
                role=img.role,
            )
        )
    composes = []
    if cfg.compose.files:
        for env in cfg.environments.values():
            files = (*cfg.compose.files, *env.compose)
            composes.append(
                ComposeTarget(
                    files,
                    tuple(report.display_path(f, cfg.root) for f in files),
                    env.name,
                    env.profile,
                    cfg.root,
                    cfg.compose.env_file,
                )
            )
    return dockerfiles, composes


def _is_dockerfile(p: Path) -> bool:
    n = p.name
    if n.endswith(".dockerignore"):
        return False
    return any(
        n == base or n.startswith(base + ".") or n.endswith("." + base) or n.endswith("." + base.lower())
        for base in ("Dockerfile", "Containerfile")
    )


def _is_compose(p: Path) -> bool:
    if p.suffix not in (".yaml", ".yml"):
        return False
    if p.name in COMPOSE_NAMES:
        return True  # named so: read (and judged) as one, whatever it holds
    try:
        data = yaml.safe_load(inputs.read_text(p))
    except (yaml.YAMLError, ConfigError, RecursionError):
        return p.name in COMPOSE_NAMES or p.name.startswith(("compose.", "docker-compose."))
    return isinstance(data, dict) and "services" in data


def targets_from_paths(
    paths: Sequence[Path],
    root: Path,
    profile: str,
    build_args: Mapping[str, str],
    env_file: Path | None = None,
) -> tuple[list[DockerfileTarget], list[ComposeTarget]]:
    dockerfiles: list[DockerfileTarget] = []
    composes: list[ComposeTarget] = []
    for given in paths:
        if not given.exists():
            raise InputError(f"{given}: no such file or directory")
        if not given.is_file() and not given.is_dir():
            raise InputError(f"{given}: neither a regular file nor a directory (a FIFO, socket or device?)")
        files = (
            [given]
            if given.is_file()
            else sorted(
                f for f in given.rglob("*") if f.is_file() and not (set(f.relative_to(given).parts) & SKIP_DIRS)
            )
        )
        compose_files = [f for f in files if not _is_dockerfile(f) and _is_compose(f)]
        found = [f for f in files if _is_dockerfile(f)]
        for f in found:
            dockerfiles.append(DockerfileTarget(f, report.display_path(f, root), f.parent, dict(build_args)))
        if given.is_dir() and not found and not compose_files:
            raise InputError(
                f"{given}: nothing to lint: no Dockerfile or Compose file in this directory",
                hint="Dockerfiles are named Dockerfile, Containerfile, Dockerfile.* or *.dockerfile; Compose files "
                "are YAML with a services: key",
            )
        groups = _compose_groups(compose_files, root, profile, explicit=given.is_file())
        composes.extend(
            ComposeTarget(g.files, g.displays, g.environment, g.profile, g.project_dir, env_file) for g in groups
        )
        if given.is_file() and not _is_dockerfile(given) and given not in compose_files:
            raise InputError(
                f"{given}: neither a Dockerfile nor a Compose file",
                hint="Dockerfiles are named Dockerfile, Dockerfile.* or *.dockerfile; Compose files "
                "are YAML with a services: key",
            )
    if not dockerfiles and not composes:
        # Zero files linted is not a pass.
        raise InputError(
            f"{', '.join(map(str, paths))}: nothing to lint (no Dockerfile or Compose file found)",
            hint="Dockerfiles are named Dockerfile, Dockerfile.* or *.dockerfile; Compose files are YAML with a "
            f"services: key; these directories are skipped: {', '.join(sorted(SKIP_DIRS))}",
        )
    return dockerfiles, composes


def _compose_groups(files: list[Path], root: Path, profile: str, *, explicit: bool) -> list[ComposeTarget]:
    """A base file alone, and base + each `compose.ENV.yaml` overlay beside it."""
    out = []
    by_dir: dict[Path, list[Path]] = {}
    for f in files:
        by_dir.setdefault(f.parent, []).append(f)
    for d, group in by_dir.items():
        base = next((f for f in group if f.name in COMPOSE_NAMES), None)
        overlays = [f for f in group if f is not base]
        if base is None or explicit:
            for f in group:
                # A file named on its own is no environment: its findings carry no [env] tag.
                out.append(ComposeTarget((f,), (report.display_path(f, root),), "", profile, d))
            continue
        out.append(ComposeTarget((base,), (report.display_path(base, root),), "base", profile, d))
        for o in overlays:
            env = o.stem.split(".", 1)[1] if "." in o.stem else o.stem
            env_profile = "dev" if env in ("dev", "development", "local") else profile
            out.append(
                ComposeTarget(
                    (base, o), (report.display_path(base, root), report.display_path(o, root)), env, env_profile, d
                )
            )
    return out


# --------------------------------------------------------------------------- linters


# Hadolint's own ignore comments (`# hadolint ignore=DL3008`, `# hadolint global ignore=...`).
HADOLINT_PRAGMA = re.compile(r"^\s*#\s*hadolint\s+(?:global\s+)?ignore\s*=\s*(?P<rules>\S*)", re.IGNORECASE)


def hadolint(path: Path, display: str, config: Path | None, binary: str) -> list[Finding]:
    # Its ignore pragmas would waive with no reason and no expiry: off, and each reported (hadolint_pragmas).
    # Nor does anything unseen ignore or downgrade a rule: without the project's config, hadolint would
    # read one from the working directory or the user's home, and it reads HADOLINT_* variables.
    argv = [binary, "--no-fail", "--disable-ignore-pragma", "--format", "json"]
    with tempfile.TemporaryDirectory(prefix="pipelines-hadolint-") as tmp:
        if config is None:
            config = Path(tmp) / "hadolint.yaml"
            config.write_text("ignored: []\n")
        argv += ["--config", str(config), str(path)]
        r = _proc.run(argv, timeout=60, check=False, quiet=True, what="hadolint", unset_prefix="HADOLINT_")
    try:
        items = json.loads(r.stdout or "null")
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        # Hadolint's exit code is not the verdict; but no JSON means it could not judge.
        raise InputError(f"hadolint could not lint {display}", seen=_proc.tail(r.stderr or r.stdout, 10))
    out = []
    for it in items:
        level = str(it.get("level", "warning"))
        try:
            sev = Severity.parse(level)
        except ValueError:
            sev = Severity.WARNING
        code = str(it.get("code", "DL????"))
        out.append(
            Finding(
                "hadolint",
                code,
                sev,
                str(it.get("message", "")),
                display,
                int(it.get("line") or 0),
                hint=f"https://github.com/hadolint/hadolint/wiki/{code}" if code.startswith("DL") else "",
            )
        )
    return out


def hadolint_pragmas(text: str, display: str) -> list[Finding]:
    """Each `# hadolint ignore=` comment: not honoured, and a finding until it is moved to an accountable waiver."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        m = HADOLINT_PRAGMA.match(raw)
        if m:
            rules = m.group("rules") or "RULE"
            out.append(
                Finding(
                    "pipelines",
                    waivers.RULE_PRAGMA,
                    Severity.ERROR,
                    f"`{raw.strip()}` is not honoured: it would waive {rules} with no reason and no expiry "
                    "(hadolint runs with --disable-ignore-pragma)",
                    display,
                    number,
                    hint=f'replace it with # pipelines: ignore={rules} reason="why" expires=YYYY-MM-DD, or a ledger '
                    "entry; or fix what it hid",
                )
            )
    return out


# Severities an `override:` in Hadolint's config may lower a rule to: below a warning, it no longer gates.
_HIDDEN = ("info", "style", "ignore", "none")


def hadolint_config_waivers(config: Path, display: str) -> list[Finding]:
    """Each rule Hadolint's config ignores, or overrides below a warning: a waiver with no reason and no expiry.

    Like the ignore pragmas, it silences a rule for every file for ever; it is reported until it is moved to the
    ledger (reason, owner, expiry) or dropped. Raising a rule's severity is fine and not reported.
    """
    text = inputs.read_text(config, display)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{display}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{display}: not a mapping of Hadolint settings")
    lines = text.splitlines()

    def line_of(rule: str) -> int:
        return next((n for n, raw in enumerate(lines, 1) if rule in raw.split("#", 1)[0]), 0)

    silenced: list[tuple[str, str]] = [(str(r), "ignores") for r in data.get("ignored") or []]
    for level, rules in (data.get("override") or {}).items():
        if str(level).lower() in _HIDDEN:
            silenced += [(str(r), f"lowers to {level}") for r in rules or []]
    return [
        Finding(
            "pipelines",
            waivers.RULE_PRAGMA,
            Severity.ERROR,
            f"{display} {how} {rule} for every file, with no reason and no expiry",
            display,
            line_of(rule),
            hint=f"move it to the waiver ledger (id {rule}, a scope, reason, owner, expires), or fix what it hid",
        )
        for rule, how in silenced
    ]


def _hadolint_threshold(config: Path | None) -> Severity | None:
    if config is None or not config.exists():
        return None
    try:
        data = yaml.safe_load(inputs.read_text(config)) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{config}: not valid YAML ({exc})") from None
    value = data.get("failure-threshold") if isinstance(data, dict) else None
    if value in (None, "none"):
        return None
    try:
        return Severity.parse(str(value))
    except ValueError as exc:
        raise InputError(f"{config}: failure-threshold: {exc}") from None


@dataclass(frozen=True)
class Options:
    paths: tuple[Path, ...] = ()  # empty: everything the config declares
    threshold: str | None = None
    profile: str | None = None
    build_args: tuple[str, ...] = ()  # KEY=VALUE for FROM args, when linting paths
    env_file: Path | None = None


def run(ctx: StageContext | None, opts: Options) -> StageResult:
    """The lint stage on the common contract; without a context (no config) it lints the paths given."""
    cfg = ctx.cfg if ctx is not None else None
    root = cfg.root if cfg is not None else Path.cwd()
    settings = settings_from_config(cfg, root, threshold=opts.threshold, profile=opts.profile)
    if opts.paths:
        build_args = dict(a.split("=", 1) for a in opts.build_args if "=" in a)
        # Compose files named without --profile: availability rules are warnings, not prod errors.
        dockerfiles, composes = targets_from_paths(
            list(opts.paths), root, opts.profile or "unspecified", build_args, env_file=opts.env_file
        )
    elif cfg is not None:
        dockerfiles, composes = targets_from_config(cfg)
    else:
        raise InputError("nothing to lint: no paths and no config", hint="name files or directories to lint")
    res = analyse(dockerfiles, composes, settings, ctx.tools if ctx is not None else Toolchain())
    elsewhere = (
        sorted(n for n, i in cfg.images.items() if i.dockerfile and golden.installed_elsewhere(i.dockerfile, cfg.root))
        if cfg is not None and not opts.paths
        else []
    )
    if elsewhere:
        res.notices.append(
            f"not examined: the golden definitions shipped with the package ({', '.join(elsewhere)}); "
            "they are linted where the package is built"
        )
    # Reports under ARTIFACTS only for the project's own lint, not for paths named by hand.
    return as_result(res, cfg.project.artifacts / "lint" if cfg is not None and not opts.paths else None)


def analyse(
    dockerfiles: list[DockerfileTarget],
    composes: list[ComposeTarget],
    settings: Settings,
    tools: Toolchain,
    *,
    today: dt.date | None = None,
) -> Result:
    """Hadolint and the policies over the targets; the :class:`Result` is what :func:`as_result` renders."""
    today = today or dt.date.today()
    if not dockerfiles and not composes:
        raise InputError("nothing to lint: no Dockerfile and no Compose file", hint="name files, or declare images")
    notices: list[str] = []
    findings: list[Finding] = []
    all_waivers: list[waivers.Waiver] = []
    if settings.waiver_file is not None:
        ws, problems = waivers.load_ledger(
            settings.waiver_file, display=settings.waiver_display, max_days=settings.waiver_max_days, today=today
        )
        all_waivers += [w for w in ws if waivers.for_lint(w)]  # the rest are scan waivers
        findings += problems
    files: list[str] = []
    healthchecks: dict[str, bool] = {}
    if dockerfiles:
        binary, version = hadolint_binary()
        notices.append(
            f"hadolint {version}" + (f" with {settings.hadolint_config.name}" if settings.hadolint_config else "")
        )
        if tools.build_check:
            notices.append("docker build --check: not run by this version")
        else:
            notices.append(
                f"docker build --check: skipped (buildx {tools.buildx_version} has no --check; it needs buildx >= 0.15)"
            )
    errors: list[str] = []
    for t in dockerfiles:
        files.append(t.display)
        try:
            parsed = dockerfile_policy.parse(t.path, t.display, t.build_args)
            ctx = dockerfile_policy.Context(
                settings.profile,
                t.target,
                t.labels_by_pipeline,
                t.context_dir,
                t.role,
                labels_required=settings.require_labels,
            )
            own = dockerfile_policy.check(parsed, ctx)
            theirs = hadolint(t.path, t.display, settings.hadolint_config, binary)
            final = dockerfile_policy.final_stage(parsed, t.target)
        except InputError as exc:
            errors.append(_error_text(exc))
            continue
        own = _drop_hadolint_duplicates(own, theirs, parsed)
        findings += own + _drop_repeats(theirs, own, parsed)
        notices += dockerfile_policy.unresolved_bases(parsed)
        healthchecks[t.context_dir.name] = any(c.cmd == "HEALTHCHECK" for c in final.commands)
        ws, problems = waivers.parse_inline(
            parsed.text, t.display, max_days=settings.waiver_max_days, today=today, spans=parsed.spans
        )
        all_waivers += ws
        findings += problems + hadolint_pragmas(parsed.text, t.display)
    for c in composes:
        files.extend(d for d in c.displays if d not in files)
        try:
            rendered = composefile.render(
                tools, list(c.files), list(c.displays), project_dir=c.project_dir, env_file=c.env_file
            )
        except InputError as exc:
            # One file Compose cannot render does not stop the others from being linted.
            errors.append(_error_text(exc))
            continue
        notices += [n for n in rendered.notices if n not in notices]
        known = {
            name: healthchecks.get(Path(svc.build.context if svc.build else "").name, False)
            for name, svc in rendered.project.services.items()
        }
        findings += compose_policy.check(rendered, compose_policy.Context(c.profile, c.environment, known))
        for f, d in zip(c.files, c.displays, strict=True):
            text = inputs.read_text(f, d)
            ws, problems = waivers.parse_inline(text, d, max_days=settings.waiver_max_days, today=today)
            # The same file appears in several environments: count each waiver once.
            for w in ws:
                if not any(x.where == w.where for x in all_waivers):
                    all_waivers.append(w)
            findings += problems  # repeated across environments; _dedupe below keeps one
    if dockerfiles and settings.hadolint_config is not None and settings.hadolint_config.is_file():
        cfg_file = settings.hadolint_config
        shown = (
            cfg_file.relative_to(settings.root).as_posix() if cfg_file.is_relative_to(settings.root) else str(cfg_file)
        )
        findings += hadolint_config_waivers(cfg_file, shown)
    findings = _dedupe(findings)
    findings = waivers.apply(findings, all_waivers)
    findings += waivers.stale(all_waivers)
    if settings.baseline_file is not None:
        accepted = baseline.load(settings.baseline_file, settings.baseline_display)
        findings, baseline_notes = baseline.apply(findings, accepted, today)
        notices += baseline_notes
    hadolint_limit = _hadolint_threshold(settings.hadolint_config) if settings.honour_hadolint_threshold else None
    return Result(findings, notices, settings.threshold, files, hadolint_limit, errors)


def _error_text(exc: InputError) -> str:
    return exc.render().removeprefix("error: ")


# Where Hadolint reports the same problem, its finding is the one kept: one finding per problem.
HADOLINT_COVERS = {
    "PL-D001": {"DL3002"},
    "PL-D003": {"DL3006", "DL3007"},
    "PL-D005": {"DL3025"},
    "PL-D006": {"DL3042"},
    "PL-D007": {"DL3015"},
    "PL-D009": {"DL3009"},
    "PL-D012": {"DL3020"},
}
# Hadolint rules that repeat one of ours (some added by newer Hadolint releases: DL3064, DL3066): ours is kept,
# so the findings, their severity and the waivers written for them do not change when Hadolint is upgraded.
# tests/lint/test_lint.py fails on any Hadolint code beside one of ours that these three tables do not classify.
HADOLINT_REPEATS = {
    "DL3004": "PL-D014",  # sudo
    "DL3064": "PL-D004",  # a secret-looking ARG or ENV
    "DL3066": "PL-D001",  # USER by name (Hadolint rates it info; ours is an error)
}
# Hadolint codes that may sit on the same instruction as one of ours while saying something else.
HADOLINT_DISTINCT = {
    "DL1000": "Hadolint could not parse the file (it cannot read some heredoc forms); ours still ran",
    "DL3008": "pin apt package versions",
    "DL3013": "pin pip package versions",
    "DL3018": "pin apk package versions",
    "DL3047": "wget without --progress",
    "DL3059": "consecutive RUN instructions",
    "DL4001": "both wget and curl are used",
    "DL4006": "no pipefail before a pipe (PL-D013 is what the pipe runs, not how failures propagate)",
}


def _instruction_starts(parsed: dockerfile_policy.Parsed) -> dict[int, int]:
    # Hadolint points at an instruction's first line; ours may point inside it (a heredoc line).
    start = {}
    for s in parsed.stages:
        for c in s.commands:
            for ln in range(c.start_line, c.end_line + 1):
                start[ln] = c.start_line
        start[s.line] = s.line
    return start


def _drop_repeats(theirs: list[Finding], own: list[Finding], parsed: dockerfile_policy.Parsed) -> list[Finding]:
    start = _instruction_starts(parsed)
    ours = {(f.rule, start.get(f.line, f.line)) for f in own}
    return [f for f in theirs if (HADOLINT_REPEATS.get(f.rule, ""), start.get(f.line, f.line)) not in ours]


def _drop_hadolint_duplicates(
    own: list[Finding], theirs: list[Finding], parsed: dockerfile_policy.Parsed
) -> list[Finding]:
    start = _instruction_starts(parsed)
    said = {(f.rule, start.get(f.line, f.line)) for f in theirs}
    return [
        f for f in own if not any((code, start.get(f.line, f.line)) in said for code in HADOLINT_COVERS.get(f.rule, ()))
    ]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, int, str]] = set()
    out = []
    for f in findings:
        key = (f.tool, f.rule, f.file, f.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --------------------------------------------------------------------------- output


def rules_for(tool: str) -> dict[str, Rule]:
    if tool == dockerfile_policy.TOOL:
        return dockerfile_policy.RULES
    if tool == compose_policy.TOOL:
        return compose_policy.RULES
    return {}


# Rules about keeping services up, not about keeping them contained: shown apart from security.
AVAILABILITY = compose_policy.AVAILABILITY | {"PL-D002"}


def category(f: Finding) -> str:
    return "availability" if f.rule in AVAILABILITY else "security"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def headline(res: Result) -> str:
    gated = res.gated()
    parts = []
    for cat in ("security", "availability"):
        fs = [f for f in gated if category(f) == cat]
        if fs:
            by = {s: sum(1 for f in fs if f.severity == s) for s in (Severity.ERROR, Severity.WARNING)}
            parts.append(f"{cat}: {_count(by[Severity.ERROR], 'error')}, {_count(by[Severity.WARNING], 'warning')}")
    waived = sum(1 for f in res.findings if f.waived)
    verdict = "COULD NOT LINT ALL FILES" if res.errors else "FAILED" if gated else "passed"
    return (
        f"{len(res.files)} files, {len(res.findings)} findings ({waived} waived), {len(gated)} at or above "
        f"{res.threshold.label}" + (f" ({'; '.join(parts)})" if parts else "") + f": {verdict}"
    )


def table(res: Result) -> str:
    """The terminal report, as the CLI renders it."""
    return render.terminal(as_result(res, None))


def settings_from_config(cfg: Config | None, root: Path, *, threshold: str | None, profile: str | None) -> Settings:
    s = Settings(root=root)
    if cfg is not None:
        s.threshold = cfg.lint.threshold
        s.hadolint_config = cfg.lint.hadolint_config
        s.waiver_file = cfg.lint.waivers
        s.waiver_display = report.display_path(cfg.lint.waivers, root)
        s.waiver_max_days = cfg.lint.waiver_max_days
        s.require_labels = cfg.lint.require_labels
        if cfg.lint.baseline is not None:
            s.baseline_file = cfg.lint.baseline
            s.baseline_display = report.display_path(cfg.lint.baseline, root)
    else:
        default = root / ".hadolint.yaml"
        s.hadolint_config = default if default.exists() else None
    if threshold:
        s.honour_hadolint_threshold = False
        try:
            s.threshold = Severity.parse(threshold)
        except ValueError as exc:
            raise ConfigError("--threshold", "", str(exc)) from None
    if profile:
        s.profile = profile
    return s


def _row(f: Finding) -> tuple[str, str, str, str]:
    message = f.message + (f" [waiver: {f.waiver_reason}]" if f.waived else "")
    if f.rule == "DL1000":
        message = "hadolint could not parse this file: " + message
    return (
        f.severity.label + (" (waived)" if f.waived else ""),
        f.rule,
        str(f.line or "-"),
        message + (f"\nfix: {f.hint}" if f.hint else ""),
    )


def as_result(res: Result, out_dir: Path | None) -> StageResult:
    """Lint on the common stage contract (rendered and gated by the boundary)."""
    by_file: dict[str, list[Finding]] = {}
    for f in res.findings:
        by_file.setdefault(f.file, []).append(f)
    order = sorted(by_file, key=lambda k: (-max(f.severity for f in by_file[k]), k))
    tables = []
    for file in order:
        items = sorted(by_file[file], key=lambda f: (f.waived, -f.severity, f.line, f.rule))
        title = file
        if any(f.rule == "DL1000" for f in items):
            # Hadolint's parser failed: its silence on this file means nothing; our own rules still ran.
            title += " (hadolint could not parse this file (DL1000): only the project's own rules judged it)"
        tables.append(StageTable(("severity", "rule", "line", "message / fix"), tuple(_row(f) for f in items), title))
    # Each finding says whether it is about security or availability (the headline counts them apart).
    tagged = {id(f): replace(f, extra=(*f.extra, ("category", category(f)))) for f in res.findings}
    return StageResult(
        stage="lint",
        headline=headline(res),
        findings=tuple(tagged.values()),
        gated=tuple(tagged[id(f)] for f in res.gated()),
        notices=tuple(res.notices),
        tables=tuple(tables),
        files=tuple(res.files),
        unusable=tuple(res.errors),
        rules={tool: rules_for(tool) for tool in ("hadolint", dockerfile_policy.TOOL, compose_policy.TOOL)},
        data={"threshold": res.threshold.label},
        out_dir=out_dir,
    )
