"""OSV records, as the schema has them (https://ossf.github.io/osv-schema/), as strict pydantic models.

Apart from :mod:`.osv` and imported only when a record is parsed: a scan, which
reads a database and parses no OSV record, does not build these models at start-up.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    # Strict: a number where a string belongs is an error, not "3". Frozen: read-only data.
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class _Open(BaseModel):
    # The parts the schema leaves open to extension.
    model_config = ConfigDict(strict=True, frozen=True, extra="allow")


class OsvPackage(_Strict):
    ecosystem: str = Field(min_length=1)
    name: str = Field(min_length=1)
    purl: str | None = None


class OsvSeverity(_Strict):
    type: str = Field(min_length=1)
    score: str = Field(min_length=1)


class OsvEvent(_Strict):
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OsvEvent:
        given = [k for k in ("introduced", "fixed", "last_affected", "limit") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of introduced, fixed, last_affected, limit")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("introduced", "fixed", "last_affected", "limit") if getattr(self, k) is not None)

    @property
    def version(self) -> str:
        return str(getattr(self, self.kind))


class OsvRange(_Strict):
    type: Literal["ECOSYSTEM", "SEMVER", "GIT"]
    repo: str | None = None
    events: list[OsvEvent] = Field(min_length=1)
    database_specific: dict[str, Any] | None = None


class OsvAffected(_Strict):
    package: OsvPackage | None = None  # absent in records that only name git commits
    severity: list[OsvSeverity] = []
    ranges: list[OsvRange] = []
    versions: list[str] = []
    ecosystem_specific: dict[str, Any] | None = None
    database_specific: dict[str, Any] | None = None


class OsvReference(_Open):
    type: str = ""
    url: str = Field(min_length=1)


class OsvRecord(_Strict):
    schema_version: str | None = None
    id: str = Field(min_length=1, max_length=200)
    modified: AwareDatetime = Field(strict=False)
    published: AwareDatetime | None = Field(default=None, strict=False)
    withdrawn: AwareDatetime | None = Field(default=None, strict=False)
    aliases: list[str] = []
    upstream: list[str] = []
    related: list[str] = []
    summary: str = ""
    details: str = ""
    severity: list[OsvSeverity] = []
    affected: list[OsvAffected] = []
    references: list[OsvReference] = []
    credits: list[dict[str, Any]] = []
    database_specific: dict[str, Any] | None = None
