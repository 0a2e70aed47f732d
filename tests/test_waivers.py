"""The waiver ledger: its schema errors name key path and line; policy problems are findings."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import inputs, waivers
from pipelines.errors import ConfigError

from .conftest import ROOT

TODAY = dt.date(2026, 11, 1)
ENTRY = "  - id: PL-D001\n    reason: r\n    owner: o\n"


def load(tmp_path: Path, text: str | bytes) -> tuple[list[waivers.Waiver], list[waivers.Finding]]:
    path = tmp_path / "waivers.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return waivers.load_ledger(path, display="security/waivers.yaml", max_days=90, today=TODAY)


def test_a_valid_ledger_loads(tmp_path: Path) -> None:
    ws, problems = load(
        tmp_path,
        "waivers:\n"
        "  - id: [PL-C006, PL-C007]\n"
        "    scope: {path: compose/compose.dev.yaml, service: api}\n"
        "    reason: dev bind-mounts the source\n"
        "    owner: platform-team\n"
        "    expires: 2026-12-31\n"
        "  - id: CVE-2024-0001\n"
        "    scope: {image: '*api*', package: openssl}\n"
        "    reason: not reachable\n"
        "    owner: security\n"
        "    expires: '2026-12-01'\n",  # quoted: still a date
    )
    assert problems == []
    first, second = ws
    assert first.rules == ("PL-C006", "PL-C007") and first.expires == dt.date(2026, 12, 31)
    assert (first.path, first.service) == ("compose/compose.dev.yaml", "api") and waivers.for_lint(first)
    assert second.rules == ("CVE-2024-0001",) and second.expires == dt.date(2026, 12, 1)
    assert (second.image, second.package) == ("*api*", "openssl") and not waivers.for_lint(second)


def test_the_repository_ledger_is_valid() -> None:
    ws, problems = waivers.load_ledger(
        ROOT / "security/waivers.yaml", display="security/waivers.yaml", max_days=3650, today=dt.date(2026, 1, 1)
    )
    assert ws and not problems


def test_missing_and_empty_ledgers_hold_no_waivers(tmp_path: Path) -> None:
    assert waivers.load_ledger(tmp_path / "none.yaml", display="x", max_days=90, today=TODAY) == ([], [])
    assert load(tmp_path, "") == ([], [])
    assert load(tmp_path, "waivers: []\n") == ([], [])
    assert load(tmp_path, "# only a comment\n") == ([], [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENTRY + "    expires: 2026-02-30\n", "waivers[0].expires: line 5: '2026-02-30' cannot be read"),
        (ENTRY + "    expires: '2026-02-30'\n", "waivers[0].expires: line 5: '2026-02-30' is not a real date"),
        (ENTRY + "    expires: 2026-12-01T10:00:00\n", "waivers[0].expires: line 5: expected a date YYYY-MM-DD, got a"),
        (ENTRY + "    expires: 31/12/2026\n", "waivers[0].expires: line 5: '31/12/2026' is not a date YYYY-MM-DD"),
        (ENTRY + "    expires: 20261201\n", "waivers[0].expires: line 5: expected a date YYYY-MM-DD, got an integer"),
        ("  - id: 1234\n    reason: r\n    owner: o\n", "waivers[0].id: line 2: expected a rule id or a list"),
        ("  - id: [A, 7]\n    reason: r\n    owner: o\n", "waivers[0].id: line 2: rule ids are strings; an integer 7"),
        ("  - id: A\n    reason: [r]\n    owner: o\n", "waivers[0].reason: line 3: Input should be a valid string"),
        ("  - id: A\n    reason: r\n    owner: 5\n", "waivers[0].owner: line 4: Input should be a valid string"),
        (ENTRY + "    scope: {path: 5}\n", "waivers[0].scope.path: line 5: Input should be a valid string"),
        (ENTRY + "    scope: {file: x}\n", "waivers[0].scope.file: line 5: unknown key"),
        (ENTRY + "    scope: x\n", "waivers[0].scope: line 5:"),
        (ENTRY + "    until: 2026-12-01\n", "waivers[0].until: line 5: unknown key"),
        (ENTRY + "    reason: again\n", "waivers[0].reason: line 5: duplicate key 'reason'"),
        ("  - PL-D001\n", "waivers[0]: line 2:"),
        ("  - &a {id: A, reason: r, owner: o}\n  - *a\n", "line 3: YAML aliases (*a)"),
    ],
)
def test_schema_errors_name_key_path_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "waivers:\n" + text)
    assert "security/waivers.yaml: " + message in err.value.render()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: A\n", "waivers: expected a mapping with a top-level 'waivers:' list, got a list"),
        ("waivers: none\n", "waivers: line 1: Input should be a valid list"),
        ("other: []\n", "other: line 1: unknown key"),
        ("waivers: [\n", "is not valid YAML (line 2, column 1)"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
        ("waivers: " + "[" * 200 + "]" * 200 + "\n", "nested too deeply"),
        ("waivers: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
        (b"waivers:\n  - id: caf\xe9\n", "is not UTF-8 text (line 2: byte 0xe9)"),
    ],
)
def test_malformed_ledgers(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert message in err.value.render()


def test_a_yaml_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 20):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join('*' + prev for _ in range(9))}]")
    lines.append("waivers: []")
    with pytest.raises(ConfigError, match=r"line 2: YAML aliases \(\*a\)"):
        load(tmp_path, "\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", ["directory", "fifo", "huge"])
def test_the_ledger_file_itself_is_input(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "waivers.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"#" * (inputs.SMALL + 1))
    with pytest.raises(ConfigError) as err:
        waivers.load_ledger(path, display="security/waivers.yaml", max_days=90, today=TODAY)
    expected = {"directory": "is a directory", "fifo": "is a FIFO", "huge": "is too large"}[kind]
    assert err.value.render().startswith("error: security/waivers.yaml: " + expected)


@pytest.mark.parametrize(
    ("text", "rule", "message", "line"),
    [
        (ENTRY + "    expires: 2026-10-31\n", waivers.RULE_EXPIRED, "expired on 2026-10-31", 2),
        ("  - id: A\n    owner: o\n    expires: 2026-12-01\n", waivers.RULE_INVALID, "has no reason", 2),
        ("  - id: A\n    reason: '  '\n    owner: o\n    expires: 2026-12-01\n", waivers.RULE_INVALID, "no reason", 2),
        ("  - id: A\n    reason: r\n    expires: 2026-12-01\n", waivers.RULE_INVALID, "has no owner", 2),
        (ENTRY, waivers.RULE_INVALID, "has no expiry", 2),
        (ENTRY + "    expires: 2027-03-01\n", waivers.RULE_INVALID, "more than 90 days ahead", 2),
        (
            "  - id: []\n    reason: r\n    owner: o\n    expires: 2026-12-01\n",
            waivers.RULE_INVALID,
            "names no rule",
            2,
        ),
        (
            "  - id: B\n    reason: r\n    owner: o\n    expires: 2026-12-01\n" + ENTRY,
            waivers.RULE_INVALID,
            "expiry",
            6,
        ),
    ],
)
def test_policy_problems_are_findings_that_fail_the_gate(
    tmp_path: Path, text: str, rule: str, message: str, line: int
) -> None:
    _, problems = load(tmp_path, "waivers:\n" + text)
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.rule == rule and message in p.message and p.severity >= waivers.Severity.ERROR
    assert (p.file, p.line) == ("security/waivers.yaml", line)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.sampled_from("waivers:-idreason owner expires 2026-13-31T\n[]{}&*!'\"#,.0123456789"), max_size=160
    )
)
def test_any_text_is_a_ledger_or_a_config_error(tmp_path: Path, text: str) -> None:
    """Whatever a user types into the ledger: waivers, findings, or one ConfigError; nothing else."""
    try:
        ws, problems = load(tmp_path, text)
    except ConfigError as exc:
        assert "security/waivers.yaml" in exc.render()
    else:
        assert all(isinstance(w, waivers.Waiver) for w in ws)
        assert all(p.file == "security/waivers.yaml" for p in problems)
