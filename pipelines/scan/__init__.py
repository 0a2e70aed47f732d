"""The scan stage: Trivy (and optional Snyk), one gate, the waiver ledger, SBOMs, reports.

Scanning fails closed. The vulnerability database is resolved explicitly
(given path, fresh local cache, download, then the configured offline advisories) and
every report says which one was used; when none can be had the stage stops
unless the config allows scanning without one, and then the report's first
line says vulnerabilities were NOT checked. Trivy's exit code is never the
verdict (its JSON is), but a non-zero one is an error, whatever file it left;
an empty or missing result is an error too.

Each image is scanned by its image ID, never through a tag: the build's images
are resolved against the build record first (see pipelines.subjects), and
Trivy's answer must name that same ID and, when it found an OS, list its
packages. The verdict names the IDs Trivy reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _proc, baseline, refs, report, waivers
from ..config import Config, ScanSettings
from ..engine import Engine
from ..errors import ConfigError, InputError, PipelineError, ScanError
from ..findings import Finding, Severity
from ..result import Context, Result, Table
from ..tools import TRIVY_QUIET, Toolchain, trivy_binary
from ..trivyresult import check_image_id
from ..trivyresult import read_result as _read_result
from . import vulndb

if TYPE_CHECKING:
    from ..verdicts import Coverage as CoverageRecord

LEVELS = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
NOT_CHECKED = "VULNERABILITIES WERE NOT CHECKED: no vulnerability database was available"


def level(sev: str) -> int:
    return LEVELS.index(sev) if sev in LEVELS else 0


def lint_severity(sev: str) -> Severity:
    """For SARIF levels and waiver matching: CRITICAL/HIGH error, MEDIUM warning, else note."""
    return Severity.ERROR if level(sev) >= 3 else Severity.WARNING if level(sev) == 2 else Severity.INFO


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Issue:
    image: str  # the image name (service) or reference scanned
    kind: str  # vulnerability | secret | misconfiguration
    id: str
    severity: str  # UNKNOWN LOW MEDIUM HIGH CRITICAL
    title: str
    package: str = ""
    installed: str = ""
    fixed: str = ""
    target: str = ""  # file or package class inside the image
    line: int = 0
    tool: str = "trivy"

    def as_finding(self) -> Finding:
        extra = (
            ("image", self.image),
            ("package", self.package),
            ("installed", self.installed),
            ("fixed", self.fixed),
            ("kind", self.kind),
            ("scan_severity", self.severity),
        )
        where = f"{self.image}: {self.package} {self.installed}".strip() if self.package else self.image
        msg = f"{self.severity} {self.id} in {where}"
        if self.fixed:
            msg += f" (fixed in {self.fixed})"
        msg += f": {self.title}" if self.title else ""
        return Finding(
            self.tool, self.id, lint_severity(self.severity), msg, self.target or self.image, self.line, extra=extra
        )


def parse_trivy(data: Any, image: str) -> tuple[list[Issue], int]:
    """Issues and the number of packages in one Trivy JSON report."""
    if not isinstance(data, dict) or ("Results" not in data and "ArtifactName" not in data):
        raise ScanError(f"Trivy's result for {image} is not a Trivy report")
    issues: list[Issue] = []
    packages = 0
    for r in data.get("Results") or []:
        target = str(r.get("Target", ""))
        packages += len(r.get("Packages") or [])
        for v in r.get("Vulnerabilities") or []:
            issues.append(
                Issue(
                    image,
                    "vulnerability",
                    v["VulnerabilityID"],
                    v.get("Severity", "UNKNOWN"),
                    v.get("Title", "") or v.get("Description", "")[:120],
                    v.get("PkgName", ""),
                    v.get("InstalledVersion", ""),
                    v.get("FixedVersion", ""),
                    target,
                )
            )
        for s in r.get("Secrets") or []:
            issues.append(
                Issue(
                    image,
                    "secret",
                    s.get("RuleID", "secret"),
                    s.get("Severity", "UNKNOWN"),
                    s.get("Title", ""),
                    target=target,
                    line=int(s.get("StartLine") or 0),
                )
            )
        for m in r.get("Misconfigurations") or []:
            if m.get("Status", "FAIL") != "FAIL":
                continue
            cause = m.get("CauseMetadata") or {}
            issues.append(
                Issue(
                    image,
                    "misconfiguration",
                    m.get("ID") or m.get("AVDID", "misconfig"),
                    m.get("Severity", "UNKNOWN"),
                    m.get("Title", ""),
                    target=target,
                    line=int(cause.get("StartLine") or 0),
                )
            )
    return issues, packages


def parse_snyk(data: Any, image: str) -> list[Issue]:
    """Issues from `snyk container test --json` (one project or a list of them)."""
    projects = data if isinstance(data, list) else [data]
    issues = []
    for p in projects:
        if not isinstance(p, dict):
            raise ScanError(f"Snyk's result for {image} is not a Snyk report")
        if p.get("error") and not p.get("vulnerabilities"):
            raise ScanError(f"Snyk could not test {image}", seen=str(p.get("error")))
        for v in p.get("vulnerabilities") or []:
            fixed = v.get("nearestFixedInVersion") or ", ".join(v.get("fixedIn") or [])
            issues.append(
                Issue(
                    image,
                    "vulnerability",
                    v.get("id", "snyk"),
                    str(v.get("severity", "")).upper(),
                    v.get("title", ""),
                    v.get("packageName", ""),
                    v.get("version", ""),
                    fixed,
                    target=p.get("displayTargetFile", "") or "",
                    tool="snyk",
                )
            )
    # Snyk lists one entry per vulnerable path; the gate wants each issue once.
    return list(dict.fromkeys(issues))


# --------------------------------------------------------------------------- vulnerability data


@dataclass(frozen=True)
class DbChoice:
    cache_dir: Path | None
    source: str  # explicit | cache | download | bundle | none
    info: vulndb.DbInfo | None
    attempts: tuple[str, ...] = ()

    def statement(self, coverage: Coverage | None = None) -> str:
        """The report's first line: which data, how much per ecosystem, how new, and whether it covers the images."""
        if self.info is None:
            return NOT_CHECKED
        i = self.info
        counts = ", ".join(f"{eco} {n}" for eco, n in i.ecosystems.items() if n) or "none"
        dated = "newest advisory" if i.newest_advisory else "built"
        line = (
            f"Vulnerability DB: {self.source} ({i.source}): {i.advisories} advisories ({counts}); "
            f"{dated} {i.data_date:%Y-%m-%d}" + (f" ({coverage.age_days} days old)" if coverage else "")
        )
        return line + (f"; {coverage.verdict()}" if coverage else "")

    @property
    def fallback(self) -> str:
        """Why the sources before this one were not used, when the scan fell back to the bundle or to nothing."""
        if self.source not in ("bundle", "none"):
            return ""
        return "; ".join(self.attempts) or "no other source is enabled in scan.db_sources"


@dataclass(frozen=True)
class Coverage:
    """Whether the vulnerability data fits the images: every ecosystem found has data, and it is recent."""

    age_days: int
    max_age_days: int
    image_ecosystems: Mapping[str, tuple[str, ...]]  # image -> ecosystems Trivy found packages of
    missing: Mapping[str, tuple[str, ...]]  # image -> those the data source does not declare it covers
    accepted: bool  # scan.accept_limited_coverage
    empty: bool = False  # the database holds no advisories at all
    declared: tuple[str, ...] = ()  # the ecosystems the data source declares it covers

    @property
    def stale(self) -> bool:
        return self.age_days > self.max_age_days

    @property
    def limited(self) -> bool:
        return self.empty or self.stale or any(self.missing.values())

    def reasons(self) -> list[str]:
        out = ["the database holds no advisories"] if self.empty else []
        gaps = sorted({e for m in self.missing.values() for e in m})
        if gaps:
            out.append(self._gap(gaps))
        if self.stale:
            out.append(f"data {self.age_days} days old (scan.max_data_age_days = {self.max_age_days})")
        return out

    def _gap(self, gaps: Sequence[str]) -> str:
        declared = ", ".join(self.declared) or "nothing"
        return f"the data does not cover {', '.join(gaps)} (its source declares {declared})"

    def verdict(self) -> str:
        found = sorted({e for es in self.image_ecosystems.values() for e in es})
        if not self.limited:
            return f"covers the images' ecosystems ({', '.join(found) or 'none found'})"
        why = "; ".join(self.reasons())
        if self.accepted:
            return f"COVERAGE LIMITED: {why} (accepted by scan.accept_limited_coverage)"
        return f"COVERAGE INSUFFICIENT, gate fails: {why}"

    def findings(self) -> list[Finding]:
        """The gate's share: one finding per image the data does not cover (none once accepted)."""
        if not self.limited or self.accepted:
            return []
        out = []
        for image in self.image_ecosystems:
            gaps = self.missing.get(image, ())
            problems = (
                (["the database holds no advisories"] if self.empty else [])
                + ([self._gap(gaps)] if gaps else [])
                + ([f"vulnerability data is {self.age_days} days old (max {self.max_age_days})"] if self.stale else [])
            )
            if not problems:
                continue
            out.append(
                Finding(
                    "pipelines",
                    COVERAGE_RULE,
                    Severity.ERROR,
                    f"vulnerability data does not cover {image}: {'; '.join(problems)}",
                    image,
                    hint="use current data for every ecosystem (scan.db_repositories, --vulndb), or knowingly set "
                    "scan.accept_limited_coverage = true",
                    extra=(("image", image), ("kind", "coverage"), ("scan_severity", "CRITICAL")),
                )
            )
        return out


COVERAGE_RULE = "PL-V001"

# Trivy's package types -> the ecosystem its database serves them from (bucket "pip::...", "npm::...").
_LANG_ECOSYSTEMS = {
    "python-pkg": "pip",
    "pip": "pip",
    "pipenv": "pip",
    "poetry": "pip",
    "uv": "pip",
    "conda-pkg": "conda",
    "node-pkg": "npm",
    "npm": "npm",
    "yarn": "npm",
    "pnpm": "npm",
    "bun": "npm",
    "gobinary": "go",
    "gomod": "go",
    "jar": "maven",
    "pom": "maven",
    "gradle": "maven",
    "sbt": "maven",
    "cargo": "cargo",
    "rustbinary": "cargo",
    "gemspec": "rubygems",
    "bundler": "rubygems",
    "composer": "composer",
    "composer-vendor": "composer",
    "nuget": "nuget",
    "dotnet-core": "nuget",
    "packages-props": "nuget",
    "hex": "erlang",
    "pub": "pub",
    "swift": "swift",
    "cocoapods": "cocoapods",
}


def image_ecosystems(data: Any) -> tuple[str, ...]:
    """The ecosystems of the packages in one Trivy image report, named as Trivy's DB buckets name them."""
    found: set[str] = set()
    if not isinstance(data, dict):
        return ()
    os_meta = (data.get("Metadata") or {}).get("OS") or {}
    for r in data.get("Results") or []:
        if not r.get("Packages"):
            continue
        kind = str(r.get("Type", ""))
        if r.get("Class") == "os-pkgs":
            family = str(os_meta.get("Family") or kind)
            version = str(os_meta.get("Name") or "")
            # Trivy's buckets: Debian per major release ("debian 12" for 12.15), Alpine per minor.
            parts = version.split(".")
            release = parts[0] if family == "debian" else ".".join(parts[:2]) if family == "alpine" else version
            found.add(f"{family} {release}".strip())
        else:
            found.add(_LANG_ECOSYSTEMS.get(kind, kind))
    return tuple(sorted(found))


def assess_coverage(
    db: DbChoice, per_image: Mapping[str, tuple[str, ...]], settings: ScanSettings, now: dt.datetime
) -> Coverage | None:
    if db.info is None:
        return None
    # What the source declares, not what it happens to hold: one stray advisory is no coverage.
    have = set(db.info.covers)
    age = max(0, (now - db.info.data_date).days)
    return Coverage(
        age_days=age,
        max_age_days=settings.max_data_age_days,
        image_ecosystems=dict(per_image),
        missing={image: tuple(e for e in ecos if e not in have) for image, ecos in per_image.items()},
        accepted=settings.accept_limited_coverage,
        empty=db.info.advisories == 0,
        declared=tuple(db.info.covers),
    )


def coverage_record(db: DbChoice, coverage: Coverage | None) -> CoverageRecord:
    """What travels with the verdict (its record, the reports, the signed attestation): the data and its reach."""
    from ..verdicts import Coverage as Record

    if db.info is None or coverage is None:
        return Record(
            source=db.source,
            date="",
            ecosystems=(),
            limited=True,
            reason="no vulnerability database: vulnerabilities were not checked",
            fallback=db.fallback,
        )
    return Record(
        source=f"{db.source}: {db.info.source}",
        date=f"{db.info.data_date:%Y-%m-%d}",
        ecosystems=tuple(db.info.covers),
        limited=coverage.limited,
        reason="; ".join(coverage.reasons()),
        fallback=db.fallback,
    )


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


# --------------------------------------------------------------------------- running the scanners


@dataclass
class ImageResult:
    name: str
    ref: str
    packages: int = 0
    issues: list[Issue] = field(default_factory=list)
    seconds: float = 0.0
    raw: str = ""
    sbom: str = ""
    snyk: str = ""
    ecosystems: tuple[str, ...] = ()  # what the vulnerability data must cover for this image
    image_id: str = ""
    reused: bool = False  # Trivy's result for this very image, DB and scanners was reused


def _scan_image(
    trivy: str, tools: Toolchain, name: str, ref: str, db: DbChoice, settings: ScanSettings, out: Path, work: Path
) -> ImageResult:
    start = time.monotonic()
    res = ImageResult(name, ref)
    scanners = [s for s in settings.scanners if s in ("vuln", "secret") and (s != "vuln" or db.info is not None)]
    raw = out / f"{name}.trivy.json"
    sbom = out / f"{name}.cdx.json"
    # ``ref`` is an image ID (see _targets): what is saved, scanned and kept is that image, whatever tags do.
    # An image ID names its whole content: with the same DB, Trivy and scanners, Trivy's answer
    # is the same, so a warm scan of an unchanged image reuses it instead of saving and reading
    # every layer again.
    with Engine.connect() as engine:
        asked = engine.image(ref).id
    key = _result_key(asked, db, trivy, scanners)
    cached = settings.cache_dir / "results" / key
    if (cached / "trivy.json").is_file() and (cached / "cdx.json").is_file():
        shutil.copyfile(cached / "trivy.json", raw)
        shutil.copyfile(cached / "cdx.json", sbom)
        data = _read_result(raw, f"trivy image {name} (reused)", _proc.Result((), 0, "", "", 0.0))
        try:
            res.image_id = check_image_result(data, name, asked, _dpkg_packages(asked, settings.cache_dir))
        except ScanError:
            shutil.rmtree(cached, ignore_errors=True)  # not this image's whole answer: scanned again below
        else:
            res.issues, res.packages = parse_trivy(data, name)
            res.ecosystems = image_ecosystems(data)
            res.raw, res.sbom, res.reused = str(raw), str(sbom), True
            res.seconds = round(time.monotonic() - start, 2)
            return res
    tar = work / f"{name}.tar"
    _proc.run(
        [tools.docker, "save", "--output", str(tar), asked],
        timeout=600,
        what=f"docker save {name} ({asked})",
        hint=f"build it first (`pipelines build`) or check the reference {ref}",
    )
    # Trivy's cache is single-process: every scan gets its own, with the one
    # DB linked in read-only.
    cache = work / f"{name}.cache"
    cache.mkdir()
    if db.cache_dir is not None:
        (cache / "db").symlink_to((db.cache_dir / "db").resolve())
    argv = [
        trivy,
        "image",
        "--input",
        str(tar),
        "--cache-dir",
        str(cache),
        "--cache-backend",
        "memory",
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        *TRIVY_QUIET,
        "--scanners",
        ",".join(scanners) or "secret",
        "--list-all-pkgs",
        "--format",
        "json",
        "--output",
        str(raw),
        "--timeout",
        f"{settings.timeout}s",
    ]
    r = _proc.run(argv, timeout=settings.timeout + 60, check=False, what=f"trivy image {name}", quiet=True)
    data = _read_result(raw, f"trivy image {name}", r)
    res.image_id = check_image_result(data, name, asked, _dpkg_packages(asked, settings.cache_dir))
    res.issues, res.packages = parse_trivy(data, name)
    res.ecosystems = image_ecosystems(data)
    res.raw = str(raw)
    sbom = out / f"{name}.cdx.json"
    # The SBOM is converted from the same result: no second scan that could differ.
    _proc.run(
        [trivy, "convert", "--format", "cyclonedx", "--output", str(sbom), "--quiet", str(raw)],
        timeout=120,
        what=f"SBOM for {name}",
        quiet=True,
    )
    res.sbom = str(sbom)
    tar.unlink()
    # Kept for the next run of the same image; written whole or not at all.
    part = cached.with_name(cached.name + f".part-{os.getpid()}-{name}")
    part.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, part / "trivy.json")
    shutil.copyfile(sbom, part / "cdx.json")
    shutil.rmtree(cached, ignore_errors=True)
    part.rename(cached)
    res.seconds = round(time.monotonic() - start, 2)
    return res


def _dpkg_packages(image_id: str, cache: Path) -> int:
    """How many packages the image's dpkg database lists (0 without one), read apart from Trivy, kept per image ID."""
    from .. import osupdates

    try:
        return len(osupdates.image_packages(image_id, cache))
    except osupdates.NoDpkgData:
        return 0


def _result_key(image_id: str, db: DbChoice, trivy: str, scanners: list[str]) -> str:
    """What Trivy's answer depends on: the image, the DB's exact files, Trivy itself, the scanners."""
    h = hashlib.sha256()
    h.update(image_id.encode())
    h.update(",".join(scanners).encode())
    h.update(str(Path(trivy).resolve().stat().st_mtime_ns).encode() + trivy.encode())
    if db.cache_dir is not None:
        for f in ("db/trivy.db", "db/metadata.json"):
            st = (db.cache_dir / f).stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def check_image_result(data: Any, name: str, image_id: str, dpkg_packages: int = 0) -> str:
    """The image ID Trivy reports having read, when it is ``image_id`` and the report is a whole scan; else ScanError.

    A report about another image would make the verdict speak for something
    never examined. An image in which Trivy found an operating system, or
    whose dpkg database lists ``dpkg_packages`` packages (read apart from
    Trivy), but for which Trivy listed no OS packages was not read (it lists
    them all: --list-all-pkgs), and would pass as clean.
    """
    reported = check_image_id(data, name, image_id)
    meta = data["Metadata"]
    os_found = meta.get("OS")
    results = data.get("Results") if isinstance(data, dict) else None
    os_listed = any(isinstance(r, dict) and r.get("Class") == "os-pkgs" and r.get("Packages") for r in results or [])
    hint = "run the scan again; if it persists, check the image with `trivy image --list-all-pkgs`"
    # Language packages listed beside an OS whose packages were not are no proof the OS was read.
    if os_found and not os_listed:
        family = " ".join(str(os_found.get(k, "")) for k in ("Family", "Name")) if isinstance(os_found, dict) else ""
        raise ScanError(
            f"Trivy found an operating system in {name} ({family.strip() or 'unnamed'}) but listed no packages: "
            "that is a failed read, not a clean scan",
            hint=hint,
        )
    if dpkg_packages and not os_listed:
        raise ScanError(
            f"the dpkg database of {name} lists {dpkg_packages} packages, and Trivy listed no OS packages: "
            "that is a failed read, not a clean scan",
            hint=hint,
        )
    return reported


def _scan_config(
    trivy: str, files: Sequence[Path], out: Path, work: Path, settings: ScanSettings, root: Path
) -> list[Issue]:
    if not files:
        return []
    staging = work / "config"
    staging.mkdir()
    names: dict[str, str] = {}
    for i, f in enumerate(files):
        # Trivy detects Dockerfiles by name; keep the name, make it unique.
        d = staging / str(i)
        d.mkdir()
        shutil.copy(f, d / f.name)
        names[f"{i}/{f.name}"] = report.display_path(f, root)
    raw = out / "config.trivy.json"
    # The same Dockerfiles under the same Trivy give the same answer: reuse it.
    h = hashlib.sha256(str(Path(trivy).resolve().stat().st_mtime_ns).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    cached = settings.cache_dir / "results" / f"config-{h.hexdigest()[:32]}.json"
    if cached.is_file():
        shutil.copyfile(cached, raw)
        data = _read_result(raw, "trivy config (reused)", _proc.Result((), 0, "", "", 0.0))
        return _config_issues(data, names)
    cache = work / "config.cache"
    argv = [
        trivy,
        "config",
        "--cache-dir",
        str(cache),
        "--skip-check-update",
        *TRIVY_QUIET,
        "--format",
        "json",
        "--output",
        str(raw),
        str(staging),
    ]
    r = _proc.run(argv, timeout=settings.timeout, check=False, what="trivy config", quiet=True)
    data = _read_result(raw, "trivy config", r)
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_suffix(f".part-{os.getpid()}")
    shutil.copyfile(raw, part)
    part.replace(cached)
    return _config_issues(data, names)


def _config_issues(data: Any, names: Mapping[str, str]) -> list[Issue]:
    issues, _ = parse_trivy(data, "config")
    return [
        Issue(
            names.get(i.target, i.target),
            i.kind,
            i.id,
            i.severity,
            i.title,
            target=names.get(i.target, i.target),
            line=i.line,
        )
        for i in issues
    ]


def _snyk(ref: str, name: str, out: Path, environ: Mapping[str, str]) -> tuple[list[Issue], str]:
    if not environ.get("SNYK_TOKEN"):
        return [], "Snyk: skipped (no token)"
    snyk = shutil.which("snyk")
    if snyk is None:
        return [], "Snyk: skipped (SNYK_TOKEN is set but the snyk CLI is not installed)"
    raw = out / f"{name}.snyk.json"
    r = _proc.run(
        [snyk, "container", "test", ref, "--json", f"--json-file-output={raw}"],
        timeout=900,
        check=False,
        what=f"snyk container test {name}",
        quiet=True,
        secrets=[environ["SNYK_TOKEN"]],
    )
    # Snyk: 0 clean, 1 vulnerabilities found, 2 failure, 3 nothing to test.
    if r.returncode not in (0, 1):
        raise ScanError(
            f"snyk container test failed for {name} (exit {r.returncode})", seen=_proc.tail(r.stderr or r.stdout, 10)
        )
    return parse_snyk(_read_result(raw, f"snyk {name}", r, ok=(0, 1)), name), "Snyk: ran"


# --------------------------------------------------------------------------- gate and reports


@dataclass
class Outcome:
    env: str
    db: str
    threshold: str
    ignore_unfixed: bool
    images: list[ImageResult]
    config_issues: list[Issue]
    findings: list[Finding]  # every issue (waived or not) plus waiver problems
    notices: list[str]
    run_dir: Path
    subjects: dict[str, str] = field(default_factory=dict)  # the build's images judged: name -> image ID
    coverage: CoverageRecord | None = None  # the data the verdict rests on, and whether it covered the images

    def gated(self) -> list[Finding]:
        from ..osupdates import TOOL as OS_UPDATES_TOOL

        limit = level(self.threshold)
        out = []
        for f in self.findings:
            x = dict(f.extra)
            if f.waived:
                continue
            if f.tool == OS_UPDATES_TOOL:  # pending security updates gate in scan.os_updates = "fail" mode
                if f.severity >= Severity.ERROR:
                    out.append(f)
                continue
            if f.rule.startswith("PL-W"):
                if f.severity >= Severity.ERROR:
                    out.append(f)
                continue
            if level(x.get("scan_severity", "")) < limit:
                continue
            if self.ignore_unfixed and x.get("kind") == "vulnerability" and not x.get("fixed"):
                continue
            out.append(f)
        return out

    @property
    def failed(self) -> bool:
        return bool(self.gated())


@dataclass(frozen=True)
class Options:
    env: str | None = None
    images: tuple[str, ...] = ()  # local image references; empty: the images of the env's last build
    vulndb: Path | None = None  # use this DB and nothing else


def run(ctx: Context, opts: Options) -> Result:
    """The scan stage on the common contract."""
    outcome = analyse(
        ctx.cfg, ctx.tools, env=opts.env, images=opts.images, explicit_db=opts.vulndb, environ=ctx.environ
    )
    return as_result(outcome, judged_build=not opts.images)


def analyse(
    cfg: Config,
    tools: Toolchain,
    *,
    env: str | None = None,
    images: Sequence[str] = (),
    explicit_db: Path | None = None,
    environ: Mapping[str, str] | None = None,
    today: dt.date | None = None,
) -> Outcome:
    """Scan and gate; the :class:`Outcome` is what :func:`as_result` renders."""
    environ = os.environ if environ is None else environ
    for ref in images:
        # Before anything runs: a reference starting with '-' would reach `docker save` as an option.
        if problem := refs.reference_problem(ref):
            raise InputError(f"cannot scan {problem}", hint="name a local image: NAME[:TAG], NAME@sha256:... or an ID")
    e = cfg.env(env)
    settings = cfg.scan_for(e.name)
    trivy, trivy_version = trivy_binary()
    tools.engine_version  # noqa: B018 - images come from the engine
    # An explicit database is only read, so it is checked first; the fallback chain may download.
    explicit = explicit_db is not None or settings.vulndb is not None
    known = resolve_db(cfg, settings, explicit_db, trivy) if explicit else None
    named: dict[str, str] = {}  # reference -> the image ID it named when asked: scanned by that ID
    for ref in images:
        # An image that is not there means the scan could not run (exit 2), not that it failed the gate.
        r = _proc.run(
            [tools.docker, "image", "inspect", "--format", "{{.Id}}", ref], timeout=60, check=False, quiet=True
        )
        if r.returncode != 0:
            raise InputError(
                f"cannot scan {ref!r}: no such image in the local engine",
                seen=_proc.tail(r.stderr, 3),
                hint="build it first (`pipelines build`), or `docker pull` it",
            )
        named[ref] = r.stdout.strip()
    # The fallback chain mostly waits (Trivy's download attempt): it runs while the build record and the
    # images' OS packages are read. When it fails, its error is still the one raised first, as before.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vulndb")
    fetching = background.submit(resolve_db, cfg, settings, explicit_db, trivy) if known is None else None
    try:
        targets = _targets(cfg, e.name, images, named)
        # Imported here: its HTTP client and Debian parsers load while Trivy's DB attempt runs.
        from .. import osupdates

        os_findings, os_notes = osupdates.for_scan(
            cfg.images.values(), settings.os_updates, settings.cache_dir, settings.download_timeout, targets
        )
    except Exception:  # not an interruption: that stops the download (the CLI stops every child) at once
        if fetching is not None:
            fetching.result()
        raise
    finally:
        background.shutdown(wait=False)
    db = fetching.result() if fetching is not None else known
    if db is None:  # one of the two ran: a bug otherwise
        raise RuntimeError("no vulnerability database choice was made")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = cfg.project.artifacts / "scan" / f"{stamp}-{e.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    notices = [db.statement(), f"trivy {trivy_version}", *[f"DB attempt: {a}" for a in db.attempts], *os_notes]
    with tempfile.TemporaryDirectory(prefix="pipelines-scan-") as tmp:
        work = Path(tmp)
        with ThreadPoolExecutor(max_workers=cfg.build.parallel) as pool:
            futures = [
                pool.submit(_scan_image, trivy, tools, n, ref, db, settings, run_dir, work) for n, ref in targets
            ]
            results = [f.result() for f in futures]
        reused = [r.name for r in results if r.reused]
        if reused:
            notices.append(
                "Trivy results reused for unchanged images (same image ID, DB files, Trivy and scanners): "
                + ", ".join(reused)
            )
        config_issues: list[Issue] = []
        if "misconfig" in settings.scanners and not images:
            files = [i.dockerfile for i in cfg.images.values() if i.dockerfile is not None]
            config_issues = _scan_config(trivy, files, run_dir, work, settings, cfg.root)
            notices.append(
                "trivy config: Dockerfiles checked; Compose files are not a type Trivy checks "
                "(the lint stage's Compose policy covers them)"
            )
    # The verdict is about the images Trivy says it read (each checked against the ID it was asked about).
    subjects = {r.name: r.image_id for r in results} if not images else {}
    coverage = assess_coverage(db, {r.name: r.ecosystems for r in results}, settings, dt.datetime.now(dt.UTC))
    notices[0] = db.statement(coverage)
    if db.info is not None and db.info.defaulted:
        rated = ", ".join(f"{k} {v}" for k, v in db.info.defaulted.items())
        notices.append(f"advisories that rate nothing count as their ecosystem's default severity: {rated}")
    snyk_notes = set()
    for res in results:
        extra, note = _snyk(res.ref, res.name, run_dir, environ)
        res.issues += extra
        snyk_notes.add(note)
    notices += sorted(snyk_notes)
    ledger, problems = waivers.load_ledger(
        cfg.lint.waivers,
        display=report.display_path(cfg.lint.waivers, cfg.root),
        max_days=cfg.lint.waiver_max_days,
        today=today or dt.date.today(),
    )
    # One ledger for every scanner and linter: scan uses the entries that are not lint rules.
    scan_waivers = [w for w in ledger if not waivers.for_lint(w)]
    findings = [i.as_finding() for res in results for i in res.issues] + [i.as_finding() for i in config_issues]
    findings += os_findings
    findings = waivers.apply(findings, scan_waivers)
    findings += problems  # an invalid or expired ledger entry fails every gate
    findings += waivers.stale(scan_waivers)
    if cfg.lint.baseline is not None:
        accepted = baseline.load(cfg.lint.baseline, report.display_path(cfg.lint.baseline, cfg.root))
        findings, baseline_notes = baseline.apply(findings, accepted, today or dt.date.today())
        notices += baseline_notes
    # After the waivers: data that does not cover an image is accepted in the config, never waived.
    findings += coverage.findings() if coverage else []
    out = Outcome(
        e.name,
        notices[0],
        settings.severity,
        settings.ignore_unfixed,
        results,
        config_issues,
        findings,
        notices,
        run_dir,
        subjects,
        coverage_record(db, coverage),
    )
    write_reports(out, scan_waivers)
    return out


def _targets(cfg: Config, env: str, images: Sequence[str], named: Mapping[str, str]) -> list[tuple[str, str]]:
    """What to scan: (name, image ID), the ID of a named image as it was asked, of a build's as its record says."""
    if images:
        return [(_safe_name(ref), named[ref]) for ref in images]
    # Here, not at the top: the build record's models are built while the DB fallback chain waits on Trivy.
    from .. import manifest, subjects

    record = manifest.load(cfg.project.artifacts, env)
    if not record.services:
        # Zero images scanned is not a pass.
        raise InputError(
            f"the last build of {env!r} ({manifest.path(cfg.project.artifacts, env)}) recorded no "
            "service image to scan",
            hint=f"run `pipelines build --env {env}`, or name images: `pipelines scan IMAGE`",
        )
    # By image ID (or pushed digest), never through a tag someone may have moved since the build.
    with Engine.connect() as engine:
        return [(b.name, subjects.resolve(engine, b).ref) for b in record.services]


def _safe_name(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in ref.rsplit("/", 1)[-1])[:80]


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    c = dict.fromkeys(reversed(LEVELS), 0)
    for f in findings:
        sev = dict(f.extra).get("scan_severity")
        if sev in c and dict(f.extra).get("kind") != "coverage":  # a gap in the data, not a finding of that level
            c[sev] += 1
    return c


def trivyignore(ledger: Sequence[waivers.Waiver]) -> str:
    """Trivy's own ignore file, generated from the ledger (for running trivy by hand)."""
    entries = []
    for w in ledger:
        for rule in w.rules:
            e: dict[str, Any] = {"id": rule, "statement": f"{w.reason} (owner: {w.owner}; {w.where})"}
            if w.expires:
                e["expired_at"] = w.expires.isoformat()
            if w.package:
                e["purls"] = [f"pkg:*/{w.package}"]
            entries.append(e)
    import yaml

    head = "# Generated from the waiver ledger by `pipelines scan`; do not edit by hand.\n"
    return head + yaml.safe_dump({"vulnerabilities": entries, "secrets": [], "misconfigurations": []}, sort_keys=False)


def write_reports(out: Outcome, ledger: Sequence[waivers.Waiver]) -> None:
    # SARIF is the renderer's scan.sarif (one run per tool and image): a second
    # per-image copy would upload every finding twice under another category.
    d = out.run_dir
    (d / "trivyignore.yaml").write_text(trivyignore(ledger))
    latest = d.parent / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(d.name)


def as_result(out: Outcome, *, judged_build: bool = True) -> Result:
    """The scan on the common stage contract (rendered and gated by the boundary)."""
    gated = out.gated()
    waived = [f for f in out.findings if f.waived]
    rows = []
    for res in out.images:
        c = counts([f for f in out.findings if dict(f.extra).get("image") == res.name])
        rows.append((res.name, res.ref[:71], str(res.packages), *[str(v) for v in c.values()], f"{res.seconds:.1f}s"))
    tables = [Table(("image", "reference", "packages", *reversed(LEVELS), "time"), tuple(rows), "Images")]
    if gated:
        tables.append(
            Table(
                ("image", "severity", "id", "package", "installed", "fixed"),
                tuple(
                    (
                        dict(f.extra).get("image", ""),
                        dict(f.extra).get("scan_severity", f.severity.label),
                        f.rule,
                        dict(f.extra).get("package", "") or f.file,
                        dict(f.extra).get("installed", ""),
                        dict(f.extra).get("fixed", "") or "-",
                    )
                    for f in gated
                ),
                "Gated findings",
            )
        )
    headline = (
        f"gate: {'FAILED' if gated else 'passed'}: {len(gated)} findings at or above {out.threshold}"
        f"{' (unfixed ignored)' if out.ignore_unfixed else ''} not covered by a valid waiver; {len(waived)} waived"
    )
    cov = out.coverage
    if cov is not None and cov.fallback:
        # The verdict's own line says when it rests on a fallback, and why: it travels into the verdict record.
        where = "the offline bundle" if cov.source.startswith("bundle:") else "no vulnerability data"
        headline += f"; FELL BACK to {where} because {cov.fallback}"
    if cov is not None and cov.limited:
        headline += f"; COVERAGE LIMITED: {cov.reason}"
    return Result(
        stage="scan",
        headline=headline,
        findings=tuple(out.findings),
        gated=tuple(gated),
        notices=tuple(out.notices),
        tables=tuple(tables),
        files=tuple(r.name for r in out.images),
        timings={r.name: r.seconds for r in out.images},
        data={
            "env": out.env,
            "vulnerability_db": out.db,
            "threshold": out.threshold,
            "ignore_unfixed": out.ignore_unfixed,
            "images": [{**asdict(r), "issues": len(r.issues)} for r in out.images],
        },
        out_dir=out.run_dir,
        env=out.env if judged_build else "",
        subjects=out.subjects if judged_build else {},
        coverage=out.coverage,
    )
