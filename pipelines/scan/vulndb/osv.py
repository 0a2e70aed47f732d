"""OSV advisories (https://ossf.github.io/osv-schema/) as :class:`Advisory` records.

Each record is validated against the schema (:mod:`.osv_schema`); a bad one is
a :class:`ConfigError` naming its file and key path. What is valid OSV but
cannot go into the database is skipped with a note saying why.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from ...dbseverity import DEFAULT_SEVERITY
from ...errors import ConfigError
from .layout import bucket_of
from .pipnames import pip_name
from .ranges import check_versions, debian_fix, ecosystem_ranges, pip_constraints
from .reading import osv_files, read_record_file
from .records import Advisory
from .severity import record_severity, vector_severity

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .osv_schema import OsvRecord


def load_osv(
    directory: Path, *, notes: list[str] | None = None, default_severity: Mapping[str, str] | None = None
) -> list[Advisory]:
    """Every advisory in the OSV files (JSON or YAML) under ``directory``, in file order.

    A malformed file is a :class:`ConfigError` naming the file and the key
    path. What is valid OSV but cannot go into the database (an ecosystem
    Trivy's detectors here do not use, a withdrawn advisory, a range without
    versions) is skipped, with one line appended to ``notes`` when given. A
    directory without a single OSV file is an error: nothing is never a
    database.
    """
    if not directory.is_dir():
        raise ConfigError(str(directory), "", "is not a directory of OSV advisories")
    files = osv_files(directory)
    if not files:
        others = sorted({p.suffix or p.name for p in directory.rglob("*") if p.is_file()})[:8]
        raise ConfigError(
            str(directory),
            "",
            "no advisories: holds no OSV files (*.json, *.yaml, *.yml)",
            hint=f"found only: {', '.join(others)}" if others else "the directory is empty",
        )
    sink: list[str] = notes if notes is not None else []
    advisories: list[Advisory] = []
    for file in files:
        advisories.extend(parse_osv(read_record_file(file), str(file), sink, default_severity=default_severity))
    return advisories


def parse_osv(
    data: object, file: str, notes: list[str], *, default_severity: Mapping[str, str] | None = None
) -> list[Advisory]:
    """The advisories of one OSV record (one per affected entry Trivy can match)."""
    if not isinstance(data, dict):
        raise ConfigError(file, "", f"expected an object (an OSV record), got {_json_type(data)}")
    # Imported here: the record models (pydantic) are for building a database, not for reading one.
    from pydantic import ValidationError

    from .osv_schema import OsvRecord

    try:
        record = OsvRecord.model_validate(data)
    except ValidationError as exc:
        raise _model_error(file, exc) from None
    except RecursionError:
        raise ConfigError(file, "", "is nested too deeply to be an OSV record") from None
    if record.withdrawn is not None:
        notes.append(f"{file}: {record.id} is withdrawn ({record.withdrawn:%Y-%m-%d}); skipped")
        return []
    defaults = {**DEFAULT_SEVERITY, **(default_severity or {})}
    url = _reference(record)
    rated = record_severity(record, file)
    out: list[Advisory] = []
    for i, entry in enumerate(record.affected):
        where = f"affected[{i}]"
        if entry.package is None:
            notes.append(f"{file}: {where}: no package (commit ranges only); skipped")
            continue
        ecosystem, name = entry.package.ecosystem, entry.package.name
        bucket = bucket_of(ecosystem)
        if bucket is None:
            notes.append(f"{file}: {where}: ecosystem {ecosystem!r} is not supported; skipped")
            continue
        # The per-package severity list (OSV 1.5+) only fills in what the record leaves open.
        severity = rated
        if severity == "UNKNOWN":
            severity = vector_severity(entry.severity, file, f"{where}.severity")
        defaulted = severity == "UNKNOWN"
        if defaulted:
            severity = defaults["PyPI" if bucket == "pip" else "Debian"]
        ranges = ecosystem_ranges(entry, file, where, notes)
        skip, versions = check_versions(file, where, bucket, name, ranges, entry.versions)
        if skip:
            notes.append(f"{file}: {where}: {skip}; skipped")
            continue
        if len(versions) != len(entry.versions):
            dropped = sorted(set(entry.versions) - set(versions))
            notes.append(
                f"{file}: {where}: versions Trivy cannot compare left out: {', '.join(map(repr, dropped[:5]))}"
            )
        if not ranges and not versions:
            notes.append(f"{file}: {where}: no ECOSYSTEM range and no versions for {name}; skipped")
            continue
        base = Advisory(
            id=_trivy_id(record.id),
            aliases=tuple(record.aliases),
            summary=record.summary,
            severity=severity,
            ecosystem=bucket,
            package=name,
            url=url,
            description=record.details,
            modified=record.modified.astimezone(UTC),
            severity_defaulted=defaulted,
            files=(file,),
        )
        if bucket == "pip":
            vulnerable, patched = pip_constraints(ranges, tuple(versions))
            out.append(replace(base, package=pip_name(name), vulnerable_versions=vulnerable, patched_versions=patched))
        else:
            out.append(replace(base, fixed_version=debian_fix(file, where, ranges, notes)))
    return out


def iter_notes(notes: list[str], limit: int = 20) -> Iterator[str]:
    """At most ``limit`` notes, then how many more there were."""
    yield from notes[:limit]
    if len(notes) > limit:
        yield f"... and {len(notes) - limit} more"


def _model_error(file: str, exc: ValidationError) -> ConfigError:
    """The first problem of a record, as file + key path (``affected[0].package.name``)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = ""
    for part in first["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    if first["type"] == "missing":
        problem = "is required but missing"
    elif first["type"] == "extra_forbidden":
        problem = "is not an OSV field (the schema allows no others here)"
    else:
        problem = first["msg"].replace("Value error, ", "")
        if first["type"] in ("string_type", "list_type", "dict_type", "model_type"):
            problem += f", got {_json_type(first.get('input'))}"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return ConfigError(
        file, key, problem + more, hint="fix or remove the record; see https://ossf.github.io/osv-schema/"
    )


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _trivy_id(osv_id: str) -> str:
    # osv.dev publishes Debian's tracker entries as DEBIAN-CVE-...; Trivy, waivers
    # and humans know them by the CVE.
    if osv_id.startswith("DEBIAN-CVE-"):
        return osv_id.removeprefix("DEBIAN-")
    return osv_id


def _reference(record: OsvRecord) -> str:
    urls: dict[str, str] = {}
    for ref in record.references:
        urls.setdefault(ref.type.upper(), ref.url)
        urls.setdefault("", ref.url)
    return urls.get("ADVISORY") or urls.get("WEB") or urls.get("", "")
