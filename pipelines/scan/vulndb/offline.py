"""The scan's offline source: a directory of OSV files (``scan.offline_advisories``) and where its data came from.

:func:`load_advisory_dir` reads it with its provenance (:func:`read_provenance`);
:func:`advisory_dir_digest` and :func:`writer_sources` say when a database
built from it is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ... import inputs
from ...errors import ConfigError
from . import reading
from .osv import parse_osv
from .reading import osv_files, read_record_file
from .records import Advisory

PROVENANCE_KEYS = ("name", "repository", "commit", "date", "license")
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(.+?)\s*\|\s*$")


@dataclass(frozen=True)
class Provenance:
    name: str  # "PyPA advisory database"
    repository: str  # "github.com/pypa/advisory-database"
    commit: str
    date: str  # the commit's date, YYYY-MM-DD
    license: str
    # What the data covers in full, as OSV names its ecosystems ("PyPI"): declared by whoever packs it.
    ecosystems: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.name} ({self.repository}@{self.commit[:12]}, {self.date}, {self.license})"


def read_provenance(directory: Path, given: Mapping[str, str] | None = None) -> Provenance:
    """Where an advisory directory's data comes from: the config's word, else its README's table.

    The README is the directory's own or, for an unmodified snapshot whose README is upstream's, the one
    beside it that describes the snapshot: a Markdown table with rows ``commit`` and ``commit date`` (or
    ``date``), and ``repository`` or ``taken from``. A repository, commit and date are required: a scan
    must be able to say which data it used.
    """
    fields = {k: v for k, v in (given or {}).items() if v}
    read_from: list[str] = []
    for readme in (directory / "README.md", directory.parent / "README.md"):
        if all(k in fields for k in ("repository", "commit", "date")):
            break
        if not readme.is_file():
            continue
        read_from.append(str(readme))
        text = inputs.read_text(readme)
        rows: dict[str, str] = {}
        for line in text.splitlines():
            m = _ROW.match(line)
            if m:
                rows.setdefault(m.group(1).lower().strip("`* "), m.group(2).strip())
        repo = re.search(r"(github\.com/[\w.-]+/[\w.-]+)", rows.get("repository") or rows.get("taken from") or "")
        commit = re.search(r"\b([0-9a-f]{40})\b", rows.get("commit", ""))
        date = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", rows.get("commit date") or rows.get("date") or "")
        if repo and commit and date:
            fields.setdefault("repository", repo.group(1).removesuffix(".git"))
            fields.setdefault("commit", commit.group(1))
            fields.setdefault("date", date.group(1))
            data = rows.get("data", "")
            if data and "name" not in fields:
                fields["name"] = data.split("(", 1)[0].strip()
            if rows.get("covers") and "covers" not in fields:
                fields["covers"] = rows["covers"].strip("` ")
            lic = re.search(r"licensed\s+(?:under\s+)?([A-Za-z0-9][\w.-]*)", text, re.IGNORECASE)
            if lic and "license" not in fields:
                fields["license"] = lic.group(1).rstrip(".,")
    missing = [k for k in ("repository", "commit", "date") if k not in fields]
    if missing:
        raise ConfigError(
            str(directory),
            "",
            f"the offline advisories' provenance lacks {', '.join(missing)}"
            + (f" (read {', '.join(read_from)})" if read_from else " (no README.md in it or beside it)"),
            hint='give it in the config: [scan] offline_provenance = { repository = "github.com/OWNER/NAME", '
            'commit = "...", date = "YYYY-MM-DD" }',
        )
    try:
        datetime.strptime(fields["date"], "%Y-%m-%d")
    except ValueError:
        raise ConfigError(
            str(directory), "", f"the offline advisories' date {fields['date']!r} is not a date"
        ) from None
    return Provenance(
        name=fields.get("name") or directory.name,
        repository=fields["repository"],
        commit=fields["commit"],
        date=fields["date"],
        license=fields.get("license") or "license not stated",
        # Only what the config or the README declares counts as covered: never inferred from the records.
        ecosystems=tuple(e.strip() for e in fields.get("covers", "").split(",") if e.strip()),
    )


@dataclass(frozen=True)
class AdvisoryDir:
    """An OSV directory read for the offline database: what came in, what could be used, what was not and why."""

    provenance: Provenance
    advisories: list[Advisory]
    records: int  # OSV files read
    unused: int  # records none of whose entries could go into the database (withdrawn, nothing comparable)
    notes: list[str]  # one line per record or entry left out (or trimmed), naming its file and the reason

    def source_line(self) -> str:
        """The provenance as every report's first line shows it, with how much of the data is in the DB."""
        return f"{self.provenance.line()}; {self.records} records, {self.unused} skipped"

    def as_of(self) -> datetime:
        """The end of the snapshot's commit day: no record in it can be newer."""
        day = datetime.strptime(self.provenance.date, "%Y-%m-%d").replace(tzinfo=UTC)
        return day + timedelta(days=1, seconds=-1)


def load_advisory_dir(
    directory: Path, *, provenance: Mapping[str, str] | None = None, default_severity: Mapping[str, str] | None = None
) -> AdvisoryDir:
    """Every OSV record under ``directory`` (validated, as :func:`load_osv`), with its provenance."""
    prov = read_provenance(directory, provenance)
    if not directory.is_dir():
        raise ConfigError(str(directory), "", "is not a directory of OSV advisories")
    files = osv_files(directory)
    if not files:
        raise ConfigError(str(directory), "", "no advisories: holds no OSV files (*.json, *.yaml, *.yml)")
    notes: list[str] = []
    advisories: list[Advisory] = []
    unused = 0
    for file, data in _records(directory, files):
        got = parse_osv(data, str(file), notes, default_severity=default_severity)
        unused += not got
        advisories.extend(got)
    return AdvisoryDir(prov, advisories, len(files), unused, notes)


def _records(directory: Path, files: list[Path]) -> list[tuple[Path, object]]:
    """Each file's data, read through :func:`read_record_file` or, for a snapshot read before, from the cache.

    Parsing thousands of YAML records takes most of a bundle build (about 15 s for the PyPA database) and
    every new project or changed writer builds again; the data itself only changes with the files. The
    cache is keyed by every file's path and content (a fresh clone or copy of the same snapshot has new
    mtimes but the same data; hashing it costs about 0.5 s against 15 s of parsing) and by the reader's
    own code, it holds plain JSON (never code), and a cache that cannot be read or written is only slower.
    """
    reader = hashlib.sha256(Path(reading.__file__).read_bytes()).hexdigest()[:16]
    cache = _cache_root() / f"{_content_digest(directory, files)}-{reader}.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and list(cached) == [f.relative_to(directory).as_posix() for f in files]:
            return [(directory / rel, data) for rel, data in cached.items()]
    except (OSError, ValueError):
        pass
    records = [(file, read_record_file(file)) for file in files]
    try:
        text = json.dumps({f.relative_to(directory).as_posix(): data for f, data in records})
        cache.parent.mkdir(parents=True, exist_ok=True)
        part = cache.with_name(f".{cache.name}.{os.getpid()}")
        part.write_text(text, encoding="utf-8")
        os.replace(part, cache)  # whole or absent, also with two builds at once
    except (OSError, TypeError, ValueError):
        pass
    return records


def _content_digest(directory: Path, files: list[Path]) -> str:
    """Every file's path and content; an unreadable file gives a key no cache holds (it is reported when read)."""
    h = hashlib.sha256()
    for file in files:
        h.update(file.relative_to(directory).as_posix().encode() + b"\0")
        try:
            h.update(hashlib.sha256(file.read_bytes()).digest() if file.is_file() else b"not a file")
        except OSError:
            h.update(os.urandom(16))
    return h.hexdigest()[:32]


def _cache_root() -> Path:
    """The user's cache directory for parsed advisory snapshots."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipelines" / "osv"


def advisory_dir_digest(directory: Path) -> str:
    """A cheap fingerprint of an OSV directory (every file's path, size and mtime): a changed snapshot rebuilds."""
    h = hashlib.sha256()
    for p in osv_files(directory):
        st = p.stat()
        h.update(f"{p.relative_to(directory).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def writer_sources() -> tuple[Path, ...]:
    """The code that decides what a built database holds, in a stable order.

    A database cached from a directory is rebuilt when this code changes: a
    fixed writer must not keep serving what the old one wrote. The files are
    read, not imported (a warm scan does not build the record models).
    """
    package = Path(__file__).parent
    # debversion picks the fix among several; the rest of this package reads, rates, merges and writes.
    return (*sorted(package.glob("*.py")), package.parent.parent / "debversion.py")
