"""Waivers: accountable, expiring exceptions to a rule, inline or in a ledger file.

Inline, on the line above what it waives (Dockerfile or YAML)::

    # pipelines: ignore=PL-D003,DL3008 reason="vendor image has no digest" until=2026-12-31

In the ledger (``security/waivers.yaml`` by default)::

    waivers:
      - id: PL-C006
        scope: {path: compose/compose.dev.yaml, service: api}
        reason: dev bind-mounts the source and needs a writable root
        owner: platform-team
        expires: 2026-12-31

A waiver without a reason, with a malformed date, past its date or further
ahead than the allowed maximum is itself an error; one that matched nothing is
reported as stale, so the ledger does not rot.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import inputs
from .findings import Finding, Severity

INLINE = re.compile(r"#\s*pipelines:\s*ignore=(?P<rest>.*)$")
RULE_INVALID = "PL-W001"
RULE_EXPIRED = "PL-W002"
RULE_STALE = "PL-W003"


@dataclass
class Waiver:
    rules: tuple[str, ...]
    reason: str
    expires: dt.date | None
    where: str  # file:line of the declaration
    owner: str = ""
    # Inline: the file and line it covers. Ledger: glob on the path, optional service/image/package.
    path: str = ""
    line: int = 0
    service: str = ""
    image: str = ""
    package: str = ""
    used: int = field(default=0, compare=False)

    def covers(self, f: Finding) -> bool:
        if f.rule not in self.rules:
            return False
        if self.line:
            return f.file == self.path and f.line == self.line
        if self.path and not fnmatch.fnmatch(f.file, self.path):
            return False
        if self.service and f.service != self.service:
            return False
        extra = dict(f.extra)
        if self.image and not fnmatch.fnmatch(extra.get("image", ""), self.image):
            return False
        return not (self.package and extra.get("package", "") != self.package)


def parse_inline(text: str, file: str, line_of_next: dict[int, int]) -> tuple[list[Waiver], list[Finding]]:
    """Inline waivers of one file. ``line_of_next`` maps a comment line to the line it covers."""
    waivers: list[Waiver] = []
    problems: list[Finding] = []
    for number, raw in enumerate(text.splitlines(), 1):
        m = INLINE.search(raw)
        if not m:
            continue
        where = f"{file}:{number}"
        try:
            words = shlex.split(m.group("rest"))
        except ValueError as exc:
            problems.append(_invalid(file, number, f"inline waiver cannot be read ({exc})"))
            continue
        rules = tuple(r for r in words[0].split(",") if r) if words else ()
        opts = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        target = line_of_next.get(number, 0)
        w, problem = _make(
            rules,
            opts.get("reason", ""),
            opts.get("until"),
            opts.get("owner", ""),
            where,
            file,
            number,
            required_owner=False,
        )
        if problem or w is None:
            problems.append(problem or _invalid(file, number, f"inline waiver at {where} cannot be used"))
            continue
        w.path, w.line = file, target
        waivers.append(w)
    return waivers, problems


def next_code_lines(text: str) -> dict[int, int]:
    """For each comment line, the next line that is neither blank nor a comment."""
    lines = text.splitlines()
    out: dict[int, int] = {}
    pending: list[int] = []
    for number, raw in enumerate(lines, 1):
        s = raw.strip()
        if s.startswith("#"):
            pending.append(number)
        elif s:
            for p in pending:
                out[p] = number
            pending = []
    return out


def load_ledger(path: Path, *, display: str, max_days: int, today: dt.date) -> tuple[list[Waiver], list[Finding]]:
    """Waivers from the ledger file; a missing file is an empty ledger."""
    if not path.exists() and not path.is_symlink():
        return [], []
    # Imported here: pydantic costs every command a noticeable start-up time, and only this needs it.
    from .ledger_schema import read

    data, lines = inputs.load_yaml(inputs.read_text(path, display), display)
    if data is None:
        return [], []
    ledger = read(data, display, lines)
    waivers: list[Waiver] = []
    problems: list[Finding] = []
    for i, entry in enumerate(ledger.waivers):
        key = f"waivers[{i}]"
        line = lines.get(key, 0)
        w, problem = _make(
            tuple(entry.id),
            entry.reason,
            entry.expires,
            entry.owner,
            f"{display} ({key})",
            display,
            line,
            required_owner=True,
            max_days=max_days,
            today=today,
        )
        if problem or w is None:
            problems.append(problem or _invalid(display, line, f"waiver at {display} ({key}) cannot be used"))
            continue
        w.path, w.service, w.image, w.package = (
            entry.scope.path,
            entry.scope.service,
            entry.scope.image,
            entry.scope.package,
        )
        waivers.append(w)
    return waivers, problems


def _make(
    rules: tuple[str, ...],
    reason: str,
    until: object,
    owner: str,
    where: str,
    file: str,
    line: int,
    *,
    required_owner: bool,
    max_days: int | None = None,
    today: dt.date | None = None,
) -> tuple[Waiver | None, Finding | None]:
    today = today or dt.date.today()
    if not rules:
        return None, _invalid(file, line, f"waiver at {where} names no rule")
    if not reason.strip():
        return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no reason")
    if required_owner and not owner.strip():
        return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no owner")
    expires: dt.date | None
    if isinstance(until, dt.date):
        expires = until
    elif until is None:
        if required_owner:
            return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no expiry")
        expires = None
    else:
        try:
            expires = dt.date.fromisoformat(str(until))
        except ValueError:
            return None, _invalid(file, line, f"waiver at {where}: expiry {until!r} is not YYYY-MM-DD")
    if expires is not None and expires < today:
        return None, Finding(
            "pipelines",
            RULE_EXPIRED,
            Severity.ERROR,
            f"waiver for {','.join(rules)} at {where} expired on {expires.isoformat()}",
            file,
            line,
            hint="fix what it waived, or renew it with a new date and a reason",
        )
    if expires is not None and max_days is not None and (expires - today).days > max_days:
        return None, _invalid(
            file,
            line,
            f"waiver for {','.join(rules)} at {where} expires {expires.isoformat()}, more than {max_days} days ahead",
        )
    return Waiver(rules=rules, reason=reason, expires=expires, where=where, owner=owner), None


def _invalid(file: str, line: int, message: str) -> Finding:
    return Finding(
        "pipelines",
        RULE_INVALID,
        Severity.ERROR,
        message,
        file,
        line,
        hint='write: # pipelines: ignore=RULE reason="why" until=YYYY-MM-DD',
    )


LINT_PREFIXES = ("PL-", "DL", "SC")  # our rules, hadolint's, ShellCheck's (via hadolint)


def for_lint(w: Waiver) -> bool:
    """Whether a ledger entry waives lint rules (else it waives scan findings)."""
    return all(r.startswith(LINT_PREFIXES) for r in w.rules)


def apply(findings: Iterable[Finding], waivers: list[Waiver]) -> list[Finding]:
    out = []
    for f in findings:
        for w in waivers:
            if w.covers(f):
                w.used += 1
                f = f.waive(w.where, w.reason)
                break
        out.append(f)
    return out


def stale(waivers: Iterable[Waiver]) -> list[Finding]:
    out = []
    for w in waivers:
        if w.used == 0:
            file, _, line = w.where.partition(":") if w.line else (w.where.split(" (", 1)[0], "", "0")
            out.append(
                Finding(
                    "pipelines",
                    RULE_STALE,
                    Severity.WARNING,
                    f"waiver for {','.join(w.rules)} at {w.where} matched nothing (stale)",
                    file,
                    int(line) if line.isdigit() else 0,
                    hint="delete it",
                )
            )
    return out
