"""The scan stage: Trivy (and optional Snyk), one gate, the waiver ledger, SBOMs, reports.

Scanning fails closed. The vulnerability database is resolved explicitly
(given path, fresh local cache, download, then the configured offline advisories) and
every report says which one was used; when none can be had the stage stops
unless the config allows scanning without one, and then the report's first
line says vulnerabilities were NOT checked. Trivy's exit code is never the
verdict (its JSON is), but a non-zero one is an error, whatever file it left;
an empty or missing result is an error too.

Each image is scanned by its image ID, never through a tag: the build's images
are resolved against the build record first (see pipelines.subjects), and
Trivy's answer must name that same ID and, when it found an OS, list its
packages. The verdict names the IDs Trivy reported.

The package, by what each module holds: :mod:`.issues` (the severity scale
and Trivy's JSON read), :mod:`.snyk` (Snyk, when a token is set),
:mod:`.database` (which vulnerability database), :mod:`.coverage` (whether
it covers the images), :mod:`.images` (Trivy on one image, its answer kept
and checked), :mod:`.dockerfiles` (``trivy config``), :mod:`.gate` (what
fails the scan), :mod:`.analysis` (one scan, start to verdict),
:mod:`.reports` (the Result and the files beside it), :mod:`.vulndb` (the
offline database); this module is the stage's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..result import Context, Result
from . import vulndb
from .analysis import analyse
from .coverage import (
    COVERAGE_RULE,
    NOT_CHECKED,
    Coverage,
    DbChoice,
    assess_coverage,
    coverage_record,
    image_ecosystems,
)
from .database import as_cache_dir, resolve_db
from .gate import Outcome
from .images import ImageResult, check_image_result
from .issues import LEVELS, Issue, level, lint_severity, parse_trivy
from .reports import as_result, counts, trivyignore, write_reports
from .snyk import parse_snyk

# The stage's public names, whichever module defines them: callers import them from here.
__all__ = [
    "COVERAGE_RULE",
    "LEVELS",
    "NOT_CHECKED",
    "Coverage",
    "DbChoice",
    "ImageResult",
    "Issue",
    "Options",
    "Outcome",
    "analyse",
    "as_cache_dir",
    "as_result",
    "assess_coverage",
    "check_image_result",
    "counts",
    "coverage_record",
    "image_ecosystems",
    "level",
    "lint_severity",
    "parse_snyk",
    "parse_trivy",
    "resolve_db",
    "run",
    "trivyignore",
    "vulndb",
    "write_reports",
]


@dataclass(frozen=True)
class Options:
    env: str | None = None
    images: tuple[str, ...] = ()  # local image references; empty: the images of the env's last build
    vulndb: Path | None = None  # use this DB and nothing else


def run(ctx: Context, opts: Options) -> Result:
    """The scan stage on the common contract."""
    outcome = analyse(
        ctx.cfg, ctx.tools, env=opts.env, images=opts.images, explicit_db=opts.vulndb, environ=ctx.environ
    )
    return as_result(outcome, judged_build=not opts.images)
