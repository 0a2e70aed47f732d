"""The build record: what `pipelines build` produced, read back by every later stage.

The build stage writes one record per environment (ARTIFACTS/build/ENV.json);
scan, verify, smoke, load, deploy and the benchmarks read it through
:func:`load`, typed and validated, never as a loose dict. A record that is
missing, unreadable or written by something else is an error that says so
(exit 2), not a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError, PipelineError


class BuiltImage(BaseModel):
    """One image of a build: a golden base or a service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["base", "service"]
    ref: str  # what later stages use: repo@digest when pushed, else the commit tag
    tags: tuple[str, ...]
    image_id: str
    digest: str
    seconds: float
    reused: bool = False
    pushed: bool = False
    # The Python a golden image carries, the Debian suite the image is or stands on, and that suite's
    # status ("testing" has no support from Debian's security team); "" in records written before them.
    python: str = ""
    debian: str = ""
    debian_status: str = ""

    @property
    def local_ref(self) -> str:
        """The reference that names exactly this build's image in the local engine (the commit tag)."""
        return self.tags[0] if self.tags else self.ref


class BuildRecord(BaseModel):
    """One `pipelines build` of one environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str
    commit: str
    dirty: bool
    builder: str
    cache: str
    started: str
    seconds: float
    images: dict[str, BuiltImage]

    @property
    def services(self) -> list[BuiltImage]:
        return [i for i in self.images.values() if i.kind == "service"]

    @property
    def bases(self) -> list[BuiltImage]:
        return [i for i in self.images.values() if i.kind == "base"]

    def image_tag(self) -> str:
        """The one tag every service of this build carries (git-<sha> or the env tag)."""
        tags = {i.tags[0].rsplit(":", 1)[1] for i in self.services if i.tags and ":" in i.tags[0]}
        if len(tags) != 1:
            raise PipelineError(
                f"the recorded build of {self.env!r} has no single commit tag",
                seen=", ".join(sorted(tags)) or "no service tags",
                hint=f"run `pipelines build --env {self.env}`",
            )
        return tags.pop()


def path(artifacts: Path, env: str) -> Path:
    """Where the last build of ``env`` is recorded."""
    return artifacts / "build" / f"{env}.json"


def load(artifacts: Path, env: str) -> BuildRecord:
    file = path(artifacts, env)
    hint = f"run `pipelines build --env {env}` (or `nox -s build`) to record a build"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"no build of environment {env!r} is recorded at {file}", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: the build record cannot be read ({exc})", hint=hint) from None
    try:
        record = BuildRecord.model_validate(json.loads(text))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{file}: the build record is not valid JSON ({exc})", hint=hint) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise InputError(f"{file}: {where}: {first['msg']}", hint=hint) from None
    if record.env != env:
        raise InputError(f"{file}: records environment {record.env!r}, not {env!r}", hint=hint)
    return record


def save(artifacts: Path, record: BuildRecord) -> Path:
    file = path(artifacts, record.env)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(record.model_dump_json(indent=2) + "\n")
    tmp.replace(file)
    return file
