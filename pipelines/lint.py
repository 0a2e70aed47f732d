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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import _proc, compose_policy, dockerfile_policy, inputs, lockfile, report, waivers
from .config import Config
from .errors import ConfigError, InputError
from .findings import Finding, Rule, Severity
from .tools import Toolchain, hadolint_binary

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


@dataclass
class Result:
    findings: list[Finding]
    notices: list[str]
    threshold: Severity
    files: list[str]
    hadolint_threshold: Severity | None = None

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
        # What the pipeline passes: each base as a digest reference.
        args = {
            arg: (
                lock[base].ref
                if base in lock
                else cfg.registry.repo(cfg.images[base].image) + dockerfile_policy.PINNED_BY_PIPELINE
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
    return n == "Dockerfile" or n.startswith("Dockerfile.") or n.endswith(".Dockerfile") or n.endswith(".dockerfile")


def _is_compose(p: Path) -> bool:
    if p.suffix not in (".yaml", ".yml"):
        return False
    if p.name in COMPOSE_NAMES:
        return True  # named so: read (and judged) as one, whatever it holds
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError, RecursionError):
        return p.name in COMPOSE_NAMES or p.name.startswith(("compose.", "docker-compose."))
    return isinstance(data, dict) and "services" in data


def targets_from_paths(
    paths: Sequence[Path], root: Path, profile: str, build_args: Mapping[str, str]
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
        for f in files:
            if _is_dockerfile(f):
                dockerfiles.append(DockerfileTarget(f, report.display_path(f, root), f.parent, dict(build_args)))
        composes.extend(_compose_groups(compose_files, root, profile, explicit=given.is_file()))
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
                out.append(ComposeTarget((f,), (report.display_path(f, root),), f.stem, profile, d))
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


def hadolint(path: Path, display: str, config: Path | None, binary: str) -> list[Finding]:
    argv = [binary, "--no-fail", "--format", "json"]
    if config is not None:
        argv += ["--config", str(config)]
    argv.append(str(path))
    r = _proc.run(argv, timeout=60, check=False, quiet=True, what="hadolint")
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


def _hadolint_threshold(config: Path | None) -> Severity | None:
    if config is None or not config.exists():
        return None
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{config}: not valid YAML ({exc})") from None
    value = data.get("failure-threshold") if isinstance(data, dict) else None
    if value in (None, "none"):
        return None
    try:
        return Severity.parse(str(value))
    except ValueError as exc:
        raise InputError(f"{config}: failure-threshold: {exc}") from None


def run(
    dockerfiles: list[DockerfileTarget],
    composes: list[ComposeTarget],
    settings: Settings,
    tools: Toolchain,
    *,
    today: dt.date | None = None,
) -> Result:
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
    for t in dockerfiles:
        files.append(t.display)
        parsed = dockerfile_policy.parse(t.path, t.display, t.build_args)
        ctx = dockerfile_policy.Context(settings.profile, t.target, t.labels_by_pipeline, t.context_dir, t.role)
        findings += dockerfile_policy.check(parsed, ctx)
        findings += hadolint(t.path, t.display, settings.hadolint_config, binary)
        final = dockerfile_policy.final_stage(parsed, t.target)
        healthchecks[t.context_dir.name] = any(c.cmd == "HEALTHCHECK" for c in final.commands)
        ws, problems = waivers.parse_inline(parsed.text, t.display, waivers.next_code_lines(parsed.text))
        all_waivers += ws
        findings += problems
    for c in composes:
        files.extend(d for d in c.displays if d not in files)
        rendered = compose_policy.render(
            tools, list(c.files), list(c.displays), project_dir=c.project_dir, env_file=c.env_file
        )
        known = {
            name: healthchecks.get(Path(str((svc.get("build") or {}).get("context", ""))).name, False)
            for name, svc in (rendered.config.get("services") or {}).items()
        }
        findings += compose_policy.check(rendered, compose_policy.Context(c.profile, c.environment, known))
        for f, d in zip(c.files, c.displays, strict=True):
            text = f.read_text()
            ws, problems = waivers.parse_inline(text, d, waivers.next_code_lines(text))
            # The same file appears in several environments: count each waiver once.
            for w in ws:
                if not any(x.where == w.where for x in all_waivers):
                    all_waivers.append(w)
            findings += problems  # repeated across environments; _dedupe below keeps one
    findings = _dedupe(findings)
    findings = waivers.apply(findings, all_waivers)
    findings += waivers.stale(all_waivers)
    hadolint_limit = _hadolint_threshold(settings.hadolint_config) if settings.honour_hadolint_threshold else None
    return Result(findings, notices, settings.threshold, files, hadolint_limit)


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


def table(res: Result) -> str:
    lines = [f"note: {n}" for n in res.notices]
    by_file: dict[str, list[Finding]] = {}
    for f in res.findings:
        by_file.setdefault(f.file, []).append(f)
    order = sorted(by_file, key=lambda k: (-max(f.severity for f in by_file[k]), k))
    for file in order:
        items = sorted(by_file[file], key=lambda f: (f.waived, -f.severity, f.line, f.rule))
        lines.append("")
        lines.append(file)
        rows = [
            [
                f.severity.label + (" (waived)" if f.waived else ""),
                f.rule,
                str(f.line or "-"),
                f.message + (f" [waiver: {f.waiver_reason}]" if f.waived else ""),
            ]
            for f in items
        ]
        lines.append(report.terminal_table(["severity", "rule", "line", "message"], rows))
    gated = res.gated()
    waived = sum(1 for f in res.findings if f.waived)
    lines.append("")
    lines.append(
        f"{len(res.files)} files, {len(res.findings)} findings ({waived} waived), {len(gated)} at or above "
        f"{res.threshold.label}: {'FAILED' if gated else 'passed'}"
    )
    return "\n".join(lines)


def to_json(res: Result) -> dict[str, Any]:
    return {
        "threshold": res.threshold.label,
        "failed": res.failed,
        "files": res.files,
        "notices": res.notices,
        "findings": [{**asdict(f), "severity": f.severity.label, "extra": dict(f.extra)} for f in res.findings],
    }


def markdown(res: Result) -> str:
    gated = res.gated()
    head = f"### Lint: {'FAILED' if gated else 'passed'} ({len(gated)} at or above {res.threshold.label})"
    rows = [
        [f.severity.label + (" (waived)" if f.waived else ""), f.rule, f.location, f.message]
        for f in sorted(res.findings, key=lambda f: (f.waived, -f.severity, f.file, f.line))
    ]
    body = report.markdown_table(["severity", "rule", "where", "message"], rows) if rows else "No findings."
    return "\n".join([head, "", *(f"- {n}" for n in res.notices), "", body, ""])


def write_all(res: Result, out_dir: Path) -> None:
    inputs.make_dir(out_dir, "lint reports")
    report.write_json(out_dir / "lint.json", to_json(res))
    (out_dir / "lint.sarif").write_text(json.dumps(report.sarif(_sarif_runs(res)), indent=2) + "\n")
    (out_dir / "lint.junit.xml").write_text(report.junit("lint", res.findings, res.files, res.gated()))
    (out_dir / "lint.md").write_text(markdown(res))


def _sarif_runs(res: Result) -> list[report.SarifRun]:
    tools = ["hadolint", dockerfile_policy.TOOL, compose_policy.TOOL, "pipelines"]
    runs = []
    for tool in tools:
        fs = [f for f in res.findings if f.tool == tool]
        if not fs and tool == "pipelines":
            continue
        runs.append(report.SarifRun(tool=tool, category=f"lint/{tool}", rules=rules_for(tool), findings=fs))
    return runs


def emit(res: Result, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        text = table(res)
    elif fmt == "json":
        text = json.dumps(to_json(res), indent=2)
    elif fmt == "sarif":
        text = json.dumps(report.sarif(_sarif_runs(res)), indent=2)
    elif fmt == "junit":
        text = report.junit("lint", res.findings, res.files, res.gated())
    elif fmt == "markdown":
        text = markdown(res)
    else:
        raise AssertionError(fmt)
    if output is not None:
        inputs.write_text(output, text + "\n", "lint report (--output)")
    else:
        sys.stdout.write(text + "\n")


def settings_from_config(cfg: Config | None, root: Path, *, threshold: str | None, profile: str | None) -> Settings:
    s = Settings(root=root)
    if cfg is not None:
        s.threshold = cfg.lint.threshold
        s.hadolint_config = cfg.lint.hadolint_config
        s.waiver_file = cfg.lint.waivers
        s.waiver_display = report.display_path(cfg.lint.waivers, root)
        s.waiver_max_days = cfg.lint.waiver_max_days
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
