"""The records the offline database is built from and reports: :class:`Advisory`, :class:`DbInfo`.

Also :class:`VulnDbError`, the one error a scan sees for a missing or damaged database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ...errors import EXIT_UNUSABLE, PipelineError


class VulnDbError(PipelineError):
    """The offline vulnerability database is missing, unreadable or damaged."""

    exit_code = EXIT_UNUSABLE


@dataclass(frozen=True)
class Advisory:
    """One vulnerability affecting one package in one Trivy ecosystem bucket."""

    id: str  # CVE-..., GHSA-..., DSA-...: the key Trivy reports
    aliases: tuple[str, ...]
    summary: str
    severity: str  # one of SEVERITIES
    ecosystem: str  # "debian 12" style bucket, or "pip"
    package: str  # Debian: the SOURCE package; pip: the name as Trivy looks it up
    fixed_version: str = ""  # Debian; "" = no fix yet
    vulnerable_versions: tuple[str, ...] = ()  # pip: Trivy constraints, e.g. ">=1.0, <1.2.3"
    patched_versions: tuple[str, ...] = ()  # pip: the versions that fix it, e.g. "1.2.3"
    url: str = ""
    description: str = ""
    modified: datetime | None = None  # the record's own "modified": how new the data is
    severity_defaulted: bool = False  # the record rated nothing; severity is the configured default
    files: tuple[str, ...] = ()  # the OSV files it was read from: a conflict between two is named by them


@dataclass(frozen=True)
class DbInfo:
    path: Path  # CACHE/db/trivy.db
    schema_version: int
    updated_at: datetime  # when the file was written (Trivy's UpdatedAt)
    next_update: datetime
    advisories: int
    source: str
    # Advisory records per ecosystem ("pip", "debian 12", "npm", ...), counted in the file itself.
    ecosystems: Mapping[str, int] = field(default_factory=dict)
    # The newest advisory's "modified" date; None for a database that does not say (Trivy's own:
    # rebuilt from live feeds every few hours, so its UpdatedAt stands in for it).
    newest_advisory: datetime | None = None
    defaulted: Mapping[str, int] = field(default_factory=dict)  # advisories rated by the default, per ecosystem
    # The ecosystems the data source declares it covers ("pip", "debian 12"): ours record what the builder was
    # told (`--covers`, a bundle's provenance); Trivy's own list a data source per bucket. Coverage is judged
    # by this, never by whether some advisory for an ecosystem happens to be in the file.
    covers: tuple[str, ...] = ()

    @property
    def cache_dir(self) -> Path:
        """What Trivy's --cache-dir needs."""
        return self.path.parent.parent

    @property
    def data_date(self) -> datetime:
        """How new the data is: the newest advisory, else the database's own build time."""
        return self.newest_advisory or self.updated_at
