"""The offline bundle: every OSV record of a directory, unchanged, in one gzip'd JSON file with its provenance.

For moving a snapshot around; nothing is shipped inside the package.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .build import atomic_write
from .layout import covers_buckets
from .offline import PROVENANCE_KEYS, Provenance
from .osv import parse_osv
from .reading import osv_files, parse_text, read_record_file
from .records import Advisory

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
BUNDLE_FORMAT = "pipelines-osv-bundle/1"


def write_bundle(source_dir: Path, out: Path, provenance: Provenance) -> int:
    """Pack every OSV file under ``source_dir`` unchanged into one gzip'd JSON file; the record count.

    Each record is parsed and validated first, so a bundle never holds what
    the scan could not read.
    """
    covers_buckets(provenance.ecosystems, where="--covers")
    notes: list[str] = []
    records: list[dict[str, Any]] = []
    for file in osv_files(source_dir):
        data = read_record_file(file)
        parse_osv(data, str(file), notes)
        records.append({"path": file.relative_to(source_dir).as_posix(), "record": data})
    if not records:
        raise ConfigError(str(source_dir), "", "no advisories: holds no OSV files (*.json, *.yaml, *.yml)")
    body = {
        "format": BUNDLE_FORMAT,
        "provenance": {
            "name": provenance.name,
            "repository": provenance.repository,
            "commit": provenance.commit,
            "date": provenance.date,
            "license": provenance.license,
            "ecosystems": list(provenance.ecosystems),
        },
        "records": records,
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, gzip.compress(raw, compresslevel=9, mtime=0))
    return len(records)


def load_bundle(
    file: Path, *, notes: list[str] | None = None, default_severity: Mapping[str, str] | None = None
) -> tuple[Provenance, list[Advisory]]:
    """The provenance and advisories of a bundle written by :func:`write_bundle`."""
    name = str(file)
    try:
        packed = file.read_bytes()
        # Unpacked with a cap: a few KiB of gzip can claim gigabytes.
        unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = unpacker.decompress(packed, MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(name, "", f"cannot be read: {exc.strerror}") from None
    except zlib.error as exc:
        raise ConfigError(name, "", f"is not a gzip'd bundle ({exc})") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ConfigError(name, "", f"unpacks to more than {MAX_BUNDLE_BYTES} bytes, more than a bundle may hold")
    if not unpacker.eof:
        raise ConfigError(name, "", "is truncated")
    data = parse_text(raw.decode("utf-8", errors="replace"), name, yaml_=False)
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ConfigError(name, "format", f"is not a {BUNDLE_FORMAT} bundle")
    prov = data.get("provenance")
    keys = PROVENANCE_KEYS
    if not isinstance(prov, dict) or not all(isinstance(prov.get(k), str) and prov.get(k) for k in keys):
        raise ConfigError(name, "provenance", f"must give {', '.join(keys)}")
    declared = prov.get("ecosystems", [])
    if not isinstance(declared, list) or not all(isinstance(e, str) for e in declared):
        raise ConfigError(name, "provenance.ecosystems", "must be a list of OSV ecosystem names (PyPI, Debian:12)")
    covers_buckets(declared, where=f"{name}: provenance.ecosystems")
    records = data.get("records")
    if not isinstance(records, list) or not records:
        raise ConfigError(name, "records", "holds no advisories")
    sink: list[str] = notes if notes is not None else []
    advisories: list[Advisory] = []
    for i, item in enumerate(records):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ConfigError(name, f"records[{i}]", "expected {path, record}")
        where = f"{name}: {item['path']}"
        advisories.extend(parse_osv(item.get("record"), where, sink, default_severity=default_severity))
    name_, repository, commit, date, license_ = (str(prov[k]) for k in keys)
    return Provenance(name_, repository, commit, date, license_, tuple(declared)), advisories
