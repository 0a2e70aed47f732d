"""What Trivy reports, as the scan's issues: the scanners' severity scale, one issue, Trivy's JSON read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ScanError
from ..findings import Finding, Severity

LEVELS = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def level(sev: str) -> int:
    return LEVELS.index(sev) if sev in LEVELS else 0


def lint_severity(sev: str) -> Severity:
    """For SARIF levels and waiver matching: CRITICAL/HIGH error, MEDIUM warning, else note."""
    return Severity.ERROR if level(sev) >= 3 else Severity.WARNING if level(sev) == 2 else Severity.INFO


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
