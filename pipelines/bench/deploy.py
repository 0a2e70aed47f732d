"""The deploy benchmark: constant load on the front door during a good and a bad `pipelines deploy`, judged."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _proc
from ..config import Config, DeployBench
from ..engine import Engine
from ..errors import ConfigError, PipelineError, ToolNotFound
from ..report import markdown_table
from ..result import Context, Result
from .report import bench_json, check, checks_md, now, result, write_files

if TYPE_CHECKING:
    from ..loadgen import LoadReport


DEPLOY_TIMEOUT_S = 1800.0  # one `pipelines deploy` child; its own gates have shorter deadlines


def _deploy_argv(cfg: Config, env: str) -> list[str]:
    return [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "deploy", "--env", env, "--format", "json"]


def require_deploy_command(cfg: Config) -> None:
    """Exit 2 with a clear message when this installation has no `pipelines deploy`."""
    argv = [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "deploy", "--help"]
    r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
    if r.returncode != 0:
        raise ToolNotFound(
            "the deploy benchmark needs the `pipelines deploy` command, and this installation has none",
            seen=_proc.tail(r.stderr or r.stdout, 5),
            hint="install a pipelines version with `pipelines deploy --env ENV --format json`",
        )


@dataclass(frozen=True)
class DeployRun:
    """One `pipelines deploy` child: when it ran on the load's clock, how it ended, what it said."""

    name: str
    variables: Mapping[str, str]
    t0: float  # load clock, seconds
    t1: float
    exit_code: int
    result: Mapping[str, Any]  # the deploy's JSON result ({} when it printed none)
    stderr: str

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def deploy_json(stdout: str) -> dict[str, Any]:
    """The JSON result a `--format json` deploy printed, or {} when there is none."""
    text = stdout.strip()
    start = text.find("{")
    if start < 0:
        return {}
    try:
        value = json.loads(text[start:])
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def verdict_to_rollback_s(result: Mapping[str, Any]) -> float | None:
    """Seconds from the failed health gate's verdict to the end of the deploy (rollback complete).

    The deploy's ``timings["rollback"]`` when it reports one (the engine measured it). Else an
    upper bound read from the deploy's JSON result (time outside the steps counts too): its steps
    are checks, in the order they ran, each with the seconds it took; the first failed one is the
    gate. Its verdict came at the sum of the steps up to and including it; the deploy's total is
    timings["deploy"]. None when the result does not carry that (no failed step with a duration,
    or no total).
    """
    timings = result.get("timings")
    checks = result.get("checks")
    if isinstance(timings, Mapping) and isinstance(timings.get("rollback"), int | float):
        return round(float(timings["rollback"]), 2)  # the engine's own measure, when it gives one
    if not isinstance(timings, Mapping) or not isinstance(checks, list):
        return None
    total = timings.get("deploy")
    if not isinstance(total, int | float):
        return None
    elapsed = 0.0
    for c in checks:
        if not isinstance(c, Mapping):
            return None
        seconds = c.get("seconds", 0.0)
        elapsed += float(seconds) if isinstance(seconds, int | float) else 0.0
        if c.get("outcome") == "fail":
            return round(max(0.0, float(total) - elapsed), 2) if seconds else None
    return None


def front_door(file: str, project: str, service: str, port: int) -> tuple[str, int]:
    """The loopback address and host port the front door's container publishes ``port`` on."""
    with Engine.connect() as engine:
        states = engine.containers({"com.docker.compose.project": project, "com.docker.compose.service": service})
        running = [s for s in states if s.status == "running"]
        if not running:
            raise ConfigError(
                file,
                "bench.deploy.service",
                f"no running container of service {service!r} in Compose project {project!r}",
                hint="the service that publishes the stack's port, as the environment's Compose files name it",
            )
        ports = engine.inspect_container(running[0].id).get("NetworkSettings", {}).get("Ports") or {}
    bindings = ports.get(f"{port}/tcp") or []
    for b in bindings:
        host_ip, host_port = b.get("HostIp", ""), b.get("HostPort", "")
        if not str(host_port).isdigit():
            continue
        if host_ip in ("", "0.0.0.0", "127.0.0.1"):  # noqa: S104 - reading a binding, not binding
            return "127.0.0.1", int(host_port)
        if host_ip in ("::", "::1"):
            return "::1", int(host_port)
    raise ConfigError(
        file,
        "bench.deploy.port",
        f"service {service!r} publishes no loopback port for container port {port} (published: {json.dumps(ports)})",
        hint="the benchmark drives loopback only: publish the front door on 127.0.0.1",
    )


def project_of(result: Mapping[str, Any]) -> str:
    # The JSON renderer puts a result's data beside its other keys ({"release": ...}); a result may nest it in "data".
    data = result.get("data")
    release = result.get("release") or (data.get("release") if isinstance(data, Mapping) else None)
    project = release.get("project") if isinstance(release, Mapping) else None
    if not isinstance(project, str) or not project:
        raise ToolNotFound(
            "`pipelines deploy --format json` did not say which Compose project it deployed",
            seen="no data.release.project in its JSON result",
            hint="the benchmark finds the front door's published port through that project",
        )
    return project


def run_deploy(ctx: Context, *, env: str | None = None, out: Path | None = None) -> Result:
    """Constant load on the front door while a good and a bad release go out through `pipelines deploy`.

    First a deploy with the environment as configured (a no-op when it is live already) names the
    Compose project and so the front door's published port. Then, under load for the whole run: a
    good deploy (the [bench.deploy].good variables: a change it rolls out), a bad one (.bad: the
    new containers fail their health gate and are rolled back), and a restoring deploy without
    either, so the environment ends as it began. Every failed request is kept with its time.
    """
    from ..loadgen import LoadGenerator

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    spec = cfg.bench.deploy
    if spec is None:
        raise ConfigError(
            str(cfg.file),
            "bench.deploy",
            "is missing: the deploy benchmark needs the front door to load and the deploys to make",
            hint='[bench.deploy] service = "proxy", port = 8080, path = "/ready", bad = { VAR = "breaks it" }',
        )
    e = cfg.env(env)
    require_deploy_command(cfg)

    def deploy(name: str, variables: Mapping[str, str], clock: Callable[[], float]) -> DeployRun:
        ctx.log(f"bench deploy: {name} deploy of {e.name}" + (f" with {dict(variables)}" if variables else ""))
        t0 = clock()
        r = _proc.run(
            _deploy_argv(cfg, e.name), timeout=DEPLOY_TIMEOUT_S, check=False, quiet=True, cwd=cfg.root, env=variables
        )
        run = DeployRun(name, dict(variables), t0, clock(), r.returncode, deploy_json(r.stdout), r.stderr)
        ctx.log(f"bench deploy: {name} deploy exit {run.exit_code} after {run.seconds:.1f} s")
        if run.exit_code not in (0, 1):
            raise PipelineError(
                f"the {name} deploy could not run (exit {run.exit_code}); the benchmark measured nothing",
                seen=_proc.tail(run.stderr, 15),
            )
        return run

    first = deploy("initial", {}, time.monotonic)
    if first.exit_code != 0:
        raise PipelineError(
            f"{e.name} could not be deployed as configured (exit {first.exit_code}): nothing to benchmark against",
            seen=_proc.tail(first.stderr, 15),
            hint="the benchmark starts from a live release: build, scan, verify, smoke and sign it first",
        )
    host, port = front_door(str(cfg.file), project_of(first.result), spec.service, spec.port)
    runs: list[DeployRun] = []
    with LoadGenerator(host, port, spec.path, spec.rate, requests=spec.requests) as load:
        time.sleep(spec.settle)
        for name, variables in (("good", spec.good), ("bad", spec.bad), ("restore", {})):
            runs.append(deploy(name, variables, load.elapsed))
            time.sleep(spec.settle)
    load_report = load.report
    res = deploy_results(e.name, spec, load_report, runs, out=out)
    write_deploy(out, res)
    return res


def deploy_results(env: str, spec: DeployBench, load: LoadReport, runs: Sequence[DeployRun], *, out: Path) -> Result:
    """Judge the deploys: each one's window runs from its start to the next one's (its settle included)."""
    ends = [r.t0 for r in runs[1:]] + [load.duration_s]
    phases: list[dict[str, object]] = []
    for run, end in zip(runs, ends, strict=True):
        failures = load.failures_between(run.t0, end)
        timings = run.result.get("timings")
        own = timings.get("deploy") if isinstance(timings, Mapping) else None
        phases.append(
            {
                "deploy": run.name,
                "variables": dict(run.variables),
                "exit": run.exit_code,
                "headline": str(run.result.get("headline", "")),
                "wall_s": round(run.seconds, 2),
                "deploy_s": own if isinstance(own, int | float) else None,
                "verdict_to_rollback_s": verdict_to_rollback_s(run.result) if run.exit_code == 1 else None,
                "requests": load.requests_between(run.t0, end),
                "failed": len(failures),
                "failures": [{"at_s": round(f.at - run.t0, 3), "what": f.what} for f in failures],
            }
        )
    before = load.failures_between(0.0, runs[0].t0 if runs else load.duration_s)
    expected = {"good": 0, "bad": 1, "restore": 0}
    checks = [check("failed requests before the deploys", str(len(before)), "0", not before)]
    for p in phases:
        want = expected.get(str(p["deploy"]), 0)
        checks.append(
            check(
                f"{p['deploy']} deploy exit code",
                str(p["exit"]),
                f"{want} ({'rolled back' if want else 'live'})",
                p["exit"] == want,
            )
        )
        checks.append(
            check(
                f"failed requests during the {p['deploy']} deploy",
                f"{p['failed']} of {p['requests']}",
                f"<= {spec.max_failed}",
                int(str(p["failed"])) <= spec.max_failed,
            )
        )
        if want:  # a deploy that must fail its gate: the previous release must be back soon after
            took = p["verdict_to_rollback_s"]
            checks.append(
                check(
                    f"{p['deploy']} deploy: gate verdict to rollback complete",
                    f"{took:.1f} s" if isinstance(took, int | float) else "not reported",
                    f"<= {spec.max_rollback_s:g} s",
                    isinstance(took, int | float) and took <= spec.max_rollback_s,
                )
            )
    data: dict[str, object] = {
        "when": now(),
        "env": env,
        "front_door": {"service": spec.service, "port": spec.port},
        "load": load.summary(),
        "deploys": phases,
    }
    return result(
        "deploy", out, data, checks, notices=(f"every failed request, with its time, is in {out / 'deploy.json'}",)
    )


def _mix_table(mix: object) -> list[str]:
    """The load's requests by kind: a mix of methods must show that each one went through, not only the total."""
    if not isinstance(mix, Mapping) or len(mix) < 2:
        return []
    rows = [
        [str(name), str(t.get("weight")), str(t.get("sent")), str(t.get("ok")), str(t.get("failed"))]
        for name, t in mix.items()
        if isinstance(t, Mapping)
    ]
    return [markdown_table(["request", "weight", "sent", "ok", "failed"], rows), ""]


def write_deploy(out: Path, res: Result) -> None:
    results = bench_json(res)
    load = results["load"]
    phases = results["deploys"]
    if not (isinstance(load, Mapping) and isinstance(phases, list)):
        raise TypeError("deploy bench results lack their load or deploys")

    def secs(v: object) -> str:
        return f"{v:.1f} s" if isinstance(v, int | float) else "-"

    md = [
        f"## Deploy benchmark ({results['when']}, {results['env']})",
        "",
        f"Load: {load['rate_per_s']:g} requests/s on {load['target']} for {load['duration_s']:.0f} s, "
        f"{load['requests']} requests, {load['failed']} failed; p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms.",
        "",
        *_mix_table(load.get("mix")),
        markdown_table(
            ["deploy", "exit", "wall time", "deploy's own", "verdict to rollback", "requests", "failed"],
            [
                [
                    str(p["deploy"]),
                    str(p["exit"]),
                    secs(p["wall_s"]),
                    secs(p["deploy_s"]),
                    secs(p["verdict_to_rollback_s"]),
                    str(p["requests"]),
                    str(p["failed"]),
                ]
                for p in phases
            ],
        ),
        "",
        checks_md(res.checks),
    ]
    failures = [(str(p["deploy"]), f) for p in phases for f in p["failures"]]
    if failures:
        md += ["", "Failed requests (seconds after the deploy started):", ""]
        md += [f"- {name} +{f['at_s']:.2f} s: {f['what']}" for name, f in failures[:50]]
        if len(failures) > 50:
            md.append(f"- ... {len(failures) - 50} more in deploy.json")
    write_files(out, res, "\n".join(md))
