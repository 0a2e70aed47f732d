"""The check itself: every image against a suite, its pending updates as findings for the scan stage."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Image
from ..findings import Finding, Severity
from .changelogs import with_cves
from .dpkg import image_packages
from .errors import NoDpkgData, OsUpdatesError
from .index import fetch_index
from .suite import Index, Suite, security_suites
from .updates import Pending, pending

TOOL = "os-updates"
RULE = "PL-U001"  # a pending security update; waivable by rule + image + package like any scan finding
MODES = ("fail", "warn", "off")


def as_finding(p: Pending, mode: str, suite: str) -> Finding:
    cves = ", ".join(p.cves) if p.cves else "no CVE id named in the changelog"
    return Finding(
        TOOL,
        RULE,
        Severity.ERROR if mode == "fail" else Severity.WARNING,
        f"{p.image}: {p.package} {p.installed} has a security update {p.fixed} in {suite} ({cves})",
        p.image,
        hint="rebuild the golden bases (`pipelines build --refresh-bases`) and the images on them",
        extra=(
            ("image", p.image),
            ("package", p.package),
            ("installed", p.installed),
            ("fixed", p.fixed),
            ("kind", "os-update"),
            ("source", p.source),
            ("cves", ",".join(p.cves)),
            ("suite", suite),
            ("changelog", p.changelog),
        ),
    )


@dataclass
class CheckResult:
    index: Index
    pending: list[Pending] = field(default_factory=list)
    packages: dict[str, int] = field(default_factory=dict)  # image -> packages checked
    seconds: dict[str, float] = field(default_factory=dict)  # image -> check time
    no_dpkg: list[str] = field(default_factory=list)  # images without a dpkg database

    def statement(self) -> str:
        n = sum(self.packages.values())
        out = (
            f"{self.index.statement()}; {n} OS packages in {len(self.packages)} images checked, "
            f"{len(self.pending)} pending security updates"
        )
        if self.no_dpkg:
            out += f"; NOT checked (no dpkg database): {', '.join(self.no_dpkg)}"
        return out


def check_images(
    images: Mapping[str, str],
    suite: Suite,
    cache: Path,
    *,
    timeout: float = 60,
    max_age: dt.timedelta = dt.timedelta(hours=6),
    index: Index | None = None,
) -> CheckResult:
    """Pending security updates of every image (name -> reference), with the CVE ids they fix."""
    index = index or fetch_index(suite, cache, timeout=timeout, max_age=max_age)
    res = CheckResult(index)
    for name, ref in images.items():
        start = time.monotonic()
        try:
            pkgs = image_packages(ref, cache)
        except NoDpkgData:
            res.no_dpkg.append(name)
            continue
        found = pending(name, pkgs, index)
        res.pending += with_cves(found, index, cache, timeout)
        res.packages[name] = len(pkgs)
        res.seconds[name] = round(time.monotonic() - start, 2)
    if images and not res.packages:
        # Not one image had Debian packages: "nothing pending" would be a pass on nothing.
        raise NoDpkgData(
            f"none of the images has a dpkg database: {', '.join(images)}",
            hint='set scan.os_updates = "off" for images without Debian packages',
        )
    return res


def for_scan(
    images: Iterable[Image], mode: str, cache: Path, timeout: float, targets: Sequence[tuple[str, str]]
) -> tuple[list[Finding], list[str]]:
    """The scan stage's findings and report lines: every target image against every security suite."""
    if mode == "off":
        return [], ['OS updates: NOT checked (scan.os_updates = "off")']
    suites = security_suites(images)
    if not suites:
        raise OsUpdatesError(
            "scan.os_updates is on, but the rootfs image's `suites` list no security suite",
            hint='add e.g. suites = ["bookworm", "bookworm-updates", "bookworm-security"], or set scan.os_updates',
        )
    findings: list[Finding] = []
    notes: list[str] = []
    for suite in suites:
        res = check_images(dict(targets), suite, cache, timeout=timeout)
        findings += [as_finding(p, mode, suite.suite) for p in res.pending]
        notes.append(res.statement() + ("" if mode == "fail" else " (warn only)"))
        per_image = ", ".join(f"{n} {s:.1f}s" for n, s in res.seconds.items())
        notes.append(f"OS updates timing: index {res.index.fetch_seconds:.1f}s ({res.index.origin}), {per_image}")
    return findings, notes
