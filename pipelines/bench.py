"""Benchmarks: builds and image sizes, and the speed of lint, scan, verify, many services, nox and deploys.

A benchmark, not a test: it measures wall time on this machine and compares
with its targets. Like every stage it is ``run(context, options) -> Result``:
each target is a :class:`~pipelines.result.Check` (value, target, ok), the
one renderer writes the reports, and the benchmark's own NAME.json and
NAME.md under the out directory (``ok``, ``checks`` and the measurements)
are written from that Result, also when the benchmark could not finish.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _proc, build, manifest, report
from .config import Config, DeployBench, Image
from .engine import Engine
from .errors import ConfigError, GateFailed, InputError, Interrupted, PipelineError, ToolNotFound
from .result import Check, Context, Outcome, Result, Table, from_error, stderr_log
from .tools import Toolchain

if TYPE_CHECKING:
    from .loadgen import LoadReport

MB = 1_000_000
Log = Callable[[str], None]

# Each benchmark and the name of its files under the out directory (NAME.json, NAME.md).
KINDS = {
    "build": "bench",
    "lint": "lint",
    "lint-corpus": "lint-corpus",
    "scan": "scan",
    "verify": "verify",
    "fleet": "fleet",
    "pipeline": "pipeline",
    "deploy": "deploy",
}


@dataclass(frozen=True)
class Options:
    """``pipelines bench``: which benchmark, and its settings."""

    kind: str = "build"  # a key of KINDS
    env: str | None = None
    service: str | None = None  # build: the service whose source gets the one-line change
    out: Path | None = None  # default: ARTIFACTS/bench
    skip_cold: bool = False  # build: keep caches and bases
    runs: int = 3  # pipeline: runs of each; checks judge the median
    checkouts: Path | None = None  # lint-corpus: CHECKOUTS/OWNER/NAME
    manifest: Path | None = None  # lint-corpus: the corpus's manifest


def check(name: str, value: str, target: str, ok: bool, *, gate: bool = True) -> Check:
    """A benchmark target as a check; a target that is ``gate=False`` is reported when missed, never fails the run."""
    outcome = Outcome.PASS if ok else Outcome.FAIL if gate else Outcome.WAIVED
    detail = "" if ok or gate else "missed; reported, not a gate"
    return Check(name, outcome, detail, group="bench", value=value, target=target)


def check_json(c: Check) -> dict[str, object]:
    """A check as the benchmark files have always had it."""
    return {"check": c.name, "value": c.value, "target": c.target, "ok": c.outcome is Outcome.PASS}


def bench_json(res: Result) -> dict[str, object]:
    """NAME.json: the measurements, every target as a check, ``ok`` when every target was met."""
    data = {k: v for k, v in res.data.items() if k != "benchmark"}
    return {
        **data,
        "checks": [check_json(c) for c in res.checks],
        "ok": not res.error and all(c.outcome is Outcome.PASS for c in res.checks),
        **({"error": res.error} if res.error else {}),
    }


def checks_md(checks: Sequence[Check]) -> str:
    return report.markdown_table(
        ["check", "value", "target", "result"],
        [[c.name, c.value, c.target, "ok" if c.outcome is Outcome.PASS else "MISSED"] for c in checks],
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result(
    kind: str, out: Path, data: Mapping[str, object], checks: Sequence[Check], *, notices: Sequence[str] = ()
) -> Result:
    missed = [c for c in checks if c.outcome is not Outcome.PASS]
    headline = f"{kind} benchmark: " + (
        "every target met"
        if not missed
        else "targets missed: " + "; ".join(f"{c.name} {c.value} (target {c.target})" for c in missed)
    )
    name = KINDS[kind]
    return Result(
        stage="bench",
        headline=headline,
        checks=tuple(checks),
        notices=tuple(notices),
        tables=(
            Table(
                ("check", "value", "target", "result"),
                tuple((c.name, c.value, c.target, "ok" if c.outcome is Outcome.PASS else "MISSED") for c in checks),
                f"{kind} benchmark",
            ),
        ),
        data={"benchmark": kind, **data},
        artifacts=(out / f"{name}.json", out / f"{name}.md"),
        out_dir=out / "reports" / name,
    )


def write_files(out: Path, res: Result, md: str) -> None:
    """NAME.json and NAME.md, from the Result."""
    name = KINDS[str(res.data.get("benchmark", "build"))]
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / f"{name}.json", bench_json(res))
    (out / f"{name}.md").write_text(md if md.endswith("\n") else md + "\n")


def could_not_finish(kind: str, out: Path, exc: PipelineError) -> Result:
    """A benchmark that stopped on an error: still a Result, with its reports, carrying the error."""
    name = KINDS[kind]
    res = replace(
        from_error("bench", exc, out_dir=out / "reports" / name, benchmark=kind, when=_now()),
        headline=f"{kind} benchmark could not finish: {exc.what}",
        artifacts=(out / f"{name}.json", out / f"{name}.md"),
    )
    write_files(out, res, f"## {kind.capitalize()} benchmark ({res.data['when']})\n\nError: {res.error}\n")
    return res


def run(ctx: Context | None, opts: Options) -> Result:
    """The one entry point: the chosen benchmark as a Result; an error is the Result's, with reports written."""
    if opts.kind not in KINDS:
        raise InputError(f"unknown benchmark {opts.kind!r}", hint=f"one of: {', '.join(KINDS)}")
    out = opts.out or ((ctx.artifacts if ctx is not None else Path("artifacts")) / "bench")
    try:
        if opts.kind == "lint-corpus":
            if opts.checkouts is None or opts.manifest is None:
                raise InputError("the corpus benchmark needs the checkouts and the manifest")
            return run_lint_corpus(opts.checkouts, opts.manifest, out=out, log=ctx.log if ctx else stderr_log)
        if ctx is None:
            raise InputError(f"the {opts.kind} benchmark needs the project's config")
        if opts.kind == "lint":
            return run_lint(ctx, out=out)
        if opts.kind == "scan":
            return run_scan(ctx, env=opts.env, out=out)
        if opts.kind == "verify":
            return run_verify(ctx, env=opts.env, out=out)
        if opts.kind == "fleet":
            return run_fleet(ctx, env=opts.env, out=out)
        if opts.kind == "pipeline":
            return run_pipeline(ctx, out=out, runs=opts.runs)
        if opts.kind == "deploy":
            return run_deploy(ctx, env=opts.env, out=out)
        return run_build(ctx, env=opts.env, service=opts.service, out=out, skip_cold=opts.skip_cold)
    except Interrupted:
        raise
    except PipelineError as exc:
        return could_not_finish(opts.kind, out, exc)


def _timed_build(cfg: Config, tools: Toolchain, opts: build.Options) -> tuple[float, build.Report]:
    start = time.monotonic()
    rep = build.build_images(cfg, opts, tools)
    return round(time.monotonic() - start, 2), rep


def _changed_file(cfg: Config, service: str | None) -> Path:
    name = service or cfg.bench.change_service or cfg.services[0].name
    img = cfg.images.get(name)
    if img is None or img.is_base or img.context is None:
        raise ConfigError(str(cfg.file), "bench.change_service", f"{name!r} is not a service")
    sources = sorted(p for p in img.context.rglob("*.py") if "__pycache__" not in p.parts)
    if not sources:
        raise ConfigError(str(cfg.file), f"services.{name}.context", "has no .py file to change for the benchmark")
    return sources[0]


def target_service(cfg: Config, changed: Path) -> str:
    return next(s.name for s in cfg.services if s.context is not None and changed.is_relative_to(s.context))


def layers(tools: Toolchain, ref: str) -> list[str]:
    with Engine.connect() as engine:
        return list(engine.image(ref).layers)


def image_size(tools: Toolchain, ref: str) -> int:
    with Engine.connect() as engine:
        return engine.image(ref).size


def run_build(
    ctx: Context,
    *,
    env: str | None = None,
    service: str | None = None,
    out: Path | None = None,
    skip_cold: bool = False,
) -> Result:
    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    target = _changed_file(cfg, service)
    results: dict[str, object] = {
        "when": _now(),
        "machine": {
            "cpus": os.cpu_count() or 0,
            "python": platform.python_version(),
            "engine": tools.engine_version,
            "buildx": tools.buildx_version,
        },
    }
    timings: dict[str, float] = {}
    if not skip_cold:
        # Cold: no layer cache and base images rebuilt from debootstrap up.
        # BuildKit's cache mounts (apt and pip downloads) are not layer cache
        # and stay warm; `docker builder prune -af` first for a network-cold number.
        timings["cold"], _ = _timed_build(cfg, tools, build.Options(env=env, no_cache=True, rebuild_bases=True))
    timings["no_change"], before = _timed_build(cfg, tools, build.Options(env=env))
    original = target.read_bytes()
    try:
        target.write_bytes(original + f"\n# bench {time.time_ns()}\n".encode())
        timings["one_line_change"], rep = _timed_build(cfg, tools, build.Options(env=env))
    finally:
        target.write_bytes(original)
    results["timings_s"] = timings
    results["changed_file"] = str(target.relative_to(cfg.root))
    changed = target_service(cfg, target)
    # A fast "rebuild" that reused the old image measured nothing: prove the
    # change reached the image. Layer digests, not image IDs: BuildKit stamps
    # the config with the build time, so IDs differ even when nothing changed.
    rebuilt = layers(tools, before.images[changed].image_id) != layers(tools, rep.images[changed].image_id)
    sizes = {name: image_size(tools, b.image_id or b.ref) for name, b in rep.images.items()}
    results["sizes_mb"] = {n: round(s / MB, 1) for n, s in sizes.items()}

    checks = [check(f"one-line change produced a new {changed} image", "yes" if rebuilt else "no", "yes", rebuilt)]
    if "cold" in timings:
        ratio = timings["one_line_change"] / timings["cold"]
        checks.append(
            check(
                "one-line change rebuild / cold build",
                f"{ratio:.1%}",
                f"<= {cfg.bench.max_rebuild_ratio:.0%}",
                ratio <= cfg.bench.max_rebuild_ratio,
            )
        )
    for name, budget in cfg.bench.size_budgets_mb.items():
        mb = sizes[name] / MB if name in sizes else float("nan")
        checks.append(check(f"{name} image size", f"{mb:.1f} MB", f"<= {budget} MB", mb <= budget))
    res = result("build", out, results, checks)
    write(out, res)
    return res


def write(out: Path, res: Result) -> None:
    results = bench_json(res)
    timings = results["timings_s"]
    sizes = results["sizes_mb"]
    machine = results["machine"]
    if not (isinstance(timings, dict) and isinstance(sizes, dict) and isinstance(machine, dict)):
        raise TypeError("bench results lack their timings, sizes or machine")
    md = [
        f"## Build benchmark ({results['when']})",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        f"One-line change: `{results['changed_file']}`",
        "",
        report.markdown_table(
            ["build", "wall time"], [[k.replace("_", " "), f"{v:.1f} s"] for k, v in timings.items()]
        ),
        "",
        report.markdown_table(["image", "size"], [[k, f"{v:.1f} MB"] for k, v in sizes.items()]),
        "",
        checks_md(res.checks),
    ]
    write_files(out, res, "\n".join(md))


LINT_TARGET_S = 3.0


def run_lint(ctx: Context, *, out: Path | None = None, runs: int = 5) -> Result:
    """Warm wall time of `pipelines lint` over the whole project, as a user runs it."""
    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    argv = [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "lint", "--format", "json"]
    # One warm-up run fills the OS page cache and Python's bytecode cache.
    _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
    times = []
    for _ in range(runs):
        start = time.monotonic()
        r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
        times.append(round(time.monotonic() - start, 3))
        if r.returncode == 2:
            raise GateFailed("lint could not run during the benchmark", seen=_proc.tail(r.stderr, 10))
    files = len(json.loads(r.stdout)["files"])
    times.sort()
    median = times[len(times) // 2]
    data: dict[str, object] = {
        "when": _now(),
        "files": files,
        "runs_s": times,
        "median_s": median,
        "target_s": LINT_TARGET_S,
    }
    res = result(
        "lint",
        out,
        data,
        [check("lint, warm (median)", f"{median:.2f} s", f"<= {LINT_TARGET_S:.0f} s", median <= LINT_TARGET_S)],
    )
    results = bench_json(res)
    md = "\n".join(
        [
            f"## Lint benchmark ({results['when']})",
            "",
            report.markdown_table(
                ["files", "runs", "min", "median", "max", "target"],
                [
                    [
                        str(files),
                        str(runs),
                        f"{times[0]:.2f} s",
                        f"{median:.2f} s",
                        f"{times[-1]:.2f} s",
                        f"<= {LINT_TARGET_S:.0f} s",
                    ]
                ],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res


# What a linter must reach on real files before a team keeps it switched on.
CORPUS_MIN_ACTIONABLE = 0.90
CORPUS_MAX_WRONG = 0.02
CORPUS_MIN_LABELLED = 200
VERDICTS = ("actionable", "not-actionable", "wrong")
# A problem a reviewer found in a corpus file that the linter did not report: the denominator of recall.
MISSED = "missed"
# The files a corpus entry may bring from its own directory, and why: the rules read them.
SIDECARS = {".dockerignore": "the build context's exclusions (PL-D016)", ".env": "Compose's interpolation defaults"}


def label_key(file: str, rule: str, line: int, message: str) -> tuple[str, str, int, str]:
    """A finding's identity for labels: the environment tag (`[base] `, `[compose] `) depends on how it was called."""
    return (file, rule, line, re.sub(r"^\[[^\]]*\] ", "", message))


def read_labels(path: Path) -> dict[tuple[str, str, int, str], tuple[str, str]]:
    """(file, rule, line, message) -> (verdict, reason), from a tab-separated labels file.

    A `missed` line names a problem the linter should report and does not; its message column describes it.
    """
    out: dict[tuple[str, str, int, str], tuple[str, str]] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) != 6 or parts[3] not in (*VERDICTS, MISSED) or not parts[2].isdigit():
            raise ConfigError(
                str(path),
                f"line {n}",
                "expected file, rule, line, verdict (actionable|not-actionable|wrong|missed), "
                "reason and message, tab-separated",
            )
        out[label_key(parts[0], parts[1], int(parts[2]), parts[5])] = (parts[3], parts[4])
    return out


@dataclass(frozen=True)
class CorpusEntry:
    """One file of the real-world corpus: where it comes from, and its name in the labels."""

    name: str  # e.g. dockerfile/netbox-docker/Dockerfile: the labels' file column
    repository: str  # owner/name on GitHub
    path: str  # inside the repository
    commit: str
    beside: tuple[str, ...]  # files of the same directory the entry brings along (SIDECARS)


def read_corpus_manifest(path: Path) -> list[CorpusEntry]:
    """The committed list of corpus files: name, repository, path, commit, files beside (tab-separated)."""
    if not path.is_file():
        raise ConfigError(
            str(path), "", "not found", hint="give the corpus manifest (e.g. tests/realworld/manifest.tsv)"
        )
    out: list[CorpusEntry] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        beside = () if len(parts) != 5 or parts[4] == "-" else tuple(parts[4].split(","))
        ok = (
            len(parts) == 5
            and re.fullmatch(r"(dockerfile|compose)/[\w.-]+/[\w.-]+", parts[0]) is not None
            and re.fullmatch(r"[\w.-]+/[\w.-]+", parts[1]) is not None
            and not parts[2].startswith("/")
            and ".." not in Path(parts[2]).parts
            and re.fullmatch(r"[0-9a-f]{40}", parts[3]) is not None
            and all(b in SIDECARS for b in beside)
        )
        if not ok:
            raise ConfigError(
                str(path),
                f"line {n}",
                "expected name (dockerfile|compose/DIR/FILE), repository (owner/name), path, 40-hex commit and "
                f"the files beside it ({', '.join(SIDECARS)} or -), tab-separated",
            )
        out.append(CorpusEntry(parts[0], parts[1], parts[2], parts[3], beside))
    if not out:
        raise ConfigError(str(path), "", "lists no corpus file")
    return out


def stage_corpus(entries: Sequence[CorpusEntry], checkouts: Path, stage: Path) -> list[str]:
    """Copy each listed file out of CHECKOUTS/<owner>/<name> (checked out at its commit) into STAGE/<name>.

    Fetches nothing: the checkouts are made at measurement time by whoever measures. Returns notes on checkouts
    whose commit could not be checked (not a git work tree).
    """
    notes: list[str] = []
    heads: dict[Path, str | None] = {}
    for e in entries:
        repo = checkouts / e.repository
        if not repo.is_dir():
            raise ConfigError(
                str(repo), "", f"no checkout of {e.repository}", hint=f"check out {e.repository} at {e.commit} there"
            )
        if repo not in heads:
            r = _proc.run(["git", "-C", str(repo), "rev-parse", "HEAD"], timeout=30, check=False, quiet=True)
            heads[repo] = r.stdout.strip() if r.returncode == 0 and (repo / ".git").exists() else None
            if heads[repo] is None:
                notes.append(f"{e.repository}: not a git work tree, its commit was not checked")
        head = heads[repo]
        if head is not None and head != e.commit:
            raise ConfigError(
                str(repo), "HEAD", f"is {head}, the manifest lists {e.name} at {e.commit}",
                hint=f"git -C {repo} checkout {e.commit}",
            )  # fmt: skip
        src = repo / e.path
        if not src.is_file():
            raise ConfigError(str(src), "", f"not found: {e.name} is {e.path} of {e.repository} at {e.commit}")
        dest = stage / e.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        for b in e.beside:
            if not (src.parent / b).is_file():
                raise ConfigError(str(src.parent / b), "", f"not found: the manifest lists it beside {e.name}")
            shutil.copyfile(src.parent / b, dest.parent / b)
    return notes


def _shares(verdicts: list[str]) -> dict[str, object]:
    n = len(verdicts)
    return {
        "findings": n,
        **{v: verdicts.count(v) for v in VERDICTS},
        **{f"{v}_pct": round(100 * verdicts.count(v) / n, 1) if n else 0.0 for v in VERDICTS},
    }


def run_lint_corpus(checkouts: Path, manifest_file: Path, *, out: Path, log: Log = stderr_log) -> Result:
    """Lint every file of the labelled real-world corpus one by one, as a new user would, and score the findings.

    The corpus is the manifest's list (repository, path, commit) read out of checkouts made beforehand; the
    labels (labels.tsv beside the manifest) judge every finding of the project's own rules. Reports Python
    tracebacks, refused files (exit 2), time per file, precision (the share labelled actionable, not actionable
    and wrong) and recall (the actionable problems found over those found plus those labelled missed).
    """
    import tempfile

    from . import lint  # the lint stage; imported here so a build benchmark does not load it

    entries = read_corpus_manifest(manifest_file)
    labels_file = manifest_file.parent / "labels.tsv"
    if not labels_file.is_file():
        raise ConfigError(str(labels_file), "", "not found", hint="label the corpus's findings first")
    labels = read_labels(labels_file)
    with tempfile.TemporaryDirectory(prefix="pipelines-lint-corpus-") as tmp:
        corpus = Path(tmp)
        notes = stage_corpus(entries, checkouts, corpus)
        results = _score_corpus(corpus, labels, lint.targets_from_paths([corpus], corpus, "unspecified", {}))
    results["manifest"] = str(manifest_file)
    repositories = sorted({f"{e.repository}@{e.commit}" for e in entries})
    results["repositories"] = repositories
    results["notes"] = notes
    before = manifest_file.parent / "labels-before.tsv"
    own_before = _shares([v for v, _ in read_labels(before).values() if v != MISSED]) if before.is_file() else None
    if own_before is not None:
        results["own_before"] = own_before
    own = results["own"]
    if not isinstance(own, dict):
        raise TypeError("corpus shares are a mapping")
    exit_2 = results["exit_2"]
    exit_3 = results["exit_3"]
    if not isinstance(exit_2, list) or not isinstance(exit_3, list):
        raise TypeError("corpus lists are lists")
    checks = [
        check("Python tracebacks", str(results["tracebacks"]), "0", not results["tracebacks"]),
        check("files refused (exit 2)", str(len(exit_2)), "0", not exit_2),
        check("files that crashed lint (exit 3)", str(len(exit_3)), "0", not exit_3),
        check("findings labelled", str(own["findings"]), f">= {CORPUS_MIN_LABELLED}",
              int(own["findings"]) >= CORPUS_MIN_LABELLED),
        check("actionable (precision)", f"{own['actionable_pct']}%", f">= {CORPUS_MIN_ACTIONABLE:.0%}",
              float(own["actionable_pct"]) >= 100 * CORPUS_MIN_ACTIONABLE),
        check("wrong", f"{own['wrong_pct']}%", f"<= {CORPUS_MAX_WRONG:.0%}",
              float(own["wrong_pct"]) <= 100 * CORPUS_MAX_WRONG),
    ]  # fmt: skip
    res = result("lint-corpus", out, results, checks)
    ok = all(c.ok for c in checks)
    rows = [["now", *_share_row(own)]]
    if own_before is not None:
        rows.insert(0, ["before", *_share_row(own_before)])
    unlabelled = results["unlabelled"]
    missed = results["missed"]
    if not isinstance(unlabelled, list) or not isinstance(missed, list):
        raise TypeError("corpus lists are lists")
    md = "\n".join(
        [
            f"## Lint on a real-world corpus ({results['when']})",
            "",
            f"{results['files']} files ({results['dockerfiles']} Dockerfiles, {results['compose_files']} Compose) "
            f"from {len(repositories)} repositories, {results['findings_total']} findings (Hadolint's "
            f"included); tracebacks {results['tracebacks']}, refused (exit 2) {len(exit_2)}"
            + (f" ({', '.join(map(str, exit_2))})" if exit_2 else "")
            + f"; {results['seconds_per_file_median']:.2f} s a file alone (median; max "
            f"{results['seconds_per_file_max']:.2f} s), {results['seconds_per_file_one_call']:.2f} s a file in one "
            "call over the corpus.",
            "",
            report.markdown_table(
                ["project's own findings", "labelled", "actionable (precision)", "not actionable", "wrong"], rows
            ),
            "",
            f"Recall: {results['recall_pct']}% ({results['found_actionable']} actionable problems found, "
            f"{len(missed)} labelled missed and still missed, {results['missed_now_found']} labelled missed and now "
            "found).",
            "",
            f"Targets: >= {CORPUS_MIN_ACTIONABLE:.0%} actionable, <= {CORPUS_MAX_WRONG:.0%} wrong, "
            f">= {CORPUS_MIN_LABELLED} labelled, no traceback, no exit 2: {'met' if ok else 'MISSED'}."
            + (f" {len(unlabelled)} findings have no label." if unlabelled else ""),
            "",
        ]
    )
    write_files(out, res, md)
    log(md)
    return res


def _score_corpus(
    corpus: Path,
    labels: Mapping[tuple[str, str, int, str], tuple[str, str]],
    targets: tuple[Sequence[Any], Sequence[Any]],
) -> dict[str, object]:
    """Lint each staged file alone with the real CLI, then the whole corpus in one call; match the labels."""
    dockerfiles, composes = targets
    paths = sorted({t.path for t in dockerfiles} | {f for c in composes for f in c.files})
    per_file: list[dict[str, object]] = []
    verdicts: list[str] = []
    unlabelled: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for path in paths:
        argv = [sys.executable, "-m", "pipelines", "lint", "--no-config", "--format", "json", str(path.resolve())]
        start = time.monotonic()
        r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=corpus)
        seconds = round(time.monotonic() - start, 3)
        findings = json.loads(r.stdout)["findings"] if r.stdout.strip().startswith("{") else []
        mine = [f for f in findings if str(f["rule"]).startswith("PL-")]
        for f in mine:
            key = label_key(str(f["file"]), str(f["rule"]), int(f["line"]), str(f["message"]))
            seen.add(key[:3])
            if key in labels and labels[key][0] != MISSED:
                verdicts.append(labels[key][0])
            elif key not in labels:
                unlabelled.append(f"{f['file']}:{f['line']} {f['rule']} {f['message']}")
        per_file.append(
            {
                "file": str(path.relative_to(corpus)),
                "exit": r.returncode,
                "seconds": seconds,
                "findings": len(findings),
                "own": len(mine),
                "traceback": "Traceback (most recent call last)" in r.stderr,
                "refused": r.stderr.strip().splitlines()[-1] if r.returncode == 2 and r.stderr.strip() else "",
            }
        )
    # One call over the whole corpus, as a CI job would run it: time per file without process start-up.
    argv = [sys.executable, "-m", "pipelines", "lint", "--no-config", "--format", "json", str(corpus.resolve())]
    start = time.monotonic()
    _proc.run(argv, timeout=600, check=False, quiet=True, cwd=corpus)
    batch = round((time.monotonic() - start) / max(len(paths), 1), 3)
    times = sorted(float(str(p["seconds"])) for p in per_file)
    # A missed problem counts as found once the linter reports its rule at its line, whatever the wording.
    missed = sorted(f"{k[0]}:{k[2]} {k[1]} {k[3]}" for k, (v, _) in labels.items() if v == MISSED and k[:3] not in seen)
    now_found = sum(1 for k, (v, _) in labels.items() if v == MISSED and k[:3] in seen)
    found_actionable = verdicts.count("actionable") + now_found
    known = found_actionable + len(missed)
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": len(per_file),
        "dockerfiles": len(dockerfiles),
        "compose_files": len(paths) - len(dockerfiles),
        "tracebacks": sum(1 for p in per_file if p["traceback"]),
        "exit_2": [str(p["file"]) for p in per_file if p["exit"] == 2],
        "exit_3": [p["file"] for p in per_file if p["exit"] == 3],
        "seconds_per_file_median": times[len(times) // 2] if times else 0.0,
        "seconds_per_file_max": times[-1] if times else 0.0,
        "seconds_per_file_one_call": batch,
        "findings_total": sum(int(str(p["findings"])) for p in per_file),
        "own": _shares(verdicts),
        "found_actionable": found_actionable,
        "missed": missed,
        "missed_now_found": now_found,
        "recall_pct": round(100 * found_actionable / known, 1) if known else 0.0,
        "unlabelled": unlabelled,
        "per_file": per_file,
    }


def _share_row(s: dict[str, object]) -> list[str]:
    return [
        str(s["findings"]),
        f"{s['actionable']} ({s['actionable_pct']}%)",
        f"{s['not-actionable']} ({s['not-actionable_pct']}%)",
        f"{s['wrong']} ({s['wrong_pct']}%)",
    ]


SCAN_TARGET_S = 1.0  # warm scan of every service image, in total: unchanged images reuse their result


def run_scan(ctx: Context, *, env: str | None = None, out: Path | None = None, runs: int = 3) -> Result:
    """Wall time of scanning the configured images: cold (no DB cache) and warm."""
    from . import scan

    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    e = cfg.env(env)
    record = manifest.load(cfg.project.artifacts, e.name)
    names = list(cfg.bench.scan_images) or [b.name for b in record.services]
    refs = [record.images[n].local_ref for n in names]
    # Cold: the offline database is rebuilt from its sources; Trivy has no cache.
    shutil.rmtree(cfg.scan_for(e.name).cache_dir, ignore_errors=True)
    start = time.monotonic()
    scan.analyse(cfg, tools, env=e.name, images=refs)
    cold = round(time.monotonic() - start, 2)
    warm_runs = []
    for _ in range(runs):
        start = time.monotonic()
        scan.analyse(cfg, tools, env=e.name, images=refs)
        warm_runs.append(round(time.monotonic() - start, 2))
    warm = sorted(warm_runs)[len(warm_runs) // 2]
    results: dict[str, object] = {
        "when": _now(),
        "images": names,
        "cold_s": cold,
        "warm_runs_s": warm_runs,
        "warm_median_s": warm,
        "target_warm_s": SCAN_TARGET_S,
    }
    res = result(
        "scan",
        out,
        results,
        [check("scan, warm (median)", f"{warm:.1f} s", f"<= {SCAN_TARGET_S:g} s", warm <= SCAN_TARGET_S)],
    )
    md = "\n".join(
        [
            f"## Scan benchmark ({results['when']})",
            "",
            report.markdown_table(
                ["images", "cold", "warm (median of runs)", "target (warm)"],
                [[", ".join(names), f"{cold:.1f} s", f"{warm:.1f} s ({runs} runs)", f"<= {SCAN_TARGET_S:g} s"]],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res


VERIFY_TARGET_S = 3.0


def run_verify(ctx: Context, *, env: str | None = None, out: Path | None = None, runs: int = 3) -> Result:
    """Time of `pipelines verify` per image: cold (no cached filesystem index or secret scan) and warm.

    An image's own time to turn healthy is its start-up, not the stage's: the
    target (3 s per image, warm) is for what the stage adds around it.
    """
    from . import verdicts, verify

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    e = cfg.env(env)
    ctx.tools.engine_version  # noqa: B018 - the stage runs containers
    shutil.rmtree(cfg.project.artifacts / "verify" / "trees", ignore_errors=True)
    shutil.rmtree(cfg.project.artifacts / "verify" / "secrets", ignore_errors=True)

    def judged() -> Result:
        # A verify run here judges the build like any other: its verdict is recorded as the stage's own.
        r = verify.run(ctx, verify.Options(env=e.name))
        verdicts.conclude(ctx.artifacts, r)
        return r

    cold = judged()
    warm = [judged() for _ in range(runs)]

    def per_image(r: object) -> dict[str, dict[str, float]]:
        images = getattr(r, "data", {}).get("images", [])
        return {i["name"]: {"total": i["seconds"], "own": i["seconds"] - i["app_start_s"]} for i in images}

    cold_t = per_image(cold)
    warm_t = [per_image(r) for r in warm]
    rows = []
    for name in cold_t:
        totals = sorted(w[name]["total"] for w in warm_t)
        owns = sorted(w[name]["own"] for w in warm_t)
        rows.append(
            {
                "image": name,
                "cold_s": round(cold_t[name]["total"], 2),
                "warm_s": round(totals[len(totals) // 2], 2),
                "warm_stage_s": round(owns[len(owns) // 2], 2),
                "ok": owns[len(owns) // 2] <= VERIFY_TARGET_S,
            }
        )
    results: dict[str, object] = {
        "when": _now(),
        "env": e.name,
        "checks_per_image": len(verify.CHECKS),
        "images": rows,
        "passed": cold.passed and all(r.passed for r in warm),
        "target_warm_stage_s": VERIFY_TARGET_S,
    }
    checks = [
        check(f"{r['image']}: verify, warm, stage only (median)", f"{r['warm_stage_s']:.1f} s",
              f"<= {VERIFY_TARGET_S:.0f} s", bool(r["ok"]))
        for r in rows
    ]  # fmt: skip
    res = result("verify", out, results, checks)
    md = "\n".join(
        [
            f"## Verify benchmark ({results['when']})",
            "",
            f'{len(verify.CHECKS)} checks per image; warm = median of {runs} runs. "stage" is the warm time minus '
            "the image's own start-up to healthy (and the stay-healthy and stop it is watched for).",
            "",
            report.markdown_table(
                ["image", "cold", "warm", "warm, stage only", "target"],
                [
                    [
                        str(r["image"]),
                        f"{r['cold_s']:.1f} s",
                        f"{r['warm_s']:.1f} s",
                        f"{r['warm_stage_s']:.1f} s",
                        f"<= {VERIFY_TARGET_S:.0f} s" + ("" if r["ok"] else " MISSED"),
                    ]
                    for r in rows
                ],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res


# --------------------------------------------------------------------------- many services (--fleet)

FLEET_SIZES = (1, 2, 5, 10)
FLEET_TARGET_RATIO = 2.5  # ten services cold within 2.5x the time of two


def fleet_config(cfg: Config, root: Path, count: int, tag: str) -> Config:
    """cfg with its services replaced by `count` copies of the benchmark service.

    Each copy gets its own context under root (same requirements, one source
    file of its own, so no two images are equal) and its own repository name;
    the bases and their lock are the project's, so they are reused, not built.
    """
    name = cfg.bench.change_service or cfg.services[0].name
    src = cfg.images.get(name)
    if src is None or src.is_base or src.context is None or src.dockerfile is None:
        raise ConfigError(str(cfg.file), "bench.change_service", f"{name!r} is not a service with a Dockerfile")
    lock = root / "pipeline.lock.json"
    if cfg.project.lock.is_file():
        shutil.copy2(cfg.project.lock, lock)
    images: dict[str, Image] = {b.name: b for b in cfg.bases}
    for k in range(1, count + 1):
        ctx = root / f"{tag}-{k}"
        if not ctx.exists():
            shutil.copytree(src.context, ctx, ignore=shutil.ignore_patterns("__pycache__"))
            first = sorted(p for p in ctx.rglob("*.py"))
            if first:
                first[0].write_text(first[0].read_text() + f"\n# fleet service {k}\n")
        svc = replace(
            src,
            name=f"{tag}-{k}",
            image=f"{tag}-{k}",
            context=ctx,
            dockerfile=ctx / src.dockerfile.relative_to(src.context),
        )
        images[svc.name] = svc
    project = replace(cfg.project, artifacts=root / "artifacts", lock=lock)
    return replace(cfg, images=images, project=project)


def _remove_images(tools: Toolchain, rep: build.Report) -> None:
    refs = [t for b in rep.images.values() if b.kind == "service" for t in b.tags]
    if refs:
        _proc.run([tools.docker, "image", "rm", "--force", *refs], timeout=300, check=False, quiet=True)


def run_fleet(
    ctx: Context,
    *,
    env: str | None = None,
    out: Path | None = None,
    sizes: tuple[int, ...] = FLEET_SIZES,
) -> Result:
    """Cold builds of 1, 2, 5 and 10 services from the same bases: one bake per level against one build each.

    Cold means no layer cache for the service stages (--no-cache); the bases
    are the project's, already built. Every image is removed afterwards.
    """
    import tempfile

    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    env_name = cfg.env(env).name
    if cfg.env(env).push:
        raise ConfigError(str(cfg.file), f"environments.{env_name}.push", "the fleet benchmark builds locally only")
    tag = f"bench-fleet-{os.getpid()}"
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="pipelines-fleet-") as tmp:
        for n in sizes:
            fleet = fleet_config(cfg, Path(tmp), n, tag)
            row: dict[str, object] = {"services": n}
            for mode, bake in (("bake", True), ("per_image", False)):
                load = os.getloadavg()[0]
                secs, rep = _timed_build(fleet, tools, build.Options(env=env_name, no_cache=True, bake=bake))
                built = [b for b in rep.images.values() if b.kind == "service"]
                if len(built) != n or not all(b.image_id.startswith("sha256:") for b in built):
                    raise GateFailed(f"fleet of {n}: {len(built)} service images recorded, {n} expected")
                row[f"{mode}_s"] = secs
                row[f"{mode}_load"] = round(load, 1)
                _remove_images(tools, rep)
            rows.append(row)
            ctx.log(f"fleet: {row}")
    by_n = {int(str(r["services"])): r for r in rows}
    checks: list[Check] = []
    if 2 in by_n and 10 in by_n:
        for mode in ("bake", "per_image"):
            ratio = float(str(by_n[10][f"{mode}_s"])) / float(str(by_n[2][f"{mode}_s"]))
            checks.append(
                check(
                    f"10 services / 2 services, cold ({mode.replace('_', ' ')})",
                    f"{ratio:.2f}x",
                    f"<= {FLEET_TARGET_RATIO}x",
                    ratio <= FLEET_TARGET_RATIO,
                    # One build each is the comparison; only the bake is held to the target.
                    gate=mode == "bake",
                )
            )
    results: dict[str, object] = {
        "when": _now(),
        "machine": {"cpus": os.cpu_count() or 0, "engine": tools.engine_version, "buildx": tools.buildx_version},
        "builder": f"{tools.builder.name} ({tools.builder.driver}, BuildKit {tools.builder.buildkit})",
        "rows": rows,
    }
    res = result("fleet", out, results, checks)
    md = [
        f"## Many services, cold ({results['when']})",
        "",
        f"Builder: {results['builder']}; engine {tools.engine_version}; buildx {tools.buildx_version}",
        "",
        report.markdown_table(
            ["services", "one bake", "one build each", "load (bake / each)"],
            [
                [
                    str(r["services"]),
                    f"{r['bake_s']:.1f} s",
                    f"{r['per_image_s']:.1f} s",
                    f"{r['bake_load']} / {r['per_image_load']}",
                ]
                for r in rows
            ],
        ),
        "",
        checks_md(checks),
    ]
    write_files(out, res, "\n".join(md))
    return res


# --------------------------------------------------------------------------- the pipeline's own cost (--pipeline)

PIPELINE_SESSIONS = ("build", "scan", "verify", "smoke")
PIPELINE_TARGET_S = 10.0
OUTSIDE_TARGET = 0.05  # share of the wall time spent outside docker, trivy and compose
SMOKE_HEALTHY_TARGET_S = 4.0  # smoke's `up` to every service healthy (or done), as smoke itself reports it
SESSION_OVERHEAD_TARGET_S = 0.3
WATCHING = ("container wait", "stack http")


def _union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval (parallel children count once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


_SESSION_START = re.compile(r"nox > Running session (\S+)")
_SESSION_END = re.compile(r"nox > Session (\S+) (?:was successful|failed|raised|was skipped)")
_HEALTHY = re.compile(r"all services healthy ([0-9.]+) s after up")


def session_breakdown(
    lines: list[tuple[float, str]], records: list[dict[str, Any]], start: float, wall: float
) -> dict[str, object]:
    """Where a `./noxw -s A B ...` run's time went, per session, from nox's own log lines and the child log.

    ``lines`` are (seconds since ``start``, line) of nox's output; ``records``
    the logged children, engine requests and waits (epoch seconds). Per
    session: its wall time, start-up (the session's start to its first
    logged child: nox's venv check, Python start-up and imports of the
    `pipelines` command, config), time in tools and in waiting, time after
    its last child (reports, verdict, exit); smoke's up-to-healthy when it
    printed one. Before the first session: the wrapper and nox's start.
    """
    rel = [(r["tool"], max(r["start"] - start, 0.0), r["end"] - start) for r in records]
    sessions: list[dict[str, object]] = []
    bounds: list[tuple[str, float, float]] = []
    opened: tuple[str, float] | None = None
    for t, line in lines:
        m = _SESSION_START.search(line)
        if m:
            opened = (m.group(1), t)
            continue
        m = _SESSION_END.search(line)
        if m and opened is not None:
            bounds.append((opened[0], opened[1], t))
            opened = None
    if opened is not None:
        bounds.append((opened[0], opened[1], wall))
    for name, a, b in bounds:
        mine = [(tool, x, y) for tool, x, y in rel if x >= a - 0.01 and y <= b + 0.01]
        by_tool: dict[str, float] = {}
        for tool, x, y in mine:
            by_tool[tool] = round(by_tool.get(tool, 0.0) + y - x, 2)
        first = min((x for _, x, _ in mine), default=b)
        last = max((y for _, _, y in mine), default=b)
        inside = _union([(x, y) for _, x, y in mine])
        row: dict[str, object] = {
            "session": name,
            "wall_s": round(b - a, 2),
            "start_up_s": round(first - a, 2),
            "in_tools_s": round(inside, 2),
            "watching_s": round(_union([(x, y) for tool, x, y in mine if tool in WATCHING]), 2),
            "after_last_tool_s": round(b - last, 2),
            "outside_s": round(b - a - inside, 2),
            "by_tool_s": dict(sorted(by_tool.items(), key=lambda kv: -kv[1])),
        }
        healthy = [float(m.group(1)) for t, line in lines if a <= t <= b and (m := _HEALTHY.search(line))]
        if healthy:
            row["up_to_healthy_s"] = healthy[-1]
        sessions.append(row)
    return {
        "before_first_session_s": round(bounds[0][1], 2) if bounds else round(wall, 2),
        "after_last_session_s": round(wall - bounds[-1][2], 2) if bounds else 0.0,
        "sessions": sessions,
    }


def up_to_healthy(rows: list[dict[str, object]]) -> list[float]:
    """Smoke's "all services healthy N s after up" of each pipeline run that printed one (session_breakdown rows)."""
    found: list[float] = []
    for row in rows:
        sessions = row.get("sessions")
        for sr in sessions if isinstance(sessions, list) else []:
            if isinstance(sr, dict) and isinstance(sr.get("up_to_healthy_s"), (int, float)):
                found.append(float(sr["up_to_healthy_s"]))
    return found


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    r = _proc.run(argv, cwd=cwd, env=env, timeout=1800, check=False, quiet=True, what=" ".join(argv[:3]))
    if r.returncode != 0:
        raise GateFailed(f"{' '.join(argv)} failed (exit {r.returncode})", seen=_proc.tail(r.stdout + r.stderr, 20))
    return time.monotonic() - start


def session_table(rows: list[dict[str, object]]) -> str:
    """One Markdown row per run and session of session_breakdown's output."""
    body: list[list[str]] = []
    for i, r in enumerate(rows):
        body.append([str(i + 1), "(wrapper, nox start)", f"{r.get('before_first_session_s', 0)} s", "", "", "", "", ""])
        sessions = r.get("sessions")
        for sr in sessions if isinstance(sessions, list) else []:
            body.append(
                [
                    str(i + 1),
                    str(sr["session"]),
                    f"{sr['wall_s']} s",
                    f"{sr['start_up_s']} s",
                    f"{sr['in_tools_s']} s ({sr['watching_s']} s watching)",
                    f"{sr['outside_s']} s",
                    f"{sr['after_last_tool_s']} s",
                    f"{sr['up_to_healthy_s']} s" if "up_to_healthy_s" in sr else "",
                ]
            )
    return report.markdown_table(
        ["run", "session", "wall", "start-up", "in tools", "outside tools", "after last tool", "up to healthy"], body
    )


def _timed_lines(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, list[tuple[float, str]]]:
    """Like _timed, keeping each output line with its time since the start (epoch start, seconds, lines)."""
    lines: list[tuple[float, str]] = []
    start, t0 = time.time(), time.monotonic()
    r = _proc.run(
        argv,
        cwd=cwd,
        env=env,
        timeout=1800,
        check=False,
        quiet=True,
        what=" ".join(argv[:3]),
        stream=lambda line: lines.append((time.monotonic() - t0, line)),
    )
    if r.returncode != 0:
        raise GateFailed(f"{' '.join(argv)} failed (exit {r.returncode})", seen=_proc.tail(r.stdout, 20))
    return start, time.monotonic() - t0, lines


def lint_direct(root: Path, venv: Path) -> list[list[str]]:
    """What the noxfile's lint session runs, as plain commands from its environment."""
    workflows = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.y*ml"))
    b = venv / "bin"
    return [
        [str(b / "pipelines"), "lint"],
        [str(b / "ruff"), "check", "."],
        [str(b / "ruff"), "format", "--check", "."],
        [str(b / "mypy")],
        [str(b / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        [str(b / "zizmor"), "--offline", "--no-config", "--persona", "regular", "--min-severity", "medium", *workflows],
    ]


def run_pipeline(ctx: Context, *, out: Path | None = None, runs: int = 3) -> Result:
    """`./noxw -s lint` against its commands run directly, and `./noxw -s build scan verify smoke` warm.

    For the pipeline run every child process and engine API request of the
    package is logged (PIPELINES_PROC_LOG); the wall time not covered by any
    of them is the pipeline's own: nox, Python start-up, config, reports.
    Runs are interleaved and repeated; the load average is recorded with each.
    """
    import statistics
    import tempfile

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    root = cfg.root
    noxw = str(root / "noxw")
    direct = lint_direct(root, root / ".nox" / "lint")
    _timed([noxw, "-s", "lint"], root)  # creates or refreshes the session's environment once
    lint_rows: list[dict[str, float]] = []
    pipe_rows: list[dict[str, object]] = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        via_nox = _timed([noxw, "-s", "lint"], root)
        raw = sum(_timed(cmd, root) for cmd in direct)
        lint_rows.append({"nox_s": round(via_nox, 2), "direct_s": round(raw, 2), "load": round(load, 1)})
        with tempfile.NamedTemporaryFile(prefix="pipelines-proc-", suffix=".jsonl", delete=False) as f:
            log = Path(f.name)
        try:
            load = os.getloadavg()[0]
            start, wall, lines = _timed_lines([noxw, "-s", *PIPELINE_SESSIONS], root, {_proc.PROC_LOG_ENV: str(log)})
            records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        finally:
            log.unlink(missing_ok=True)
        breakdown = session_breakdown(lines, records, start, wall)
        inside = _union([(max(r["start"], start), r["end"]) for r in records])
        # Sleeping while a container starts or stays up, and HTTP to the stack,
        # are the watched tools' time too; reported on their own.
        watching = _union([(max(r["start"], start), r["end"]) for r in records if r["tool"] in WATCHING])
        by_tool: dict[str, float] = {}
        for r in records:
            by_tool[r["tool"]] = round(by_tool.get(r["tool"], 0.0) + r["end"] - r["start"], 2)
        pipe_rows.append(
            {
                "wall_s": round(wall, 2),
                "in_tools_s": round(inside, 2),
                "watching_s": round(watching, 2),
                "outside_share": round(1 - inside / wall, 3),
                "children": len(records),
                "load": round(load, 1),
                "by_tool_s": by_tool,
                **breakdown,
            }
        )
        ctx.log(f"pipeline: lint {lint_rows[-1]}; pipeline {pipe_rows[-1]}")
    overhead = statistics.median(r["nox_s"] - r["direct_s"] for r in lint_rows)
    healthy = up_to_healthy(pipe_rows)
    wall = statistics.median(float(str(r["wall_s"])) for r in pipe_rows)
    outside = statistics.median(float(str(r["outside_share"])) for r in pipe_rows)
    # Reported against their targets, not gated: the numbers depend on the machine's load.
    checks = [
        check(
            "`./noxw -s lint` minus its commands run directly (median)",
            f"{overhead:.2f} s",
            f"<= {SESSION_OVERHEAD_TARGET_S} s",
            overhead <= SESSION_OVERHEAD_TARGET_S,
            gate=False,
        ),
        check(
            f"`./noxw -s {' '.join(PIPELINE_SESSIONS)}` warm (median)",
            f"{wall:.1f} s",
            f"<= {PIPELINE_TARGET_S} s",
            wall <= PIPELINE_TARGET_S,
            gate=False,
        ),
        check(
            "share of that time outside docker, trivy, compose (median)",
            f"{outside:.1%}",
            f"< {OUTSIDE_TARGET:.0%}",
            outside < OUTSIDE_TARGET,
            gate=False,
        ),
        check(
            # Smoke prints it once per run; a run without it fails this check, never passes it.
            f"smoke `up` to all healthy (median of {len(healthy)} of {len(pipe_rows)} runs, "
            f"{min(healthy, default=0):.1f}-{max(healthy, default=0):.1f} s)",
            f"{statistics.median(healthy):.1f} s" if healthy else "not reported",
            f"<= {SMOKE_HEALTHY_TARGET_S:.0f} s",
            len(healthy) == len(pipe_rows) and statistics.median(healthy) <= SMOKE_HEALTHY_TARGET_S,
            gate=False,
        ),
    ]
    results: dict[str, object] = {
        "when": _now(),
        "machine": {"cpus": os.cpu_count() or 0, "python": platform.python_version()},
        "lint": lint_rows,
        "pipeline": pipe_rows,
    }
    res = result("pipeline", out, results, checks)
    md = [
        f"## Pipeline overhead ({results['when']})",
        "",
        report.markdown_table(
            ["run", "noxw -s lint", "lint direct", "pipeline wall", "in tools", "of it watching", "outside", "load"],
            [
                [
                    str(i + 1),
                    f"{lr['nox_s']:.2f} s",
                    f"{lr['direct_s']:.2f} s",
                    f"{pr['wall_s']} s",
                    f"{pr['in_tools_s']} s",
                    f"{pr['watching_s']} s",
                    f"{float(str(pr['outside_share'])):.1%}",
                    f"{lr['load']} / {pr['load']}",
                ]
                for i, (lr, pr) in enumerate(zip(lint_rows, pipe_rows, strict=True))
            ],
        ),
        "",
        "Per session (start-up: the session's start to its first child: nox's environment check, Python and the "
        "`pipelines` command's imports, config):",
        "",
        session_table(pipe_rows),
        "",
        checks_md(checks),
    ]
    write_files(out, res, "\n".join(md))
    return res


# --------------------------------------------------------------------------- deploy under load

DEPLOY_TIMEOUT_S = 1800.0  # one `pipelines deploy` child; its own gates have shorter deadlines


def _deploy_argv(cfg: Config, env: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "deploy", "--env", env, "--format", "json"]


def require_deploy_command(cfg: Config) -> None:
    """Exit 2 with a clear message when this installation has no `pipelines deploy`."""
    argv = [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "deploy", "--help"]
    r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
    if r.returncode != 0:
        raise ToolNotFound(
            "the deploy benchmark needs the `pipelines deploy` command, and this installation has none",
            seen=_proc.tail(r.stderr or r.stdout, 5),
            hint="install a pipelines version with `pipelines deploy --env ENV --format json`",
        )


@dataclass(frozen=True)
class DeployRun:
    """One `pipelines deploy` child: when it ran on the load's clock, how it ended, what it said."""

    name: str
    variables: Mapping[str, str]
    t0: float  # load clock, seconds
    t1: float
    exit_code: int
    result: Mapping[str, Any]  # the deploy's JSON result ({} when it printed none)
    stderr: str

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def deploy_json(stdout: str) -> dict[str, Any]:
    """The JSON result a `--format json` deploy printed, or {} when there is none."""
    text = stdout.strip()
    start = text.find("{")
    if start < 0:
        return {}
    try:
        value = json.loads(text[start:])
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def verdict_to_rollback_s(result: Mapping[str, Any]) -> float | None:
    """Seconds from the failed health gate's verdict to the end of the deploy (rollback complete).

    The deploy's ``timings["rollback"]`` when it reports one (the engine measured it). Else an
    upper bound read from the deploy's JSON result (time outside the steps counts too): its steps
    are checks, in the order they ran, each with the seconds it took; the first failed one is the
    gate. Its verdict came at the sum of the steps up to and including it; the deploy's total is
    timings["deploy"]. None when the result does not carry that (no failed step with a duration,
    or no total).
    """
    timings = result.get("timings")
    checks = result.get("checks")
    if isinstance(timings, Mapping) and isinstance(timings.get("rollback"), int | float):
        return round(float(timings["rollback"]), 2)  # the engine's own measure, when it gives one
    if not isinstance(timings, Mapping) or not isinstance(checks, list):
        return None
    total = timings.get("deploy")
    if not isinstance(total, int | float):
        return None
    elapsed = 0.0
    for c in checks:
        if not isinstance(c, Mapping):
            return None
        seconds = c.get("seconds", 0.0)
        elapsed += float(seconds) if isinstance(seconds, int | float) else 0.0
        if c.get("outcome") == "fail":
            return round(max(0.0, float(total) - elapsed), 2) if seconds else None
    return None


def front_door(file: str, project: str, service: str, port: int) -> tuple[str, int]:
    """The loopback address and host port the front door's container publishes ``port`` on."""
    with Engine.connect() as engine:
        states = engine.containers({"com.docker.compose.project": project, "com.docker.compose.service": service})
        running = [s for s in states if s.status == "running"]
        if not running:
            raise ConfigError(
                file,
                "bench.deploy.service",
                f"no running container of service {service!r} in Compose project {project!r}",
                hint="the service that publishes the stack's port, as the environment's Compose files name it",
            )
        ports = engine.inspect_container(running[0].id).get("NetworkSettings", {}).get("Ports") or {}
    bindings = ports.get(f"{port}/tcp") or []
    for b in bindings:
        host_ip, host_port = b.get("HostIp", ""), b.get("HostPort", "")
        if not str(host_port).isdigit():
            continue
        if host_ip in ("", "0.0.0.0", "127.0.0.1"):  # noqa: S104 - reading a binding, not binding
            return "127.0.0.1", int(host_port)
        if host_ip in ("::", "::1"):
            return "::1", int(host_port)
    raise ConfigError(
        file,
        "bench.deploy.port",
        f"service {service!r} publishes no loopback port for container port {port} (published: {json.dumps(ports)})",
        hint="the benchmark drives loopback only: publish the front door on 127.0.0.1",
    )


def _project_of(result: Mapping[str, Any]) -> str:
    # The JSON renderer puts a result's data beside its other keys ({"release": ...}); "data" is the old shape.
    data = result.get("data")
    release = result.get("release") or (data.get("release") if isinstance(data, Mapping) else None)
    project = release.get("project") if isinstance(release, Mapping) else None
    if not isinstance(project, str) or not project:
        raise ToolNotFound(
            "`pipelines deploy --format json` did not say which Compose project it deployed",
            seen="no data.release.project in its JSON result",
            hint="the benchmark finds the front door's published port through that project",
        )
    return project


def run_deploy(ctx: Context, *, env: str | None = None, out: Path | None = None) -> Result:
    """Constant load on the front door while a good and a bad release go out through `pipelines deploy`.

    First a deploy with the environment as configured (a no-op when it is live already) names the
    Compose project and so the front door's published port. Then, under load for the whole run: a
    good deploy (the [bench.deploy].good variables: a change it rolls out), a bad one (.bad: the
    new containers fail their health gate and are rolled back), and a restoring deploy without
    either, so the environment ends as it began. Every failed request is kept with its time.
    """
    from .loadgen import LoadGenerator

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    spec = cfg.bench.deploy
    if spec is None:
        raise ConfigError(
            str(cfg.file),
            "bench.deploy",
            "is missing: the deploy benchmark needs the front door to load and the deploys to make",
            hint='[bench.deploy] service = "proxy", port = 8080, path = "/ready", bad = { VAR = "breaks it" }',
        )
    e = cfg.env(env)
    require_deploy_command(cfg)

    def deploy(name: str, variables: Mapping[str, str], clock: Callable[[], float]) -> DeployRun:
        ctx.log(f"bench deploy: {name} deploy of {e.name}" + (f" with {dict(variables)}" if variables else ""))
        t0 = clock()
        r = _proc.run(
            _deploy_argv(cfg, e.name), timeout=DEPLOY_TIMEOUT_S, check=False, quiet=True, cwd=cfg.root, env=variables
        )
        run = DeployRun(name, dict(variables), t0, clock(), r.returncode, deploy_json(r.stdout), r.stderr)
        ctx.log(f"bench deploy: {name} deploy exit {run.exit_code} after {run.seconds:.1f} s")
        if run.exit_code not in (0, 1):
            raise PipelineError(
                f"the {name} deploy could not run (exit {run.exit_code}); the benchmark measured nothing",
                seen=_proc.tail(run.stderr, 15),
            )
        return run

    first = deploy("initial", {}, time.monotonic)
    if first.exit_code != 0:
        raise PipelineError(
            f"{e.name} could not be deployed as configured (exit {first.exit_code}): nothing to benchmark against",
            seen=_proc.tail(first.stderr, 15),
            hint="the benchmark starts from a live release: build, scan, verify, smoke and sign it first",
        )
    host, port = front_door(str(cfg.file), _project_of(first.result), spec.service, spec.port)
    runs: list[DeployRun] = []
    with LoadGenerator(host, port, spec.path, spec.rate, requests=spec.requests) as load:
        time.sleep(spec.settle)
        for name, variables in (("good", spec.good), ("bad", spec.bad), ("restore", {})):
            runs.append(deploy(name, variables, load.elapsed))
            time.sleep(spec.settle)
    report_ = load.report
    res = deploy_results(e.name, spec, report_, runs, out=out)
    write_deploy(out, res)
    return res


def deploy_results(env: str, spec: DeployBench, load: LoadReport, runs: Sequence[DeployRun], *, out: Path) -> Result:
    """Judge the deploys: each one's window runs from its start to the next one's (its settle included)."""
    ends = [r.t0 for r in runs[1:]] + [load.duration_s]
    phases: list[dict[str, object]] = []
    for run, end in zip(runs, ends, strict=True):
        failures = load.failures_between(run.t0, end)
        timings = run.result.get("timings")
        own = timings.get("deploy") if isinstance(timings, Mapping) else None
        phases.append(
            {
                "deploy": run.name,
                "variables": dict(run.variables),
                "exit": run.exit_code,
                "headline": str(run.result.get("headline", "")),
                "wall_s": round(run.seconds, 2),
                "deploy_s": own if isinstance(own, int | float) else None,
                "verdict_to_rollback_s": verdict_to_rollback_s(run.result) if run.exit_code == 1 else None,
                "requests": load.requests_between(run.t0, end),
                "failed": len(failures),
                "failures": [{"at_s": round(f.at - run.t0, 3), "what": f.what} for f in failures],
            }
        )
    before = load.failures_between(0.0, runs[0].t0 if runs else load.duration_s)
    expected = {"good": 0, "bad": 1, "restore": 0}
    checks = [check("failed requests before the deploys", str(len(before)), "0", not before)]
    for p in phases:
        want = expected.get(str(p["deploy"]), 0)
        checks.append(
            check(
                f"{p['deploy']} deploy exit code",
                str(p["exit"]),
                f"{want} ({'rolled back' if want else 'live'})",
                p["exit"] == want,
            )
        )
        checks.append(
            check(
                f"failed requests during the {p['deploy']} deploy",
                f"{p['failed']} of {p['requests']}",
                f"<= {spec.max_failed}",
                int(str(p["failed"])) <= spec.max_failed,
            )
        )
        if want:  # a deploy that must fail its gate: the previous release must be back soon after
            took = p["verdict_to_rollback_s"]
            checks.append(
                check(
                    f"{p['deploy']} deploy: gate verdict to rollback complete",
                    f"{took:.1f} s" if isinstance(took, int | float) else "not reported",
                    f"<= {spec.max_rollback_s:g} s",
                    isinstance(took, int | float) and took <= spec.max_rollback_s,
                )
            )
    data: dict[str, object] = {
        "when": _now(),
        "env": env,
        "front_door": {"service": spec.service, "port": spec.port},
        "load": load.summary(),
        "deploys": phases,
    }
    return result(
        "deploy", out, data, checks, notices=(f"every failed request, with its time, is in {out / 'deploy.json'}",)
    )


def _mix_table(mix: object) -> list[str]:
    """The load's requests by kind: a mix of methods must show that each one went through, not only the total."""
    if not isinstance(mix, Mapping) or len(mix) < 2:
        return []
    rows = [
        [str(name), str(t.get("weight")), str(t.get("sent")), str(t.get("ok")), str(t.get("failed"))]
        for name, t in mix.items()
        if isinstance(t, Mapping)
    ]
    return [report.markdown_table(["request", "weight", "sent", "ok", "failed"], rows), ""]


def write_deploy(out: Path, res: Result) -> None:
    results = bench_json(res)
    load = results["load"]
    phases = results["deploys"]
    if not (isinstance(load, Mapping) and isinstance(phases, list)):
        raise TypeError("deploy bench results lack their load or deploys")

    def secs(v: object) -> str:
        return f"{v:.1f} s" if isinstance(v, int | float) else "-"

    md = [
        f"## Deploy benchmark ({results['when']}, {results['env']})",
        "",
        f"Load: {load['rate_per_s']:g} requests/s on {load['target']} for {load['duration_s']:.0f} s, "
        f"{load['requests']} requests, {load['failed']} failed; p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms.",
        "",
        *_mix_table(load.get("mix")),
        report.markdown_table(
            ["deploy", "exit", "wall time", "deploy's own", "verdict to rollback", "requests", "failed"],
            [
                [
                    str(p["deploy"]),
                    str(p["exit"]),
                    secs(p["wall_s"]),
                    secs(p["deploy_s"]),
                    secs(p["verdict_to_rollback_s"]),
                    str(p["requests"]),
                    str(p["failed"]),
                ]
                for p in phases
            ],
        ),
        "",
        checks_md(res.checks),
    ]
    failures = [(str(p["deploy"]), f) for p in phases for f in p["failures"]]
    if failures:
        md += ["", "Failed requests (seconds after the deploy started):", ""]
        md += [f"- {name} +{f['at_s']:.2f} s: {f['what']}" for name, f in failures[:50]]
        if len(failures) > 50:
            md.append(f"- ... {len(failures) - 50} more in deploy.json")
    write_files(out, res, "\n".join(md))
