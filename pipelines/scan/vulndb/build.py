"""Writing the Trivy database: ``trivy.db`` in the layout Trivy's Debian and pip detectors read, and metadata.json.

What the data is (source, advisories per ecosystem, the newest advisory's
date, what it covers) is stored inside the database file too, so it survives
a trip through a registry (Trivy rewrites metadata.json when it downloads a
database).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ... import inputs
from ...dbseverity import SEVERITIES
from .boltdb import Tree, bolt_file
from .layout import (
    DATA_SOURCE_BUCKET,
    INFO_BUCKET,
    INFO_KEY,
    PIP_BUCKET,
    SCHEMA_VERSION,
    VULNERABILITY_BUCKET,
    bucket_name,
    covers_buckets,
    is_advisory_bucket,
    source_of,
)
from .merge import merge
from .pipnames import pip_spellings
from .records import Advisory, DbInfo

# Scans pass --skip-db-update anyway; a NextUpdate this far out also keeps a
# run that forgets the flag from trying to swap the site's own advisories for
# a download.
NEXT_UPDATE_AFTER = timedelta(days=3653)


def build_db(
    advisories: Iterable[Advisory],
    out: Path,
    *,
    source: str,
    updated_at: datetime | None = None,
    notes: list[str] | None = None,
    covers: Iterable[str] = (),
    data_as_of: datetime | None = None,
) -> DbInfo:
    """Write ``out/db/trivy.db`` and ``out/db/metadata.json`` for ``advisories`` (merged first).

    ``source`` says where the advisories came from (a path, URL, or a
    provenance line); it is kept in the database and reported by every scan.
    ``covers`` names the ecosystems the source declares in full (OSV names:
    ``PyPI``, ``Debian:12``); scans count only those as covered.
    ``data_as_of`` is when the data was taken (a snapshot's commit date): a record claiming to be modified
    later is misdated, and is not allowed to make the data look newer than it is (nor is a date after the build).
    """
    declared = covers_buckets(covers, where="--covers")
    when = (updated_at or datetime.now(UTC)).replace(microsecond=0)
    if when.tzinfo is None:
        raise ValueError("updated_at must be timezone-aware")
    when = when.astimezone(UTC)
    entries = merge(advisories, notes)
    ecosystems: dict[str, int] = {}
    defaulted: dict[str, int] = {}
    for (eco, _, _), adv in entries.items():
        ecosystems[eco] = ecosystems.get(eco, 0) + 1
        if adv.severity_defaulted:
            defaulted[eco] = defaulted.get(eco, 0) + 1
    limit = min(when, data_as_of) if data_as_of is not None else when
    dates = []
    for a in entries.values():
        if a.modified is None:
            continue
        if a.modified > limit:
            if notes is not None:
                notes.append(
                    f"warning: {a.id} ({', '.join(a.files) or a.package}): modified {a.modified:%Y-%m-%d} is after "
                    f"the data's own date {limit:%Y-%m-%d}; not counted as how new the data is"
                )
            continue
        dates.append(a.modified)
    newest = max(dates).replace(microsecond=0) if dates else None
    info_record: dict[str, Any] = {
        "Source": source,
        "Advisories": len(entries),
        "Ecosystems": dict(sorted(ecosystems.items())),
        "NewestAdvisory": rfc3339(newest) if newest else None,
        "DefaultedSeverity": dict(sorted(defaulted.items())),
        "Covers": list(declared),
    }
    tree = _db_tree(entries, source)
    info_record["Keys"] = sum(
        len(recs)
        for name, pkgs in tree.items()
        if is_advisory_bucket(name) and isinstance(pkgs, dict)
        for recs in pkgs.values()
        if isinstance(recs, dict)
    )
    tree[INFO_BUCKET.encode()] = {INFO_KEY.encode(): _json_bytes(info_record)}
    db_dir = out / "db"
    inputs.make_dir(db_dir, "vulnerability database")
    path = db_dir / "trivy.db"
    atomic_write(path, bolt_file(tree))
    next_update = when + NEXT_UPDATE_AFTER
    metadata = {
        "Version": SCHEMA_VERSION,
        "NextUpdate": rfc3339(next_update),
        "UpdatedAt": rfc3339(when),
        "DownloadedAt": rfc3339(when),
        # Ours, not Trivy's (it ignores unknown keys, and drops them when it downloads a copy).
        "Source": source,
        "Advisories": len(entries),
    }
    # Metadata last: Trivy (and read_info) treat a database without it as absent.
    atomic_write(db_dir / "metadata.json", (json.dumps(metadata, indent=2) + "\n").encode())
    return DbInfo(
        path,
        SCHEMA_VERSION,
        when,
        next_update,
        len(entries),
        source,
        dict(ecosystems),
        newest,
        dict(defaulted),
        declared,
    )


def _db_tree(entries: Mapping[tuple[str, str, str], Advisory], source: str) -> Tree:
    buckets: dict[str, dict[str, dict[str, object]]] = {}
    vulns: dict[str, dict[str, object]] = {}
    for (ecosystem, package, vuln_id), adv in sorted(entries.items()):
        record: dict[str, object]
        if ecosystem == "pip":
            record = {"VulnerableVersions": list(adv.vulnerable_versions)}
            if adv.patched_versions:
                record["PatchedVersions"] = list(adv.patched_versions)
        else:
            record = {"FixedVersion": adv.fixed_version} if adv.fixed_version else {}
        names = pip_spellings(adv.package) if ecosystem == "pip" else [package]
        for name in names:
            buckets.setdefault(bucket_name(ecosystem), {}).setdefault(name, {})[vuln_id] = record
        _merge_vulnerability(vulns.setdefault(vuln_id, {}), adv, source_of(ecosystem).id)

    tree: Tree = {}
    data_sources: Tree = {}
    for name, packages in buckets.items():
        src = source_of("pip" if name == PIP_BUCKET else name)
        url = source if source.startswith(("http://", "https://")) else ""
        data_sources[name.encode()] = _json_bytes({"ID": src.id, "Name": f"{src.name}: {source}", "URL": url})
        tree[name.encode()] = {
            pkg.encode(): {vid.encode(): _json_bytes(rec) for vid, rec in recs.items()}
            for pkg, recs in packages.items()
        }
    tree[DATA_SOURCE_BUCKET.encode()] = data_sources
    # Trivy panics on a database without this bucket, even when it has nothing to say.
    tree[VULNERABILITY_BUCKET.encode()] = {vid.encode(): _json_bytes(v) for vid, v in vulns.items()}
    return tree


def _merge_vulnerability(vuln: dict[str, Any], adv: Advisory, source_id: str) -> None:
    """Fold one advisory into the shared per-ID record Trivy reads titles and severities from."""
    if adv.summary and not vuln.get("Title"):
        vuln["Title"] = adv.summary
    if adv.description and not vuln.get("Description"):
        vuln["Description"] = adv.description
    if adv.severity != "UNKNOWN":
        rank = SEVERITIES.index(adv.severity)
        vendor: dict[str, int] = vuln.setdefault("VendorSeverity", {})
        vendor[source_id] = max(rank, vendor.get(source_id, 0))
        current = vuln.get("Severity")
        if not isinstance(current, str) or SEVERITIES.index(current) < rank:
            vuln["Severity"] = adv.severity
    refs: list[str] = vuln.setdefault("References", [])
    if adv.url and adv.url not in refs:
        refs.append(adv.url)
    if not refs:
        del vuln["References"]


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared database from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
