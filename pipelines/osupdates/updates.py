"""Which installed packages the suite has a newer version of, by Debian's version ordering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..debversion import debian_version_cmp
from .dpkg import Installed
from .suite import Index


def is_newer(candidate: str, installed: str) -> bool:
    """Debian version ordering (epochs, ~, revisions) by python-debian."""
    return debian_version_cmp(candidate, installed) > 0


@dataclass(frozen=True)
class Pending:
    image: str
    package: str
    arch: str
    installed: str
    fixed: str
    source: str
    source_installed: str
    source_fixed: str
    cves: tuple[str, ...] = ()
    changelog: str = ""  # where the CVE ids were read


def pending(image: str, installed: Iterable[Installed], index: Index) -> list[Pending]:
    out = []
    for p in installed:
        a = index.newest(p.name, p.arch)
        if a is not None and is_newer(a.version, p.version):
            out.append(
                Pending(image, p.name, p.arch, p.version, a.version, a.source, p.source_version, a.source_version)
            )
    return out
