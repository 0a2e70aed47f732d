"""CI is the same everywhere: the workflow, the noxfile, .ci/run and the README agree.

Also: the workflow's hardening (pins, permissions, credentials), the lint
tools on the real workflow, the wrapper's elevation on GitHub, the BuildKit
cache choice there, and SARIF within GitHub's limits on the real lint and
scan outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines import build, config, report
from pipelines.errors import ConfigError, InputError
from pipelines.findings import Finding, Rule, Severity
from pipelines.tools import BuilderInfo
from tests.config.test_config import GOOD, project
from tests.harness import IN_CI, ROOT, run_cli
from tests.scan.test_scan import OS_ADVISORY, PY_ADVISORY, make_db
from tests.scan.test_scan import project as scan_project
from tests.test_build import command, pairs
from tests.test_render import sarif_regions, sarif_schema
from tools import ci

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
NOXFILE = ROOT / "noxfile.py"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool from the test environment (requirements/dev.txt); missing is a failure in CI."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed in the test environment (requirements/dev.txt)")
        pytest.skip(f"{name} not installed here")
    return found


def workflow() -> dict[str, Any]:
    return ci.read_workflow(WORKFLOW)


def noxfile() -> ci.Noxfile:
    return ci.read_noxfile(NOXFILE)


def write_noxfile(tmp: Path, text: str) -> ci.Noxfile:
    path = tmp / "noxfile.py"
    path.write_text(textwrap.dedent(text))
    return ci.read_noxfile(path)


# --------------------------------------------------------------------------- one list


def test_the_workflow_runs_exactly_the_ci_sessions_in_order() -> None:
    nox = noxfile()
    assert nox.ci_sessions == ("lint", "build", "scan", "verify", "smoke", "tests")
    assert ci.parity_problems(workflow(), nox) == []
    assert ci.session_steps(workflow(), "pipeline") == list(nox.ci_sessions)
    assert nox.sessions["ci"].requires == nox.ci_sessions


def test_ci_run_is_the_readme_command_and_the_ci_session() -> None:
    line = ci.ci_command(ROOT / ".ci" / "run")
    assert line == ci.CI_ENTRY == "./noxw --provision -s ci"
    assert line in (ROOT / "README.md").read_text()
    # The README's list is the noxfile's list.
    listed = ", ".join(f"`{name}`" for name in noxfile().ci_sessions)
    assert f"`CI_SESSIONS` in `noxfile.py` ({listed})" in " ".join((ROOT / "README.md").read_text().split())


def test_a_bare_noxw_runs_a_default_that_needs_no_root() -> None:
    nox = noxfile()
    assert nox.default == ("lint",)
    assert not set(nox.default) & set(nox.needs_root)
    assert {"build", "provision", "tests", "ci"} <= set(nox.needs_root)


def test_every_session_has_one_group_tag() -> None:
    nox = noxfile()
    groups = {name: [t for t in s.tags if t in ci.GROUP_TAGS] for name, s in nox.sessions.items()}
    assert all(len(g) == 1 for g in groups.values()), groups
    assert {n for n, g in groups.items() if g == ["release"]} >= {"patch"}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a session in the workflow and not in CI_SESSIONS
        (lambda w: w["jobs"]["pipeline"]["steps"].append({"run": "./noxw -s doctor"}), "runs sessions"),
        # a step that is not a session
        (
            lambda w: w["jobs"]["pipeline"]["steps"].insert(4, {"run": "sudo ./noxw -s build"}),
            "not a session",
        ),
        (
            lambda w: w["jobs"]["pipeline"]["steps"].append({"run": "echo ${{ github.event.pull_request.title }}"}),
            "not a session",
        ),
        # another order
        (lambda w: w["jobs"]["pipeline"]["steps"].reverse(), "runs sessions"),
        # a session CI_SESSIONS has and the workflow lost
        (
            lambda w: w["jobs"]["pipeline"].__setitem__(
                "steps", [s for s in w["jobs"]["pipeline"]["steps"] if s.get("run") != "./noxw -s smoke"]
            ),
            "runs sessions",
        ),
        # a session the noxfile does not define
        (lambda w: w["jobs"]["pipeline"]["steps"].append({"run": "./noxw -s publish"}), "does not define"),
        # a step named otherwise than the session that reproduces it
        (lambda w: w["jobs"]["pipeline"]["steps"][4].__setitem__("name", "Lint"), "name the step 'lint'"),
        # a session step in another job
        (lambda w: w["jobs"]["code-scanning"]["steps"].append({"name": "scan", "run": "./noxw -s scan"}), "outside"),
    ],
)
def test_drift_in_the_workflow_is_caught(edit: Any, expected: str) -> None:
    w = workflow()
    edit(w)
    problems = ci.parity_problems(w, noxfile())
    assert any(expected in p for p in problems), problems


def test_the_stage_sessions_are_pipelines_nox_s_and_the_noxfile_adds_its_own() -> None:
    from pipelines import nox as stage_sessions

    nox = noxfile()
    own = {n for n, s in nox.sessions.items() if s.source.startswith(f"{NOXFILE}:")}
    assert own == {"lint", "tests", "unit", "patch", "provision"}
    for spec in stage_sessions.SESSIONS:
        if spec.name not in own:
            assert nox.sessions[spec.name].tags == (spec.tag,), spec.name
            assert nox.sessions[spec.name].source.startswith(f"{ROOT / 'pipelines' / 'nox.py'}:"), spec.name
    assert set(nox.sessions) == {s.name for s in stage_sessions.SESSIONS} | own | {"ci"}


def test_drift_in_the_noxfile_is_caught(tmp_path: Path) -> None:
    text = NOXFILE.read_text()
    ci_list = 'CI_SESSIONS = ["lint", "build", "scan", "verify", "smoke", "tests"]'
    # A session added to CI_SESSIONS (and tagged) but not to the workflow.
    added = text.replace(ci_list, ci_list.replace('"tests"]', '"tests", "unit"]')).replace(
        '@nox.session(tags=["dev"])\ndef unit(', '@nox.session(tags=["ci"])\ndef unit('
    )
    assert added != text
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, added))
    assert any("runs sessions" in p and "unit" in p for p in problems), problems
    # A session tagged ci that CI does not run; one without a group.
    retagged = text.replace(
        '@nox.session(venv_backend="none", tags=["dev"])\ndef provision(',
        '@nox.session(venv_backend="none", tags=["ci"])\ndef provision(',
    ).replace('@nox.session(tags=["release"])\ndef patch(', "@nox.session\ndef patch(")
    assert retagged.count("def ") == text.count("def ") and retagged != text
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, retagged))
    assert any("tagged 'ci'" in p and "provision" in p for p in problems), problems
    assert any("'patch' has group tags []" in p for p in problems), problems
    # scan before build; a default that needs root.
    reordered = text.replace(ci_list, ci_list.replace('"build", "scan"', '"scan", "build"')).replace(
        'nox.options.sessions = ["lint"]', 'nox.options.sessions = ["build", "scan", "smoke"]'
    )
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, reordered))
    assert any("'scan', which needs a build, before 'build'" in p for p in problems), problems
    assert any("default session 'build' needs root" in p for p in problems), problems


def test_drift_in_the_sessions_pipelines_nox_registers_is_caught(tmp_path: Path) -> None:
    text = NOXFILE.read_text()
    call = 'pipelines.nox.sessions(install=_install, exclude=["lint"], ci=CI_SESSIONS)'
    assert call in text
    # The `ci` chain in another order than CI_SESSIONS.
    chain = text.replace(call, call.replace("ci=CI_SESSIONS", 'ci=["lint", "scan", "build"]'))
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, chain))
    assert any("session 'ci' requires ['lint', 'scan', 'build'], not CI_SESSIONS" in p for p in problems), problems
    # A stage session left out: the deploy job's `sign` step and the CI `scan` step name nothing.
    fewer = text.replace(call, call.replace('exclude=["lint"]', 'exclude=["lint", "scan", "sign"]'))
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, fewer))
    assert any("runs session 'sign', which noxfile.py does not define" in p for p in problems), problems
    assert any("CI_SESSIONS names 'scan', which noxfile.py does not define" in p for p in problems), problems
    # The noxfile's own lint not excluded: the stage's would replace it (nox only warns), so it is refused.
    again = text.replace(call, call.replace('exclude=["lint"]', "exclude=[]"))
    with pytest.raises(InputError, match=r"noxfile.py:\d+: cannot be loaded .* defines lint already"):
        write_noxfile(tmp_path, again)


def test_deploy_jobs_run_the_release_sessions_for_their_own_environment() -> None:
    w, nox = workflow(), noxfile()
    assert ci.deploy_jobs(w) == {"deploy-staging": "staging", "deploy-prod": "prod"}
    assert nox.release_sessions == ("build", "scan", "verify", "smoke", "sign", "deploy")
    assert nox.promote_sessions == ("deploy",)
    assert ci.session_steps(w, "deploy-staging") == []  # `-- --env` steps: not CI steps
    runs = [st.run for st in ci.steps(w) if st.job == "deploy-staging" and st.run]
    expect = ' --expect-commit "$GITHUB_SHA"'
    assert runs == [f"./noxw -s {n} -- --env staging" + (expect if n == "deploy" else "") for n in nox.release_sessions]
    prod = [st.run for st in ci.steps(w) if st.job == "deploy-prod" and st.run]
    assert prod == [f"./noxw -s deploy -- --env prod{expect}"]
    for name in ("sign", "deploy"):
        assert "release" in nox.sessions[name].tags
    # staging waits for the green pipeline, prod for staging (and so for the pipeline too).
    assert w["jobs"]["deploy-staging"]["needs"] == "pipeline" and w["jobs"]["deploy-prod"]["needs"] == "deploy-staging"


def _deploy_job(w: dict[str, Any]) -> dict[str, Any]:
    return dict(w["jobs"]["deploy-staging"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a step for another environment than the job's
        (lambda j: j["steps"][-2].__setitem__("run", "./noxw -s deploy -- --env prod"), "from the job of environment"),
        # a session left out (nothing signed, then deployed)
        (lambda j: j.__setitem__("steps", [s for s in j["steps"] if s.get("name") != "sign"]), "RELEASE_SESSIONS"),
        # shell around a session
        (lambda j: j["steps"][1].__setitem__("run", "sudo ./noxw -s build -- --env staging"), "a deploy step is"),
        # a step named otherwise
        (lambda j: j["steps"][1].__setitem__("name", "Build"), "name the step 'build'"),
        # not waiting for the pipeline
        (lambda j: j.pop("needs"), "does not wait for 'pipeline'"),
        # a deploy that does not say which commit it must ship (what the reviewers approved)
        (lambda j: j["steps"][-2].__setitem__("run", "./noxw -s deploy -- --env staging"), "deploys without"),
        (
            lambda j: j["steps"][-2].__setitem__("run", "./noxw -s deploy -- --env staging --expect-commit abc"),
            "a deploy step is",
        ),
        # a newer run may cancel a deploy under way
        (lambda j: j["concurrency"].__setitem__("cancel-in-progress", True), "cancel-in-progress: false"),
        (lambda j: j.pop("concurrency"), "cancel-in-progress: false"),
    ],
)
def test_drift_in_a_deploy_job_is_caught(edit: Any, expected: str) -> None:
    w = workflow()
    job = _deploy_job(w)
    job["steps"] = [dict(s) for s in job["steps"]]
    job["concurrency"] = dict(job["concurrency"])
    edit(job)
    w["jobs"]["deploy-staging"] = job
    problems = ci.parity_problems(w, noxfile())
    assert any(expected in p for p in problems), problems


def test_a_deploy_job_without_release_lists_in_the_noxfile_is_caught(tmp_path: Path) -> None:
    text = (
        NOXFILE.read_text().replace("RELEASE_SESSIONS = ", "_RELEASE = ").replace("PROMOTE_SESSIONS = ", "_PROMOTE = ")
    )
    problems = ci.parity_problems(workflow(), write_noxfile(tmp_path, text))
    assert sum("RELEASE_SESSIONS [] or PROMOTE_SESSIONS []" in p for p in problems) == 2, problems


def test_a_noxfile_without_the_list_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no CI_SESSIONS list"):
        write_noxfile(tmp_path, "import nox\n")
    with pytest.raises(InputError, match=r"noxfile.py: CI_SESSIONS is not a list of session names \('lint'\)"):
        write_noxfile(tmp_path, "CI_SESSIONS = 'lint'\n")
    with pytest.raises(InputError, match=r"noxfile.py:3: cannot be loaded as nox loads it \(NameError: .*'make'"):
        write_noxfile(tmp_path, "import nox\nCI_SESSIONS = []\n@nox.session(tags=make())\ndef x(s): pass\n")
    with pytest.raises(InputError, match=r"noxfile.py:2: cannot be loaded as nox loads it \(.*SyntaxError"):
        write_noxfile(tmp_path, "import nox\ndef x(:\n")
    with pytest.raises(InputError, match=r"noxfile.py: cannot be read"):
        ci.read_noxfile(tmp_path / "missing" / "noxfile.py")


# --------------------------------------------------------------------------- hardened workflow


def test_every_uses_is_pinned_to_a_full_sha_with_its_version() -> None:
    assert ci.pin_problems(workflow()) == []
    pins = ci.uses_with_versions(WORKFLOW)
    assert len(pins) >= 7
    for uses, comment in pins:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), f"{uses}: version comment {comment!r}"
    # One action, one SHA: two different pins of the same action would be a half-done update.
    by_action: dict[str, set[str]] = {}
    for uses, comment in pins:
        by_action.setdefault(uses.split("@")[0], set()).add(uses + comment)
    assert all(len(v) == 1 for v in by_action.values()), by_action


def test_a_tag_pin_is_caught() -> None:
    w = workflow()
    w["jobs"]["pipeline"]["steps"][0]["uses"] = "actions/checkout@v4"
    w["jobs"]["pipeline"]["steps"].append({"uses": "docker://alpine:3"})
    problems = ci.pin_problems(w)
    assert len(problems) == 2 and "'actions/checkout@v4'" in problems[0], problems


def test_permissions_timeouts_and_credentials() -> None:
    w = workflow()
    assert ci.hardening_problems(w) == []
    assert w["permissions"] == {}
    assert w["jobs"]["code-scanning"]["permissions"] == {"contents": "read", "security-events": "write"}
    assert w["jobs"]["pipeline"]["permissions"] == {"contents": "read"}
    # The same checks fail on the workflow this one replaced.
    old = yaml.safe_load(
        textwrap.dedent("""
        permissions: {contents: read, security-events: write}
        jobs:
          pipeline:
            runs-on: ubuntu-24.04
            steps:
              - uses: actions/checkout@v4
              - run: echo "${{ github.head_ref }}"
        """)
    )
    problems = ci.hardening_problems(old)
    for expected in ("workflow-level permissions", "concurrency", "no `permissions:`", "persist-credentials", "${{"):
        assert any(expected in p for p in problems), (expected, problems)


def _steps_of(w: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return [dict(st) for st in w["jobs"][job]["steps"]]


def test_secrets_reach_only_the_steps_that_sign() -> None:
    w = workflow()
    assert ci.secret_problems(w) == []
    # Where they are: the sign and deploy steps' own env, in both deploy jobs; nowhere else.
    holders = {(st.job, st.name) for st in ci.steps(w) if ci.secret_refs(st.env)}
    assert holders == {("deploy-staging", "sign"), ("deploy-staging", "deploy"), ("deploy-prod", "deploy")}
    for job, name in holders:
        env = next(st.env for st in ci.steps(w) if (st.job, st.name) == (job, name))
        assert set(env) >= {"COSIGN_KEY", "COSIGN_PASSWORD"}, (job, name, env)
    for job, spec in w["jobs"].items():
        assert not ci.secret_refs(spec.get("env") or {}), f"job {job!r} gives secrets to every step"
    key = "${{ secrets.COSIGN_KEY }}"
    cases: list[tuple[Any, str]] = [
        # job-level env: build, scan, verify and smoke would have them too (the workflow before this check)
        (
            lambda w: w["jobs"]["deploy-staging"].setdefault("env", {}).__setitem__("COSIGN_KEY", key),
            "outside its steps",
        ),
        (lambda w: w.__setitem__("env", {"COSIGN_PASSWORD": "${{ secrets.COSIGN_PASSWORD }}"}), "top level"),
        # a step that does not sign
        (lambda w: w["jobs"]["deploy-staging"]["steps"][1].__setitem__("env", {"K": key}), "step 2 ('build')"),
        (lambda w: w["jobs"]["pipeline"]["steps"][-2].__setitem__("env", {"K": key}), "'pipeline' step"),
        # an action's input on the deploy job
        (lambda w: w["jobs"]["deploy-prod"]["steps"][-1]["with"].__setitem__("token", key), "'deploy-prod' step 3"),
        # the deploy step, but in its run line rather than its env
        (lambda w: w["jobs"]["deploy-prod"]["steps"][1].__setitem__("run", f"echo {key}"), "'deploy-prod' step 2"),
    ]
    for edit, expected in cases:
        w = workflow()
        edit(w)
        problems = ci.secret_problems(w)
        assert any(expected in p for p in problems), (expected, problems)


def test_self_hosted_runners_run_only_deploy_jobs_for_pushes_to_main() -> None:
    w = workflow()
    assert ci.runner_problems(w) == []
    hosted = {j for j, spec in w["jobs"].items() if "self-hosted" in spec["runs-on"]}
    assert hosted == set(ci.deploy_jobs(w)) == {"deploy-staging", "deploy-prod"}
    for job in hosted:
        cond = w["jobs"][job]["if"]
        assert "github.event_name == 'push'" in cond and "github.ref == 'refs/heads/main'" in cond, (job, cond)
    assert (
        "pull_request" in w[True]
    )  # YAML 1.1 reads `on:` as true; so the `if:` is what keeps pull requests off the deploy host
    cases: list[tuple[Any, str]] = [
        # prod relied on `needs:` alone (the workflow before this check)
        (lambda w: w["jobs"]["deploy-prod"].pop("if"), "'deploy-prod': its `if:` lacks"),
        (lambda w: w["jobs"]["deploy-prod"].__setitem__("if", "always()"), "'deploy-prod': its `if:` lacks"),
        (
            lambda w: w["jobs"]["deploy-staging"].__setitem__(
                "if", "github.event_name == 'push' && github.ref == 'refs/heads/main' || true"
            ),
            "could run it for other events",
        ),
        (lambda w: w["jobs"]["pipeline"].__setitem__("runs-on", ["self-hosted"]), "'pipeline' runs on a self-hosted"),
        (
            lambda w: w["jobs"]["code-scanning"].__setitem__("runs-on", {"group": "pipelines-deploy"}),
            "'code-scanning' runs on a self-hosted",
        ),
        (lambda w: w["jobs"]["deploy-prod"].pop("environment"), "'deploy-prod' runs on a self-hosted"),
    ]
    for edit, expected in cases:
        w = workflow()
        edit(w)
        problems = ci.runner_problems(w)
        assert any(expected in p for p in problems), (expected, problems)


def test_the_workflow_documents_the_runner_group_restriction() -> None:
    text = " ".join(line.strip().lstrip("#").strip() for line in WORKFLOW.read_text().splitlines())
    assert "Runner-group restriction" in text
    assert ".github/workflows/ci.yml@refs/heads/main" in text and "public repositories not allowed" in text


def test_the_lint_session_checks_the_workflow() -> None:
    import ast

    tree = ast.parse(NOXFILE.read_text())
    lint = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lint")
    calls = [ast.unparse(c) for c in ast.walk(lint) if isinstance(c, ast.Call)]
    assert any("'check-jsonschema', '--builtin-schema', 'vendor.github-workflows'" in c for c in calls), calls
    assert any("'zizmor', '--offline', '--no-config'" in c and "'--min-severity', 'medium'" in c for c in calls)


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    # The lint session's flags, with JSON out to count what it found.
    argv = [tool("zizmor"), "--offline", "--no-config", "--persona", "regular", "--min-severity", "medium"]
    argv += ["--format", "json", *map(str, paths)]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_zizmor_and_the_schema_pass_the_real_workflow() -> None:
    r = zizmor(WORKFLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == []
    s = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert s.returncode == 0 and "ok -- validation done" in s.stdout, s.stdout + s.stderr


def test_zizmor_and_the_schema_fail_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        textwrap.dedent("""
        on: pull_request_target
        permissions: write-all
        jobs:
          x:
            runs-on: ubuntu-24.04
            steps:
              - uses: actions/checkout@v4
                with: {ref: "${{ github.event.pull_request.head.sha }}"}
              - run: echo "${{ github.event.pull_request.title }}"
        """)
    )
    r = zizmor(bad)
    findings = json.loads(r.stdout)
    assert r.returncode != 0 and {f["ident"] for f in findings} >= {"template-injection", "unpinned-uses"}, r.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps: []\n")  # no runs-on
    s = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert s.returncode == 1, s.stdout


# --------------------------------------------------------------------------- root on GitHub


@pytest.fixture
def runner_bin(tmp_path: Path) -> Path:
    """A GitHub runner's view: `id -u` says an unprivileged user; `sudo` allows `sudo -n true` and
    records how it was called otherwise."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "id").write_text('#!/bin/sh\n[ "$1" = -u ] && echo 1001 && exit 0\nexec /usr/bin/id "$@"\n')
    (bin_ / "sudo").write_text(
        '#!/bin/sh\n[ "$1 $2" = "-n true" ] && exit 0\nprintf "%s\\n" "$@" > "$SUDO_LOG"\nexit 0\n'
    )
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_


def run_noxw(bin_: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str] | None]:
    log = bin_.parent / "sudo.log"
    log.unlink(missing_ok=True)
    full = {
        "PATH": f"{bin_}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "SUDO_LOG": str(log),
        "CI": "true",
        **env,
    }
    r = subprocess.run(
        ["bash", str(ROOT / "noxw"), "-l"], cwd=bin_, env=full, capture_output=True, text=True, timeout=300, check=False
    )
    return r, log.read_text().splitlines() if log.exists() else None


def test_noxw_elevates_on_github_and_keeps_the_ca_bundle(runner_bin: Path) -> None:
    r, argv = run_noxw(
        runner_bin,
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY="/tmp/summary.md",
        ACTIONS_RUNTIME_TOKEN="t",
        ACTIONS_CACHE_URL="https://cache/",
        PIP_CERT="/etc/ssl/corp.pem",
        SSL_CERT_FILE="/etc/ssl/corp.pem",
        REQUESTS_CA_BUNDLE="/etc/ssl/corp.pem",
        COSIGN_KEY="-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----",
        COSIGN_PASSWORD="pw",
        COSIGN_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----",
        UNRELATED_SECRET="x",
    )
    assert r.returncode == 0 and argv is not None, r.stderr
    keep = next(a for a in argv if a.startswith("--preserve-env=")).removeprefix("--preserve-env=").split(",")
    for var in ("CI", "HOME", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_URL"):
        assert var in keep, keep
    assert {"PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"} <= set(keep)
    # The signing variables the sign and deploy steps are given (and only they are) survive sudo.
    assert {"COSIGN_KEY", "COSIGN_PASSWORD", "COSIGN_PUBLIC_KEY"} <= set(keep)
    assert "UNRELATED_SECRET" not in keep
    # sudo's secure_path would replace PATH: it goes through env, then the same wrapper runs again.
    assert (
        argv[0] == "-n" and argv[2] == "env" and argv[3].startswith("PATH=") and argv[4:] == [str(ROOT / "noxw"), "-l"]
    )


def test_noxw_does_not_elevate_elsewhere(runner_bin: Path) -> None:
    r, argv = run_noxw(runner_bin, PIPELINES_NO_SUDO="1", GITHUB_ACTIONS="true")
    assert argv is None and r.returncode == 0 and "- build [ci]" in r.stdout, r.stderr
    r, argv = run_noxw(runner_bin)  # not on GitHub
    assert argv is None and r.returncode == 0 and "* lint [ci]" in r.stdout, r.stderr


@pytest.fixture
def no_toolchain(runner_bin: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A PATH where `docker` answers nothing, and a stand-in for the wrapper's nox that prints its arguments."""
    (runner_bin / "docker").write_text("#!/bin/sh\nexit 1\n")
    (runner_bin / "docker").chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "nox").write_text('#!/bin/sh\necho "nox $*"\n')
    (venv / "bin" / "nox").chmod(0o755)
    (venv / ".noxw-installed").touch()  # newer than requirements/nox.txt: the wrapper sets nothing up
    return runner_bin, venv


def run_wrapper(bins: tuple[Path, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_, venv = bins
    full = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "PIPELINES_VENV": str(venv)}
    return subprocess.run(
        ["bash", str(ROOT / "noxw"), *args], env={**full, **env}, capture_output=True, text=True, timeout=120
    )


def test_noxw_installs_nothing_unless_asked_and_names_the_flag(no_toolchain: tuple[Path, Path]) -> None:
    r = run_wrapper(no_toolchain, "-s", "build")
    assert r.returncode == 0 and r.stdout.strip() == "nox -s build", r.stderr
    assert "./noxw --provision installs it" in r.stderr and "provisioning (scripts/provision.sh)" not in r.stderr
    assert "registry 127.0.0.1:5000" in r.stderr  # the address pipeline.toml names


def test_noxw_provision_is_a_flag_of_the_wrapper_and_needs_root(no_toolchain: tuple[Path, Path]) -> None:
    # The stand-in `id` says uid 1001: asked to provision, the wrapper says why it cannot, and runs nox.
    for args, env in ((("--provision", "-s", "ci"), {}), (("-s", "ci"), {"PIPELINES_PROVISION": "1"})):
        r = run_wrapper(no_toolchain, *args, **env)
        assert r.returncode == 0 and r.stdout.strip() == "nox -s ci", r.stderr
        assert "--provision needs root on a Debian host" in r.stderr


def test_noxw_listing_sessions_checks_no_toolchain(no_toolchain: tuple[Path, Path]) -> None:
    r = run_wrapper(no_toolchain, "-l")
    assert r.returncode == 0 and r.stdout.strip() == "nox -l" and "toolchain" not in r.stderr, r.stderr


def test_noxw_reads_the_registry_from_the_environment_first(no_toolchain: tuple[Path, Path]) -> None:
    r = run_wrapper(no_toolchain, "-s", "build", PIPELINES_REGISTRY_ADDR="registry.example:5443")
    assert "registry registry.example:5443" in r.stderr, r.stderr
    r = run_wrapper(no_toolchain, "-s", "build", PIPELINES_REGISTRY="registry.example:5444")
    assert "registry registry.example:5444" in r.stderr, r.stderr


def test_noxw_checks_the_registry_of_the_environment_asked_for(no_toolchain: tuple[Path, Path], tmp_path: Path) -> None:
    """--env among the session's arguments, else PIPELINES_ENV, else default_env: its own registry, else [registry]."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "noxw", project / "noxw")
    (project / "pipeline.toml").write_text(
        'default_env = "dev"\n[registry]\naddress = "127.0.0.1:5001"\n'
        '[environments.dev]\n[environments.prod]\nregistry = "registry.example:5443"\n'
    )
    bin_, venv = no_toolchain
    base = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "PIPELINES_VENV": str(venv)}
    for args, env, registry in (
        ((), {}, "127.0.0.1:5001"),
        (("--", "--env", "prod"), {}, "registry.example:5443"),
        (("--", "--env=prod"), {}, "registry.example:5443"),
        ((), {"PIPELINES_ENV": "prod"}, "registry.example:5443"),
        (("--", "--env", "dev"), {"PIPELINES_ENV": "prod"}, "127.0.0.1:5001"),
        (("--", "--env", "prod"), {"PIPELINES_REGISTRY": "127.0.0.1:5002"}, "127.0.0.1:5002"),
    ):
        r = subprocess.run(
            ["bash", str(project / "noxw"), "-s", "build", *args],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0 and f"registry {registry})" in r.stderr, (args, env, r.stderr)


# --------------------------------------------------------------------------- BuildKit cache on GitHub

CONTAINER = BuilderInfo("ci", "docker-container", "v0.26")
DOCKER = BuilderInfo("default", "docker", "v0.8")
ON_GITHUB = {"GITHUB_ACTIONS": "true", "ACTIONS_RUNTIME_TOKEN": "tok", "ACTIONS_CACHE_URL": "https://c/"}


@pytest.fixture
def demo(tmp_path: Path) -> config.Config:
    return config.load(project(tmp_path, textwrap.dedent(GOOD)))


def test_auto_picks_gha_on_github_with_a_container_builder(demo: config.Config) -> None:
    env = demo.env("dev")
    backend = build.choose_cache(demo, env, CONTAINER, ON_GITHUB)
    assert backend == "gha"
    argv = command(demo, cache=backend, driver=CONTAINER.driver)
    assert pairs(argv, "--cache-to") == ["type=gha,scope=web,mode=max"]
    assert pairs(argv, "--cache-from") == ["type=gha,scope=web"]
    # The newer cache service URL is as good as the old one.
    results_only = {"GITHUB_ACTIONS": "true", "ACTIONS_RUNTIME_TOKEN": "tok", "ACTIONS_RESULTS_URL": "https://r/"}
    assert build.choose_cache(demo, env, CONTAINER, results_only) == "gha"


@pytest.mark.parametrize(
    ("builder", "environ", "expected"),
    [
        (DOCKER, ON_GITHUB, "inline"),  # the docker driver cannot export to gha
        (DOCKER, {}, "inline"),  # locally the inline cache stays
        (CONTAINER, {}, "registry"),
        (CONTAINER, {"GITHUB_ACTIONS": "true"}, "registry"),  # runtime not exposed to the step
        (CONTAINER, {**ON_GITHUB, "ACTIONS_RUNTIME_TOKEN": ""}, "registry"),
        (CONTAINER, {**ON_GITHUB, "GITHUB_ACTIONS": "false"}, "registry"),
    ],
)
def test_auto_elsewhere(demo: config.Config, builder: BuilderInfo, environ: dict[str, str], expected: str) -> None:
    backend = build.choose_cache(demo, demo.env("dev"), builder, environ)
    assert backend == expected
    argv = command(demo, cache=backend, driver=builder.driver)
    assert not any("type=gha" in a for a in argv)


def test_gha_asked_for_outside_github_is_a_config_error(demo: config.Config) -> None:
    wants_gha = config.Environment("dev", False, ("dev",), {}, "gha")
    with pytest.raises(ConfigError, match=r"environments.dev.cache: cache backend 'gha' needs GitHub Actions"):
        build.choose_cache(demo, wants_gha, CONTAINER, {})
    with pytest.raises(ConfigError, match=r"'gha' is not supported by builder 'default'"):
        build.choose_cache(demo, wants_gha, DOCKER, ON_GITHUB)
    assert build.choose_cache(demo, wants_gha, CONTAINER, ON_GITHUB) == "gha"


# --------------------------------------------------------------------------- SARIF within GitHub's limits

RULE = Rule("T-1", Severity.WARNING, "title", "rationale", "hint")


def findings(n: int, severity: Severity = Severity.WARNING, message: str = "m") -> list[Finding]:
    return [Finding("t", "T-1", severity, f"{message} {i}", f"f{i}.txt", i + 1) for i in range(n)]


def test_too_many_results_keep_the_most_severe_with_a_notice() -> None:
    many = findings(report.SARIF_MAX_RESULTS + 7) + findings(3, Severity.ERROR, "worst")
    doc = report.sarif([report.SarifRun("t", "cat/t", {"T-1": RULE}, many)])
    run = doc["runs"][0]
    # Every result is built by the one code path: the schema checks the run with its first and last hundred
    # (all 5,000 take 5 s of schema checking and say nothing more).
    sample = {**doc, "runs": [{**run, "results": run["results"][:100] + run["results"][-100:]}]}
    jsonschema.validate(sample, sarif_schema())
    assert len(run["results"]) == report.SARIF_MAX_RESULTS
    assert [r["message"]["text"] for r in run["results"][:3]] == ["worst 0", "worst 1", "worst 2"]
    props = run["properties"]
    assert props["truncated"] is True and props["totalResults"] == report.SARIF_MAX_RESULTS + 10
    assert props["keptResults"] == report.SARIF_MAX_RESULTS
    assert report.sarif_notices(doc) == [props["notice"]] and "cat/t" in props["notice"]
    assert report.sarif_upload_problems({"x.sarif": doc}) == []


def test_a_file_too_large_compressed_is_cut_until_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "SARIF_MAX_GZIP_BYTES", 20_000)
    noisy = [replace(f, message=os.urandom(200).hex()) for f in findings(400)]
    doc = report.sarif([report.SarifRun("t", "cat/t", {"T-1": RULE}, noisy)])
    jsonschema.validate(doc, sarif_schema())
    kept = doc["runs"][0]["properties"]["keptResults"]
    assert 0 < kept < 400 and len(doc["runs"][0]["results"]) == kept
    assert "gzip-compressed" in doc["runs"][0]["properties"]["notice"]
    assert report.sarif_upload_problems({"x.sarif": doc}) == []


def test_small_runs_are_untouched() -> None:
    doc = report.sarif([report.SarifRun("t", "cat/t", {"T-1": RULE}, findings(3))])
    assert "properties" not in doc["runs"][0] and report.sarif_notices(doc) == []


def test_runs_github_would_reject_are_errors() -> None:
    run = report.SarifRun("t", "cat/t", {"T-1": RULE}, findings(1))
    with pytest.raises(report.SarifLimitError, match="share tool 't' and category 'cat/t'") as exc:
        report.sarif([run, run])
    assert exc.value.exit_code == 3
    with pytest.raises(report.SarifLimitError, match="21 runs"):
        report.sarif([report.SarifRun("t", f"c/{i}", {}, []) for i in range(21)])
    # Across the files of one upload (a directory), too.
    doc = report.sarif([run])
    problems = report.sarif_upload_problems({"a.sarif": doc, "b.sarif": doc})
    assert problems == ["b.sarif: tool 't' category 'cat/t/' also in a.sarif"]


def check_sarif(docs: dict[str, dict[str, Any]]) -> None:
    schema = sarif_schema()
    for name, doc in docs.items():
        try:
            jsonschema.validate(doc, schema)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{name} is not valid SARIF 2.1.0: {exc.message} at {list(exc.absolute_path)}")
        assert sarif_regions(doc) == [], name
    assert report.sarif_upload_problems(docs) == []


def test_the_real_lint_sarif_is_valid_and_within_limits(tmp_path: Path) -> None:
    tool("hadolint")
    out = tmp_path / "lint.sarif"
    r = run_cli("lint", "--format", "sarif", "--output", str(out), timeout=600)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) >= 3
    check_sarif({"lint.sarif": doc})


def test_the_real_scan_sarif_is_valid_and_within_limits(built: dict[str, Any], tmp_path: Path) -> None:
    db = make_db(tmp_path, OS_ADVISORY, PY_ADVISORY)
    api = str(built["images"]["api"]["tags"][0])
    r = run_cli("--config", str(scan_project(tmp_path)), "scan", api, "--vulndb", str(db))
    assert r.returncode == 1, r.stderr[-3000:]  # the two advisories gate
    run_dir = (tmp_path / "artifacts/scan/latest").resolve()
    docs = {p.name: json.loads(p.read_text()) for p in sorted(run_dir.glob("*.sarif"))}
    assert docs, f"no SARIF under {run_dir}"
    assert sum(len(run["results"]) for d in docs.values() for run in d["runs"]) >= 2
    check_sarif(docs)
