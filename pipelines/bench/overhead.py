"""The pipeline's own cost: `./noxw -s lint` against its commands, and where a warm pipeline run's time goes."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from .. import _proc
from ..errors import GateFailed
from ..report import markdown_table
from ..result import Context, Result
from .report import check, checks_md, now, result, write_files

PIPELINE_SESSIONS = ("build", "scan", "verify", "smoke")
PIPELINE_TARGET_S = 10.0
OUTSIDE_TARGET = 0.05  # share of the wall time spent outside docker, trivy and compose
SMOKE_HEALTHY_TARGET_S = 4.0  # smoke's `up` to every service healthy (or done), as smoke itself reports it
SESSION_OVERHEAD_TARGET_S = 0.3
WATCHING = ("container wait", "stack http")


def union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval (parallel children count once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


_SESSION_START = re.compile(r"nox > Running session (\S+)")
_SESSION_END = re.compile(r"nox > Session (\S+) (?:was successful|failed|raised|was skipped)")
_HEALTHY = re.compile(r"all services healthy ([0-9.]+) s after up")


def session_breakdown(
    lines: list[tuple[float, str]], records: list[dict[str, Any]], start: float, wall: float
) -> dict[str, object]:
    """Where a `./noxw -s A B ...` run's time went, per session, from nox's own log lines and the child log.

    ``lines`` are (seconds since ``start``, line) of nox's output; ``records``
    the logged children, engine requests and waits (epoch seconds). Per
    session: its wall time, start-up (the session's start to its first
    logged child: nox's venv check, Python start-up and imports of the
    `pipelines` command, config), time in tools and in waiting, time after
    its last child (reports, verdict, exit); smoke's up-to-healthy when it
    printed one. Before the first session: the wrapper and nox's start.
    """
    rel = [(r["tool"], max(r["start"] - start, 0.0), r["end"] - start) for r in records]
    sessions: list[dict[str, object]] = []
    bounds: list[tuple[str, float, float]] = []
    opened: tuple[str, float] | None = None
    for t, line in lines:
        m = _SESSION_START.search(line)
        if m:
            opened = (m.group(1), t)
            continue
        m = _SESSION_END.search(line)
        if m and opened is not None:
            bounds.append((opened[0], opened[1], t))
            opened = None
    if opened is not None:
        bounds.append((opened[0], opened[1], wall))
    for name, a, b in bounds:
        mine = [(tool, x, y) for tool, x, y in rel if x >= a - 0.01 and y <= b + 0.01]
        by_tool: dict[str, float] = {}
        for tool, x, y in mine:
            by_tool[tool] = round(by_tool.get(tool, 0.0) + y - x, 2)
        first = min((x for _, x, _ in mine), default=b)
        last = max((y for _, _, y in mine), default=b)
        inside = union([(x, y) for _, x, y in mine])
        row: dict[str, object] = {
            "session": name,
            "wall_s": round(b - a, 2),
            "start_up_s": round(first - a, 2),
            "in_tools_s": round(inside, 2),
            "watching_s": round(union([(x, y) for tool, x, y in mine if tool in WATCHING]), 2),
            "after_last_tool_s": round(b - last, 2),
            "outside_s": round(b - a - inside, 2),
            "by_tool_s": dict(sorted(by_tool.items(), key=lambda kv: -kv[1])),
        }
        healthy = [float(m.group(1)) for t, line in lines if a <= t <= b and (m := _HEALTHY.search(line))]
        if healthy:
            row["up_to_healthy_s"] = healthy[-1]
        sessions.append(row)
    return {
        "before_first_session_s": round(bounds[0][1], 2) if bounds else round(wall, 2),
        "after_last_session_s": round(wall - bounds[-1][2], 2) if bounds else 0.0,
        "sessions": sessions,
    }


def up_to_healthy(rows: list[dict[str, object]]) -> list[float]:
    """Smoke's "all services healthy N s after up" of each pipeline run that printed one (session_breakdown rows)."""
    found: list[float] = []
    for row in rows:
        sessions = row.get("sessions")
        for sr in sessions if isinstance(sessions, list) else []:
            if isinstance(sr, dict) and isinstance(sr.get("up_to_healthy_s"), (int, float)):
                found.append(float(sr["up_to_healthy_s"]))
    return found


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    r = _proc.run(argv, cwd=cwd, env=env, timeout=1800, check=False, quiet=True, what=" ".join(argv[:3]))
    if r.returncode != 0:
        raise GateFailed(f"{' '.join(argv)} failed (exit {r.returncode})", seen=_proc.tail(r.stdout + r.stderr, 20))
    return time.monotonic() - start


def session_table(rows: list[dict[str, object]]) -> str:
    """One Markdown row per run and session of session_breakdown's output."""
    body: list[list[str]] = []
    for i, r in enumerate(rows):
        body.append([str(i + 1), "(wrapper, nox start)", f"{r.get('before_first_session_s', 0)} s", "", "", "", "", ""])
        sessions = r.get("sessions")
        for sr in sessions if isinstance(sessions, list) else []:
            body.append(
                [
                    str(i + 1),
                    str(sr["session"]),
                    f"{sr['wall_s']} s",
                    f"{sr['start_up_s']} s",
                    f"{sr['in_tools_s']} s ({sr['watching_s']} s watching)",
                    f"{sr['outside_s']} s",
                    f"{sr['after_last_tool_s']} s",
                    f"{sr['up_to_healthy_s']} s" if "up_to_healthy_s" in sr else "",
                ]
            )
    return markdown_table(
        ["run", "session", "wall", "start-up", "in tools", "outside tools", "after last tool", "up to healthy"], body
    )


def _timed_lines(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, list[tuple[float, str]]]:
    """Like _timed, keeping each output line with its time since the start (epoch start, seconds, lines)."""
    lines: list[tuple[float, str]] = []
    start, t0 = time.time(), time.monotonic()
    r = _proc.run(
        argv,
        cwd=cwd,
        env=env,
        timeout=1800,
        check=False,
        quiet=True,
        what=" ".join(argv[:3]),
        stream=lambda line: lines.append((time.monotonic() - t0, line)),
    )
    if r.returncode != 0:
        raise GateFailed(f"{' '.join(argv)} failed (exit {r.returncode})", seen=_proc.tail(r.stdout, 20))
    return start, time.monotonic() - t0, lines


def lint_direct(root: Path, venv: Path) -> list[list[str]]:
    """What the noxfile's lint session runs, as plain commands from its environment."""
    workflows = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.y*ml"))
    b = venv / "bin"
    return [
        [str(b / "pipelines"), "lint"],
        [str(b / "ruff"), "check", "."],
        [str(b / "ruff"), "format", "--check", "."],
        [str(b / "mypy")],
        [str(b / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        [str(b / "zizmor"), "--offline", "--no-config", "--persona", "regular", "--min-severity", "medium", *workflows],
    ]


def run_pipeline(ctx: Context, *, out: Path | None = None, runs: int = 3) -> Result:
    """`./noxw -s lint` against its commands run directly, and `./noxw -s build scan verify smoke` warm.

    For the pipeline run every child process and engine API request of the
    package is logged (PIPELINES_PROC_LOG); the wall time not covered by any
    of them is the pipeline's own: nox, Python start-up, config, reports.
    Runs are interleaved and repeated; the load average is recorded with each.
    """
    import statistics
    import tempfile

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    root = cfg.root
    noxw = str(root / "noxw")
    direct = lint_direct(root, root / ".nox" / "lint")
    _timed([noxw, "-s", "lint"], root)  # creates or refreshes the session's environment once
    lint_rows: list[dict[str, float]] = []
    pipe_rows: list[dict[str, object]] = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        via_nox = _timed([noxw, "-s", "lint"], root)
        raw = sum(_timed(cmd, root) for cmd in direct)
        lint_rows.append({"nox_s": round(via_nox, 2), "direct_s": round(raw, 2), "load": round(load, 1)})
        with tempfile.NamedTemporaryFile(prefix="pipelines-proc-", suffix=".jsonl", delete=False) as f:
            log = Path(f.name)
        try:
            load = os.getloadavg()[0]
            start, wall, lines = _timed_lines([noxw, "-s", *PIPELINE_SESSIONS], root, {_proc.PROC_LOG_ENV: str(log)})
            records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        finally:
            log.unlink(missing_ok=True)
        breakdown = session_breakdown(lines, records, start, wall)
        inside = union([(max(r["start"], start), r["end"]) for r in records])
        # Sleeping while a container starts or stays up, and HTTP to the stack,
        # are the watched tools' time too; reported on their own.
        watching = union([(max(r["start"], start), r["end"]) for r in records if r["tool"] in WATCHING])
        by_tool: dict[str, float] = {}
        for r in records:
            by_tool[r["tool"]] = round(by_tool.get(r["tool"], 0.0) + r["end"] - r["start"], 2)
        pipe_rows.append(
            {
                "wall_s": round(wall, 2),
                "in_tools_s": round(inside, 2),
                "watching_s": round(watching, 2),
                "outside_share": round(1 - inside / wall, 3),
                "children": len(records),
                "load": round(load, 1),
                "by_tool_s": by_tool,
                **breakdown,
            }
        )
        ctx.log(f"pipeline: lint {lint_rows[-1]}; pipeline {pipe_rows[-1]}")
    overhead = statistics.median(r["nox_s"] - r["direct_s"] for r in lint_rows)
    healthy = up_to_healthy(pipe_rows)
    wall = statistics.median(float(str(r["wall_s"])) for r in pipe_rows)
    outside = statistics.median(float(str(r["outside_share"])) for r in pipe_rows)
    # Reported against their targets, not gated: the numbers depend on the machine's load.
    checks = [
        check(
            "`./noxw -s lint` minus its commands run directly (median)",
            f"{overhead:.2f} s",
            f"<= {SESSION_OVERHEAD_TARGET_S} s",
            overhead <= SESSION_OVERHEAD_TARGET_S,
            gate=False,
        ),
        check(
            f"`./noxw -s {' '.join(PIPELINE_SESSIONS)}` warm (median)",
            f"{wall:.1f} s",
            f"<= {PIPELINE_TARGET_S} s",
            wall <= PIPELINE_TARGET_S,
            gate=False,
        ),
        check(
            "share of that time outside docker, trivy, compose (median)",
            f"{outside:.1%}",
            f"< {OUTSIDE_TARGET:.0%}",
            outside < OUTSIDE_TARGET,
            gate=False,
        ),
        check(
            # Smoke prints it once per run; a run without it fails this check, never passes it.
            f"smoke `up` to all healthy (median of {len(healthy)} of {len(pipe_rows)} runs, "
            f"{min(healthy, default=0):.1f}-{max(healthy, default=0):.1f} s)",
            f"{statistics.median(healthy):.1f} s" if healthy else "not reported",
            f"<= {SMOKE_HEALTHY_TARGET_S:.0f} s",
            len(healthy) == len(pipe_rows) and statistics.median(healthy) <= SMOKE_HEALTHY_TARGET_S,
            gate=False,
        ),
    ]
    results: dict[str, object] = {
        "when": now(),
        "machine": {"cpus": os.cpu_count() or 0, "python": platform.python_version()},
        "lint": lint_rows,
        "pipeline": pipe_rows,
    }
    res = result("pipeline", out, results, checks)
    md = [
        f"## Pipeline overhead ({results['when']})",
        "",
        markdown_table(
            ["run", "noxw -s lint", "lint direct", "pipeline wall", "in tools", "of it watching", "outside", "load"],
            [
                [
                    str(i + 1),
                    f"{lr['nox_s']:.2f} s",
                    f"{lr['direct_s']:.2f} s",
                    f"{pr['wall_s']} s",
                    f"{pr['in_tools_s']} s",
                    f"{pr['watching_s']} s",
                    f"{float(str(pr['outside_share'])):.1%}",
                    f"{lr['load']} / {pr['load']}",
                ]
                for i, (lr, pr) in enumerate(zip(lint_rows, pipe_rows, strict=True))
            ],
        ),
        "",
        "Per session (start-up: the session's start to its first child: nox's environment check, Python and the "
        "`pipelines` command's imports, config):",
        "",
        session_table(pipe_rows),
        "",
        checks_md(checks),
    ]
    write_files(out, res, "\n".join(md))
    return res
