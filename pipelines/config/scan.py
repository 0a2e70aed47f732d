"""The [scan] section: the gate, where vulnerability data comes from, and how its coverage is judged."""

from __future__ import annotations

import re
from pathlib import Path

from . import paths
from .model import DAY, DB_SOURCES, OS_UPDATE_MODES, SCAN_LEVELS, SCANNERS, ScanSettings
from .table import Table


def scan(t: Table, root: Path) -> ScanSettings:
    vdb = t.opt_string("vulndb")
    scanners = t.strings("scanners") or ("vuln", "secret", "misconfig")
    sources = t.strings("db_sources") or DB_SOURCES
    for key, values, allowed in (("scanners", scanners, SCANNERS), ("db_sources", sources, DB_SOURCES)):
        for v in values:
            if v not in allowed:
                raise t.error(key, f"{v!r} is not one of {', '.join(allowed)}")
    out = ScanSettings(
        severity=t.choice("severity", SCAN_LEVELS, "HIGH"),
        ignore_unfixed=t.boolean("ignore_unfixed", False),
        scanners=scanners,
        vulndb=(root / vdb) if vdb else None,
        db_sources=sources,
        db_max_age_hours=t.integer("db_max_age_hours", 72, minimum=1, maximum=24 * 365),
        db_repositories=t.strings("db_repositories"),
        allow_no_vulndb=t.boolean("allow_no_vulndb", False),
        timeout=t.integer("timeout", 600, minimum=10, maximum=DAY),
        download_timeout=t.integer("download_timeout", 120, minimum=5, maximum=3600),
        cache_dir=root / t.string("cache_dir", ".pipelines/vulndb"),
        os_updates=t.choice("os_updates", OS_UPDATE_MODES, "fail"),
        max_data_age_days=t.integer("max_data_age_days", 30, minimum=1),
        accept_limited_coverage=t.boolean("accept_limited_coverage", False),
        default_severity=_default_severity(t),
        offline_advisories=paths.offline_advisories(t, root),
        offline_provenance=_offline_provenance(t),
    )
    t.done()
    return out


def _default_severity(t: Table) -> dict[str, str]:
    from ..dbseverity import check_default_severity  # not the scan stage: every stage reads the config

    return check_default_severity(t.string_map("default_severity"), where=f"{t.file}: {t.key('default_severity')}")


# covers: the OSV ecosystems the data declares in full, comma-separated ("PyPI"); nothing else counts as covered.
OFFLINE_PROVENANCE_KEYS = ("name", "repository", "commit", "date", "license", "covers")


def _offline_provenance(t: Table) -> dict[str, str]:
    given = t.string_map("offline_provenance")
    for k, v in given.items():
        if k not in OFFLINE_PROVENANCE_KEYS:
            raise t.error("offline_provenance", f"{k!r} is not one of {', '.join(OFFLINE_PROVENANCE_KEYS)}")
        if k == "commit" and not re.fullmatch(r"[0-9a-f]{7,40}", v):
            raise t.error("offline_provenance", f"commit {v!r} is not a git commit id")
        if k == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            raise t.error("offline_provenance", f"date {v!r} is not YYYY-MM-DD")
        bad = [e for e in (x.strip() for x in v.split(",")) if not re.fullmatch(r"PyPI|Debian:\d+", e)]
        if k == "covers" and bad:
            raise t.error(
                "offline_provenance",
                f"covers {bad[0]!r} is not an ecosystem the offline database can hold",
                hint='name PyPI or Debian:N as OSV spells them, comma-separated (covers = "PyPI, Debian:12")',
            )
    return given
