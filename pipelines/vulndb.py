"""An offline Trivy vulnerability database, built from OSV advisories.

Trivy looks vulnerabilities up in a BoltDB file (``CACHE/db/trivy.db``) that
it normally downloads from a container registry. This machine cannot reach
that registry, and air-gapped sites want to scan against their own advisories
anyway. So the pipeline builds the database itself:

1. :func:`load_osv` reads advisories in the OSV format
   (https://ossf.github.io/osv-schema/) and keeps the ecosystems Trivy can
   match against what the pipeline ships: Debian releases (matched by SOURCE
   package) and PyPI.
2. :func:`build_db` writes them in the layout Trivy's Debian and pip
   detectors read, through the small BoltDB writer in :mod:`pipelines.bolt`,
   plus the ``metadata.json`` Trivy checks before it opens the file.
3. Scans then run ``trivy --cache-dir CACHE --skip-db-update ...``, and
   :func:`read_info` tells the scan stage what it is scanning against (and
   fails loudly when the database is missing or damaged: a scan against a
   broken database must never pass as clean).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from pathlib import Path
from typing import NoReturn, TypeAlias

from . import inputs

# The `as` imports re-export what lived here before pipelines.bolt existed.
from .bolt import PAGE_SIZE as PAGE_SIZE
from .bolt import BoltReader as BoltReader
from .bolt import Tree, count_nested_keys
from .bolt import bolt_file as bolt_file
from .bolt import fnv1a_64 as fnv1a_64
from .errors import EXIT_UNUSABLE, ConfigError, InputError, PipelineError

SCHEMA_VERSION = 2  # the trivy-db schema Trivy's --skip-db-update insists on

# Index = the integer Trivy stores in VendorSeverity.
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")

# Scans pass --skip-db-update anyway; a NextUpdate this far out also keeps a
# run that forgets the flag from trying to swap the site's own advisories for
# a download.
NEXT_UPDATE_AFTER = timedelta(days=3653)

PIP_BUCKET = "pip::OSV advisories"
# Buckets holding metadata rather than advisories.
DATA_SOURCE_BUCKET = "data-source"
VULNERABILITY_BUCKET = "vulnerability"

_DEBIAN_ECOSYSTEM = re.compile(r"^Debian:(\d+)(?:\.\d+)*$")
_DEBIAN_BUCKET = re.compile(r"^debian \d+$")


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
    package: str  # Debian: the SOURCE package; pip: the normalised name
    fixed_version: str = ""  # Debian; "" = no fix yet
    vulnerable_versions: tuple[str, ...] = ()  # pip: Trivy constraints, e.g. ">=1.0, <1.2.3"
    patched_versions: tuple[str, ...] = ()  # pip: the versions that fix it, e.g. "1.2.3"
    url: str = ""
    description: str = ""


@dataclass(frozen=True)
class DbInfo:
    path: Path  # CACHE/db/trivy.db
    schema_version: int
    updated_at: datetime
    next_update: datetime
    advisories: int
    source: str

    @property
    def cache_dir(self) -> Path:
        """What Trivy's --cache-dir needs."""
        return self.path.parent.parent


# --------------------------------------------------------------------------
# CVSS v3


_CVSS_BASE: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},  # changes the formula, has no weight of its own
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges weigh more when the impact crosses a security scope.
_PR_SCOPE_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of a vector string; ValueError when it is not one."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"expected a vector starting with CVSS:3.0/ or CVSS:3.1/, got {vector!r}")
    metrics: dict[str, str] = {}
    for part in rest.split("/"):
        name, sep, value = part.partition(":")
        if not sep or not name or not value:
            raise ValueError(f"malformed metric {part!r} in {vector!r}")
        if name in metrics:
            raise ValueError(f"metric {name} given twice in {vector!r}")
        metrics[name] = value
    for name, allowed in _CVSS_BASE.items():
        if name not in metrics:
            raise ValueError(f"base metric {name} missing from {vector!r}")
        if metrics[name] not in allowed:
            raise ValueError(f"{name}:{metrics[name]} is not a valid value in {vector!r}")
    # Temporal and environmental metrics may follow; the base score ignores them.

    changed = metrics["S"] == "C"
    w = {name: _CVSS_BASE[name][metrics[name]] for name in ("AV", "AC", "UI", "C", "I", "A")}
    pr = (_PR_SCOPE_CHANGED if changed else _CVSS_BASE["PR"])[metrics["PR"]]
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return _roundup(min(total, 10.0))


def _roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, immune to float noise."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (scaled // 10_000 + 1) / 10


def severity_of_score(score: float) -> str:
    """The qualitative rating of a CVSS v3 score; a score of 0 (None) is UNKNOWN to Trivy."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score >= 0.1:
        return "LOW"
    return "UNKNOWN"


# GHSA's words, and Trivy's own.
_SEVERITY_WORDS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "MODERATE": "MEDIUM",
    "MEDIUM": "MEDIUM",
    "LOW": "LOW",
}


# --------------------------------------------------------------------------
# OSV


class _Json:
    """A JSON object being read from one file: typed getters that know their path."""

    def __init__(self, file: str, path: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"expected an object, got {_json_type(data)}")
        self.file = file
        self.path = path
        self.data: dict[str, object] = data

    def key(self, name: str) -> str:
        if not name:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> NoReturn:
        raise ConfigError(self.file, self.key(name), problem)

    def string(self, name: str, *, required: bool = False) -> str:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "is required but missing")
            return ""
        if not isinstance(value, str):
            self.fail(name, f"expected a string, got {_json_type(value)}")
        if required and not value.strip():
            self.fail(name, "must not be empty")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        items = self.list(name)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.fail(f"{name}[{i}]", f"expected a string, got {_json_type(item)}")
        return tuple(str(item) for item in items)

    def list(self, name: str) -> list[object]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, f"expected a list, got {_json_type(value)}")
        return value

    def object(self, name: str, *, required: bool = False) -> _Json | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "is required but missing")
            return None
        return _Json(self.file, self.key(name), value)

    def objects(self, name: str) -> Iterator[_Json]:
        for i, item in enumerate(self.list(name)):
            yield _Json(self.file, f"{self.key(name)}[{i}]", item)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def load_osv(directory: Path, *, notes: list[str] | None = None) -> list[Advisory]:
    """Every advisory in the ``*.json`` OSV files under ``directory``, in file order.

    A malformed file is a :class:`ConfigError` naming the file and the JSON path.
    What is valid OSV but cannot go into the database (an ecosystem Trivy's
    detectors here do not use, a withdrawn advisory, a range without
    versions) is skipped, with one line appended to ``notes`` when given.
    """
    if not directory.is_dir():
        raise ConfigError(str(directory), "", "is not a directory of OSV advisories")
    sink: list[str] = notes if notes is not None else []
    advisories: list[Advisory] = []
    files = sorted(directory.rglob("*.json"))
    for file in files:
        if file.is_file() or not file.is_dir():  # a FIFO or device named *.json is an error, not skipped
            advisories.extend(parse_osv(_read_json(file), str(file), sink))
    if not advisories:
        # A database with zero advisories would make every scan pass: refuse to build one.
        why = f"{len(files)} *.json files, none with a usable advisory" if files else "no *.json files"
        raise InputError(
            f"{directory}: no advisories to build a database from ({why})",
            seen="\n".join(sink[-10:]) or None,
            hint="point --from at a directory of OSV JSON files for the Debian or PyPI ecosystems",
        )
    return advisories


def _read_json(file: Path) -> object:
    text = inputs.read_text(file, limit=inputs.LARGE)
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(str(file), "", "is not usable JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            str(file), "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def parse_osv(data: object, file: str, notes: list[str]) -> list[Advisory]:
    """The advisories of one OSV record (one per affected package Trivy can match)."""
    record = _Json(file, "", data)
    osv_id = record.string("id", required=True)
    if record.string("withdrawn"):
        notes.append(f"{file}: {osv_id} is withdrawn; skipped")
        return []
    aliases = record.strings("aliases")
    summary = record.string("summary")
    details = record.string("details")
    url = _reference(record)
    record_severity = _severity(record)
    out: list[Advisory] = []
    for entry in record.objects("affected"):
        package = entry.object("package", required=True)
        assert package is not None
        ecosystem = package.string("ecosystem", required=True)
        name = package.string("name", required=True)
        bucket = _bucket_of(ecosystem)
        if bucket is None:
            notes.append(f"{file}: {entry.path}: ecosystem {ecosystem!r} is not supported; skipped")
            continue
        # The per-package severity list (OSV 1.5+) only fills in what the record leaves open.
        severity = record_severity if record_severity != "UNKNOWN" else _cvss_severity(entry)
        ranges = _ecosystem_ranges(entry, notes)
        versions = entry.strings("versions")
        _check_versions(entry, bucket, name, ranges, versions)
        if not ranges and not versions:
            notes.append(f"{file}: {entry.path}: no ECOSYSTEM range and no versions for {name}; skipped")
            continue
        base = Advisory(
            id=_trivy_id(osv_id),
            aliases=aliases,
            summary=summary,
            severity=severity,
            ecosystem=bucket,
            package=name,
            url=url,
            description=details,
        )
        if bucket == "pip":
            vulnerable, patched = _pip_constraints(ranges, versions)
            out.append(
                replace(base, package=normalise_pip(name), vulnerable_versions=vulnerable, patched_versions=patched)
            )
        else:
            out.append(replace(base, fixed_version=_debian_fix(entry, ranges, notes)))
    return out


# PEP 440 (public and local versions) and PEP 508 names, as pip reads them.
_PEP440 = re.compile(
    r"^v?(?:\d+!)?\d+(?:\.\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
    re.IGNORECASE,
)
_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def _check_versions(entry: _Json, bucket: str, name: str, ranges: list[_Range], versions: tuple[str, ...]) -> None:
    """A version the ecosystem cannot parse would be compared wrongly by Trivy: refuse it here."""
    from debian.debian_support import Version

    if bucket == "pip" and not _PEP508_NAME.match(name):
        entry.fail("package.name", f"{name!r} is not a PyPI package name")
    given = [v for events in ranges for kind, v in events if not (kind == "introduced" and v == "0")]
    for version in [*given, *versions]:
        if bucket == "pip":
            ok = bool(_PEP440.match(version))
        else:
            try:
                Version(version)
                # Debian policy: the upstream part starts with a digit (python-debian lets "1:-1" pass).
                upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
                ok = upstream[:1].isdigit() and not any(c.isspace() for c in version)
            except ValueError:
                ok = False
        if not ok:
            kind = "PEP 440" if bucket == "pip" else "Debian"
            entry.fail("ranges", f"{version!r} is not a {kind} version (package {name})")


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


def normalise_pip(name: str) -> str:
    """PEP 503 normalisation, which is how Trivy looks pip packages up."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _reference(record: _Json) -> str:
    urls: dict[str, str] = {}
    for ref in record.objects("references"):
        url = ref.string("url", required=True)
        urls.setdefault(ref.string("type").upper(), url)
        urls.setdefault("", url)
    return urls.get("ADVISORY") or urls.get("WEB") or urls.get("", "")


def _severity(record: _Json) -> str:
    specific = record.object("database_specific")
    if specific is not None:
        word = specific.string("severity").strip().upper()
        if word in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[word]
    return _cvss_severity(record)


def _cvss_severity(obj: _Json) -> str:
    for entry in obj.objects("severity"):
        if entry.string("type", required=True) == "CVSS_V3":
            vector = entry.string("score", required=True)
            try:
                return severity_of_score(cvss3_base_score(vector))
            except ValueError as exc:
                entry.fail("score", f"is not a CVSS v3 vector: {exc}")
    return "UNKNOWN"


# One range: its events in order, as (kind, version).
_Range: TypeAlias = list[tuple[str, str]]
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _ecosystem_ranges(entry: _Json, notes: list[str]) -> list[_Range]:
    ranges: list[_Range] = []
    for rng in entry.objects("ranges"):
        kind = rng.string("type", required=True)
        if kind != "ECOSYSTEM":
            # SEMVER and GIT ranges speak of upstream versions or commits, not of
            # the versions the package manager installed.
            notes.append(f"{entry.file}: {rng.path}: {kind} range ignored (only ECOSYSTEM ranges are used)")
            continue
        events: _Range = []
        for event in rng.objects("events"):
            present = [k for k in _EVENT_KINDS if k in event.data]
            if len(present) != 1:
                event.fail("", f"expected exactly one of {', '.join(_EVENT_KINDS)}")
            version = event.string(present[0], required=True)
            if present[0] != "limit":  # limit only bounds GIT commit walks
                events.append((present[0], version))
        if not events:
            rng.fail("events", "has no events")
        ranges.append(events)
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


def _debian_fix(entry: _Json, ranges: list[_Range], notes: list[str]) -> str:
    """The one FixedVersion Trivy's Debian records hold; "" when unfixed.

    Debian's advisories say "introduced 0, fixed X" per release. Trivy cannot
    express a lower bound for Debian, so every version below the fix is
    reported (erring towards a finding, never away from one).
    """
    fixed = [v for events in ranges for kind, v in events if kind == "fixed"]
    if not ranges:
        notes.append(f"{entry.file}: {entry.path}: Debian entry lists versions only; treated as unfixed")
    if any(kind == "last_affected" for events in ranges for kind, _ in events):
        notes.append(f"{entry.file}: {entry.path}: last_affected cannot be expressed for Debian; treated as unfixed")
        return ""
    if len(set(fixed)) > 1:
        # The highest: a package below it is reported, whichever fix it missed.
        highest = max(fixed, key=cmp_to_key(debian_version_cmp))
        notes.append(f"{entry.file}: {entry.path}: several fixed versions ({', '.join(fixed)}); using {highest}")
        return highest
    return fixed[0] if fixed else ""


def debian_version_cmp(a: str, b: str) -> int:
    """dpkg's ordering of two versions ([epoch:]upstream[-revision]): -1, 0 or 1."""
    ea, ua, ra = _split_debian(a)
    eb, ub, rb = _split_debian(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part_cmp(ua, ub) or _dpkg_part_cmp(ra, rb)


def _split_debian(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch) if epoch.isdigit() else 0, upstream, revision


def _dpkg_order(c: str) -> int:
    # "~" sorts before anything, even the end of the string; letters before other symbols.
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part_cmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        # A run of non-digits, character by character (the end of a string counts as 0).
        while True:
            ca = a[i] if i < len(a) and not a[i].isdigit() else ""
            cb = b[j] if j < len(b) and not b[j].isdigit() else ""
            if not ca and not cb:
                break
            oa, ob = (_dpkg_order(ca) if ca else 0), (_dpkg_order(cb) if cb else 0)
            if oa != ob:
                return -1 if oa < ob else 1
            i, j = i + len(ca), j + len(cb)
        # Then a run of digits, as a number.
        si, sj = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = int(a[si:i] or 0), int(b[sj:j] or 0)
        if na != nb:
            return -1 if na < nb else 1
    return 0


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


def build_db(advisories: list[Advisory], out: Path, *, source: str, updated_at: datetime | None = None) -> DbInfo:
    """Write ``out/db/trivy.db`` and ``out/db/metadata.json`` for ``advisories``.

    ``source`` says where the advisories came from (a path or URL); it is kept
    in the metadata and the data-source records. Two advisories for the same
    vulnerability and package that disagree are an :class:`InputError`;
    exact duplicates count once.
    """
    when = (updated_at or datetime.now(UTC)).replace(microsecond=0)
    if when.tzinfo is None:
        raise ValueError("updated_at must be timezone-aware")
    when = when.astimezone(UTC)
    entries = _dedupe(advisories)
    tree = _db_tree(entries, source)
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
        # Ours, not Trivy's (it ignores unknown keys): what read_info reports.
        "Source": source,
        "Advisories": len(entries),
    }
    # Metadata last: Trivy (and read_info) treat a database without it as absent.
    _atomic_write(db_dir / "metadata.json", (json.dumps(metadata, indent=2) + "\n").encode())
    return DbInfo(path, SCHEMA_VERSION, when, next_update, len(entries), source)


def _dedupe(advisories: list[Advisory]) -> dict[tuple[str, str, str], Advisory]:
    entries: dict[tuple[str, str, str], Advisory] = {}
    for adv in advisories:
        if adv.severity not in SEVERITIES:
            raise ValueError(f"{adv.id}: severity {adv.severity!r} is not one of {', '.join(SEVERITIES)}")
        # Anything else would land in a bucket no Trivy detector reads (and read_info does not count).
        if adv.ecosystem != "pip" and not _DEBIAN_BUCKET.match(adv.ecosystem):
            raise ValueError(f"{adv.id}: ecosystem {adv.ecosystem!r} is neither 'pip' nor 'debian N'")
        if not adv.id or not adv.package:
            raise ValueError(f"an advisory without an ID or package: {adv!r}")
        key = (adv.ecosystem, adv.package, adv.id)
        seen = entries.get(key)
        if seen is None:
            entries[key] = adv
            continue
        if _affects(seen) != _affects(adv):
            raise InputError(
                f"two advisories for {adv.id} in {adv.package} ({adv.ecosystem}) disagree on the affected versions",
                seen=f"fixed {seen.fixed_version!r} vs {adv.fixed_version!r}; "
                f"vulnerable {list(seen.vulnerable_versions)} vs {list(adv.vulnerable_versions)}",
                hint="keep one of the two advisories",
            )
    return entries


def _affects(adv: Advisory) -> tuple[str, frozenset[str], frozenset[str]]:
    return adv.fixed_version, frozenset(adv.vulnerable_versions), frozenset(adv.patched_versions)


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
        buckets.setdefault(_bucket_name(ecosystem), {}).setdefault(package, {})[vuln_id] = record
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


def _merge_vulnerability(vuln: dict[str, object], adv: Advisory, source_id: str) -> None:
    """Fold one advisory into the shared per-ID record Trivy reads titles and severities from."""
    if adv.summary and not vuln.get("Title"):
        vuln["Title"] = adv.summary
    if adv.description and not vuln.get("Description"):
        vuln["Description"] = adv.description
    if adv.severity != "UNKNOWN":
        rank = SEVERITIES.index(adv.severity)
        vendor = vuln.setdefault("VendorSeverity", {})
        assert isinstance(vendor, dict)
        vendor[source_id] = max(rank, vendor.get(source_id, 0))
        current = vuln.get("Severity")
        if not isinstance(current, str) or SEVERITIES.index(current) < rank:
            vuln["Severity"] = adv.severity
    refs = vuln.setdefault("References", [])
    assert isinstance(refs, list)
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_info(cache_dir: Path) -> DbInfo:
    """What the database under ``cache_dir`` holds; :class:`VulnDbError` if it is missing or damaged.

    The advisory count comes from reading the whole BoltDB file back, so a
    truncated or corrupted file is caught here, before a scan trusts it.
    """
    db_dir = cache_dir / "db"
    meta_path, path = db_dir / "metadata.json", db_dir / "trivy.db"
    hint = "rebuild it from the OSV advisories (pipelines.vulndb.build_db)"
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
        count = count_advisories(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise VulnDbError(f"{path} is not a readable vulnerability database", seen=str(exc), hint=hint) from None
    recorded = meta.get("Advisories")
    if isinstance(recorded, int) and recorded != count:
        raise VulnDbError(
            f"{path} does not match its metadata", seen=f"{count} advisories, metadata says {recorded}", hint=hint
        )
    return DbInfo(path, SCHEMA_VERSION, updated_at, next_update, count, str(meta.get("Source", "")))


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
    """Advisory records (package x vulnerability) in a Trivy BoltDB file; ValueError if it is damaged."""
    # Ecosystem bucket -> package bucket -> one key per vulnerability.
    return count_nested_keys(data, _is_advisory_bucket)


def _is_advisory_bucket(name: bytes) -> bool:
    bucket = name.decode(errors="replace")
    return bucket.startswith("pip::") or _DEBIAN_BUCKET.match(bucket) is not None
