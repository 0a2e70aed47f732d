"""What a scan leaves: the Result the boundary renders, and the files beside it (trivyignore, ``latest``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .. import waivers
from ..findings import Finding
from ..result import Result, Table
from .gate import Outcome
from .issues import LEVELS


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
