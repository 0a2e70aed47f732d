"""Which vulnerability database a scan uses: the given one, a fresh cache, a download, or the offline bundle."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from .. import _proc
from ..config import Config, ScanSettings
from ..errors import ConfigError, PipelineError
from ..tools import TRIVY_QUIET
from . import vulndb
from .coverage import DbChoice


def resolve_db(
    cfg: Config, settings: ScanSettings, explicit: Path | None, trivy: str, now: dt.datetime | None = None
) -> DbChoice:
    now = now or dt.datetime.now(dt.UTC)
    attempts: list[str] = []
    given = explicit or settings.vulndb
    if given is not None:
        # Explicit means explicit: no fallback to something else when it is broken.
        cache = as_cache_dir(given)
        info = vulndb.read_info(cache)
        if info.advisories == 0:
            # Zero advisories would pass every image: that is not a scan.
            raise vulndb.VulnDbError(
                f"{info.path} holds no advisories; a scan against it would pass anything",
                hint="build it from OSV advisories (`pipelines vulndb build`) or drop --vulndb / scan.vulndb",
            )
        return DbChoice(cache, "explicit", info)
    cache = settings.cache_dir / "trivy"
    if "cache" in settings.db_sources:
        try:
            info = vulndb.read_info(cache)
            age = now - info.updated_at
            if age > dt.timedelta(hours=settings.db_max_age_hours):
                attempts.append(
                    f"cache {cache}: {age.total_seconds() / 3600:.0f} h old (max {settings.db_max_age_hours} h)"
                )
            elif info.advisories == 0:
                attempts.append(f"cache {cache}: holds no advisories")
            else:
                return DbChoice(cache, "cache", info)
        except vulndb.VulnDbError as exc:
            attempts.append(f"cache {cache}: {exc.what}")
    if "download" in settings.db_sources:
        argv = [trivy, "image", "--download-db-only", "--cache-dir", str(cache), *TRIVY_QUIET]
        for repo in settings.db_repositories:
            argv += ["--db-repository", repo]
        r = _proc.run(argv, timeout=settings.download_timeout, check=False, quiet=True, what="trivy DB download")
        if r.returncode == 0:
            try:
                info = vulndb.read_info(cache)
                # Trivy exits 0 without downloading when the cache's NextUpdate
                # lies ahead: that is not fresh data, whatever the exit code says.
                if now - info.updated_at <= dt.timedelta(hours=settings.db_max_age_hours):
                    return DbChoice(cache, "download", info, tuple(attempts))
                attempts.append(f"download: Trivy kept the cached DB from {info.updated_at:%Y-%m-%d}")
            except vulndb.VulnDbError as exc:
                attempts.append(f"download: {exc.what}")
        else:
            lines = (r.stderr or r.stdout).strip().splitlines()
            attempts.append("download: " + (lines[-1].strip() if lines else f"exit {r.returncode}"))
    if "bundle" in settings.db_sources:
        out = settings.cache_dir / "bundle"
        if settings.offline_advisories is None:
            attempts.append("bundle: scan.offline_advisories: no offline advisories configured")
        else:
            # A configured directory that cannot be read (not a directory, no provenance, a bad record) is bad
            # input: it stops the scan (ConfigError, exit 2) rather than passing for a source that was tried.
            try:
                info = _bundle_db(out, settings)
                return DbChoice(out, "bundle", info, tuple(attempts))
            except ConfigError:
                raise
            except PipelineError as exc:
                attempts.append(f"bundle: {exc.what}")
    if settings.allow_no_vulndb:
        return DbChoice(None, "none", None, tuple(attempts))
    raise vulndb.VulnDbError(
        "no vulnerability database could be had, and scanning without one is not allowed",
        seen="\n".join(attempts) or "no source is enabled in scan.db_sources",
        hint="pass --vulndb PATH, build one with `pipelines vulndb build --from OSV_DIR`, or (knowingly) set "
        "scan.allow_no_vulndb = true",
    )


def as_cache_dir(path: Path) -> Path:
    """Accept the cache dir, its db/ dir or the trivy.db file itself."""
    if path.name == "trivy.db":
        return path.parent.parent
    if (path / "trivy.db").exists():
        return path.parent
    return path


def _bundle_db(out: Path, settings: ScanSettings) -> vulndb.DbInfo:
    """The configured OSV directory (scan.offline_advisories) as a Trivy DB under ``out``.

    Built on first use, and again whenever the directory's files, its provenance or the defaults change.
    """
    src = settings.offline_advisories
    if src is None:
        raise ConfigError(
            "scan.offline_advisories",
            "",
            "no offline advisories configured",
            hint="point it at a directory of OSV files (a mirror of an advisory database), or drop 'bundle' "
            "from scan.db_sources",
        )
    if not src.is_dir():
        raise ConfigError(str(src), "", "scan.offline_advisories is not a directory")
    stamp = out / ".bundle-digest"
    severity = dict(sorted((settings.default_severity or {}).items()))
    # The writer's own code is an input too: a fixed writer must not keep serving a DB built by the old one.
    writer = hashlib.sha256(b"".join(p.read_bytes() for p in vulndb.writer_sources())).hexdigest()[:16]
    provenance = json.dumps(dict(sorted(settings.offline_provenance.items())))
    # The READMEs provenance and coverage are read from: a changed `covers`, commit or date rebuilds.
    readmes = hashlib.sha256(
        b"".join(p.read_bytes() for p in (src / "README.md", src.parent / "README.md") if p.is_file())
    )
    provenance += ":" + readmes.hexdigest()[:16]
    digest = f"{src}:{vulndb.advisory_dir_digest(src)}:{provenance}:{json.dumps(severity)}:{writer}"
    if stamp.exists() and stamp.read_text() == digest:
        return vulndb.read_info(out)
    data = vulndb.load_advisory_dir(src, provenance=settings.offline_provenance, default_severity=severity)
    info = vulndb.build_db(
        data.advisories,
        out,
        source=data.source_line(),
        covers=data.provenance.ecosystems,
        notes=data.notes,
        data_as_of=data.as_of(),
    )
    # Why each record or entry was left out, for whoever asks what the data did not cover.
    (out / "skipped.txt").write_text("".join(f"{n}\n" for n in data.notes))
    stamp.write_text(digest)
    return info
