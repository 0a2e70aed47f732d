"""Report writers shared by every stage: terminal tables, Markdown, JSON."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .findings import Finding, Rule


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def terminal_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(s.rstrip() for s in out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> None:
    """Append to GitHub Actions' job summary when running there; nothing elsewhere."""
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if target:
        from .inputs import write_text

        write_text(Path(target), markdown + "\n", "job summary ($GITHUB_STEP_SUMMARY)", append=True)


# --------------------------------------------------------------------------- SARIF and JUnit

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub code scanning rejects larger uploads; keep well inside its limits.
SARIF_MAX_RESULTS = 5000


@dataclass(frozen=True)
class SarifRun:
    tool: str
    category: str  # GitHub code scanning category: one per tool
    rules: Mapping[str, Rule]
    findings: Sequence[Finding]
    version: str = ""


def sarif(runs: Sequence[SarifRun]) -> dict[str, Any]:
    out_runs = []
    for run in runs:
        rule_ids = sorted({f.rule for f in run.findings} | set(run.rules))
        rules = []
        for rid in rule_ids:
            r = run.rules.get(rid)
            entry: dict[str, Any] = {"id": rid, "name": rid}
            if r is not None:
                entry.update(
                    {
                        "shortDescription": {"text": r.title},
                        "fullDescription": {"text": r.rationale},
                        "help": {"text": r.hint, "markdown": f"{r.rationale}\n\n**Fix:** {r.hint}"},
                        "defaultConfiguration": {"level": r.severity.sarif_level},
                        "properties": {"tags": ["security", "hardening"]},
                    }
                )
            else:
                entry["shortDescription"] = {"text": rid}
            rules.append(entry)
        index = {rid: i for i, rid in enumerate(rule_ids)}
        findings = list(run.findings)
        truncated = len(findings) > SARIF_MAX_RESULTS
        results = []
        for f in findings[:SARIF_MAX_RESULTS]:
            region = {"startLine": f.line} if f.line else {}
            loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": f.file}}}
            if region:
                loc["physicalLocation"]["region"] = region
            res: dict[str, Any] = {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": f.severity.sarif_level,
                "message": {"text": f.message + (f" Fix: {f.hint}" if f.hint else "")},
                "locations": [loc],
            }
            if f.waived:
                res["suppressions"] = [
                    {"kind": "external" if " (" in f.waived_by else "inSource", "justification": f.waiver_reason}
                ]
            results.append(res)
        driver: dict[str, Any] = {"name": run.tool, "rules": rules, "informationUri": "https://github.com/"}
        if run.version:
            driver["version"] = run.version
        r_out: dict[str, Any] = {
            "tool": {"driver": driver},
            "automationDetails": {"id": run.category + "/"},
            "results": results,
        }
        if truncated:
            r_out["properties"] = {"truncated": True, "totalResults": len(findings)}
        out_runs.append(r_out)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": out_runs}


def junit(suite: str, findings: Sequence[Finding], files: Sequence[str], gated: Sequence[Finding]) -> str:
    """One test case per file; it fails with every gated finding of that file."""
    root = ET.Element("testsuites", name=suite)
    ts = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(files)), failures=str(len({f.file for f in gated})), errors="0"
    )
    for file in files:
        tc = ET.SubElement(ts, "testcase", classname=suite, name=file)
        mine = [f for f in gated if f.file == file]
        if mine:
            failure = ET.SubElement(tc, "failure", message=f"{len(mine)} findings", type="lint")
            failure.text = "\n".join(f"{f.location} {f.rule} [{f.severity.label}] {f.message}" for f in mine)
        others = [f for f in findings if f.file == file and f not in mine]
        if others:
            out = ET.SubElement(tc, "system-out")
            out.text = "\n".join(
                f"{f.location} {f.rule} [{f.severity.label}{', waived' if f.waived else ''}] {f.message}"
                for f in others
            )
    # Findings on files outside the list (e.g. the waiver ledger) still need a home.
    for file in sorted({f.file for f in gated} - set(files)):
        tc = ET.SubElement(ts, "testcase", classname=suite, name=file)
        failure = ET.SubElement(tc, "failure", message="findings", type="lint")
        failure.text = "\n".join(f"{f.location} {f.rule} {f.message}" for f in gated if f.file == file)
        ts.set("tests", str(int(ts.get("tests", "0")) + 1))
        ts.set("failures", str(int(ts.get("failures", "0")) + 1))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
