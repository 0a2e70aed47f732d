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

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    env: str
    passed: bool
    at: str  # when, UTC, ISO 8601
    subjects: dict[str, str]  # image name -> image ID judged
    headline: str
    reports: str = ""  # where the stage's reports are


def path(artifacts: Path, env: str, stage: str) -> Path:
    return artifacts / "verdicts" / env / f"{stage}.json"


def record(
    artifacts: Path, *, stage: str, env: str, passed: bool, subjects: Mapping[str, str], headline: str, reports: str
) -> Path:
    v = Verdict(
        stage=stage,
        env=env,
        passed=passed,
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        subjects=dict(subjects),
        headline=headline,
        reports=reports,
    )
    file = path(artifacts, env, stage)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(v.model_dump_json(indent=2) + "\n")
    tmp.replace(file)
    return file


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
