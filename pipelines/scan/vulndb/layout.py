"""Where things go in Trivy's database: the schema version, the buckets, which ecosystem each serves.

Trivy's Debian detector reads a bucket per release ("debian 12"); its pip
detector reads every bucket named "pip::<data source>". A few buckets hold
metadata rather than advisories, one of them ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import ConfigError

SCHEMA_VERSION = 2  # the trivy-db schema Trivy's --skip-db-update insists on

PIP_BUCKET = "pip::OSV advisories"
# Buckets holding metadata rather than advisories.
DATA_SOURCE_BUCKET = "data-source"
VULNERABILITY_BUCKET = "vulnerability"
# Ours: Trivy reads buckets by name and never looks at this one.
INFO_BUCKET = "x-pipelines"
INFO_KEY = "info"
NOT_ADVISORIES = {DATA_SOURCE_BUCKET, VULNERABILITY_BUCKET, INFO_BUCKET, "vulnerability-id"}

_DEBIAN_ECOSYSTEM = re.compile(r"^Debian:(\d+)(?:\.\d+)*$")
_DEBIAN_BUCKET = re.compile(r"^debian \d+$")


def bucket_of(ecosystem: str) -> str | None:
    """The bucket an OSV ecosystem's advisories go in ("PyPI" -> "pip", "Debian:12" -> "debian 12"); None if none."""
    if ecosystem == "PyPI":
        return "pip"
    m = _DEBIAN_ECOSYSTEM.match(ecosystem)
    return f"debian {m.group(1)}" if m else None


def is_debian_bucket(ecosystem: str) -> bool:
    return _DEBIAN_BUCKET.match(ecosystem) is not None


def covers_buckets(ecosystems: Iterable[str], *, where: str) -> tuple[str, ...]:
    """OSV ecosystem names a source declares (``PyPI``, ``Debian:12``) as the buckets scans match ("pip", ...)."""
    out: list[str] = []
    for eco in ecosystems:
        bucket = bucket_of(eco)
        if bucket is None:
            raise ConfigError(
                where,
                "",
                f"{eco!r} is not an ecosystem this database can hold",
                hint="name PyPI or Debian:N (e.g. Debian:12), as OSV spells them",
            )
        if bucket not in out:
            out.append(bucket)
    return tuple(sorted(out))


@dataclass(frozen=True)
class Source:
    id: str  # Trivy's SourceID: the key of VendorSeverity it reads for findings from this bucket
    name: str


def source_of(ecosystem: str) -> Source:
    if ecosystem == "pip":
        return Source("osv", "OSV advisories (PyPI)")
    return Source("debian", f"OSV advisories ({ecosystem})")


def bucket_name(ecosystem: str) -> str:
    # Trivy finds pip advisories in every bucket named "pip::<data source>".
    return PIP_BUCKET if ecosystem == "pip" else ecosystem


def ecosystem_of_bucket(bucket: str) -> str:
    """The ecosystem a Trivy bucket serves: "pip::GitHub Security Advisory pip" -> "pip", "debian 12" as is."""
    return bucket.split("::", 1)[0] if "::" in bucket else bucket


def is_advisory_bucket(name: bytes) -> bool:
    bucket = name.decode(errors="replace")
    return bucket.startswith("pip::") or is_debian_bucket(bucket)
