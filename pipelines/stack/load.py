"""The load check: drive a service inside a running stack from loopback with wrk.

Not a test: it reports requests/s, p50/p99 latency and errors for the paths
the project declares (``[load]``) at a fixed concurrency for a bounded time,
and says whether the targets (no errors, p99 under the limit) were met. What
is driven is the project's to say: ``[load].paths``, plus the paths its
optional seed test (``[load].seed``, run like the smoke suite) hands over.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import _proc, composestack
from ..errors import ConfigError, GateFailed
from ..result import Check, Context, Outcome, Result, Table
from ..tools import which
from . import smoke

# wrk prints its own summary; this Lua hook adds one JSON line we can decide on.
WRK_SCRIPT = """
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nPIPELINES-JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"mean":%%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class Options:
    env: str = "prod"
    connections: int | None = None  # default [load].connections
    threads: int = 2
    duration_s: int | None = None  # default [load].duration
    p99_ms: float | None = None  # default [load].p99_ms


@dataclass(frozen=True)
class Measurement:
    env: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    target_p99_ms: float
    paths: int
    ok: bool


def parse_wrk(output: str, connections: int, env: str, target: float, paths: int = 1) -> Measurement:
    line = next((x for x in output.splitlines() if x.startswith("PIPELINES-JSON ")), None)
    if line is None:
        raise GateFailed("wrk printed no result", seen=_proc.tail(output, 20))
    d = json.loads(line.removeprefix("PIPELINES-JSON "))
    seconds = d["duration_us"] / 1e6
    lat = d["latency_us"]
    errors = {k: int(v) for k, v in d["errors"].items()}
    p99 = lat["p99"] / 1000
    return Measurement(
        env,
        connections,
        round(seconds, 2),
        d["requests"],
        round(d["requests"] / seconds, 1) if seconds else 0.0,
        lat["p50"] / 1000,
        lat["p90"] / 1000,
        p99,
        lat["max"] / 1000,
        errors,
        target,
        paths,
        ok=sum(errors.values()) == 0 and d["requests"] > 0 and p99 < target,
    )


def run(ctx: Context, opts: Options) -> Result:
    cfg = ctx.cfg
    settings = cfg.load
    if settings is None:
        raise ConfigError(
            str(cfg.file),
            "load",
            "no [load] table: nothing says what to drive",
            hint='add [load] with service, port and paths (e.g. paths = ["/health"])',
        )
    wrk = which("wrk", hint="apt-get install wrk (scripts/provision.sh installs it)")
    connections = opts.connections or settings.connections
    duration = opts.duration_s or settings.duration
    target = opts.p99_ms or settings.p99_ms
    env = cfg.env(opts.env)
    project = composestack.project_name("pipelines-load", env.name)
    out = cfg.project.artifacts / "load"
    st = composestack.Stack(cfg, env.name, project, out / project, ctx.tools, throwaway=True)
    with composestack.running(st, keep=False, deadline_s=cfg.smoke.deadline):
        if settings.seed:
            failed = [
                c
                for c in smoke.run_suite(
                    st, Path(settings.seed), cfg.root, node=settings.seed, plugins=cfg.smoke.plugins, log=ctx.log
                )
                if not c.ok
            ]
            if failed:
                raise GateFailed(
                    f"the load check's seed {settings.seed} failed", seen="\n".join(c.detail for c in failed)
                )
        seeded = st.run_dir / composestack.LOAD_PATHS
        paths = list(settings.paths) + (seeded.read_text().split() if seeded.is_file() else [])
        if not paths:
            raise ConfigError(str(cfg.file), "load.paths", "no path to drive (none configured, none seeded)")
        script = st.run_dir / "paths.lua"
        script.write_text(WRK_SCRIPT % ",".join(json.dumps(p) for p in paths))
        base = "http://" + st.port(settings.service, settings.port)
        r = _proc.run(
            [
                wrk,
                f"-t{opts.threads}",
                f"-c{connections}",
                f"-d{duration}s",
                "--latency",
                "--timeout",
                "2s",
                "-s",
                str(script),
                base,
            ],
            timeout=duration + 60,
            what="wrk",
        )
        (st.run_dir / "wrk.txt").write_text(r.stdout)
    m = parse_wrk(r.stdout, connections, env.name, target, len(paths))
    row = (
        f"{m.rps:.0f}",
        f"{m.p50_ms:.1f} ms",
        f"{m.p90_ms:.1f} ms",
        f"{m.p99_ms:.1f} ms",
        f"{m.max_ms:.1f} ms",
        str(sum(m.errors.values())),
        f"p99 < {m.target_p99_ms:.0f} ms, 0 errors",
        "ok" if m.ok else "MISSED",
    )
    headline = (
        f"load {env.name}: {settings.service} {len(paths)} path(s), {connections} connections, {duration} s: "
        + ("targets met" if m.ok else f"MISSED: p99 {m.p99_ms:.1f} ms, errors {sum(m.errors.values())}")
    )
    return Result(
        stage="load",
        headline=headline,
        tables=(Table(("requests/s", "p50", "p90", "p99", "max", "errors", "target", "result"), (row,)),),
        checks=(
            Check(
                "targets",
                Outcome.PASS if m.ok else Outcome.FAIL,
                f"p99 {m.p99_ms:.1f} ms (target < {m.target_p99_ms:.0f} ms), {m.requests} requests, "
                f"errors {sum(m.errors.values())}",
                m.duration_s,
                group=settings.service,
                evidence=f"wrk -c{connections} -d{duration}s",
            ),
        ),
        timings={"duration_s": m.duration_s},
        data={"measurement": asdict(m)},
        out_dir=out,
    )
