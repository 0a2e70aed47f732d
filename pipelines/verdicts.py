"""What each stage concluded about exactly which images: the record promotion and deploy trust.

After scan, verify or smoke ran on an environment's build, the CLI records the
verdict beside the build (ARTIFACTS/verdicts/ENV/STAGE.json) with the image
IDs it judged. A later stage (deploy) trusts a verdict only for those exact
images: a rebuild, even of the same commit, needs its own verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError

if TYPE_CHECKING:
    from .result import Result


class Coverage(BaseModel):
    """The vulnerability data a scan verdict rests on, and whether it covered the judged images in full.

    It travels with the verdict: the record here, the scan's JSON and SARIF
    reports, and the signed scan-verdict attestation, so an environment that
    requires full coverage can refuse a verdict that says ``limited``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str  # which data: "download: ...", "bundle: PyPA advisory database (...)", "none"
    date: str  # how new it is (newest advisory, else the database's build), YYYY-MM-DD; "" without data
    ecosystems: tuple[str, ...]  # what the source declares it covers ("debian 12", "pip")
    limited: bool  # an image ecosystem undeclared, data too old, no advisories, or no data at all
    reason: str = ""  # why limited
    fallback: str = ""  # why the sources before it in scan.db_sources were not used, when the scan fell back


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    env: str
    passed: bool
    at: str  # when, UTC, ISO 8601
    subjects: dict[str, str]  # image name -> image ID judged
    headline: str
    reports: str = ""  # where the stage's reports are
    coverage: Coverage | None = None  # scan: the data the verdict rests on


def coverage_problem(coverage: Coverage | None) -> str:
    """Empty when ``coverage`` says the data covered the images in full; otherwise why not (for refusals)."""
    if coverage is None:
        return "it records no vulnerability data coverage"
    if coverage.limited:
        return f"its vulnerability data coverage is limited ({coverage.source}, {coverage.date or 'no date'}): " + (
            coverage.reason or "no reason given"
        )
    return ""


def path(artifacts: Path, env: str, stage: str) -> Path:
    return artifacts / "verdicts" / env / f"{stage}.json"


def record(
    artifacts: Path,
    *,
    stage: str,
    env: str,
    passed: bool,
    subjects: Mapping[str, str],
    headline: str,
    reports: str,
    coverage: Coverage | None = None,
) -> Path:
    v = Verdict(
        stage=stage,
        env=env,
        passed=passed,
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        subjects=dict(subjects),
        headline=headline,
        reports=reports,
        coverage=coverage,
    )
    file = path(artifacts, env, stage)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(v.model_dump_json(indent=2) + "\n")
    tmp.replace(file)
    return file


def conclude(artifacts: Path, res: Result) -> Path | None:
    """Record what ``res`` concluded about exactly its images: every caller of a judging stage goes through here.

    A result that names no environment build (images named on the command line, an overlay that changed the
    stack) judged nothing promotion could rely on, and records nothing.
    """
    if not (res.env and res.subjects):
        return None
    return record(
        artifacts,
        stage=res.stage,
        env=res.env,
        passed=res.passed,
        subjects=res.subjects,
        headline=res.headline,
        reports=str(res.out_dir or ""),
        coverage=res.coverage,
    )


def load(artifacts: Path, env: str, stage: str) -> Verdict | None:
    """The last verdict of ``stage`` on ``env``, or None when it never ran there."""
    file = path(artifacts, env, stage)
    try:
        return Verdict.model_validate(json.loads(file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValidationError) as exc:
        raise InputError(
            f"{file}: not a verdict record ({str(exc).splitlines()[0]})",
            hint=f"run `pipelines {stage} --env {env}` again to rewrite it",
        ) from None


def covers(v: Verdict | None, subjects: Mapping[str, str]) -> str:
    """Empty when ``v`` passed for exactly these images; otherwise why not."""
    if v is None:
        return "never ran on this build"
    if not v.passed:
        return f"failed at {v.at}: {v.headline}"
    missing = {n: i for n, i in subjects.items() if v.subjects.get(n) != i}
    if missing:
        names = ", ".join(sorted(missing))
        return f"passed at {v.at} for other images than this build's ({names})"
    return ""
