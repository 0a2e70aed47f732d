"""The baseline: today's findings accepted by fingerprint until a date; gates fail only on new ones."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import baseline
from pipelines.errors import InputError
from pipelines.findings import Finding, Severity
from tests.harness import examples, run_cli_outcome

TODAY = dt.date(2026, 12, 7)
ROOT_USER = Finding("pipelines-dockerfile", "PL-D001", Severity.ERROR, "the image runs as root", "web/Dockerfile", 3)
NO_DIGEST = Finding(
    "pipelines-dockerfile", "PL-D003", Severity.ERROR, "FROM python:3.12: no digest", "web/Dockerfile", 1
)
CVE = Finding("trivy", "CVE-2099-1", Severity.ERROR, "openssl 3.0.1", "web", extra=(("image", "web"),))


def recorded(tmp_path: Path, found: dict[str, list[Finding]], days: int = 30) -> baseline.Baseline:
    path = tmp_path / "security" / "baseline.json"
    baseline.write(path, found, today=TODAY, days=days, previous=baseline.load(path, "baseline.json"))
    loaded = baseline.load(path, "baseline.json")
    if loaded is None:
        pytest.fail("the baseline was not written")
    return loaded


def test_a_finding_keeps_its_fingerprint_when_lines_move_and_loses_it_when_it_changes() -> None:
    moved = replace(ROOT_USER, line=40, message="the image  runs as root")
    assert baseline.fingerprint(moved) == baseline.fingerprint(ROOT_USER)
    assert baseline.fingerprint(replace(ROOT_USER, file="api/Dockerfile")) != baseline.fingerprint(ROOT_USER)
    assert baseline.fingerprint(replace(CVE, extra=(("image", "api"),))) != baseline.fingerprint(CVE)
    assert baseline.fingerprint(replace(ROOT_USER, message="x at line 3")) == baseline.fingerprint(
        replace(ROOT_USER, message="x at line 9")
    )


def test_accepted_findings_are_reported_but_do_not_gate_and_new_ones_do(tmp_path: Path) -> None:
    base = recorded(tmp_path, {"lint": [ROOT_USER]})
    out, notices = baseline.apply([ROOT_USER, NO_DIGEST], base, TODAY)
    assert [f.rule for f in out] == ["PL-D001", "PL-D003"]
    assert out[0].waived and "until 2027-01-06" in out[0].waiver_reason and not out[1].waived
    assert notices == ["baseline baseline.json: 1 finding(s) accepted, 1 entries"]


def test_one_more_of_an_accepted_finding_is_new(tmp_path: Path) -> None:
    base = recorded(tmp_path, {"lint": [ROOT_USER, replace(ROOT_USER, line=9)]})
    assert [e.count for e in base.entries] == [2]
    out, _ = baseline.apply([ROOT_USER, replace(ROOT_USER, line=9), replace(ROOT_USER, line=20)], base, TODAY)
    assert [f.waived for f in out] == [True, True, False]


def test_an_expired_entry_accepts_nothing_and_is_named(tmp_path: Path) -> None:
    base = recorded(tmp_path, {"lint": [ROOT_USER]}, days=1)
    out, _ = baseline.apply([ROOT_USER], base, TODAY + dt.timedelta(days=2))
    assert [f.rule for f in out] == ["PL-D001", "PL-W005"] and not any(f.waived for f in out)
    assert "expired on 2026-12-08" in out[1].message and out[1].severity is Severity.ERROR


def test_recording_again_keeps_dates_drops_what_is_gone_and_keeps_the_other_stage(tmp_path: Path) -> None:
    first = recorded(tmp_path, {"lint": [ROOT_USER, NO_DIGEST], "scan": [CVE]}, days=10)
    path = first.path
    later = TODAY + dt.timedelta(days=5)
    baseline.write(path, {"lint": [ROOT_USER]}, today=later, days=90, previous=first)
    again = baseline.load(path, "baseline.json")
    assert again is not None
    by_rule = {e.rule: e for e in again.entries}
    assert set(by_rule) == {"PL-D001", "CVE-2099-1"}  # NO_DIGEST is gone; the scan's entry stays
    assert by_rule["PL-D001"].expires == TODAY + dt.timedelta(days=10)  # never renewed by re-recording
    out, notices = baseline.apply([ROOT_USER], again, later)
    assert out[0].waived and "1 entries match no finding any more" in notices[-1]


def test_waived_findings_and_the_waiver_rules_own_are_not_recorded(tmp_path: Path) -> None:
    waived = NO_DIGEST.waive("security/waivers.yaml (W-1)", "vendor image")
    stale = Finding("pipelines", "PL-W003", Severity.WARNING, "waiver matched nothing (stale)", "x", 1)
    # A linter's own ignore pragma in the repository's files is a finding like any other: it can be accepted.
    pragma = Finding("pipelines", "PL-W004", Severity.ERROR, "`# hadolint ignore=DL3042` is not honoured", "x", 7)
    base = recorded(tmp_path, {"lint": [waived, stale, pragma, ROOT_USER]})
    assert sorted(e.rule for e in base.entries) == ["PL-D001", "PL-W004"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "baseline.json:1: not valid JSON"),
        ('{"version": 2, "entries": []}', "not a pipelines baseline"),
        ('{"version": 1, "entries": [1]}', "entries[0]: not an object"),
        ('{"version": 1, "entries": [{"fingerprint": "x"}]}', "entries[0]: no 'expires'"),
        (
            '{"version": 1, "entries": [{"fingerprint": "x", "tool": "t", "rule": "r", "file": "f", "message": "m", '
            '"expires": "31.12.2026"}]}',
            "entries[0].expires: '31.12.2026' is not a date",
        ),
    ],
)
def test_a_broken_baseline_is_one_message_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(InputError, match=r"regenerate|YYYY-MM-DD") as exc:
        baseline.load(path, "baseline.json")
    assert message in exc.value.render()


@settings(max_examples=examples(150), deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=20,
    )
)
def test_any_json_is_a_baseline_or_one_input_error(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    path = tmp_path_factory.mktemp("b") / "baseline.json"
    path.write_text(json.dumps({"version": 1, "entries": doc} if isinstance(doc, list) else doc))
    with contextlib.suppress(InputError):  # any other exception fails the test
        baseline.load(path, "baseline.json")


CONFIG = """\
    [project]
    name = "demo"
    [registry]
    address = "127.0.0.1:5000"
    namespace = "demo"
    [services.web]
    context = "web"
    [environments.dev]
    push = false
    """


def test_the_command_accepts_todays_findings_and_lint_then_fails_only_on_new_ones(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY . /app\nCMD python /app/main.py\n")
    (tmp_path / "web" / ".dockerignore").write_text(".git\n.env\n")
    (tmp_path / "pipeline.toml").write_text(textwrap.dedent(CONFIG))
    before = run_cli_outcome("lint", cwd=tmp_path)
    assert before.returncode == 1, before.stdout + before.stderr
    made = run_cli_outcome("baseline", "--format", "json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["stage"] == "baseline" and doc["entries"]
    assert (tmp_path / "security" / "baseline.json").exists()
    after = run_cli_outcome("lint", "--format", "json", cwd=tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    assert all(f["waived_by"] == "baseline security/baseline.json" for f in json.loads(after.stdout)["findings"])
    # A new problem gates; the accepted ones stay accepted.
    dockerfile = tmp_path / "web" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN curl -fsSL https://example.com/install.sh | sh\n")
    new = run_cli_outcome("lint", "--format", "json", cwd=tmp_path)
    assert new.returncode == 1
    gating = [f for f in json.loads(new.stdout)["findings"] if f["gated"]]
    assert gating and all("curl" in f["message"] or f["line"] == 4 for f in gating), gating
