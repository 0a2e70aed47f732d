"""The waiver ledger: its schema errors name key path and line; policy problems are findings."""

from __future__ import annotations

import datetime as dt
import os
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import inputs, waivers
from pipelines.errors import ConfigError
from tests.harness import ROOT, examples

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


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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


# --------------------------------------------------------------------------- inline waivers

MAX_DAYS = 90
RULES = st.lists(st.from_regex(r"(PL-[DC]0[0-9]{2}|DL[0-9]{4}|SC[0-9]{4})", fullmatch=True), min_size=1, max_size=4)
# One line of text: nothing that str.splitlines() would break, not blank.
REASONS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
).filter(lambda s: s.strip() != "")


def inline(text: str, spans: tuple[tuple[int, int], ...] = ()) -> tuple[list[waivers.Waiver], list[waivers.Finding]]:
    return waivers.parse_inline(text, "Dockerfile", max_days=MAX_DAYS, today=TODAY, spans=spans)


def comment(rules: list[str], reason: str, expires: dt.date) -> str:
    return f"# pipelines: ignore={','.join(rules)} reason={shlex.quote(reason)} expires={expires.isoformat()}"


@settings(max_examples=examples(300), deadline=None)
@given(RULES, REASONS, st.integers(0, MAX_DAYS), st.sampled_from(["", "owner=platform "]))
def test_a_well_formed_inline_waiver_reads_back_exactly(rules: list[str], reason: str, days: int, owner: str) -> None:
    expires = TODAY + dt.timedelta(days=days)
    line = comment(rules, reason, expires).replace(" reason=", f" {owner}reason=")
    ws, problems = inline(line + "\nRUN true\n")
    assert problems == []
    [w] = ws
    assert (w.rules, w.reason, w.expires) == (tuple(rules), reason, expires)
    assert (w.inline, w.path, w.line, w.end_line, w.where) == (True, "Dockerfile", 2, 2, "Dockerfile:1")
    assert w.owner == ("platform" if owner else "")


@settings(max_examples=examples(300), deadline=None)
@given(RULES, REASONS, st.integers(-3650, 3650), st.sampled_from(["reason", "expires", "both", "none"]))
def test_an_inline_waiver_without_reason_or_expiry_or_in_window_is_refused(
    rules: list[str], reason: str, days: int, drop: str
) -> None:
    expires = TODAY + dt.timedelta(days=days)
    line = comment(rules, reason, expires)
    if drop in ("reason", "both"):
        line = line.replace(f" reason={shlex.quote(reason)}", "")
    if drop in ("expires", "both"):
        line = line.replace(f" expires={expires.isoformat()}", "")
    ws, problems = inline(line + "\nRUN true\n")
    usable = drop == "none" and 0 <= days <= MAX_DAYS
    assert len(ws) + len(problems) == 1
    assert bool(ws) is usable
    if not usable:
        [p] = problems
        assert (p.file, p.line, p.severity) == ("Dockerfile", 1, waivers.Severity.ERROR)
        if drop in ("reason", "both"):
            assert "has no reason" in p.message
        elif drop == "expires":
            assert "has no expiry" in p.message
        elif days < 0:
            assert p.rule == waivers.RULE_EXPIRED and f"expired on {expires.isoformat()}" in p.message
        else:
            assert p.rule == waivers.RULE_INVALID and f"more than {MAX_DAYS} days ahead" in p.message


LINES = st.lists(
    st.one_of(
        st.just(""),
        st.just("   "),
        st.just("# a note"),
        st.just("RUN true"),
        st.just("  key: value"),
        st.just('# pipelines: ignore=PL-D014 reason="r" expires=2026-12-01'),
        st.just('  key: value  # pipelines: ignore=PL-C001 reason="r" expires=2026-12-01'),
    ),
    max_size=12,
)


@settings(max_examples=examples(500), deadline=None)
@given(LINES)
def test_an_inline_waiver_covers_exactly_one_line_never_the_file(lines: list[str]) -> None:
    ws, problems = inline("\n".join(lines))
    code = [n for n, raw in enumerate(lines, 1) if raw.strip() and not raw.lstrip().startswith("#")]
    declared = [n for n, raw in enumerate(lines, 1) if "pipelines: ignore=" in raw]
    assert len(ws) + len(problems) == len(declared)
    for w in ws:
        at = int(w.where.rsplit(":", 1)[1])
        expected = at if at in code else min(n for n in code if n > at)
        assert w.inline and w.line == w.end_line == expected
        others = [n for n in range(0, len(lines) + 2) if n != expected]
        for n in others:
            assert not w.covers(waivers.Finding("t", w.rules[0], waivers.Severity.ERROR, "m", "Dockerfile", n))
        assert w.covers(waivers.Finding("t", w.rules[0], waivers.Severity.ERROR, "m", "Dockerfile", expected))
        assert not w.covers(waivers.Finding("t", w.rules[0], waivers.Severity.ERROR, "m", "other", expected))
    for p in problems:
        assert p.rule == waivers.RULE_INVALID and "covers nothing" in p.message
        assert not any(n > p.line for n in code)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 5)), max_size=6), st.integers(1, 40))
def test_an_inline_waiver_covers_the_whole_instruction_it_stands_above(
    raw_spans: list[tuple[int, int]], at: int
) -> None:
    spans = tuple((a, a + n) for a, n in raw_spans)
    lines = ["RUN true"] * 45
    lines[at - 1] = '# pipelines: ignore=PL-D014 reason="r" expires=2026-12-01'
    [w], _ = inline("\n".join(lines), spans)
    target = at + 1
    first, last = next(((a, b) for a, b in spans if a <= target <= b), (target, target))
    assert (w.line, w.end_line) == (first, last)


@settings(max_examples=examples(500), deadline=None)
@given(st.text(alphabet=st.sampled_from("PLD-0123,=\"'\\ reasonexpiwt=#:2026-1.x\t"), max_size=80))
def test_any_inline_waiver_text_is_a_waiver_or_one_finding(rest: str) -> None:
    """Whatever follows `ignore=`: one usable waiver (reason, expiry in the window, a line) or one finding."""
    ws, problems = inline(f"# pipelines: ignore={rest}\nRUN true\n")
    assert len(ws) + len(problems) == 1
    for w in ws:
        assert w.rules and w.reason.strip() and TODAY <= w.expires <= TODAY + dt.timedelta(days=MAX_DAYS)
        assert w.inline and w.line == 2
    for p in problems:
        assert p.rule in (waivers.RULE_INVALID, waivers.RULE_EXPIRED) and p.line == 1 and p.file == "Dockerfile"


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ("", "names no rule"),
        (' reason="r" expires=2026-12-01', "'reason=r' is not a rule id"),
        ('PL-D001 reason="unterminated expires=2026-12-01', "cannot be read (No closing quotation)"),
        ('PL-D001 reason="r" expires=2026-12-01 until=2026-12-01', "not until="),
        ('PL-D001 reason="r" expires=2026-W49-1', "is not YYYY-MM-DD"),
        ('PL-D001 reason="r" expires=2026-02-30', "is not YYYY-MM-DD"),
        ('PL-W003 reason="r" expires=2026-12-01', "PL-W003: a waiver's own problems are fixed, not waived"),
    ],
)
def test_malformed_inline_waivers(rest: str, message: str) -> None:
    ws, problems = inline(f"# pipelines: ignore={rest}\nRUN true\n")
    assert ws == [] and len(problems) == 1 and message in problems[0].message, problems


def test_a_ledger_entry_cannot_waive_a_waiver_rule(tmp_path: Path) -> None:
    entry = ENTRY.replace("PL-D001", "[PL-D001, PL-W002]") + "    expires: 2026-12-01\n"
    ws, problems = load(tmp_path, "waivers:\n" + entry)
    assert ws == [] and len(problems) == 1 and "fixed, not waived" in problems[0].message
    expired = waivers.Finding("pipelines", waivers.RULE_EXPIRED, waivers.Severity.ERROR, "m", "f", 1)
    sneaky = waivers.Waiver(rules=(waivers.RULE_EXPIRED,), reason="r", expires=TODAY, where="x", path="*")
    assert waivers.apply([expired], [sneaky]) == [expired] and sneaky.used == 0
