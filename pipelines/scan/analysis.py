"""One scan from start to verdict: the database, the images, the scanners, the ledger and the coverage."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import _proc, baseline, golden, refs, report, waivers
from ..config import Config
from ..engine import Engine
from ..errors import InputError
from ..tools import Toolchain, trivy_binary
from .coverage import assess_coverage, coverage_record
from .database import resolve_db
from .dockerfiles import scan_config
from .gate import Outcome
from .images import scan_image
from .issues import Issue
from .reports import write_reports
from .snyk import run_snyk


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
    # images' OS packages are read. When it fails, its error is still the one raised first.
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
            futures = [pool.submit(scan_image, trivy, tools, n, ref, db, settings, run_dir, work) for n, ref in targets]
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
            if elsewhere := [f for f in files if golden.installed_elsewhere(f, cfg.root)]:
                files = [f for f in files if f not in elsewhere]
                notices.append(
                    "trivy config: not examined: the golden definitions shipped with the package ("
                    + ", ".join(report.display_path(f, cfg.root) for f in elsewhere)
                    + "); they are checked where the package is built"
                )
            config_issues = scan_config(trivy, files, run_dir, work, settings, cfg.root) if files else []
            notices.append(
                f"trivy config: {len(files)} Dockerfile(s) checked; Compose files are not a type Trivy checks "
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
        extra, note = run_snyk(res.ref, res.name, run_dir, environ)
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
