"""The vulnerability data a verdict rests on: the database chosen, and whether it covers the images.

:class:`DbChoice` says which database was used (the report's first line);
:class:`Coverage` judges it against the ecosystems Trivy found in each image
(:func:`image_ecosystems`); :func:`coverage_record` is what travels with the verdict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ScanSettings
from ..findings import Finding, Severity
from . import vulndb

if TYPE_CHECKING:
    from ..verdicts import Coverage as CoverageRecord

NOT_CHECKED = "VULNERABILITIES WERE NOT CHECKED: no vulnerability database was available"


@dataclass(frozen=True)
class DbChoice:
    cache_dir: Path | None
    source: str  # explicit | cache | download | bundle | none
    info: vulndb.DbInfo | None
    attempts: tuple[str, ...] = ()

    def statement(self, coverage: Coverage | None = None) -> str:
        """The report's first line: which data, how much per ecosystem, how new, and whether it covers the images."""
        if self.info is None:
            return NOT_CHECKED
        i = self.info
        counts = ", ".join(f"{eco} {n}" for eco, n in i.ecosystems.items() if n) or "none"
        dated = "newest advisory" if i.newest_advisory else "built"
        line = (
            f"Vulnerability DB: {self.source} ({i.source}): {i.advisories} advisories ({counts}); "
            f"{dated} {i.data_date:%Y-%m-%d}" + (f" ({coverage.age_days} days old)" if coverage else "")
        )
        return line + (f"; {coverage.verdict()}" if coverage else "")

    @property
    def fallback(self) -> str:
        """Why the sources before this one were not used, when the scan fell back to the bundle or to nothing."""
        if self.source not in ("bundle", "none"):
            return ""
        return "; ".join(self.attempts) or "no other source is enabled in scan.db_sources"


@dataclass(frozen=True)
class Coverage:
    """Whether the vulnerability data fits the images: every ecosystem found has data, and it is recent."""

    age_days: int
    max_age_days: int
    image_ecosystems: Mapping[str, tuple[str, ...]]  # image -> ecosystems Trivy found packages of
    missing: Mapping[str, tuple[str, ...]]  # image -> those the data source does not declare it covers
    accepted: bool  # scan.accept_limited_coverage
    empty: bool = False  # the database holds no advisories at all
    declared: tuple[str, ...] = ()  # the ecosystems the data source declares it covers

    @property
    def stale(self) -> bool:
        return self.age_days > self.max_age_days

    @property
    def limited(self) -> bool:
        return self.empty or self.stale or any(self.missing.values())

    def reasons(self) -> list[str]:
        out = ["the database holds no advisories"] if self.empty else []
        gaps = sorted({e for m in self.missing.values() for e in m})
        if gaps:
            out.append(self._gap(gaps))
        if self.stale:
            out.append(f"data {self.age_days} days old (scan.max_data_age_days = {self.max_age_days})")
        return out

    def _gap(self, gaps: Sequence[str]) -> str:
        declared = ", ".join(self.declared) or "nothing"
        return f"the data does not cover {', '.join(gaps)} (its source declares {declared})"

    def verdict(self) -> str:
        found = sorted({e for es in self.image_ecosystems.values() for e in es})
        if not self.limited:
            return f"covers the images' ecosystems ({', '.join(found) or 'none found'})"
        why = "; ".join(self.reasons())
        if self.accepted:
            return f"COVERAGE LIMITED: {why} (accepted by scan.accept_limited_coverage)"
        return f"COVERAGE INSUFFICIENT, gate fails: {why}"

    def findings(self) -> list[Finding]:
        """The gate's share: one finding per image the data does not cover (none once accepted)."""
        if not self.limited or self.accepted:
            return []
        out = []
        for image in self.image_ecosystems:
            gaps = self.missing.get(image, ())
            problems = (
                (["the database holds no advisories"] if self.empty else [])
                + ([self._gap(gaps)] if gaps else [])
                + ([f"vulnerability data is {self.age_days} days old (max {self.max_age_days})"] if self.stale else [])
            )
            if not problems:
                continue
            out.append(
                Finding(
                    "pipelines",
                    COVERAGE_RULE,
                    Severity.ERROR,
                    f"vulnerability data does not cover {image}: {'; '.join(problems)}",
                    image,
                    hint="use current data for every ecosystem (scan.db_repositories, --vulndb), or knowingly set "
                    "scan.accept_limited_coverage = true",
                    extra=(("image", image), ("kind", "coverage"), ("scan_severity", "CRITICAL")),
                )
            )
        return out


COVERAGE_RULE = "PL-V001"

# Trivy's package types -> the ecosystem its database serves them from (bucket "pip::...", "npm::...").
_LANG_ECOSYSTEMS = {
    "python-pkg": "pip",
    "pip": "pip",
    "pipenv": "pip",
    "poetry": "pip",
    "uv": "pip",
    "conda-pkg": "conda",
    "node-pkg": "npm",
    "npm": "npm",
    "yarn": "npm",
    "pnpm": "npm",
    "bun": "npm",
    "gobinary": "go",
    "gomod": "go",
    "jar": "maven",
    "pom": "maven",
    "gradle": "maven",
    "sbt": "maven",
    "cargo": "cargo",
    "rustbinary": "cargo",
    "gemspec": "rubygems",
    "bundler": "rubygems",
    "composer": "composer",
    "composer-vendor": "composer",
    "nuget": "nuget",
    "dotnet-core": "nuget",
    "packages-props": "nuget",
    "hex": "erlang",
    "pub": "pub",
    "swift": "swift",
    "cocoapods": "cocoapods",
}


def image_ecosystems(data: Any) -> tuple[str, ...]:
    """The ecosystems of the packages in one Trivy image report, named as Trivy's DB buckets name them."""
    found: set[str] = set()
    if not isinstance(data, dict):
        return ()
    os_meta = (data.get("Metadata") or {}).get("OS") or {}
    for r in data.get("Results") or []:
        if not r.get("Packages"):
            continue
        kind = str(r.get("Type", ""))
        if r.get("Class") == "os-pkgs":
            family = str(os_meta.get("Family") or kind)
            version = str(os_meta.get("Name") or "")
            # Trivy's buckets: Debian per major release ("debian 12" for 12.15), Alpine per minor.
            parts = version.split(".")
            release = parts[0] if family == "debian" else ".".join(parts[:2]) if family == "alpine" else version
            found.add(f"{family} {release}".strip())
        else:
            found.add(_LANG_ECOSYSTEMS.get(kind, kind))
    return tuple(sorted(found))


def assess_coverage(
    db: DbChoice, per_image: Mapping[str, tuple[str, ...]], settings: ScanSettings, now: dt.datetime
) -> Coverage | None:
    if db.info is None:
        return None
    # What the source declares, not what it happens to hold: one stray advisory is no coverage.
    have = set(db.info.covers)
    age = max(0, (now - db.info.data_date).days)
    return Coverage(
        age_days=age,
        max_age_days=settings.max_data_age_days,
        image_ecosystems=dict(per_image),
        missing={image: tuple(e for e in ecos if e not in have) for image, ecos in per_image.items()},
        accepted=settings.accept_limited_coverage,
        empty=db.info.advisories == 0,
        declared=tuple(db.info.covers),
    )


def coverage_record(db: DbChoice, coverage: Coverage | None) -> CoverageRecord:
    """What travels with the verdict (its record, the reports, the signed attestation): the data and its reach."""
    from ..verdicts import Coverage as Record

    if db.info is None or coverage is None:
        return Record(
            source=db.source,
            date="",
            ecosystems=(),
            limited=True,
            reason="no vulnerability database: vulnerabilities were not checked",
            fallback=db.fallback,
        )
    return Record(
        source=f"{db.source}: {db.info.source}",
        date=f"{db.info.data_date:%Y-%m-%d}",
        ecosystems=tuple(db.info.covers),
        limited=coverage.limited,
        reason="; ".join(coverage.reasons()),
        fallback=db.fallback,
    )
