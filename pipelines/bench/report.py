"""What every benchmark shares: its targets as checks, its Result, and its NAME.json and NAME.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ..errors import PipelineError
from ..report import markdown_table, write_json
from ..result import Check, Outcome, Result, Table, from_error

MB = 1_000_000
Log = Callable[[str], None]

# Each benchmark and the name of its files under the out directory (NAME.json, NAME.md).
KINDS = {
    "build": "bench",
    "lint": "lint",
    "lint-corpus": "lint-corpus",
    "scan": "scan",
    "verify": "verify",
    "fleet": "fleet",
    "pipeline": "pipeline",
    "deploy": "deploy",
}


def check(name: str, value: str, target: str, ok: bool, *, gate: bool = True) -> Check:
    """A benchmark target as a check; a target that is ``gate=False`` is reported when missed, never fails the run."""
    outcome = Outcome.PASS if ok else Outcome.FAIL if gate else Outcome.WAIVED
    detail = "" if ok or gate else "missed; reported, not a gate"
    return Check(name, outcome, detail, group="bench", value=value, target=target)


def check_json(c: Check) -> dict[str, object]:
    """A check as NAME.json holds it: name, value, target and whether it was met."""
    return {"check": c.name, "value": c.value, "target": c.target, "ok": c.outcome is Outcome.PASS}


def bench_json(res: Result) -> dict[str, object]:
    """NAME.json: the measurements, every target as a check, ``ok`` when every target was met."""
    data = {k: v for k, v in res.data.items() if k != "benchmark"}
    return {
        **data,
        "checks": [check_json(c) for c in res.checks],
        "ok": not res.error and all(c.outcome is Outcome.PASS for c in res.checks),
        **({"error": res.error} if res.error else {}),
    }


def checks_md(checks: Sequence[Check]) -> str:
    return markdown_table(
        ["check", "value", "target", "result"],
        [[c.name, c.value, c.target, "ok" if c.outcome is Outcome.PASS else "MISSED"] for c in checks],
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result(
    kind: str, out: Path, data: Mapping[str, object], checks: Sequence[Check], *, notices: Sequence[str] = ()
) -> Result:
    missed = [c for c in checks if c.outcome is not Outcome.PASS]
    headline = f"{kind} benchmark: " + (
        "every target met"
        if not missed
        else "targets missed: " + "; ".join(f"{c.name} {c.value} (target {c.target})" for c in missed)
    )
    name = KINDS[kind]
    return Result(
        stage="bench",
        headline=headline,
        checks=tuple(checks),
        notices=tuple(notices),
        tables=(
            Table(
                ("check", "value", "target", "result"),
                tuple((c.name, c.value, c.target, "ok" if c.outcome is Outcome.PASS else "MISSED") for c in checks),
                f"{kind} benchmark",
            ),
        ),
        data={"benchmark": kind, **data},
        artifacts=(out / f"{name}.json", out / f"{name}.md"),
        out_dir=out / "reports" / name,
    )


def write_files(out: Path, res: Result, md: str) -> None:
    """NAME.json and NAME.md, from the Result."""
    name = KINDS[str(res.data.get("benchmark", "build"))]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", bench_json(res))
    (out / f"{name}.md").write_text(md if md.endswith("\n") else md + "\n")


def could_not_finish(kind: str, out: Path, exc: PipelineError) -> Result:
    """A benchmark that stopped on an error: still a Result, with its reports, carrying the error."""
    name = KINDS[kind]
    res = replace(
        from_error("bench", exc, out_dir=out / "reports" / name, benchmark=kind, when=now()),
        headline=f"{kind} benchmark could not finish: {exc.what}",
        artifacts=(out / f"{name}.json", out / f"{name}.md"),
    )
    write_files(out, res, f"## {kind.capitalize()} benchmark ({res.data['when']})\n\nError: {res.error}\n")
    return res
