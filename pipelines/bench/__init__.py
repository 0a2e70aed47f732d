"""Benchmarks: builds and image sizes, and the speed of lint, scan, verify, many services, nox and deploys.

A benchmark, not a test: it measures wall time on this machine and compares
with its targets. Like every stage it is ``run(context, options) -> Result``:
each target is a :class:`~pipelines.result.Check` (value, target, ok), the
one renderer writes the reports, and the benchmark's own NAME.json and
NAME.md under the out directory (``ok``, ``checks`` and the measurements)
are written from that Result, also when the benchmark could not finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, Interrupted, PipelineError
from ..result import Context, Result, stderr_log
from . import build, corpus, deploy, fleet, overhead, stages
from .build import run_build, write
from .corpus import (
    CORPUS_MAX_WRONG,
    CORPUS_MIN_ACTIONABLE,
    CORPUS_MIN_LABELLED,
    MISSED,
    CorpusEntry,
    read_corpus_manifest,
    read_labels,
    run_lint_corpus,
    stage_corpus,
)
from .deploy import (
    DeployRun,
    deploy_json,
    deploy_results,
    project_of,
    require_deploy_command,
    run_deploy,
    verdict_to_rollback_s,
    write_deploy,
)
from .fleet import fleet_config, run_fleet
from .overhead import run_pipeline, session_breakdown, session_table, union, up_to_healthy
from .report import KINDS, bench_json, check, could_not_finish, result
from .stages import run_lint, run_scan, run_verify

__all__ = [
    "CORPUS_MAX_WRONG",
    "CORPUS_MIN_ACTIONABLE",
    "CORPUS_MIN_LABELLED",
    "KINDS",
    "MISSED",
    "CorpusEntry",
    "DeployRun",
    "Options",
    "bench_json",
    "check",
    "could_not_finish",
    "deploy_json",
    "deploy_results",
    "fleet_config",
    "project_of",
    "read_corpus_manifest",
    "read_labels",
    "require_deploy_command",
    "result",
    "run",
    "run_build",
    "run_deploy",
    "run_fleet",
    "run_lint",
    "run_lint_corpus",
    "run_pipeline",
    "run_scan",
    "run_verify",
    "session_breakdown",
    "session_table",
    "stage_corpus",
    "union",
    "up_to_healthy",
    "verdict_to_rollback_s",
    "write",
    "write_deploy",
]


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


def run(ctx: Context | None, opts: Options) -> Result:
    """The one entry point: the chosen benchmark as a Result; an error is the Result's, with reports written."""
    if opts.kind not in KINDS:
        raise InputError(f"unknown benchmark {opts.kind!r}", hint=f"one of: {', '.join(KINDS)}")
    out = opts.out or ((ctx.artifacts if ctx is not None else Path("artifacts")) / "bench")
    try:
        if opts.kind == "lint-corpus":
            if opts.checkouts is None or opts.manifest is None:
                raise InputError("the corpus benchmark needs the checkouts and the manifest")
            return corpus.run_lint_corpus(opts.checkouts, opts.manifest, out=out, log=ctx.log if ctx else stderr_log)
        if ctx is None:
            raise InputError(f"the {opts.kind} benchmark needs the project's config")
        if opts.kind == "lint":
            return stages.run_lint(ctx, out=out)
        if opts.kind == "scan":
            return stages.run_scan(ctx, env=opts.env, out=out)
        if opts.kind == "verify":
            return stages.run_verify(ctx, env=opts.env, out=out)
        if opts.kind == "fleet":
            return fleet.run_fleet(ctx, env=opts.env, out=out)
        if opts.kind == "pipeline":
            return overhead.run_pipeline(ctx, out=out, runs=opts.runs)
        if opts.kind == "deploy":
            return deploy.run_deploy(ctx, env=opts.env, out=out)
        return build.run_build(ctx, env=opts.env, service=opts.service, out=out, skip_cold=opts.skip_cold)
    except Interrupted:
        raise
    except PipelineError as exc:
        return could_not_finish(opts.kind, out, exc)
