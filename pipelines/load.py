"""The load check: drive the API inside a running stack from loopback with wrk.

Not a test: it reports requests/s, p50/p99 latency and errors for fetching
documents by id at a fixed concurrency for a bounded time, and says whether
the targets (no errors, p99 under the limit) were met.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import _proc, report, smoke, stack
from .config import Config
from .errors import GateFailed
from .tools import Toolchain, which

# wrk prints its own summary; this Lua hook adds one JSON line we can decide on.
WRK_SCRIPT = """
local ids = {%s}
request = function()
  return wrk.format("GET", "/documents/" .. ids[math.random(#ids)])
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
    connections: int = 50
    threads: int = 2
    duration_s: int = 10
    documents: int = 2000
    p99_ms: float = 100.0
    out: Path | None = None


@dataclass
class Result:
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
    ok: bool


def parse_wrk(output: str, connections: int, env: str, target: float) -> Result:
    line = next((x for x in output.splitlines() if x.startswith("PIPELINES-JSON ")), None)
    if line is None:
        raise GateFailed("wrk printed no result", seen=_proc.tail(output, 20))
    d = json.loads(line.removeprefix("PIPELINES-JSON "))
    seconds = d["duration_us"] / 1e6
    lat = d["latency_us"]
    errors = {k: int(v) for k, v in d["errors"].items()}
    p99 = lat["p99"] / 1000
    return Result(
        env,
        connections,
        round(seconds, 2),
        d["requests"],
        round(d["requests"] / seconds, 1),
        lat["p50"] / 1000,
        lat["p90"] / 1000,
        p99,
        lat["max"] / 1000,
        errors,
        target,
        ok=sum(errors.values()) == 0 and d["requests"] > 0 and p99 < target,
    )


def run(cfg: Config, opts: Options, tools: Toolchain) -> Result:
    wrk = which("wrk", hint="apt-get install wrk (scripts/provision.sh installs it)")
    env = cfg.env(opts.env)
    project = stack.project_name("pipelines-load", env.name)
    out = opts.out or cfg.project.artifacts / "load"
    st = stack.Stack(cfg, env.name, project, out / project, tools)
    with stack.running(st, keep=False, deadline_s=120) as _:
        base = "http://" + st.port("api", 8000)
        token = f"load{random.randrange(1 << 30):x}"  # noqa: S311 - not security relevant
        ids = [f"{token}-{i}" for i in range(opts.documents)]
        batch = st.run_dir / f"{token}.jsonl"
        batch.write_text(
            "\n".join(json.dumps({"id": i, "title": f"Load {i}", "body": f"load test document {i} " * 8}) for i in ids)
            + "\n"
        )
        st.copy_in(batch, "ingestion", f"{smoke.INBOX}/{batch.name}")
        _wait_for(base, ids[-1], 60)
        script = st.run_dir / "fetch.lua"
        script.write_text(WRK_SCRIPT % ",".join(json.dumps(i) for i in ids))
        r = _proc.run(
            [
                wrk,
                f"-t{opts.threads}",
                f"-c{opts.connections}",
                f"-d{opts.duration_s}s",
                "--latency",
                "--timeout",
                "2s",
                "-s",
                str(script),
                base,
            ],
            timeout=opts.duration_s + 60,
            what="wrk",
        )
        (st.run_dir / "wrk.txt").write_text(r.stdout)
    res = parse_wrk(r.stdout, opts.connections, env.name, opts.p99_ms)
    write(res, out)
    if not res.ok:
        raise GateFailed(
            f"load check missed its targets: p99 {res.p99_ms:.1f} ms (target < {opts.p99_ms:.0f} ms), "
            f"errors {sum(res.errors.values())}",
            hint=f"details in {out / 'load.md'}",
        )
    return res


def _wait_for(base: str, doc_id: str, deadline: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if smoke.http("GET", f"{base}/documents/{doc_id}")[0] == 200:
            return
        time.sleep(0.5)
    raise GateFailed(f"seed documents were not ingested within {deadline:.0f} s")


def write(res: Result, out: Path) -> None:
    report.write_json(out / "load.json", {**asdict(res), "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    md = "\n".join(
        [
            f"## Load check: `{res.env}` stack, GET /documents/{{id}}, {res.connections} connections",
            "",
            report.markdown_table(
                ["requests/s", "p50", "p90", "p99", "max", "errors", "target", "result"],
                [
                    [
                        f"{res.rps:.0f}",
                        f"{res.p50_ms:.1f} ms",
                        f"{res.p90_ms:.1f} ms",
                        f"{res.p99_ms:.1f} ms",
                        f"{res.max_ms:.1f} ms",
                        str(sum(res.errors.values())),
                        f"p99 < {res.target_p99_ms:.0f} ms, 0 errors",
                        "ok" if res.ok else "MISSED",
                    ]
                ],
            ),
            "",
        ]
    )
    (out / "load.md").write_text(md)
    print(md, file=sys.stderr)
