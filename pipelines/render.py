"""One renderer for every stage: terminal table, Markdown, JSON, JUnit, SARIF.

It knows the shape of a :class:`~pipelines.result.Result`, never a stage's
internals; stages describe themselves through findings, checks, tables and
notices.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import report
from .errors import InputError
from .findings import Finding
from .result import Check, Result, Table

FORMATS = ("table", "json", "sarif", "junit", "markdown")
# The terminal wraps long messages instead of making every row as wide as the longest one.
WRAP = 72


def finding_json(f: Finding, gated: bool) -> dict[str, Any]:
    return {**asdict(f), "severity": f.severity.label, "extra": dict(f.extra), "gated": gated}


def check_json(c: Check) -> dict[str, Any]:
    return {**asdict(c), "outcome": c.outcome.value, "ok": c.ok}


def to_json(r: Result) -> dict[str, Any]:
    gated = set(map(id, r.gated))
    status = "could not run" if r.unusable or r.could_not_run else r.status
    return {
        "stage": r.stage,
        "status": status,
        "failed": not r.passed,
        "headline": r.headline,
        "error": r.error,
        "unusable": list(r.unusable),
        "notices": list(r.notices),
        "files": list(r.files),
        "timings": dict(r.timings),
        "artifacts": [str(p) for p in r.artifacts],
        "checks": [check_json(c) for c in r.checks],
        "findings": [finding_json(f, id(f) in gated) for f in r.findings],
        **({"coverage": coverage_json(r)} if r.coverage is not None else {}),
        **{k: v for k, v in r.data.items() if k not in _RESERVED},
    }


def coverage_json(r: Result) -> dict[str, Any] | None:
    return r.coverage.model_dump(mode="json") if r.coverage is not None else None


_RESERVED = {
    "stage",
    "status",
    "failed",
    "headline",
    "error",
    "unusable",
    "could_not_run",
    "notices",
    "files",
    "timings",
    "artifacts",
    "checks",
    "coverage",
}


def _wrap(text: str) -> str:
    # References and paths stay whole: only prose is wrapped; a cell's own line breaks stay.
    lines = [
        wrapped
        for part in text.split("\n")
        for wrapped in (textwrap.wrap(part, WRAP, break_long_words=False, break_on_hyphens=False) or [""])
    ]
    return "\n".join(lines)


def _terminal_table(t: Table) -> str:
    # Multi-line cells: the first line in the row, the rest on continuation rows.
    rows: list[list[str]] = []
    for row in t.rows:
        parts = [_wrap(c).splitlines() or [""] for c in row]
        for i in range(max(len(p) for p in parts)):
            rows.append([p[i] if i < len(p) else "" for p in parts])
    return report.terminal_table(list(t.headers), rows)


def terminal(r: Result) -> str:
    out: list[str] = []
    out += [f"note: {n}" if i else n for i, n in enumerate(r.notices)]
    for t in r.tables:
        out += ["", t.title] if t.title else [""]
        out.append(_terminal_table(t))
    if r.error:
        out += ["", f"error: {r.error}"]
    out += [f"error: could not examine: {u}" for u in r.unusable]
    out += ["", r.headline]
    return "\n".join(out).lstrip("\n")


def markdown(r: Result) -> str:
    verdict = "passed" if r.passed else "FAILED"
    # The first notice (what data the verdict rests on, e.g. the scan's DB and coverage) is the
    # report's first line, as in the terminal.
    out = [f"**{r.notices[0]}**", ""] if r.notices else []
    out += [f"### {r.stage.capitalize()}: {verdict}", "", r.headline, ""]
    if r.notices[1:]:
        out += [f"- {n}" for n in r.notices[1:]] + [""]
    for t in r.tables:
        if t.title:
            out += [f"#### {t.title}", ""]
        out += [report.markdown_table(list(t.headers), [list(row) for row in t.rows]) if t.rows else "None.", ""]
    if r.error:
        out += [f"Error: {r.error}", ""]
    out += [f"- could not examine: {u}" for u in r.unusable]
    return "\n".join(out)


def junit(r: Result) -> str:
    """Checks become test cases; without checks, one case per examined file with its findings."""
    if not r.checks:
        # One case per examined file, or per image where the findings name one (scan).
        def case(f: Finding) -> Finding:
            image = dict(f.extra).get("image")
            return replace(f, file=image) if image and image in r.files else f

        moved = {id(f): case(f) for f in r.findings}
        gated = [moved.get(id(f), case(f)) for f in r.gated]
        return report.junit(r.stage, list(moved.values()), list(r.files), gated)
    root = ET.Element("testsuites", name=r.stage)
    failures = [c for c in r.checks if not c.ok]
    ts = ET.SubElement(
        root, "testsuite", name=r.stage, tests=str(len(r.checks)), failures=str(len(failures)), errors="0"
    )
    for c in r.checks:
        tc = ET.SubElement(
            ts, "testcase", classname=f"{r.stage}.{c.group}" if c.group else r.stage, name=c.name, time=f"{c.seconds}"
        )
        if c.outcome.value == "fail":
            fail = ET.SubElement(tc, "failure", message=c.detail[:200] or "failed", type=r.stage)
            fail.text = c.detail + (f"\nevidence: {c.evidence}" if c.evidence else "")
        elif c.outcome.value == "n/a":
            ET.SubElement(tc, "skipped", message=c.detail[:200] or "not applicable")
        elif c.detail or c.evidence:
            out = ET.SubElement(tc, "system-out")
            out.text = f"{c.outcome.value}: {c.detail}" + (f"\nevidence: {c.evidence}" if c.evidence else "")
    if r.error:
        tc = ET.SubElement(ts, "testcase", classname=r.stage, name="stage")
        ET.SubElement(tc, "error", message=r.error[:200]).text = r.error
        ts.set("errors", "1")
        ts.set("tests", str(len(r.checks) + 1))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def sarif(r: Result) -> dict[str, Any]:
    """One run per tool (and per image where findings name one): GitHub wants one category each."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for tool in r.rules:
        groups.setdefault((tool, ""), [])
    for f in r.findings:
        groups.setdefault((f.tool, dict(f.extra).get("image", "")), []).append(f)
    runs = [
        report.SarifRun(
            tool=tool,
            category="/".join(p for p in (r.stage, tool, image) if p),
            rules=r.rules.get(tool, {}),
            findings=fs,
            # Every run carries what its verdict rests on: an upload of one run alone still says it.
            properties={"coverage": coverage_json(r)} if r.coverage is not None else {},
        )
        for (tool, image), fs in groups.items()
    ]
    return report.sarif(runs)


def render(r: Result, fmt: str) -> str:
    if fmt == "table":
        return terminal(r)
    if fmt == "json":
        return json.dumps(to_json(r), indent=2)
    if fmt == "sarif":
        return json.dumps(sarif(r), indent=2)
    if fmt == "junit":
        return junit(r).rstrip("\n")
    if fmt == "markdown":
        return markdown(r).rstrip("\n")
    raise InputError(f"unknown report format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


def write_all(r: Result, out_dir: Path) -> list[Path]:
    """STAGE.json, .md, .junit.xml and .sarif under ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / f"{r.stage}.json": json.dumps(to_json(r), indent=2) + "\n",
        out_dir / f"{r.stage}.md": markdown(r),
        out_dir / f"{r.stage}.junit.xml": junit(r),
        out_dir / f"{r.stage}.sarif": json.dumps(sarif(r), indent=2) + "\n",
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


def findings_table(findings: Sequence[Finding], *, title: str = "") -> Table:
    rows = tuple(
        (
            f.severity.label + (" (waived)" if f.waived else ""),
            f.rule,
            f.location,
            f.message + (f" [waiver: {f.waiver_reason}]" if f.waived else ""),
            f.hint,
        )
        for f in findings
    )
    return Table(("severity", "rule", "where", "message", "fix"), rows, title)


def checks_table(checks: Sequence[Check], *, title: str = "") -> Table:
    rows = tuple((c.group, c.name, c.outcome.value, f"{c.seconds:.1f}s", c.detail) for c in checks)
    return Table(("group", "check", "result", "time", "detail"), rows, title)
