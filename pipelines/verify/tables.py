"""The stage's tables: the hardening matrix of a run, and what `pipelines verify --explain` shows."""

from __future__ import annotations

from collections.abc import Sequence

from ..result import Check, Outcome, Result, Table
from .specs import CHECKS, DOCKLE, ROLE_RULES


def _cell(c: Check) -> str:
    return {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.WAIVED: "waived", Outcome.NA: "n/a"}[c.outcome]


def matrix(rows: Sequence[str], checks: Sequence[Check]) -> Table:
    by = {(c.group, c.name): c for c in checks}
    body = tuple((r, *(_cell(by[(r, s.id)]) if (r, s.id) in by else "-" for s in CHECKS)) for r in rows)
    return Table(("image", *(s.column for s in CHECKS)), body, "hardening matrix")


def explain() -> Result:
    rows = tuple((s.id, s.column, s.title) for s in CHECKS)
    roles = tuple(
        (r.name, *("yes" if v else "n/a" for v in (r.runs, r.app, r.minimal, r.final)), r.why)
        for r in ROLE_RULES.values()
    )
    return Result(
        stage="verify",
        headline=f"verify checks {len(CHECKS)} columns per image; Dockle's {len(DOCKLE)} checkpoints mapped",
        tables=(
            Table(("id", "column", "what it proves"), rows, "checks"),
            Table(
                (
                    "role",
                    "user/privs/app files",
                    "health/SIGTERM/read-only",
                    "no shell",
                    "no build tools/setuid",
                    "why n/a",
                ),
                roles,
                "roles",
            ),
            Table(("Dockle checkpoint", "title", "covered by"), DOCKLE, "Dockle mapping"),
        ),
        data={
            "columns": [s.__dict__ for s in CHECKS],
            "dockle": [dict(zip(("id", "title", "covered_by"), d, strict=True)) for d in DOCKLE],
        },
    )
