"""The gate: which findings fail the scan, at the configured severity, once waivers and the baseline are applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..findings import Finding, Severity
from .images import ImageResult
from .issues import Issue, level

if TYPE_CHECKING:
    from ..verdicts import Coverage as CoverageRecord


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
