"""The baseline: today's findings, accepted by fingerprint until a date, so a gate fails only on new ones.

A repository adopting the pipeline starts with dozens of findings. ``pipelines baseline`` records each by a
fingerprint that survives lines moving (tool, rule, file, service, image and message, never the line
number), each with an expiry. Lint and scan then treat a finding in the baseline as accepted: listed in
every report, marked with the baseline, and not gating. An entry past its expiry accepts nothing: its
finding gates again, beside a PL-W005 error that names the entry. An entry whose finding is gone matches
nothing; the next ``pipelines baseline`` leaves it out, and the reports count such entries meanwhile.

The file is JSON, sorted, one entry per finding, meant to be committed and reviewed like the waiver ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from . import inputs
from .errors import InputError
from .findings import Finding, Severity

VERSION = 1
RULE_EXPIRED = "PL-W005"
# Problems of the accepting itself (an invalid, expired or stale waiver, an expired baseline entry) are fixed,
# never accepted. A linter's ignore pragma in the repository's own files (PL-W004) is a finding like others.
NEVER_ACCEPTED = frozenset({"PL-W001", "PL-W002", "PL-W003", RULE_EXPIRED})
# Line and column numbers inside a message would make a fingerprint move with unrelated edits.
_LINE_REF = re.compile(r"\b(?:line|lines|col|column)\s+\d+(?:-\d+)?\b", re.IGNORECASE)


def fingerprint(f: Finding) -> str:
    image = dict(f.extra).get("image", "")
    message = _LINE_REF.sub("line N", " ".join(f.message.split()))
    key = "\x1f".join((f.tool, f.rule, f.file, f.service, image, message))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    tool: str
    rule: str
    file: str
    message: str
    expires: dt.date
    service: str = ""
    image: str = ""
    stage: str = ""  # lint | scan: the command that found it (re-recording one keeps the other's entries)
    # How many findings share the fingerprint (the same problem twice in a file): a third is new.
    count: int = 1

    def to_json(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "tool": self.tool,
            "rule": self.rule,
            "file": self.file,
            "message": self.message,
            "expires": self.expires.isoformat(),
        }
        if self.count != 1:
            out["count"] = self.count
        if self.service:
            out["service"] = self.service
        if self.image:
            out["image"] = self.image
        return out


@dataclass(frozen=True)
class Baseline:
    path: Path
    display: str
    created: str
    entries: tuple[Entry, ...]

    def by_fingerprint(self) -> dict[str, Entry]:
        return {e.fingerprint: e for e in self.entries}


def entry_for(f: Finding, expires: dt.date, stage: str) -> Entry:
    image = dict(f.extra).get("image", "")
    return Entry(fingerprint(f), f.tool, f.rule, f.file, f.message, expires, f.service, image, stage)


def load(path: Path, display: str) -> Baseline | None:
    """The baseline at ``path``; None when there is none. A file that is not one is exit 2, naming the key."""
    if not path.exists():
        return None
    text = inputs.read_text(path, display)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{display}:{exc.lineno}: not valid JSON: {exc.msg}", hint="regenerate it with `pipelines baseline`"
        ) from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("entries"), list):
        raise InputError(
            f"{display}: not a pipelines baseline (version {VERSION} with an `entries` list)",
            hint="regenerate it with `pipelines baseline`",
        )
    entries = []
    for i, raw in enumerate(doc["entries"]):
        where = f"{display}: entries[{i}]"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: not an object", hint="regenerate it with `pipelines baseline`")
        count = raw.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InputError(f"{where}.count: {count!r} is not a whole number of at least 1", hint="write a count")
        try:
            expires = dt.date.fromisoformat(str(raw["expires"]))
            entries.append(
                Entry(
                    str(raw["fingerprint"]),
                    str(raw["tool"]),
                    str(raw["rule"]),
                    str(raw["file"]),
                    str(raw["message"]),
                    expires,
                    str(raw.get("service", "")),
                    str(raw.get("image", "")),
                    str(raw.get("stage", "")),
                    count,
                )
            )
        except KeyError as exc:
            raise InputError(f"{where}: no {exc.args[0]!r}", hint="regenerate it with `pipelines baseline`") from None
        except ValueError:
            raise InputError(
                f"{where}.expires: {raw.get('expires')!r} is not a date (YYYY-MM-DD)",
                hint="write the date as YYYY-MM-DD",
            ) from None
    return Baseline(path, display, str(doc.get("created", "")), tuple(entries))


def apply(findings: Iterable[Finding], base: Baseline | None, today: dt.date) -> tuple[list[Finding], list[str]]:
    """Findings with those the baseline accepts marked as such, plus PL-W005 for expired entries; and notices."""
    findings = list(findings)
    if base is None:
        return findings, []
    known = base.by_fingerprint()
    out: list[Finding] = []
    used: dict[str, int] = {}
    for f in findings:
        entry = None if f.waived or f.rule in NEVER_ACCEPTED else known.get(fingerprint(f))
        if entry is not None:
            used[entry.fingerprint] = used.get(entry.fingerprint, 0) + 1
            if used[entry.fingerprint] > entry.count:
                entry = None  # one more of it than was accepted: new
        if entry is None:
            out.append(f)
            continue
        if entry.expires >= today:
            out.append(f.waive(f"baseline {base.display}", f"in the baseline until {entry.expires.isoformat()}"))
            continue
        out.append(f)
        out.append(
            Finding(
                "pipelines",
                RULE_EXPIRED,
                Severity.ERROR,
                f"baseline entry for {f.rule} ({f.message}) expired on {entry.expires.isoformat()}",
                base.display,
                0,
                hint="fix the finding, or accept it for longer with a waiver that gives a reason",
            )
        )
    notices = []
    accepted = sum(1 for f in out if f.waived_by == f"baseline {base.display}")
    notices.append(f"baseline {base.display}: {accepted} finding(s) accepted, {len(known)} entries")
    gone = len(known) - len(used)
    if gone:
        notices.append(
            f"baseline {base.display}: {gone} entries match no finding any more; `pipelines baseline` drops them"
        )
    return out, notices


def write(
    path: Path,
    found: Mapping[str, Iterable[Finding]],
    *,
    today: dt.date,
    days: int,
    previous: Baseline | None,
) -> Baseline:
    """Record today's findings of each stage in ``found`` (stage -> findings), each until ``today + days``.

    Entries of stages not in ``found`` are kept as they are. An accepted finding never gets more time by
    being recorded again: its old expiry stays, so a baseline cannot be renewed by re-running the command.
    Entries whose finding is gone are left out.
    """
    old = previous.by_fingerprint() if previous else {}
    expires = today + dt.timedelta(days=days)
    entries: dict[str, Entry] = {e.fingerprint: e for e in old.values() if e.stage not in found}
    for stage, findings in found.items():
        for f in findings:
            if f.waived and not f.waived_by.startswith("baseline "):
                continue  # a waiver already accounts for it
            if f.rule in NEVER_ACCEPTED:
                continue
            e = entry_for(f, expires, stage)
            if e.fingerprint in old:
                e = replace(e, expires=old[e.fingerprint].expires)
            if e.fingerprint in entries and entries[e.fingerprint].stage == stage:
                e = replace(e, count=entries[e.fingerprint].count + 1)
            entries[e.fingerprint] = e
    ordered = tuple(sorted(entries.values(), key=lambda e: (e.stage, e.file, e.tool, e.rule, e.message)))
    doc = {
        "version": VERSION,
        "created": today.isoformat(),
        "entries": [e.to_json() for e in ordered],
    }
    inputs.make_dir(path.parent, "baseline directory")
    inputs.write_text(path, json.dumps(doc, indent=2) + "\n", "baseline")
    return Baseline(path, str(path), today.isoformat(), ordered)
