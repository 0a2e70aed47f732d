"""An offline Trivy vulnerability database, built from OSV advisories.

Trivy looks vulnerabilities up in a BoltDB file (``CACHE/db/trivy.db``) that
it normally downloads from a container registry. This machine cannot reach
that registry, and air-gapped sites want to scan against their own advisories
anyway. So the pipeline builds the database itself:

1. :func:`load_osv` (:mod:`.osv`) reads advisories in the OSV format
   (https://ossf.github.io/osv-schema/), as JSON or YAML files
   (:mod:`.reading`), validated record by record against :mod:`.osv_schema`
   (a bad record is an error naming its file and key), and keeps the
   ecosystems Trivy can match against what the pipeline ships: Debian
   releases (matched by SOURCE package) and PyPI. Severities come from
   :mod:`.severity`, version ranges become Trivy's in :mod:`.ranges`.
2. :func:`merge` (:mod:`.merge`) folds what real feeds split. Nothing is dropped.
3. :func:`build_db` (:mod:`.build`) writes them in the layout (:mod:`.layout`)
   Trivy's Debian and pip detectors read, through the BoltDB writer in
   :mod:`.boltdb`, plus the ``metadata.json`` Trivy checks before it opens
   the file.
4. Scans then run ``trivy --cache-dir CACHE --skip-db-update ...``, and
   :func:`read_info` (:mod:`.dbinfo`) tells the scan stage what it is
   scanning against (and fails loudly when the database is missing or
   damaged: a scan against a broken database must never pass as clean).

The scan's offline source is a directory of OSV files the project configures
(``scan.offline_advisories``, e.g. a snapshot of the PyPA advisory database),
read by :func:`load_advisory_dir` with its provenance (:func:`read_provenance`),
both in :mod:`.offline`. :func:`write_bundle` and :func:`load_bundle`
(:mod:`.bundle`) pack such a directory into one file for moving it around;
nothing is shipped inside the package. :mod:`.oci` publishes a built database
as the OCI artifact Trivy downloads; it is imported on its own, by the command
that pushes.
"""

from __future__ import annotations

from ...dbseverity import SEVERITIES
from ...debversion import debian_version_cmp
from .boltdb import PAGE_SIZE, BoltReader, bolt_file
from .build import build_db
from .bundle import BUNDLE_FORMAT, MAX_BUNDLE_BYTES, load_bundle, write_bundle
from .dbinfo import count_advisories, read_info
from .layout import SCHEMA_VERSION, covers_buckets, ecosystem_of_bucket
from .merge import merge
from .offline import AdvisoryDir, Provenance, advisory_dir_digest, load_advisory_dir, read_provenance, writer_sources
from .osv import iter_notes, load_osv, parse_osv
from .pipnames import pip_canonical, pip_name, pip_spellings
from .reading import MAX_RECORD_BYTES
from .records import Advisory, DbInfo, VulnDbError
from .severity import cvss_severity, parse_default_severity, severity_of_score

# Another name for pip_name, which callers use.
normalise_pip = pip_name

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_BUNDLE_BYTES",
    "MAX_RECORD_BYTES",
    "PAGE_SIZE",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "Advisory",
    "AdvisoryDir",
    "BoltReader",
    "DbInfo",
    "Provenance",
    "VulnDbError",
    "advisory_dir_digest",
    "bolt_file",
    "build_db",
    "count_advisories",
    "covers_buckets",
    "cvss_severity",
    "debian_version_cmp",
    "ecosystem_of_bucket",
    "iter_notes",
    "load_advisory_dir",
    "load_bundle",
    "load_osv",
    "merge",
    "normalise_pip",
    "parse_default_severity",
    "parse_osv",
    "pip_canonical",
    "pip_name",
    "pip_spellings",
    "read_info",
    "read_provenance",
    "severity_of_score",
    "write_bundle",
    "writer_sources",
]
