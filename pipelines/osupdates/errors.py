"""The pending-update check's errors: both stop it (exit 2) rather than let it pass on what it could not read."""

from __future__ import annotations

from ..errors import PipelineError


class OsUpdatesError(PipelineError):
    """The pending-update check could not produce a trustworthy answer."""

    exit_code = 2


class NoDpkgData(OsUpdatesError):
    """The image has no dpkg database: it has no Debian packages to check (e.g. a static binary on scratch)."""
