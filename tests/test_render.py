"""The one renderer: every stage's result in every format, valid and complete."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipelines import render
from pipelines.errors import EXIT_FAILED, EXIT_OK, InputError
from pipelines.findings import Finding, Rule, Severity
from pipelines.result import Check, Outcome, Result, Table, exit_code
from tests.harness import IN_CI

from . import schemas

RULE = Rule("PL-T001", Severity.ERROR, "a test rule", "why it matters", "how to fix it")
GATED = Finding("pipelines-test", "PL-T001", Severity.ERROR, "something is wrong", "a/Dockerfile", 3, hint="fix it")
WAIVED = GATED.waive("security/waivers.yaml (W-1)", "accepted until the rewrite")
IMAGE = Finding("trivy", "CVE-2099-1", Severity.ERROR, "openssl 1", "api", extra=(("image", "api"),))


def sarif_schema() -> dict[str, object]:
    """The published SARIF 2.1.0 schema, fetched by the test sessions into a cache (tests/schemas.py)."""
    path = schemas.cached(schemas.SARIF)
    if path is None:
        msg = f"the SARIF schema is not in {schemas.CACHE}: run `python tests/schemas.py fetch` (needs the network)"
        if IN_CI:
            pytest.fail(f"CI=true and {msg}")
        pytest.skip(msg)
    return dict(json.loads(path.read_text()))


def sarif_regions(doc: dict[str, Any]) -> list[str]:
    """Regions that start nowhere: the OASIS errata schema requires a start line, character or byte offset."""
    bad = []
    for run in doc.get("runs", []):
        for result in run.get("results", []):
            for loc in result.get("locations", []):
                region = loc.get("physicalLocation", {}).get("region")
                if region is not None and not {"startLine", "charOffset", "byteOffset"} & set(region):
                    bad.append(f"{result.get('ruleId')}: region {region}")
    return bad


def test_findings_result_in_every_format(tmp_path: Path) -> None:
    r = Result(
        stage="lint",
        headline="2 files, 2 findings",
        findings=(GATED, WAIVED, IMAGE),
        gated=(GATED,),
        notices=("hadolint 2.15",),
        tables=(render.findings_table([GATED, WAIVED], title="a/Dockerfile"),),
        files=("a/Dockerfile", "b/compose.yaml"),
        rules={"pipelines-test": {RULE.id: RULE}},
    )
    assert not r.passed and exit_code(r) == EXIT_FAILED
    text = render.render(r, "table")
    assert text.splitlines()[0] == "hadolint 2.15" and "fix it" in text and "(waived)" in text
    data = json.loads(render.render(r, "json"))
    assert data["status"] == "failed" and [f["gated"] for f in data["findings"]] == [True, False, False]
    junit = ET.fromstring(render.render(r, "junit"))
    suite = junit.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "2"
    sarif = json.loads(render.render(r, "sarif"))
    jsonschema.validate(sarif, sarif_schema())
    assert sarif_regions(sarif) == []
    categories = [run["automationDetails"]["id"] for run in sarif["runs"]]
    assert len(categories) == len(set(categories)) == 2, categories
    assert "lint/trivy/api/" in categories
    written = render.write_all(r, tmp_path / "out")
    assert sorted(p.name for p in written) == ["lint.json", "lint.junit.xml", "lint.md", "lint.sarif"]
    assert "### Lint: FAILED" in (tmp_path / "out" / "lint.md").read_text()


def test_checks_result_junit_counts_failures_and_skips() -> None:
    checks = (
        Check("healthy", Outcome.PASS, "all healthy", 0.2, group="stack"),
        Check("probe", Outcome.FAIL, "GET / -> 500", 1.0, group="probes", evidence="GET api:8000/"),
        Check("setuid", Outcome.NA, "not a runtime image", group="api"),
        Check("root", Outcome.WAIVED, "waived: W-2", group="api"),
    )
    r = Result(stage="smoke", headline="smoke", checks=checks, tables=(render.checks_table(checks),))
    assert not r.passed
    suite = ET.fromstring(render.junit(r)).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("4", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["probe"].find("failure") is not None and cases["setuid"].find("skipped") is not None
    assert "evidence: GET api:8000/" in (cases["probe"].findtext("failure") or "")
    ok = Result(stage="smoke", headline="ok", checks=checks[:1] + checks[2:])
    assert ok.passed and exit_code(ok) == EXIT_OK


def test_an_error_fails_the_result_even_without_findings() -> None:
    r = Result(stage="smoke", headline="x", error="the stack never came up")
    assert not r.passed and "error: the stack never came up" in render.terminal(r)
    suite = ET.fromstring(render.junit(Result(stage="smoke", headline="x", checks=(), error="boom")))
    assert suite.find("testsuite") is not None


def test_long_cells_wrap_but_references_stay_whole() -> None:
    ref = "127.0.0.1:5000/pipelines/python-runtime@sha256:" + "a" * 64
    t = Table(("image", "message"), ((ref, "word " * 60),))
    text = render.terminal(Result(stage="build", headline="h", tables=(t,)))
    assert ref in text and max(len(line) for line in text.splitlines()) < len(ref) + 120


def test_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError):
        render.render(Result(stage="x", headline="h"), "yaml")
