"""Report writers shared by every stage: terminal tables, Markdown, JSON."""

from __future__ import annotations

import gzip
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import golden
from .errors import EXIT_BUG, PipelineError
from .findings import Finding, Rule


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it is inside it, else as given.

    A file of a golden definition is ``golden:DIR/FILE`` wherever the package is installed, so a finding's
    file and a waiver's scope name it the same in every repository.
    """
    if (shipped := golden.display(path)) is not None:
        return shipped
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

# GitHub code scanning's limits for one SARIF upload (GitHub docs, "SARIF support
# for code scanning" and "SARIF results exceed limits"): a file of at most 10 MB
# gzip-compressed, 20 runs per file, 25,000 results and 25,000 rules per run, 20
# tags per rule, 1,000 locations per result; of a run's results only the top
# 5,000 by severity are shown. Runs of one upload must differ in tool or
# category (runs sharing both are rejected since June 2025).
SARIF_MAX_GZIP_BYTES = 10_000_000  # "10 MB": the decimal reading is the safe one
SARIF_MAX_RUNS = 20
SARIF_MAX_RULES = 25_000
SARIF_MAX_TAGS = 20
# Accepted are 25,000 per run, but GitHub keeps only the 5,000 most severe:
# cutting there ourselves decides which ones, and says so.
SARIF_MAX_RESULTS = 5_000


class SarifLimitError(PipelineError):
    """A SARIF document the pipeline built cannot fit GitHub's limits: a bug in how runs are made."""

    exit_code = EXIT_BUG


@dataclass(frozen=True)
class SarifRun:
    tool: str
    category: str  # GitHub code scanning category: one per tool
    rules: Mapping[str, Rule]
    findings: Sequence[Finding]
    version: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)  # the run's SARIF property bag


def _gzip_size(doc: Mapping[str, Any]) -> int:
    # The writers indent by 2; measure what they write.
    return len(gzip.compress((json.dumps(doc, indent=2) + "\n").encode("utf-8"), compresslevel=6))


def _sarif_rules(run: SarifRun) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rule_ids = sorted({f.rule for f in run.findings} | set(run.rules))
    if len(rule_ids) > SARIF_MAX_RULES:
        raise SarifLimitError(
            f"SARIF run {run.category!r} has {len(rule_ids)} rules; GitHub accepts at most {SARIF_MAX_RULES}",
            hint="split the run by tool or category",
        )
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
                    "properties": {"tags": ["security", "hardening"][:SARIF_MAX_TAGS]},
                }
            )
        else:
            entry["shortDescription"] = {"text": rid}
        rules.append(entry)
    return rules, {rid: i for i, rid in enumerate(rule_ids)}


def _sarif_result(f: Finding, index: Mapping[str, int]) -> dict[str, Any]:
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
    return res


def _most_severe_first(findings: Sequence[Finding]) -> list[Finding]:
    # What GitHub would show anyway: unwaived before waived, then by severity; stable otherwise.
    return sorted(findings, key=lambda f: (bool(f.waived), -int(f.severity)))


def _truncate(run: dict[str, Any], findings: list[Finding], keep: int, index: Mapping[str, int], why: str) -> None:
    total = len(findings)
    run["results"] = [_sarif_result(f, index) for f in findings[:keep]]
    notice = (
        f"SARIF for {run['automationDetails']['id'].rstrip('/')}: {why}; kept the {keep} most severe of "
        f"{total} results (all of them are in the stage's JSON report)"
    )
    run["properties"] = {
        **run.get("properties", {}),
        "truncated": True,
        "totalResults": total,
        "keptResults": keep,
        "notice": notice,
    }


def sarif(runs: Sequence[SarifRun]) -> dict[str, Any]:
    """SARIF 2.1.0 for GitHub code scanning, inside its limits.

    Too many results for a run keep the most severe ones, with a notice in the
    run's ``properties`` (:func:`sarif_notices` reads them back). Limits that
    truncation cannot meet (runs per file, a repeated tool and category) are
    :class:`SarifLimitError`: the caller made the runs wrong.
    """
    if len(runs) > SARIF_MAX_RUNS:
        raise SarifLimitError(
            f"SARIF document with {len(runs)} runs; GitHub accepts at most {SARIF_MAX_RUNS} per file",
            hint="write one file per group of runs",
        )
    seen: set[tuple[str, str]] = set()
    for run in runs:
        if (run.tool, run.category) in seen:
            raise SarifLimitError(
                f"two SARIF runs share tool {run.tool!r} and category {run.category!r}; GitHub rejects the upload",
                hint="give every run its own category",
            )
        seen.add((run.tool, run.category))
    out_runs = []
    ordered: list[tuple[dict[str, Any], list[Finding], dict[str, int]]] = []
    for run in runs:
        rules, index = _sarif_rules(run)
        findings = _most_severe_first(run.findings)
        driver: dict[str, Any] = {"name": run.tool, "rules": rules, "informationUri": "https://github.com/"}
        if run.version:
            driver["version"] = run.version
        r_out: dict[str, Any] = {
            "tool": {"driver": driver},
            "automationDetails": {"id": run.category + "/"},
            "results": [],
        }
        if run.properties:
            r_out["properties"] = dict(run.properties)
        if len(findings) > SARIF_MAX_RESULTS:
            _truncate(
                r_out,
                findings,
                SARIF_MAX_RESULTS,
                index,
                f"more than {SARIF_MAX_RESULTS} results (GitHub shows no more)",
            )
        else:
            r_out["results"] = [_sarif_result(f, index) for f in findings]
        out_runs.append(r_out)
        ordered.append((r_out, findings, index))
    doc: dict[str, Any] = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": out_runs}
    # Size: halve the largest run until the compressed file fits.
    while _gzip_size(doc) > SARIF_MAX_GZIP_BYTES:
        r_out, findings, index = max(ordered, key=lambda t: len(t[0]["results"]))
        kept = len(r_out["results"])
        if kept == 0:
            raise SarifLimitError(
                f"SARIF document is over {SARIF_MAX_GZIP_BYTES} bytes gzip-compressed without any results",
                hint="the rules alone are too large: split the runs into several files",
            )
        _truncate(r_out, findings, kept // 2, index, f"over {SARIF_MAX_GZIP_BYTES} bytes gzip-compressed")
    return doc


def sarif_notices(doc: Mapping[str, Any]) -> list[str]:
    """The truncation notices :func:`sarif` put in a document's runs, for a stage's own notices."""
    return [
        str(run["properties"]["notice"])
        for run in doc.get("runs", [])
        if isinstance(run.get("properties"), dict) and "notice" in run["properties"]
    ]


def sarif_upload_problems(docs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What GitHub would reject (or cut) in one upload made of these SARIF documents, by file name.

    An upload is a file or a directory of them (the scan's one file per image):
    tool and category must be unique across all of it.
    """
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for name, doc in docs.items():
        runs = list(doc.get("runs") or [])
        if not runs:
            problems.append(f"{name}: no runs")
        if len(runs) > SARIF_MAX_RUNS:
            problems.append(f"{name}: {len(runs)} runs; GitHub accepts {SARIF_MAX_RUNS} per file")
        size = _gzip_size(doc)
        if size > SARIF_MAX_GZIP_BYTES:
            problems.append(f"{name}: {size} bytes gzip-compressed; GitHub accepts {SARIF_MAX_GZIP_BYTES}")
        for run in runs:
            tool = str(run.get("tool", {}).get("driver", {}).get("name", ""))
            category = str(run.get("automationDetails", {}).get("id", ""))
            if not category:
                problems.append(f"{name}: run of {tool!r} has no category (automationDetails.id)")
            key = (tool, category)
            if key in seen:
                problems.append(f"{name}: tool {tool!r} category {category!r} also in {seen[key]}")
            seen[key] = name
            results = run.get("results") or []
            if len(results) > SARIF_MAX_RESULTS:
                problems.append(f"{name}: {tool!r} has {len(results)} results; the pipeline keeps {SARIF_MAX_RESULTS}")
            rules = run.get("tool", {}).get("driver", {}).get("rules") or []
            if len(rules) > SARIF_MAX_RULES:
                problems.append(f"{name}: {tool!r} has {len(rules)} rules; GitHub accepts {SARIF_MAX_RULES}")
            for rule in rules:
                tags = (rule.get("properties") or {}).get("tags") or []
                if len(tags) > SARIF_MAX_TAGS:
                    problems.append(f"{name}: rule {rule.get('id')!r} has {len(tags)} tags (max {SARIF_MAX_TAGS})")
    return problems


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
