"""The smoke stage: bring an environment's stack up and prove it works end to end.

What it proves is the project's to declare: every service of the stack must be
healthy (one-shot jobs exited 0) with no probe code at all; the simple HTTP
probes of ``[[smoke.probes]]`` must answer as declared; and the project's own
pytest suite (``[smoke].suite``) runs against the live stack through the
``pipelines.testing`` plugin. The stack is always torn down.
"""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import _proc, composestack, render
from ..config import Probe
from ..errors import GateFailed, PipelineError, ToolNotFound
from ..result import Check, Context, Outcome, Result, Table, stderr_log

SUITE_TIMEOUT = 1800
# pytest's exit codes that mean the suite ran (0 all passed, 1 some failed); others mean it could not.
PYTEST_RAN = (0, 1)


@dataclass(frozen=True)
class Options:
    env: str | None = None
    keep: bool = False
    project: str | None = None
    deadline_s: float | None = None  # up -> all healthy; default [smoke].deadline
    extra_files: tuple[Path, ...] = ()


class ProbeFailed(Exception):
    """A probe's answer was not the declared one (never an `assert`: it must hold under python -O)."""


# --------------------------------------------------------------------------- checks


def services_healthy(st: composestack.Stack) -> Check:
    start = time.monotonic()
    states = st.ps()
    expected = set(st.rendered.services)
    bad = [s for s in states.values() if not (s.done if st.one_shot(s.service) else s.ready)]
    missing = sorted(expected - set(states))
    detail = ", ".join(f"{s.service} {'done' if s.done else s.health or s.state}" for s in states.values())
    if bad or missing:
        detail = "not healthy: " + ", ".join(
            [f"{s.service}={s.state}/{s.health or '-'}" for s in bad] + [f"{m}=missing" for m in missing]
        )
    outcome = Outcome.FAIL if bad or missing else Outcome.PASS
    return Check(
        "services healthy",
        outcome,
        detail,
        round(time.monotonic() - start, 2),
        group="stack",
        evidence="docker compose ps --all --format json",
    )


def judge(probe: Probe, status: int, body: bytes) -> str:
    """What the answer shows, or :class:`ProbeFailed` saying how it differs from the declaration."""
    if status != probe.status:
        raise ProbeFailed(f"{probe.method} {probe.path} -> {status}, expected {probe.status}: {body[:200]!r}")
    if probe.json or probe.json_keys:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise ProbeFailed(f"{probe.method} {probe.path} -> {status} but not JSON: {body[:200]!r}") from None
        if not isinstance(data, dict):
            raise ProbeFailed(f"{probe.method} {probe.path} -> JSON {type(data).__name__}, expected an object")
        missing = [k for k in probe.json_keys if k not in data]
        if missing:
            raise ProbeFailed(f"{probe.method} {probe.path} -> JSON without keys {missing}")
        wrong = {k: data.get(k) for k, v in probe.json.items() if data.get(k) != v}
        if wrong:
            raise ProbeFailed(f"{probe.method} {probe.path} -> JSON {wrong}, expected {dict(probe.json)}")
    return f"{probe.method} {probe.path} -> {status}"


def run_probe(
    st: composestack.Stack,
    probe: Probe,
    ports: dict[tuple[str, int], str] | None = None,
    *,
    log: Callable[[str], None] = stderr_log,
) -> Check:
    """Ask until the answer is the declared one or the probe's deadline passes.

    ``ports`` keeps published addresses between probes (each lookup is a
    `docker compose port`); one that fails to connect is looked up again.
    """
    ports = {} if ports is None else ports
    start = time.monotonic()
    auth = None
    if probe.auth_user_secret and probe.auth_password_secret:
        auth = (st.secret(probe.auth_user_secret), st.secret(probe.auth_password_secret))
    body = probe.body.encode() if probe.body is not None else None
    detail = ""
    while True:
        try:
            key = (probe.service, probe.port)
            if key not in ports:
                ports[key] = st.port(probe.service, probe.port)
            url = "http://" + ports[key] + probe.path
            status, _, answer = composestack.http(
                probe.method, url, auth=auth, body=body, content_type=probe.content_type, timeout=5.0
            )
            detail = judge(probe, status, answer)
            outcome = Outcome.PASS
            break
        except ProbeFailed as exc:
            detail = str(exc)
        except (OSError, PipelineError) as exc:
            ports.pop((probe.service, probe.port), None)
            detail = f"{probe.service}:{probe.port}{probe.path}: {exc}"
        if time.monotonic() - start >= probe.deadline:
            outcome = Outcome.FAIL
            break
        _proc.wait(0.3)
    took = round(time.monotonic() - start, 2)
    if outcome is Outcome.PASS:
        detail += " (with credential)" if auth else ""
    log(f"  {'ok  ' if outcome.ok else 'FAIL'} {probe.name}: {detail}")
    return Check(
        probe.name, outcome, detail, took, group="probes", evidence=f"{probe.method} {probe.service}{probe.path}"
    )


def run_suite(
    st: composestack.Stack,
    suite: Path,
    root: Path,
    *,
    node: str | None = None,
    plugins: Sequence[str] | None = None,
    log: Callable[[str], None] = stderr_log,
) -> list[Check]:
    """The project's pytest suite against the live stack; one check per test case.

    With ``plugins`` ([smoke].plugins) only those load: pytest's entry-point
    autoload imports every installed plugin (Hypothesis alone 0.7 s) in a
    suite that needs none of them.
    """
    if node is None and not suite.exists():
        raise ToolNotFound(f"the smoke suite {suite} does not exist", hint="fix [smoke].suite in the config")
    junit = st.run_dir / ("suite.junit.xml" if node is None else "seed.junit.xml")
    target = node or str(suite)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "pipelines.testing",
        "-q",
        "--no-header",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *(arg for p in plugins or () for arg in ("-p", p)),
        target,
    ]
    env = {"PIPELINES_STACK": str(st.run_dir / composestack.HANDLE), "PYTHONDONTWRITEBYTECODE": "1"}
    if plugins is not None:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    log(f"smoke: running {target} against {st.project}")
    r = _proc.run(
        argv,
        timeout=SUITE_TIMEOUT,
        check=False,
        cwd=root,
        env=env,
        what="smoke suite",
        stream=lambda line: log(f"  | {line}"),
    )
    if r.returncode not in PYTEST_RAN:
        raise ToolNotFound(
            f"the smoke suite {target} could not run (pytest exit {r.returncode})",
            seen=_proc.tail(r.stdout + r.stderr, 15),
            hint="pytest exit 5 means it collected no test: an empty suite proves nothing",
        )
    return parse_junit(junit.read_text(), suite=target)


def parse_junit(text: str, *, suite: str) -> list[Check]:
    try:
        root = ET.fromstring(text)  # noqa: S314 - pytest's own report of our own run
    except ET.ParseError as exc:
        raise PipelineError(f"pytest's JUnit report for {suite} is not XML ({exc})") from None
    checks = []
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        if failure is None:
            failure = tc.find("error")
        skipped = tc.find("skipped")
        if failure is not None:
            # A skipped smoke test proves nothing: it counts as failed.
            outcome, detail = Outcome.FAIL, (failure.get("message") or "failed").splitlines()[0][:300]
        elif skipped is not None:
            outcome, detail = Outcome.FAIL, "skipped: " + (skipped.get("message") or "")[:300]
        else:
            outcome, detail = Outcome.PASS, "passed"
        checks.append(
            Check(
                tc.get("name", "?"),
                outcome,
                detail,
                round(float(tc.get("time", "0") or 0), 2),
                group=tc.get("classname", suite).rsplit(".", 1)[-1],
                evidence=f"pytest {suite}",
            )
        )
    if not checks:
        raise PipelineError(f"the smoke suite {suite} ran no test", hint="an empty suite proves nothing")
    return checks


def evidence(st: composestack.Stack, states: str | None = None) -> list[Table]:
    """What a person needs on failure: states and the last log lines; full logs on disk."""
    try:
        tables = [Table(("state",), tuple((line,) for line in (states or st.states_table()).splitlines()), "services")]
        for service, tail in st.save_logs().items():
            tables.append(Table(("log",), tuple((line,) for line in tail.splitlines()), f"last lines of {service}"))
        return tables
    except PipelineError as exc:
        return [Table(("problem",), ((f"could not collect evidence: {exc.what}",),), "evidence")]


# --------------------------------------------------------------------------- the stage


def run(ctx: Context, opts: Options) -> Result:
    cfg = ctx.cfg
    ctx.tools.compose_version  # noqa: B018 - a clear message when compose is missing
    env = cfg.env(opts.env)
    project = opts.project or composestack.project_name("pipelines-smoke", env.name)
    run_dir = cfg.project.artifacts / "smoke" / project
    st = composestack.Stack(
        cfg, env.name, project, run_dir, ctx.tools, extra_files=opts.extra_files, fast_health=True, throwaway=True
    )
    deadline = opts.deadline_s or cfg.smoke.deadline
    probes = [p for p in cfg.smoke.probes if not p.environments or env.name in p.environments]
    ctx.log(f"smoke: {env.name} as project {project}")
    checks: list[Check] = []
    tables: list[Table] = []
    error = ""
    healthy_after: float | None = None
    try:
        with composestack.running(st, keep=opts.keep, deadline_s=deadline) as healthy_after:
            ctx.log(f"smoke: all services healthy {healthy_after:.1f} s after up")
            checks.append(services_healthy(st))
            ports: dict[tuple[str, int], str] = {}
            checks += [run_probe(st, p, ports, log=ctx.log) for p in probes]
            if cfg.smoke.suite is not None:
                checks += run_suite(st, cfg.smoke.suite, cfg.root, plugins=cfg.smoke.plugins, log=ctx.log)
            if not all(c.ok for c in checks):
                tables += evidence(st)
    except GateFailed as exc:
        error = exc.what
        if st.config:
            tables += evidence(st, exc.seen)
    res = _result(env.name, project, run_dir, checks, tables, error, healthy_after)
    if opts.extra_files:
        return res  # a stack changed by extra overlays proves nothing about the build as it ships
    # The IDs the stack ran (each proven to be the record's; the containers held to them once healthy).
    return replace(res, env=env.name, subjects=dict(st.subjects))


def _result(
    env: str,
    project: str,
    run_dir: Path,
    checks: list[Check],
    evidence_tables: list[Table],
    error: str,
    healthy_after: float | None,
) -> Result:
    failed = [c for c in checks if not c.ok]
    if error:
        headline = f"smoke {env} ({project}): FAILED: {error}"
    elif failed:
        headline = f"smoke {env} ({project}): FAILED: {len(failed)} check(s) failed: " + ", ".join(
            c.name for c in failed
        )
    else:
        headline = f"smoke {env} ({project}): passed, {len(checks)} checks" + (
            f", healthy {healthy_after:.1f} s after up" if healthy_after is not None else ""
        )
    data: Mapping[str, Any] = {
        "env": env,
        "project": project,
        "up_to_healthy_s": healthy_after,
        "ok": not error and bool(checks) and not failed,
        "logs": str(run_dir / "logs"),
    }
    return Result(
        stage="smoke",
        headline=headline,
        checks=tuple(checks),
        tables=(render.checks_table(checks), *evidence_tables),
        timings={"up_to_healthy_s": healthy_after} if healthy_after is not None else {},
        data=data,
        error=error or ("" if checks else "no check ran"),
        out_dir=run_dir,
    )
