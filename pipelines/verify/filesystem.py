"""What the names in an image's filesystem index mean: shells, package managers, compilers, VCS, Python."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..engine import ImageTree

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"}
PKG_MANAGERS = {
    "apt",
    "apt-get",
    "apt-cache",
    "dpkg",
    "rpm",
    "yum",
    "dnf",
    "microdnf",
    "apk",
    "zypper",
    "pip",
    "pip3",
    "pipx",
    "easy_install",
    "conda",
}
PIP = re.compile(r"^pip3\.\d+$")
COMPILER = re.compile(
    r"^((\w+-linux-gnu-)?(gcc|g\+\+|cpp|cc|c\+\+)(-\d+(\.\d+)*)?|clang(\+\+)?(-\d+)?|tcc|rustc|cargo|go|javac"
    r"|make|cmake|ninja|ld|as)$"
)
VCS = {"git", "svn", "hg", "bzr", "cvs", "fossil"}
VCS_DIRS = (".git", ".svn", ".hg")
_PYTHON = re.compile(r"^usr/(local/)?bin/python3\.(\d+)$")
PACKAGE_CACHES = ("var/lib/apt/lists/", "var/cache/apt/archives/")


def in_bin(path: str) -> bool:
    parent = path.rpartition("/")[0]
    return parent.rpartition("/")[2] in ("bin", "sbin")


def executables(tree: ImageTree, match: Any) -> list[str]:
    """Files (or symlinks) in a bin/sbin directory whose name ``match`` accepts."""
    out = []
    for m in tree.entries:
        base = m.name.rpartition("/")[2]
        if (m.isfile() or m.issym()) and in_bin(m.name) and match(base):
            out.append("/" + m.name)
    return sorted(out)


def python_minors(tree: ImageTree) -> set[str]:
    return {f"3.{m.group(2)}" for e in tree.entries if (m := _PYTHON.match(e.name)) and (e.isfile() or e.issym())}


def under(path: str, roots: Iterable[str]) -> bool:
    p = "/" + path.strip("/")
    return any(p == r.rstrip("/") or p.startswith(r.rstrip("/") + "/") for r in roots)
