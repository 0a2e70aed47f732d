"""Pending Debian security updates: installed OS packages against the security suite's index.

Every image carries a dpkg database: ``/var/lib/dpkg/status`` on a full Debian
image, one file per package under ``/var/lib/dpkg/status.d`` on the distroless
runtime. Each installed binary package is compared with what the configured
security suite (``bookworm-security``) offers now, by Debian's version
ordering (python-debian, never by hand). A newer version there is a pending
security update; the CVE ids come from the newer package's own Debian
changelog (read out of its .deb), entries newer than the installed version.

The index is fetched over HTTP with a timeout and trusted only through the
suite's InRelease: its signature must verify with gpgv against the archive
keyring (no gpgv or no keyring: the check cannot run, exit 2), only the text
gpgv says was signed is read, the Release must be this suite's (Codename or
Suite), must not be expired (Valid-Until) nor dated more than a week ago, and
the index must match the hash it lists.
Plain HTTP is fine on those terms, as it is for apt: a mirror, or anyone on
the path, can withhold the newest index but can neither alter one nor replay
an old one past its validity. It is cached with its fetch time, and a stale
cache is never used: when no fresh index can be had the check fails, like the
vulnerability database does.

The package, by what each module holds: :mod:`.dpkg` (the installed packages
and their lock entries), :mod:`.signature` (gpgv on the InRelease),
:mod:`.release` (the signed Release's suite, dates and hashes),
:mod:`.suite` (a suite, its Packages index, the suites the config names),
:mod:`.download` (fetching from the mirror), :mod:`.index` (the index
fetched and verified, or a fresh cache of it), :mod:`.updates` (what is
newer), :mod:`.changelogs` (the CVE ids an update fixes), :mod:`.check`
(every image against a suite, as findings), :mod:`.errors`.
"""

from __future__ import annotations

from .changelogs import CVE, changelog_for, cves_since, deb_changelog_text, with_cves
from .check import MODES, RULE, TOOL, CheckResult, as_finding, check_images, for_scan
from .download import MAX_DEB_BYTES, USER_AGENT, http_get
from .dpkg import STATUS, STATUS_D, Installed, from_lock, image_packages, lock_entries, parse_dpkg_tar, parse_status
from .errors import NoDpkgData, OsUpdatesError
from .index import CHECKED, cache_dir, fetch_index, index_url
from .release import CLOCK_SKEW, MAX_RELEASE_AGE, check_fresh, check_suite, parse_release, release_window, stale_problem
from .signature import KEYRING, verifier, verify_inrelease
from .suite import DEFAULT_SUITE, Available, Index, Suite, host_arch, parse_packages, security_suites
from .updates import Pending, is_newer, pending

# The check's public names, whichever module defines them: callers import them from here.
__all__ = [
    "CHECKED",
    "CLOCK_SKEW",
    "CVE",
    "DEFAULT_SUITE",
    "KEYRING",
    "MAX_DEB_BYTES",
    "MAX_RELEASE_AGE",
    "MODES",
    "RULE",
    "STATUS",
    "STATUS_D",
    "TOOL",
    "USER_AGENT",
    "Available",
    "CheckResult",
    "Index",
    "Installed",
    "NoDpkgData",
    "OsUpdatesError",
    "Pending",
    "Suite",
    "as_finding",
    "cache_dir",
    "changelog_for",
    "check_fresh",
    "check_images",
    "check_suite",
    "cves_since",
    "deb_changelog_text",
    "fetch_index",
    "for_scan",
    "from_lock",
    "host_arch",
    "http_get",
    "image_packages",
    "index_url",
    "is_newer",
    "lock_entries",
    "parse_dpkg_tar",
    "parse_packages",
    "parse_release",
    "parse_status",
    "pending",
    "release_window",
    "security_suites",
    "stale_problem",
    "verifier",
    "verify_inrelease",
    "with_cves",
]
