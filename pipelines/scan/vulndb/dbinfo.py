"""What a built database holds, read back from the file itself: :func:`read_info`.

A scan asks this before it trusts a database; a missing or damaged one is a
:class:`VulnDbError`, since a scan against a broken database must never pass
as clean.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .boltdb import bucket_keys, nested_key_counts, read_key
from .layout import (
    DATA_SOURCE_BUCKET,
    INFO_BUCKET,
    INFO_KEY,
    NOT_ADVISORIES,
    SCHEMA_VERSION,
    ecosystem_of_bucket,
    is_advisory_bucket,
)
from .records import DbInfo, VulnDbError


def read_info(cache_dir: Path) -> DbInfo:
    """What the database under ``cache_dir`` holds; :class:`VulnDbError` if it is missing or damaged.

    The advisory counts come from reading the whole BoltDB file back, so a
    truncated or corrupted file is caught here, before a scan trusts it.
    """
    db_dir = cache_dir / "db"
    meta_path, path = db_dir / "metadata.json", db_dir / "trivy.db"
    hint = "rebuild it: `pipelines vulndb build --from OSV_DIR --out DIR`"
    if not meta_path.is_file():
        raise VulnDbError(f"no vulnerability database metadata at {meta_path}", hint=hint)
    if not path.is_file():
        raise VulnDbError(f"no vulnerability database at {path}", hint=hint)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        version = meta.get("Version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema Version {version!r}, expected {SCHEMA_VERSION}")
        updated_at = _parse_time(meta.get("UpdatedAt"), "UpdatedAt")
        next_update = _parse_time(meta.get("NextUpdate"), "NextUpdate")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VulnDbError(f"{meta_path} is not valid Trivy DB metadata", seen=str(exc), hint=hint) from None
    try:
        data = path.read_bytes()
        counts = nested_key_counts(data, lambda name: name.decode(errors="replace") not in NOT_ADVISORIES)
        raw_info = read_key(data, INFO_BUCKET.encode(), INFO_KEY.encode())
        ours = _info_record(raw_info) if raw_info is not None else {}
        sources = bucket_keys(data, DATA_SOURCE_BUCKET.encode()) or []
    except (OSError, ValueError) as exc:
        raise VulnDbError(f"{path} is not a readable vulnerability database", seen=str(exc), hint=hint) from None
    ecosystems: dict[str, int] = {}
    for bucket, n in counts.items():
        eco = ecosystem_of_bucket(bucket.decode(errors="replace"))
        ecosystems[eco] = ecosystems.get(eco, 0) + n
    keys = sum(n for b, n in counts.items() if is_advisory_bucket(b))
    count = sum(ecosystems.values())  # a foreign DB (Trivy's own): every advisory bucket it has
    if ours:
        # Ours: pip advisories are filed under several spellings; the record says how many keys that made.
        recorded_keys, distinct, given = ours.get("Keys"), ours.get("Advisories"), ours.get("Ecosystems")
        if not isinstance(distinct, int) or not isinstance(given, dict) or recorded_keys != keys:
            raise VulnDbError(
                f"{path} does not match its metadata",
                seen=f"{keys} records, {INFO_BUCKET} says {recorded_keys}",
                hint=hint,
            )
        ecosystems, count = {str(k): int(v) for k, v in given.items()}, distinct
    recorded = meta.get("Advisories")
    if isinstance(recorded, int) and recorded != count:
        raise VulnDbError(
            f"{path} does not match its metadata", seen=f"{count} advisories, metadata.json says {recorded}", hint=hint
        )
    newest_text = ours.get("NewestAdvisory")
    try:
        newest = _parse_time(newest_text, "NewestAdvisory") if newest_text is not None else None
    except ValueError as exc:
        raise VulnDbError(f"{path} has damaged provenance", seen=str(exc), hint=hint) from None
    source = ours.get("Source", meta.get("Source", ""))
    defaulted = ours.get("DefaultedSeverity") or {}
    if ours:
        # Ours say what they were declared to cover; one that declares nothing covers nothing.
        declared = ours.get("Covers", [])
        if not isinstance(declared, list) or not all(isinstance(e, str) for e in declared):
            raise VulnDbError(f"{path} has damaged provenance", seen=f"Covers: {declared!r}", hint=hint)
        covers = tuple(sorted(set(declared)))
    else:
        # Trivy's own: every bucket it fills has its data source recorded in the data-source bucket.
        covers = tuple(sorted({ecosystem_of_bucket(k.decode(errors="replace")) for k in sources}))
    return DbInfo(
        path,
        SCHEMA_VERSION,
        updated_at,
        next_update,
        count,
        str(source),
        dict(sorted(ecosystems.items())),
        newest,
        {str(k): int(v) for k, v in defaulted.items()} if isinstance(defaulted, dict) else {},
        covers,
    )


def count_advisories(data: bytes) -> int:
    """Advisory records (package x vulnerability) in the pip and Debian buckets; ValueError if damaged."""
    return sum(nested_key_counts(data, is_advisory_bucket).values())


def _info_record(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"the {INFO_BUCKET} record is not a JSON object")
    return value


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{key} is missing or not a string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{key} {value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{key} {value!r} has no time zone")
    return when.astimezone(UTC)
