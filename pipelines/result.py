"""The stage contract: every stage is ``run(context, options) -> Result``.

A :class:`Result` carries what a stage found (findings, checks), what it
wrote (artifacts), how long it took (timings) and its verdict. Stages do not
print verdicts; :mod:`pipelines.render` turns a result into the terminal
table, Markdown, JSON, JUnit and SARIF, and :func:`exit_code` is the one
place where a result becomes an exit code.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, PipelineError
from .findings import Finding, Rule

if TYPE_CHECKING:
    from .config import Config
    from .engine import Engine
    from .tools import Toolchain
    from .verdicts import Coverage


class Outcome(enum.Enum):
    """The state of one check: a probe, a test case, a cell of the hardening matrix."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    WAIVED = "waived"
    NA = "n/a"

    @property
    def ok(self) -> bool:
        return self is not Outcome.FAIL


@dataclass(frozen=True)
class Check:
    """One named check with its evidence: what was read, and how."""

    name: str
    outcome: Outcome
    detail: str = ""
    seconds: float = 0.0
    group: str = ""  # the row it belongs to: an image, a service, "probes"
    evidence: str = ""  # the command or source that produced ``detail``
    # A measured check (a benchmark's target): what was measured and what it had to be.
    value: str = ""
    target: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome.ok


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""


@dataclass(frozen=True)
class Result:
    stage: str  # lint, build, scan, verify, smoke, load, deploy
    headline: str  # one line: what ran and the verdict in words
    findings: tuple[Finding, ...] = ()
    gated: tuple[Finding, ...] = ()  # the findings that close the gate
    checks: tuple[Check, ...] = ()
    notices: tuple[str, ...] = ()  # shown first: data sources, coverage, what was skipped and why
    tables: tuple[Table, ...] = ()
    artifacts: tuple[Path, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)  # the stage's own record, for JSON
    rules: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)  # tool -> rule id -> Rule, for SARIF
    files: tuple[str, ...] = ()  # what was examined (JUnit cases for findings)
    error: str = ""  # the stage ran but could not finish its own work (stack never came up, ...)
    # Inputs the stage could not examine at all (a file it could not parse, an image it could not
    # read): the rest is reported, but the run is no verdict, so it exits 2.
    unusable: tuple[str, ...] = ()
    # The stage stopped before it could judge anything (``error`` says why): exit 2, not a verdict.
    could_not_run: bool = False
    out_dir: Path | None = None  # where the reports of this run are written
    # The environment build this result judged: image name -> image ID. Set by stages that
    # judge a recorded build (scan, verify, smoke); the CLI records the verdict for promotion.
    env: str = ""
    subjects: Mapping[str, str] = field(default_factory=dict)
    # The vulnerability data the verdict rests on (scan): in the JSON, each SARIF run and the verdict record.
    coverage: Coverage | None = None

    @property
    def passed(self) -> bool:
        return not self.error and not self.gated and all(c.ok for c in self.checks)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


def from_error(stage: str, exc: PipelineError, *, out_dir: Path | None = None, **data: Any) -> Result:
    """A stage that stopped on an error is still a Result: its reports are written, its error is in each format.

    A verdict-like error (a build broke, a gate closed: exit 1) fails the stage; any other means it could
    not run (exit 2), as when it was raised.
    """
    return Result(
        stage=stage,
        headline=f"{stage}: {'failed' if exc.exit_code == EXIT_FAILED else 'could not run'}: {exc.what}",
        error=exc.render().removeprefix("error: "),
        could_not_run=exc.exit_code != EXIT_FAILED,
        out_dir=out_dir,
        data=data,
    )


def exit_code(result: Result) -> int:
    """The one mapping from a finished stage to an exit code (errors map in :mod:`pipelines.cli`)."""
    if result.unusable or result.could_not_run:
        return EXIT_UNUSABLE
    return EXIT_OK if result.passed else EXIT_FAILED


def stderr_log(line: str) -> None:
    """Progress for a person watching: stderr, so stdout stays the report (``--format json`` pipes cleanly)."""
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Context:
    """What every stage gets: the validated config, the toolchain and the environment.

    Stages read the process environment only through ``environ``, so tests and
    the CLI decide what a stage sees.
    """

    cfg: Config
    tools: Toolchain
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The one progress logger every stage writes through; tests and embedders pass their own.
    log: Callable[[str], None] = field(default=stderr_log, compare=False)

    @property
    def root(self) -> Path:
        return self.cfg.root

    @property
    def artifacts(self) -> Path:
        return self.cfg.project.artifacts

    def engine(self) -> Engine:
        from .engine import Engine

        return Engine.connect(self.environ)

    def stamp(self) -> str:
        return self.started.strftime("%Y%m%dT%H%M%SZ")
