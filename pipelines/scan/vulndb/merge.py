"""Folding what feeds split: one advisory per (ecosystem, package, ID).

GitHub's advisories give every release series its own ``affected`` entry, and
one ID may come from several files. Nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import cmp_to_key

from ...dbseverity import SEVERITIES
from ...debversion import debian_version_cmp, is_debian_version
from .layout import is_debian_bucket
from .pipnames import pip_canonical
from .records import Advisory


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
        if adv.ecosystem != "pip" and not is_debian_bucket(adv.ecosystem):
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
