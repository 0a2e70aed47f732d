"""What an OSV entry's ranges and versions become in Trivy's records.

Trivy's pip records hold version constraints; its Debian records one fixed
version. Versions Trivy could not compare are found here too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cmp_to_key
from typing import TYPE_CHECKING, TypeAlias

from ...debversion import debian_version_cmp, is_debian_version
from ...errors import ConfigError

if TYPE_CHECKING:
    from .osv_schema import OsvAffected

# One range: its events in order, as (kind, version).
Range: TypeAlias = list[tuple[str, str]]

# PEP 440 (public and local versions) and PEP 508 names, as pip reads them.
_PEP440 = re.compile(
    r"^v?(?:\d+!)?\d+(?:\.\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
    re.IGNORECASE,
)
_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def ecosystem_ranges(entry: OsvAffected, file: str, where: str, notes: list[str]) -> list[Range]:
    """The entry's ECOSYSTEM ranges, as events; a note for each other range left out."""
    # SEMVER and GIT ranges speak of upstream versions or commits, not of the
    # versions the package manager installed; limit only bounds GIT commit walks.
    ranges: list[Range] = [
        [(e.kind, e.version) for e in rng.events if e.kind != "limit"]
        for rng in entry.ranges
        if rng.type == "ECOSYSTEM"
    ]
    if not ranges:
        for i, rng in enumerate(entry.ranges):
            notes.append(f"{file}: {where}.ranges[{i}]: {rng.type} range ignored (only ECOSYSTEM ranges are used)")
    return ranges


def check_versions(
    file: str, where: str, bucket: str, name: str, ranges: list[Range], versions: Sequence[str]
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


def pip_constraints(ranges: list[Range], versions: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
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


def debian_fix(file: str, where: str, ranges: list[Range], notes: list[str]) -> str:
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
