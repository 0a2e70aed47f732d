"""Waivers: accountable, expiring exceptions to a rule, inline or in a ledger file.

Inline, a comment on the line above what it waives (Dockerfile or YAML), or
at the end of that line (YAML)::

    # pipelines: ignore=PL-D003,DL3008 reason="vendor image has no digest" expires=2026-12-31

In the ledger (``security/waivers.yaml`` by default)::

    waivers:
      - id: PL-C006
        scope: {path: compose/compose.dev.yaml, service: api}
        reason: dev bind-mounts the source and needs a writable root
        owner: platform-team
        expires: 2026-12-31

Both kinds follow the same rules: a waiver without a reason or an expiry
(the ledger's also without an owner), with a malformed date, past its date or
further ahead than the allowed maximum is itself an error. An inline waiver
covers exactly the instruction or line it stands on or above, never a whole
file: one with nothing after it to cover is an error too. One that matched
nothing is reported as stale, so waivers do not rot. The waiver rules' own
findings (PL-W...) cannot be waived.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import inputs
from .findings import Finding, Severity

# A comment: at the start of a line, or after whitespace (YAML's rule for a comment after a value).
INLINE = re.compile(r"(?:^|\s)#\s*pipelines:\s*ignore=(?P<rest>.*)$")
INLINE_KEYS = ("reason", "expires", "owner")
RULE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # what the ledger accepts: not 20261231, not 2026-W52-1
RULE_INVALID = "PL-W001"
RULE_EXPIRED = "PL-W002"
RULE_STALE = "PL-W003"
RULE_PRAGMA = "PL-W004"  # a linter's own unaccountable ignore comment (`# hadolint ignore=`)
# A waiver's own problems are fixed, never waived.
WAIVER_RULES = frozenset({RULE_INVALID, RULE_EXPIRED, RULE_STALE, RULE_PRAGMA})
HINT = 'write: # pipelines: ignore=RULE reason="why" expires=YYYY-MM-DD (at most the allowed days ahead)'


@dataclass
class Waiver:
    rules: tuple[str, ...]
    reason: str
    expires: dt.date
    where: str  # file:line of the declaration
    owner: str = ""
    # Inline: the file and the lines it covers (one instruction or one line), never the whole file.
    # Ledger: glob on the path, optional service/image/package.
    inline: bool = False
    path: str = ""
    line: int = 0
    end_line: int = 0
    service: str = ""
    image: str = ""
    package: str = ""
    used: int = field(default=0, compare=False)

    def covers(self, f: Finding) -> bool:
        if f.rule not in self.rules or f.rule in WAIVER_RULES:
            return False
        if self.inline:
            # A finding about the whole file (line 0) is never covered by a comment on one line.
            return f.file == self.path and self.line > 0 and self.line <= f.line <= max(self.line, self.end_line)
        if self.path and not fnmatch.fnmatch(f.file, self.path):
            return False
        if self.service and f.service != self.service:
            return False
        extra = dict(f.extra)
        if self.image and not fnmatch.fnmatch(extra.get("image", ""), self.image):
            return False
        return not (self.package and extra.get("package", "") != self.package)


def parse_inline(
    text: str,
    file: str,
    *,
    max_days: int,
    today: dt.date,
    spans: Sequence[tuple[int, int]] = (),
) -> tuple[list[Waiver], list[Finding]]:
    """Inline waivers of one file, and the problems of those that cannot be used.

    A comment on a line of its own covers the next line that is neither blank
    nor a comment; one after a value (YAML) covers its own line. ``spans``
    (first, last line of each Dockerfile instruction) widen that line to the
    whole instruction it belongs to, continuation lines and heredocs included.
    """
    waivers: list[Waiver] = []
    problems: list[Finding] = []
    lines = text.splitlines()
    after = next_code_lines(lines)
    for number, raw in enumerate(lines, 1):
        m = INLINE.search(raw)
        if not m:
            continue
        w, problem = read_inline(m.group("rest"), file, number, max_days=max_days, today=today)
        if w is None:
            problems.append(problem or _invalid(file, number, f"inline waiver at {file}:{number} cannot be used"))
            continue
        target = after.get(number, 0) if raw.lstrip().startswith("#") else number
        if not target:
            problems.append(
                _invalid(
                    file,
                    number,
                    f"waiver for {','.join(w.rules)} at {w.where} covers nothing: no instruction or line follows it "
                    "(an inline waiver covers the line below it, never the whole file)",
                    hint="put it on the line above what it waives, or waive the whole file in the ledger",
                )
            )
            continue
        first, last = next(((a, b) for a, b in spans if a <= target <= b), (target, target))
        w.inline, w.path, w.line, w.end_line = True, file, first, last
        waivers.append(w)
    return waivers, problems


def read_inline(
    rest: str, file: str, line: int, *, max_days: int, today: dt.date
) -> tuple[Waiver | None, Finding | None]:
    """One inline waiver from the text after ``ignore=``: rules, then ``reason=``, ``expires=``, ``owner=``."""
    where = f"{file}:{line}"
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        return None, _invalid(file, line, f"inline waiver at {where} cannot be read ({exc})")
    if not words:
        return None, _invalid(file, line, f"waiver at {where} names no rule")
    rules = tuple(r for r in words[0].split(",") if r)
    bad = [r for r in rules if not RULE_ID.fullmatch(r)]
    if bad:
        return None, _invalid(file, line, f"waiver at {where}: {bad[0]!r} is not a rule id (ignore=RULE[,RULE...])")
    opts: dict[str, str] = {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq:
            return None, _invalid(
                file, line, f"waiver at {where}: {word!r} is not key=value (a reason with spaces is quoted)"
            )
        if key == "until":
            return None, _invalid(
                file, line, f"waiver at {where}: write the expiry as expires=YYYY-MM-DD (as in the ledger), not until="
            )
        if key not in INLINE_KEYS:
            return None, _invalid(
                file, line, f"waiver at {where}: unknown key {key!r} (the keys are {', '.join(INLINE_KEYS)})"
            )
        if key in opts:
            return None, _invalid(file, line, f"waiver at {where}: {key} is given twice")
        opts[key] = value
    return _make(
        rules,
        opts.get("reason", ""),
        opts.get("expires"),
        opts.get("owner", ""),
        where,
        file,
        line,
        required_owner=False,
        max_days=max_days,
        today=today,
    )


def next_code_lines(lines: Sequence[str]) -> dict[int, int]:
    """For each comment line, the next line that is neither blank nor a comment."""
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
    max_days: int,
    today: dt.date,
) -> tuple[Waiver | None, Finding | None]:
    if not rules:
        return None, _invalid(file, line, f"waiver at {where} names no rule")
    own = sorted(set(rules) & WAIVER_RULES)
    if own:
        return None, _invalid(
            file, line, f"waiver at {where} names {', '.join(own)}: a waiver's own problems are fixed, not waived"
        )
    if not reason.strip():
        return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no reason")
    if required_owner and not owner.strip():
        return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no owner")
    expires: dt.date
    if isinstance(until, dt.date):
        expires = until
    elif until is None or until == "":
        return None, _invalid(file, line, f"waiver for {','.join(rules)} at {where} has no expiry")
    else:
        try:
            if not DATE.fullmatch(str(until)):
                raise ValueError(until)
            expires = dt.date.fromisoformat(str(until))
        except ValueError:
            return None, _invalid(file, line, f"waiver at {where}: expiry {until!r} is not YYYY-MM-DD")
    if expires < today:
        return None, Finding(
            "pipelines",
            RULE_EXPIRED,
            Severity.ERROR,
            f"waiver for {','.join(rules)} at {where} expired on {expires.isoformat()}",
            file,
            line,
            hint="fix what it waived, or renew it with a new date and a reason",
        )
    if (expires - today).days > max_days:
        return None, _invalid(
            file,
            line,
            f"waiver for {','.join(rules)} at {where} expires {expires.isoformat()}, more than {max_days} days ahead",
        )
    return Waiver(rules=rules, reason=reason, expires=expires, where=where, owner=owner), None


def _invalid(file: str, line: int, message: str, hint: str = HINT) -> Finding:
    return Finding("pipelines", RULE_INVALID, Severity.ERROR, message, file, line, hint=hint)


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
            file, _, line = w.where.rpartition(":") if w.inline else (w.where.split(" (", 1)[0], "", "0")
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
