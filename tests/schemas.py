"""Published JSON Schemas the tests validate the pipeline's outputs against, fetched, never committed.

The repository holds only what this project wrote, so the SARIF 2.1.0 schema comes from a package registry,
pinned by hash, into a cache outside the tree. The Nox sessions that run tests fetch it first
(`python tests/schemas.py fetch`, the one step that needs the network); the tests then read the cached copy,
so the unit tier stays offline. A missing copy skips the test on a developer machine and fails it under CI=true.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Beside Nox's virtualenvs: ignored by git, per clone, removed with `.nox`.
CACHE = Path(os.environ.get("PIPELINES_TEST_SCHEMAS", ROOT / ".nox" / "_schemas"))


@dataclass(frozen=True)
class Published:
    name: str
    url: str
    sha256: str  # of the downloaded archive: a changed upload is refused, not trusted
    member: str  # the schema's path inside the archive
    title: str  # what the schema must call itself once extracted


# Microsoft's SARIF tooling publishes the final SARIF 2.1.0 schema (rtm.5, the one SchemaStore serves) on npm,
# MIT licensed. The OASIS errata text adds type keywords beside enums and requires a region to start somewhere;
# test_render checks regions itself.
SARIF = Published(
    name="sarif-2.1.0-rtm.5.json",
    url="https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz",
    sha256="748e2c3d1a842e7bb258416685c7ea3a0da40005b72267b2052c2856d48ad102",
    member="package/lib/schemas/sarif-2.1.0-rtm.5.json",
    title="Static Analysis Results Format (SARIF) Version 2.1.0",
)
ALL = (SARIF,)


def fetch(schema: Published, cache: Path = CACHE, timeout: float = 60.0) -> Path:
    """Download, check and extract one schema into ``cache``; a present, valid copy is kept as it is."""
    dest = cache / schema.name
    if dest.exists() and _valid(schema, dest.read_bytes()):
        return dest
    with urllib.request.urlopen(schema.url, timeout=timeout) as response:  # noqa: S310 (a fixed https URL)
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != schema.sha256:
        raise SystemExit(f"{schema.url}: sha256 {digest}, expected {schema.sha256}; not using it")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(schema.member)
        if member is None:
            raise SystemExit(f"{schema.url}: no file {schema.member} in the archive")
        text = member.read()
    if not _valid(schema, text):
        raise SystemExit(f"{schema.url}: {schema.member} is not titled {schema.title!r}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(text)
    tmp.replace(dest)
    return dest


def _valid(schema: Published, text: bytes) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and str(doc.get("title", "")).startswith(schema.title)


def cached(schema: Published, cache: Path = CACHE) -> Path | None:
    """The cached copy of ``schema`` if it is there and is the schema it claims to be."""
    path = cache / schema.name
    return path if path.exists() and _valid(schema, path.read_bytes()) else None


def main(argv: list[str]) -> int:
    if argv != ["fetch"]:
        print("usage: python tests/schemas.py fetch", file=sys.stderr)
        return 2
    for schema in ALL:
        try:
            print(f"schema {schema.name}: {fetch(schema)}")
        except OSError as exc:
            print(f"could not fetch {schema.url}: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
