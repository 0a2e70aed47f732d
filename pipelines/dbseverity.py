"""The vulnerability database's severity levels and the per-ecosystem default for records that rate nothing.

Apart from :mod:`pipelines.scan.vulndb` so the config can check
`scan.default_severity` without importing the scan stage (its OSV models,
CVSS parsers and database reader): every stage reads the config.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigError

# Index = the integer Trivy stores in VendorSeverity.
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")

# A record that rates nothing still describes a vulnerability: until a site
# says otherwise it counts as HIGH, so it reaches a HIGH gate instead of
# passing unseen (Debian's records on osv.dev carry no rating at all, nor do
# most of PyPA's). Per OSV ecosystem family; `scan.default_severity` and
# `vulndb build --default-severity` override it.
DEFAULT_SEVERITY: Mapping[str, str] = {"Debian": "HIGH", "PyPI": "HIGH"}


def check_default_severity(given: Mapping[str, str], *, where: str) -> dict[str, str]:
    """Validate a {ecosystem family: level} map; keys are matched without regard to case."""
    families = {k.lower(): k for k in DEFAULT_SEVERITY}
    out: dict[str, str] = {}
    for eco, level in given.items():
        family = families.get(eco.lower())
        if family is None:
            raise ConfigError(where, eco, f"is not an ecosystem the database holds ({', '.join(DEFAULT_SEVERITY)})")
        if level.upper() not in SEVERITIES:
            raise ConfigError(where, eco, f"{level!r} is not one of {', '.join(SEVERITIES)}")
        out[family] = level.upper()
    return out
