"""A security suite and what its Packages index offers; which suites the config's rootfs images name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import Image
from ..debversion import debian_version_cmp
from .dpkg import check_version, source_of
from .errors import OsUpdatesError
from .signature import KEYRING


@dataclass(frozen=True)
class Suite:
    mirror: str  # e.g. http://deb.debian.org/debian-security
    suite: str  # e.g. bookworm-security
    component: str = "main"
    arch: str = "amd64"
    keyring: Path = KEYRING  # what its InRelease must be signed with

    @property
    def dists(self) -> str:
        return f"{self.mirror.rstrip('/')}/dists/{self.suite}"

    @property
    def index_path(self) -> str:
        return f"{self.component}/binary-{self.arch}/Packages.xz"

    @property
    def label(self) -> str:
        return f"{self.suite} {self.component}/{self.arch} ({self.mirror})"


@dataclass(frozen=True)
class Available:
    name: str
    version: str
    arch: str
    source: str
    source_version: str
    filename: str  # relative to the mirror
    sha256: str
    size: int


@dataclass
class Index:
    suite: Suite
    packages: dict[str, list[Available]]
    release_date: dt.datetime  # the suite's own Date (InRelease)
    fetched_at: dt.datetime
    origin: str  # download | cache
    signature: str  # what was checked about InRelease
    fetch_seconds: float = 0.0

    def newest(self, name: str, arch: str) -> Available | None:
        """The newest version of ``name`` for ``arch`` (or arch all) the suite offers."""
        best: Available | None = None
        for a in self.packages.get(name, []):
            if arch and a.arch not in (arch, "all"):
                continue
            if best is None or debian_version_cmp(a.version, best.version) > 0:
                best = a
        return best

    def statement(self) -> str:
        return (
            f"OS updates index: {self.suite.label}, Release dated {self.release_date:%Y-%m-%d %H:%M} UTC, "
            f"fetched {self.fetched_at:%Y-%m-%d %H:%M:%S} UTC ({self.origin}), "
            f"{sum(len(v) for v in self.packages.values())} packages, {self.signature}"
        )


def parse_packages(text: str, where: str = "Packages index") -> dict[str, list[Available]]:
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    out: dict[str, list[Available]] = {}
    for para in deb822.Packages.iter_paragraphs(text, use_apt_pkg=False):
        if "Package" not in para:
            continue
        if "Version" not in para:
            raise OsUpdatesError(f"{where}: package {para['Package']} has no Version field")
        source, source_version = source_of(para)
        check_version(where, para["Package"], para["Version"], source_version)
        size = para.get("Size", "0") or "0"
        if not size.isdigit():
            raise OsUpdatesError(f"{where}: package {para['Package']}: Size {size!r} is not a number of bytes")
        a = Available(
            para["Package"],
            para["Version"],
            para.get("Architecture", ""),
            source,
            source_version,
            para.get("Filename", ""),
            para.get("SHA256", ""),
            int(size),
        )
        out.setdefault(a.name, []).append(a)
    return out


def host_arch() -> str:
    """Debian's name for this machine's architecture (the images are built for it)."""
    import platform

    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


DEFAULT_SUITE = Suite("http://deb.debian.org/debian-security", "bookworm-security")


def security_suites(images: Iterable[Image]) -> list[Suite]:
    """The security suites the rootfs images' apt sources name, once each.

    A config without a rootfs image gets the one a rootfs image gets by
    default (bookworm-security); the report names it like any other.
    """
    images = list(images)
    out: dict[tuple[str, str], Suite] = {}
    for img in images:
        if img.kind != "rootfs":
            continue
        for s in img.suites:
            if s.endswith("-security"):
                out.setdefault(
                    (img.security_mirror, s), Suite(img.security_mirror, s, arch=host_arch(), keyring=img.keyring)
                )
    if not out and not any(img.kind == "rootfs" for img in images):
        return [Suite(DEFAULT_SUITE.mirror, DEFAULT_SUITE.suite, arch=host_arch())]
    return list(out.values())
