"""Snyk, beside Trivy when SNYK_TOKEN is set: ``snyk container test`` run and its JSON read as issues."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import _proc
from ..errors import ScanError
from ..trivyresult import read_result as _read_result
from .issues import Issue


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


def run_snyk(ref: str, name: str, out: Path, environ: Mapping[str, str]) -> tuple[list[Issue], str]:
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
