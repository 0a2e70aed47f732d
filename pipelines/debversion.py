"""Debian package versions: dpkg's ordering and grammar, by python-debian (never by hand).

Shared by the vulnerability database writer (the highest of several fixes) and
the OS updates check (is a suite's version newer than the installed one).
"""

from __future__ import annotations

# python-debian is imported where it is used: a warm scan reads a built database and never compares versions.

_MAX_EPOCH = 2**31 - 1  # dpkg keeps the epoch in a C int


def is_debian_version(version: str) -> bool:
    """Whether dpkg reads ``version`` ([epoch:]upstream[-revision]) without complaint.

    python-debian's grammar is looser than dpkg's: it reads "1:-1" (no upstream
    part), "1.0-" (an empty revision), "abc" (Debian policy: the upstream part
    starts with a digit), non-ASCII digits in the epoch, an epoch above dpkg's
    limit and a trailing newline. dpkg calls each of those bad syntax, so they
    are refused here too.
    """
    from debian.debian_support import Version

    if not version.isascii() or any(c.isspace() for c in version):
        return False
    try:
        Version(version)
    except ValueError:
        return False
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "0", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, "0"
    # python-debian has read a colon as the end of an all-digit epoch (ASCII, checked above).
    epoch_ok = epoch.isdigit() and int(epoch) <= _MAX_EPOCH
    return epoch_ok and upstream[:1].isdigit() and bool(revision)


def debian_version_cmp(a: str, b: str) -> int:
    """dpkg's ordering of two versions: -1, 0 or 1 (a ``cmp_to_key`` function).

    Raises ValueError for a string python-debian cannot read; callers check
    their input with :func:`is_debian_version` first, so that names the bad value.
    """
    from debian.debian_support import version_compare

    return version_compare(a, b)
