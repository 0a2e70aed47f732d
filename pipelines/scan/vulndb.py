"""An offline Trivy vulnerability database, built from OSV advisories.

Trivy looks vulnerabilities up in a BoltDB file (``CACHE/db/trivy.db``) that
it normally downloads from a container registry. This machine cannot reach
that registry, and air-gapped sites want to scan against their own advisories
anyway. So the pipeline builds the database itself:

1. :func:`load_osv` reads advisories in the OSV format
   (https://ossf.github.io/osv-schema/), as JSON or YAML files, validated
   record by record (a bad record is an error naming its file and key), and
   keeps the ecosystems Trivy can match against what the pipeline ships:
   Debian releases (matched by SOURCE package) and PyPI.
2. :func:`merge` folds what real feeds split: GitHub's advisories give every
   release series its own ``affected`` entry, and one ID may come from
   several files. Nothing is dropped.
3. :func:`build_db` writes them in the layout Trivy's Debian and pip
   detectors read, through the BoltDB writer in :mod:`pipelines.bolt`, plus the
   ``metadata.json`` Trivy checks before it opens the file. What the data is
   (source, advisories per ecosystem, the newest advisory's date) is stored
   inside the database file too, so it survives a trip through a registry
   (Trivy rewrites metadata.json when it downloads a database).
4. Scans then run ``trivy --cache-dir CACHE --skip-db-update ...``, and
   :func:`read_info` tells the scan stage what it is scanning against (and
   fails loudly when the database is missing or damaged: a scan against a
   broken database must never pass as clean).

The scan's offline source is a directory of OSV files the project configures
(``scan.offline_advisories``, e.g. a snapshot of the PyPA advisory database),
read by :func:`load_advisory_dir` with its provenance (:func:`read_provenance`).
:func:`write_bundle` and :func:`load_bundle` pack such a directory into one file
for moving it around; nothing is shipped inside the package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml
from cvss import CVSS2, CVSS3, CVSS4, CVSSError

from .. import inputs

# The `as` imports re-export what lived here before pipelines.dbseverity and pipelines.bolt existed.
from ..dbseverity import DEFAULT_SEVERITY as DEFAULT_SEVERITY
from ..dbseverity import SEVERITIES as SEVERITIES
from ..dbseverity import check_default_severity as check_default_severity
from ..debversion import debian_version_cmp as debian_version_cmp
from ..debversion import is_debian_version
from ..errors import EXIT_UNUSABLE, ConfigError, PipelineError
from .bolt import PAGE_SIZE as PAGE_SIZE
from .bolt import BoltReader as BoltReader
from .bolt import Tree, bucket_keys, nested_key_counts, read_key
from .bolt import bolt_file as bolt_file
from .bolt import fnv1a_64 as fnv1a_64

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .osv import OsvAffected, OsvRecord, OsvSeverity

SCHEMA_VERSION = 2  # the trivy-db schema Trivy's --skip-db-update insists on

# Scans pass --skip-db-update anyway; a NextUpdate this far out also keeps a
# run that forgets the flag from trying to swap the site's own advisories for
# a download.
NEXT_UPDATE_AFTER = timedelta(days=3653)

PIP_BUCKET = "pip::OSV advisories"
# Buckets holding metadata rather than advisories.
DATA_SOURCE_BUCKET = "data-source"
VULNERABILITY_BUCKET = "vulnerability"
# Ours: Trivy reads buckets by name and never looks at this one.
INFO_BUCKET = "x-pipelines"
INFO_KEY = "info"
_NOT_ADVISORIES = {DATA_SOURCE_BUCKET, VULNERABILITY_BUCKET, INFO_BUCKET, "vulnerability-id"}

_DEBIAN_ECOSYSTEM = re.compile(r"^Debian:(\d+)(?:\.\d+)*$")
_DEBIAN_BUCKET = re.compile(r"^debian \d+$")

# Limits on what one advisory file may be: real records are a few KiB, the
# largest in the PyPA database under 100 KiB.
MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
OSV_SUFFIXES = (".json", ".yaml", ".yml")
BUNDLE_FORMAT = "pipelines-osv-bundle/1"


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


# --------------------------------------------------------------------------
# Severity


def severity_of_score(score: float) -> str:
    """The qualitative rating of a CVSS v3/v4 score; a score of 0 (None) is UNKNOWN to Trivy."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score >= 0.1:
        return "LOW"
    return "UNKNOWN"


def _v2_severity(score: float) -> str:
    # CVSS v2 has no CRITICAL band (NVD's v2 ratings).
    return "HIGH" if score >= 7.0 else "MEDIUM" if score >= 4.0 else "LOW" if score > 0 else "UNKNOWN"


def cvss_severity(kind: str, vector: str) -> str:
    """The rating of a CVSS_V2/V3/V4 vector (scored by the `cvss` library); ValueError if malformed."""
    try:
        if kind == "CVSS_V3":
            if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
                raise ValueError("expected a vector starting with CVSS:3.0/ or CVSS:3.1/")
            return severity_of_score(float(CVSS3(vector).base_score))
        if kind == "CVSS_V4":
            if not vector.startswith("CVSS:4.0/"):
                raise ValueError("expected a vector starting with CVSS:4.0/")
            return severity_of_score(float(CVSS4(vector).base_score))
        if kind == "CVSS_V2":
            return _v2_severity(float(CVSS2(vector).base_score))
    except CVSSError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError(f"severity type {kind!r} is not a CVSS vector type")


# GHSA's words, and Trivy's own.
_SEVERITY_WORDS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "MODERATE": "MEDIUM",
    "MEDIUM": "MEDIUM",
    "LOW": "LOW",
}


def parse_default_severity(pairs: Iterable[str], *, where: str) -> dict[str, str]:
    """``ECOSYSTEM=LEVEL`` pairs (e.g. ``Debian=MEDIUM``) over the built-in defaults."""
    out = dict(DEFAULT_SEVERITY)
    for pair in pairs:
        eco, sep, level = pair.partition("=")
        out.update(check_default_severity({eco.strip(): level.strip()} if sep else {pair: ""}, where=where))
    return out


# --------------------------------------------------------------------------
# OSV records (their models: pipelines.scan.osv)


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


# --------------------------------------------------------------------------
# Reading files


class _OsvYamlLoader(yaml.SafeLoader):
    """YAML as OSV means it: every plain scalar is a string (a version "1.10" must not become 1.1,
    a date stays text for the schema to check), null stays null, and no aliases (a few lines of
    aliases can expand into gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


_OsvYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _OsvCLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """The same reading through libyaml: a snapshot of thousands of records parses in seconds, not a minute."""


_OsvCLoader.yaml_implicit_resolvers = _OsvYamlLoader.yaml_implicit_resolvers


# Deeper than any OSV record nests (about 6): libyaml composes recursively in C, where too deep is a crash.
MAX_YAML_DEPTH = 64


def _load_yaml(text: str) -> object:
    if not yaml.__with_libyaml__:
        return yaml.load(text, Loader=_OsvYamlLoader)  # noqa: S506 - a SafeLoader subclass
    # One pass over libyaml's events first (iterative, no recursion): aliases and deep nesting are refused
    # before anything is composed.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark  # libyaml's Mark has the fields the error message reads
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed", mark)  # type: ignore[arg-type]
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise RecursionError
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=_OsvCLoader)  # noqa: S506 - a SafeLoader subclass


def read_record_file(file: Path) -> object:
    """The data of one OSV file (JSON or YAML); ConfigError naming the file when it cannot be read."""
    name = str(file)
    # The guarded reader: a FIFO, device or oversized file is one error, never a hang.
    text = inputs.read_text(file, name, limit=MAX_RECORD_BYTES)
    return parse_text(text, name, yaml_=file.suffix in (".yaml", ".yml"))


def parse_text(text: str, name: str, *, yaml_: bool) -> object:
    try:
        if yaml_:
            return _load_yaml(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, "", f"is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(name, "", "is nested too deeply to be an OSV record") from None


def osv_files(directory: Path) -> list[Path]:
    """Every OSV file (``*.json``, ``*.yaml``, ``*.yml``) under ``directory``, in a stable order.

    A FIFO or device named like one is kept: reading it is an error naming it, never a silent skip.
    """
    return sorted(p for p in directory.rglob("*") if p.suffix in OSV_SUFFIXES and not p.is_dir())


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

    from .osv import OsvRecord

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
    record_severity = _record_severity(record, file)
    out: list[Advisory] = []
    for i, entry in enumerate(record.affected):
        where = f"affected[{i}]"
        if entry.package is None:
            notes.append(f"{file}: {where}: no package (commit ranges only); skipped")
            continue
        ecosystem, name = entry.package.ecosystem, entry.package.name
        bucket = _bucket_of(ecosystem)
        if bucket is None:
            notes.append(f"{file}: {where}: ecosystem {ecosystem!r} is not supported; skipped")
            continue
        # The per-package severity list (OSV 1.5+) only fills in what the record leaves open.
        severity = record_severity
        if severity == "UNKNOWN":
            severity = _vector_severity(entry.severity, file, f"{where}.severity")
        defaulted = severity == "UNKNOWN"
        if defaulted:
            severity = defaults["PyPI" if bucket == "pip" else "Debian"]
        ranges = _ecosystem_ranges(entry, file, where, notes)
        skip, versions = _check_versions(file, where, bucket, name, ranges, entry.versions)
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
            vulnerable, patched = _pip_constraints(ranges, tuple(versions))
            out.append(replace(base, package=pip_name(name), vulnerable_versions=vulnerable, patched_versions=patched))
        else:
            out.append(replace(base, fixed_version=_debian_fix(file, where, ranges, notes)))
    return out


# PEP 440 (public and local versions) and PEP 508 names, as pip reads them.
_PEP440 = re.compile(
    r"^v?(?:\d+!)?\d+(?:\.\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
    re.IGNORECASE,
)
_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def _check_versions(
    file: str, where: str, bucket: str, name: str, ranges: list[_Range], versions: Sequence[str]
) -> tuple[str, list[str]]:
    """Why the entry must be skipped (or ""), and the listed versions Trivy can compare.

    Real PyPI feeds hold versions PEP 440 cannot read (the PyPA database has
    ``0.2.0-n653`` as a range bound, even timestamps, and odd strings in version
    lists). Trivy could not compare them either: a range bound like that skips its
    entry, a listed version like that is left out, each with a note naming it; the
    rest of the record and of the feed still count. A Debian version that is none
    is an error.
    """
    if bucket == "pip" and not _PEP508_NAME.match(name):
        raise ConfigError(file, f"{where}.package.name", f"{name!r} is not a PyPI package name")
    bounds = [v for events in ranges for kind, v in events if not (kind == "introduced" and v == "0")]
    if bucket == "pip":
        bad = [v for v in bounds if not _PEP440.match(v)]
        if bad:
            return f"{bad[0]!r} is not a PEP 440 version Trivy can compare (package {name})", []
        return "", [v for v in versions if _PEP440.match(v)]
    for version in [*bounds, *versions]:
        if not is_debian_version(version):
            raise ConfigError(file, f"{where}.ranges", f"{version!r} is not a Debian version (package {name})")
    return "", list(versions)


def _bucket_of(ecosystem: str) -> str | None:
    if ecosystem == "PyPI":
        return "pip"
    m = _DEBIAN_ECOSYSTEM.match(ecosystem)
    return f"debian {m.group(1)}" if m else None


def _trivy_id(osv_id: str) -> str:
    # osv.dev publishes Debian's tracker entries as DEBIAN-CVE-...; Trivy, waivers
    # and humans know them by the CVE.
    if osv_id.startswith("DEBIAN-CVE-"):
        return osv_id.removeprefix("DEBIAN-")
    return osv_id


def pip_name(name: str) -> str:
    """A PyPI name as Trivy looks it up: lowercase, "_" as "-", dots KEPT (zope.interface)."""
    return name.lower().replace("_", "-")


# The name this module used before; PEP 503 would also fold dots, which Trivy does not.
normalise_pip = pip_name

_MAX_SPELLINGS_SEPARATORS = 6


def pip_canonical(name: str) -> str:
    """PEP 503's name: the one project behind every spelling ("Zope.Interface", "zope_interface")."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_spellings(name: str) -> list[str]:
    """Every key Trivy may look this project up under, the given spelling first.

    Trivy keeps dots and folds only "_" and case, so "zope.interface" and
    "zope-interface" are different keys to it, while PyPI treats them as one
    project. Feeds differ in which they write (GitHub keeps the dots, the PyPA
    database folds them), so each advisory is filed under every dot/dash
    spelling of its name (for up to six separators; beyond that, the
    all-dots and all-dashes spellings).
    """
    given = pip_name(name)
    parts = re.split(r"[-.]+", pip_canonical(name))
    seps = len(parts) - 1
    out = [given]
    if 0 < seps <= _MAX_SPELLINGS_SEPARATORS:
        for mask in range(1 << seps):
            spelled = parts[0] + "".join(("." if mask >> i & 1 else "-") + p for i, p in enumerate(parts[1:]))
            out.append(spelled)
    elif seps:
        out += ["-".join(parts), ".".join(parts)]
    return list(dict.fromkeys(out))


def _reference(record: OsvRecord) -> str:
    urls: dict[str, str] = {}
    for ref in record.references:
        urls.setdefault(ref.type.upper(), ref.url)
        urls.setdefault("", ref.url)
    return urls.get("ADVISORY") or urls.get("WEB") or urls.get("", "")


def _record_severity(record: OsvRecord, file: str) -> str:
    specific = record.database_specific or {}
    word = specific.get("severity")
    if isinstance(word, str) and word.strip().upper() in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[word.strip().upper()]
    return _vector_severity(record.severity, file, "severity")


def _vector_severity(entries: list[OsvSeverity], file: str, where: str) -> str:
    """The highest rating among the CVSS vectors given (v3 and v4 alike; v2 only when alone)."""
    found: list[str] = []
    v2: list[str] = []
    for i, entry in enumerate(entries):
        if entry.type not in ("CVSS_V2", "CVSS_V3", "CVSS_V4"):
            continue  # e.g. Ubuntu's own words: not a vector
        try:
            rating = cvss_severity(entry.type, entry.score.strip())
        except ValueError as exc:
            raise ConfigError(file, f"{where}[{i}].score", f"is not a {entry.type} vector: {exc}") from None
        (v2 if entry.type == "CVSS_V2" else found).append(rating)
    ratings = found or v2
    return max(ratings, key=SEVERITIES.index) if ratings else "UNKNOWN"


# One range: its events in order, as (kind, version).
_Range: TypeAlias = list[tuple[str, str]]


def _ecosystem_ranges(entry: OsvAffected, file: str, where: str, notes: list[str]) -> list[_Range]:
    # SEMVER and GIT ranges speak of upstream versions or commits, not of the
    # versions the package manager installed; limit only bounds GIT commit walks.
    ranges: list[_Range] = [
        [(e.kind, e.version) for e in rng.events if e.kind != "limit"]
        for rng in entry.ranges
        if rng.type == "ECOSYSTEM"
    ]
    if not ranges:
        for i, rng in enumerate(entry.ranges):
            notes.append(f"{file}: {where}.ranges[{i}]: {rng.type} range ignored (only ECOSYSTEM ranges are used)")
    return ranges


def _pip_constraints(ranges: list[_Range], versions: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Trivy's VulnerableVersions and PatchedVersions for a PyPI package.

    Patched versions are the bare fixed versions, as trivy-db stores them:
    Trivy shows them as the fixed version, and as a constraint a bare version
    matches only itself. A ">=fixed" constraint would also match the next
    vulnerable range (a 2.x series that broke again) and hide it.
    """
    vulnerable: list[str] = []
    patched: list[str] = []
    for events in ranges:
        lower: str | None = None
        open_ = False
        for kind, version in events:
            if kind == "introduced":
                lower, open_ = ("" if version == "0" else version), True
            elif kind == "fixed":
                vulnerable.append(_interval(lower, f"<{version}"))
                patched.append(version)
                open_ = False
            else:  # last_affected
                vulnerable.append(_interval(lower, f"<={version}"))
                open_ = False
        if open_:
            vulnerable.append(_interval(lower, None))
    if not ranges:
        # Only an explicit list: exactly those releases. (With ranges, the list
        # is osv.dev's expansion of them and adds nothing.)
        vulnerable = [f"=={v}" for v in versions]
    return tuple(dict.fromkeys(vulnerable)), tuple(dict.fromkeys(patched))


def _interval(lower: str | None, upper: str | None) -> str:
    parts = [f">={lower}"] if lower else []
    if upper:
        parts.append(upper)
    return ", ".join(parts) or ">=0"


def _debian_fix(file: str, where: str, ranges: list[_Range], notes: list[str]) -> str:
    """The one FixedVersion Trivy's Debian records hold; "" when unfixed.

    Debian's advisories say "introduced 0, fixed X" per release. Trivy cannot
    express a lower bound for Debian, so every version below the fix is
    reported (erring towards a finding, never away from one).
    """
    fixed = [v for events in ranges for kind, v in events if kind == "fixed"]
    if not ranges:
        notes.append(f"{file}: {where}: Debian entry lists versions only; treated as unfixed")
    if any(kind == "last_affected" for events in ranges for kind, _ in events):
        notes.append(f"{file}: {where}: last_affected cannot be expressed for Debian; treated as unfixed")
        return ""
    if any(kind == "introduced" for events in ranges for kind, _ in events[-1:]):
        # A range that stays open (introduced again after a fix, or never fixed): no fix covers it.
        if fixed:
            notes.append(f"{file}: {where}: a range has no fix; treated as unfixed")
        return ""
    if len(set(fixed)) > 1:
        # The highest: a package below it is reported, whichever fix it missed.
        highest = max(fixed, key=cmp_to_key(debian_version_cmp))
        notes.append(f"{file}: {where}: several fixed versions ({', '.join(fixed)}); using {highest}")
        return highest
    return fixed[0] if fixed else ""


# --------------------------------------------------------------------------
# Merging what feeds split


def merge(advisories: Iterable[Advisory], notes: list[str] | None = None) -> dict[tuple[str, str, str], Advisory]:
    """One advisory per (ecosystem, package, ID), folding every entry that shares the key.

    Feeds split one vulnerability over several entries (GitHub: one per release
    series; a record and its copy in another feed): the affected versions are
    united (pip constraints are alternatives to Trivy), the highest severity
    and the newest date win, and for Debian the fix that covers every entry
    (the highest, or none when any entry is unfixed).
    """
    sink: list[str] = notes if notes is not None else []
    out: dict[tuple[str, str, str], Advisory] = {}
    for adv in advisories:
        if adv.severity not in SEVERITIES:
            raise ValueError(f"{adv.id}: severity {adv.severity!r} is not one of {', '.join(SEVERITIES)}")
        # Anything else would land in a bucket no Trivy detector reads (and read_info does not count).
        if adv.ecosystem != "pip" and not _DEBIAN_BUCKET.match(adv.ecosystem):
            raise ValueError(f"{adv.id}: ecosystem {adv.ecosystem!r} is neither 'pip' nor 'debian N'")
        if not adv.id or not adv.package:
            raise ValueError(f"an advisory without an ID or package: {adv!r}")
        if adv.ecosystem != "pip" and adv.fixed_version and not is_debian_version(adv.fixed_version):
            raise ValueError(f"{adv.id}: fixed version {adv.fixed_version!r} is not a Debian version dpkg can read")
        # One project, however a feed spells it (PEP 503), for pip.
        package = pip_canonical(adv.package) if adv.ecosystem == "pip" else adv.package
        key = (adv.ecosystem, package, adv.id)
        seen = out.get(key)
        out[key] = adv if seen is None else _fold(seen, adv, sink)
    return out


def _conflict(a: Advisory, b: Advisory) -> str:
    """How two records of one ID from different files disagree on what is affected ("" when they agree)."""
    if not b.files or set(b.files) <= set(a.files):
        return ""  # entries of one file (one per release series) are parts, not rivals
    if a.ecosystem == "pip":
        if set(a.vulnerable_versions) == set(b.vulnerable_versions):
            return ""
        return (
            f"affected {' || '.join(a.vulnerable_versions)} (fixed {', '.join(a.patched_versions) or 'nowhere'}) vs "
            f"{' || '.join(b.vulnerable_versions)} (fixed {', '.join(b.patched_versions) or 'nowhere'})"
        )
    if a.fixed_version == b.fixed_version:
        return ""
    return f"fixed in {a.fixed_version or 'no release'} vs {b.fixed_version or 'no release'}"


def _fold(a: Advisory, b: Advisory, notes: list[str]) -> Advisory:
    conflict = _conflict(a, b)
    if conflict:
        # Never narrowed: the union of the ranges (pip) or the later fix (Debian) stands, and the clash is named.
        notes.append(
            f"warning: {a.id} in {a.package} ({a.ecosystem}): {', '.join(a.files)} and {', '.join(b.files)} "
            f"disagree: {conflict}; kept every version either calls affected"
        )
    fixed = a.fixed_version
    if a.ecosystem != "pip" and a.fixed_version != b.fixed_version:
        if not a.fixed_version or not b.fixed_version:
            fixed = ""
            notes.append(f"{a.id} in {a.package} ({a.ecosystem}): one entry has no fix; treated as unfixed")
        else:
            fixed = max(a.fixed_version, b.fixed_version, key=cmp_to_key(debian_version_cmp))
    rated = [x for x in (a, b) if not x.severity_defaulted] or [a, b]
    top = max(rated, key=lambda x: SEVERITIES.index(x.severity))
    dates = [d for d in (a.modified, b.modified) if d is not None]
    return replace(
        a,
        aliases=tuple(dict.fromkeys(a.aliases + b.aliases)),
        summary=a.summary or b.summary,
        description=a.description or b.description,
        url=a.url or b.url,
        severity=top.severity,
        severity_defaulted=top.severity_defaulted,
        fixed_version=fixed,
        vulnerable_versions=tuple(dict.fromkeys(a.vulnerable_versions + b.vulnerable_versions)),
        patched_versions=tuple(dict.fromkeys(a.patched_versions + b.patched_versions)),
        modified=max(dates) if dates else None,
        files=tuple(dict.fromkeys(a.files + b.files)),
    )


# --------------------------------------------------------------------------
# The Trivy database


@dataclass(frozen=True)
class _Source:
    id: str  # Trivy's SourceID: the key of VendorSeverity it reads for findings from this bucket
    name: str


def _source_of(ecosystem: str) -> _Source:
    if ecosystem == "pip":
        return _Source("osv", "OSV advisories (PyPI)")
    return _Source("debian", f"OSV advisories ({ecosystem})")


def _bucket_name(ecosystem: str) -> str:
    # Trivy finds pip advisories in every bucket named "pip::<data source>".
    return PIP_BUCKET if ecosystem == "pip" else ecosystem


def ecosystem_of_bucket(bucket: str) -> str:
    """The ecosystem a Trivy bucket serves: "pip::GitHub Security Advisory pip" -> "pip", "debian 12" as is."""
    return bucket.split("::", 1)[0] if "::" in bucket else bucket


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
        "NewestAdvisory": _rfc3339(newest) if newest else None,
        "DefaultedSeverity": dict(sorted(defaulted.items())),
        "Covers": list(declared),
    }
    tree = _db_tree(entries, source)
    info_record["Keys"] = sum(
        len(recs)
        for name, pkgs in tree.items()
        if _is_advisory_bucket(name) and isinstance(pkgs, dict)
        for recs in pkgs.values()
        if isinstance(recs, dict)
    )
    tree[INFO_BUCKET.encode()] = {INFO_KEY.encode(): _json_bytes(info_record)}
    db_dir = out / "db"
    inputs.make_dir(db_dir, "vulnerability database")
    path = db_dir / "trivy.db"
    _atomic_write(path, bolt_file(tree))
    next_update = when + NEXT_UPDATE_AFTER
    metadata = {
        "Version": SCHEMA_VERSION,
        "NextUpdate": _rfc3339(next_update),
        "UpdatedAt": _rfc3339(when),
        "DownloadedAt": _rfc3339(when),
        # Ours, not Trivy's (it ignores unknown keys, and drops them when it downloads a copy).
        "Source": source,
        "Advisories": len(entries),
    }
    # Metadata last: Trivy (and read_info) treat a database without it as absent.
    _atomic_write(db_dir / "metadata.json", (json.dumps(metadata, indent=2) + "\n").encode())
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


def covers_buckets(ecosystems: Iterable[str], *, where: str) -> tuple[str, ...]:
    """OSV ecosystem names a source declares (``PyPI``, ``Debian:12``) as the buckets scans match ("pip", ...)."""
    out: list[str] = []
    for eco in ecosystems:
        bucket = _bucket_of(eco)
        if bucket is None:
            raise ConfigError(
                where,
                "",
                f"{eco!r} is not an ecosystem this database can hold",
                hint="name PyPI or Debian:N (e.g. Debian:12), as OSV spells them",
            )
        if bucket not in out:
            out.append(bucket)
    return tuple(sorted(out))


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
            buckets.setdefault(_bucket_name(ecosystem), {}).setdefault(name, {})[vuln_id] = record
        _merge_vulnerability(vulns.setdefault(vuln_id, {}), adv, _source_of(ecosystem).id)

    tree: Tree = {}
    data_sources: Tree = {}
    for name, packages in buckets.items():
        src = _source_of("pip" if name == PIP_BUCKET else name)
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


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write(path: Path, data: bytes) -> None:
    # Write-then-rename: a scan starting mid-write never sees half a database.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared database from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        counts = nested_key_counts(data, lambda name: name.decode(errors="replace") not in _NOT_ADVISORIES)
        raw_info = read_key(data, INFO_BUCKET.encode(), INFO_KEY.encode())
        ours = _info_record(raw_info) if raw_info is not None else {}
        sources = bucket_keys(data, DATA_SOURCE_BUCKET.encode()) or []
    except (OSError, ValueError) as exc:
        raise VulnDbError(f"{path} is not a readable vulnerability database", seen=str(exc), hint=hint) from None
    ecosystems: dict[str, int] = {}
    for bucket, n in counts.items():
        eco = ecosystem_of_bucket(bucket.decode(errors="replace"))
        ecosystems[eco] = ecosystems.get(eco, 0) + n
    keys = sum(n for b, n in counts.items() if _is_advisory_bucket(b))
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
        # Ours say what they were declared to cover; a database from before that declares nothing.
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


def count_advisories(data: bytes) -> int:
    """Advisory records (package x vulnerability) in the pip and Debian buckets; ValueError if damaged."""
    return sum(nested_key_counts(data, _is_advisory_bucket).values())


def _is_advisory_bucket(name: bytes) -> bool:
    bucket = name.decode(errors="replace")
    return bucket.startswith("pip::") or _DEBIAN_BUCKET.match(bucket) is not None


# --------------------------------------------------------------------------
# The offline bundle: OSV records in one file, with where they came from


@dataclass(frozen=True)
class Provenance:
    name: str  # "PyPA advisory database"
    repository: str  # "github.com/pypa/advisory-database"
    commit: str
    date: str  # the commit's date, YYYY-MM-DD
    license: str
    # What the data covers in full, as OSV names its ecosystems ("PyPI"): declared by whoever packs it.
    ecosystems: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.name} ({self.repository}@{self.commit[:12]}, {self.date}, {self.license})"


def write_bundle(source_dir: Path, out: Path, provenance: Provenance) -> int:
    """Pack every OSV file under ``source_dir`` unchanged into one gzip'd JSON file; the record count.

    Each record is parsed and validated first, so a bundle never holds what
    the scan could not read.
    """
    covers_buckets(provenance.ecosystems, where="--covers")
    notes: list[str] = []
    records: list[dict[str, Any]] = []
    for file in osv_files(source_dir):
        data = read_record_file(file)
        parse_osv(data, str(file), notes)
        records.append({"path": file.relative_to(source_dir).as_posix(), "record": data})
    if not records:
        raise ConfigError(str(source_dir), "", "no advisories: holds no OSV files (*.json, *.yaml, *.yml)")
    body = {
        "format": BUNDLE_FORMAT,
        "provenance": {
            "name": provenance.name,
            "repository": provenance.repository,
            "commit": provenance.commit,
            "date": provenance.date,
            "license": provenance.license,
            "ecosystems": list(provenance.ecosystems),
        },
        "records": records,
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, gzip.compress(raw, compresslevel=9, mtime=0))
    return len(records)


def load_bundle(
    file: Path, *, notes: list[str] | None = None, default_severity: Mapping[str, str] | None = None
) -> tuple[Provenance, list[Advisory]]:
    """The provenance and advisories of a bundle written by :func:`write_bundle`."""
    name = str(file)
    try:
        packed = file.read_bytes()
        # Unpacked with a cap: a few KiB of gzip can claim gigabytes.
        unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = unpacker.decompress(packed, MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(name, "", f"cannot be read: {exc.strerror}") from None
    except zlib.error as exc:
        raise ConfigError(name, "", f"is not a gzip'd bundle ({exc})") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ConfigError(name, "", f"unpacks to more than {MAX_BUNDLE_BYTES} bytes, more than a bundle may hold")
    if not unpacker.eof:
        raise ConfigError(name, "", "is truncated")
    data = parse_text(raw.decode("utf-8", errors="replace"), name, yaml_=False)
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ConfigError(name, "format", f"is not a {BUNDLE_FORMAT} bundle")
    prov = data.get("provenance")
    keys = ("name", "repository", "commit", "date", "license")
    if not isinstance(prov, dict) or not all(isinstance(prov.get(k), str) and prov.get(k) for k in keys):
        raise ConfigError(name, "provenance", f"must give {', '.join(keys)}")
    declared = prov.get("ecosystems", [])
    if not isinstance(declared, list) or not all(isinstance(e, str) for e in declared):
        raise ConfigError(name, "provenance.ecosystems", "must be a list of OSV ecosystem names (PyPI, Debian:12)")
    covers_buckets(declared, where=f"{name}: provenance.ecosystems")
    records = data.get("records")
    if not isinstance(records, list) or not records:
        raise ConfigError(name, "records", "holds no advisories")
    sink: list[str] = notes if notes is not None else []
    advisories: list[Advisory] = []
    for i, item in enumerate(records):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ConfigError(name, f"records[{i}]", "expected {path, record}")
        where = f"{name}: {item['path']}"
        advisories.extend(parse_osv(item.get("record"), where, sink, default_severity=default_severity))
    name_, repository, commit, date, license_ = (str(prov[k]) for k in keys)
    return Provenance(name_, repository, commit, date, license_, tuple(declared)), advisories


PROVENANCE_KEYS = ("name", "repository", "commit", "date", "license")
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(.+?)\s*\|\s*$")


def read_provenance(directory: Path, given: Mapping[str, str] | None = None) -> Provenance:
    """Where an advisory directory's data comes from: the config's word, else its README's table.

    The README is the directory's own or, for an unmodified snapshot whose README is upstream's, the one
    beside it that describes the snapshot: a Markdown table with rows ``commit`` and ``commit date`` (or
    ``date``), and ``repository`` or ``taken from``. A repository, commit and date are required: a scan
    must be able to say which data it used.
    """
    fields = {k: v for k, v in (given or {}).items() if v}
    read_from: list[str] = []
    for readme in (directory / "README.md", directory.parent / "README.md"):
        if all(k in fields for k in ("repository", "commit", "date")):
            break
        if not readme.is_file():
            continue
        read_from.append(str(readme))
        text = inputs.read_text(readme)
        rows: dict[str, str] = {}
        for line in text.splitlines():
            m = _ROW.match(line)
            if m:
                rows.setdefault(m.group(1).lower().strip("`* "), m.group(2).strip())
        repo = re.search(r"(github\.com/[\w.-]+/[\w.-]+)", rows.get("repository") or rows.get("taken from") or "")
        commit = re.search(r"\b([0-9a-f]{40})\b", rows.get("commit", ""))
        date = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", rows.get("commit date") or rows.get("date") or "")
        if repo and commit and date:
            fields.setdefault("repository", repo.group(1).removesuffix(".git"))
            fields.setdefault("commit", commit.group(1))
            fields.setdefault("date", date.group(1))
            data = rows.get("data", "")
            if data and "name" not in fields:
                fields["name"] = data.split("(", 1)[0].strip()
            if rows.get("covers") and "covers" not in fields:
                fields["covers"] = rows["covers"].strip("` ")
            lic = re.search(r"licensed\s+(?:under\s+)?([A-Za-z0-9][\w.-]*)", text, re.IGNORECASE)
            if lic and "license" not in fields:
                fields["license"] = lic.group(1).rstrip(".,")
    missing = [k for k in ("repository", "commit", "date") if k not in fields]
    if missing:
        raise ConfigError(
            str(directory),
            "",
            f"the offline advisories' provenance lacks {', '.join(missing)}"
            + (f" (read {', '.join(read_from)})" if read_from else " (no README.md in it or beside it)"),
            hint='give it in the config: [scan] offline_provenance = { repository = "github.com/OWNER/NAME", '
            'commit = "...", date = "YYYY-MM-DD" }',
        )
    try:
        datetime.strptime(fields["date"], "%Y-%m-%d")
    except ValueError:
        raise ConfigError(
            str(directory), "", f"the offline advisories' date {fields['date']!r} is not a date"
        ) from None
    return Provenance(
        name=fields.get("name") or directory.name,
        repository=fields["repository"],
        commit=fields["commit"],
        date=fields["date"],
        license=fields.get("license") or "license not stated",
        # Only what the config or the README declares counts as covered: never inferred from the records.
        ecosystems=tuple(e.strip() for e in fields.get("covers", "").split(",") if e.strip()),
    )


@dataclass(frozen=True)
class AdvisoryDir:
    """An OSV directory read for the offline database: what came in, what could be used, what was not and why."""

    provenance: Provenance
    advisories: list[Advisory]
    records: int  # OSV files read
    unused: int  # records none of whose entries could go into the database (withdrawn, nothing comparable)
    notes: list[str]  # one line per record or entry left out (or trimmed), naming its file and the reason

    def source_line(self) -> str:
        """The provenance as every report's first line shows it, with how much of the data is in the DB."""
        return f"{self.provenance.line()}; {self.records} records, {self.unused} skipped"

    def as_of(self) -> datetime:
        """The end of the snapshot's commit day: no record in it can be newer."""
        day = datetime.strptime(self.provenance.date, "%Y-%m-%d").replace(tzinfo=UTC)
        return day + timedelta(days=1, seconds=-1)


def load_advisory_dir(
    directory: Path, *, provenance: Mapping[str, str] | None = None, default_severity: Mapping[str, str] | None = None
) -> AdvisoryDir:
    """Every OSV record under ``directory`` (validated, as :func:`load_osv`), with its provenance."""
    prov = read_provenance(directory, provenance)
    if not directory.is_dir():
        raise ConfigError(str(directory), "", "is not a directory of OSV advisories")
    files = osv_files(directory)
    if not files:
        raise ConfigError(str(directory), "", "no advisories: holds no OSV files (*.json, *.yaml, *.yml)")
    notes: list[str] = []
    advisories: list[Advisory] = []
    unused = 0
    for file in files:
        got = parse_osv(read_record_file(file), str(file), notes, default_severity=default_severity)
        unused += not got
        advisories.extend(got)
    return AdvisoryDir(prov, advisories, len(files), unused, notes)


def advisory_dir_digest(directory: Path) -> str:
    """A cheap fingerprint of an OSV directory (every file's path, size and mtime): a changed snapshot rebuilds."""
    h = hashlib.sha256()
    for p in osv_files(directory):
        st = p.stat()
        h.update(f"{p.relative_to(directory).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def iter_notes(notes: list[str], limit: int = 20) -> Iterator[str]:
    """At most ``limit`` notes, then how many more there were."""
    yield from notes[:limit]
    if len(notes) > limit:
        yield f"... and {len(notes) - limit} more"
