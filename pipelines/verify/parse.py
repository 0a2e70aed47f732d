"""Parsers of what verify reads as text: /proc/PID/status, /etc/passwd and /etc/shadow, a Dockerfile's FROM lines."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import PipelineError


@dataclass(frozen=True)
class ProcStatus:
    """The fields of /proc/PID/status that say who a process is and what it may do."""

    uid: tuple[int, ...]  # real, effective, saved, filesystem
    gid: tuple[int, ...]
    cap_eff: int
    no_new_privs: int
    seccomp: int  # 0 off, 1 strict, 2 filter

    def summary(self) -> str:
        return (
            f"Uid {' '.join(map(str, self.uid))}; Gid {' '.join(map(str, self.gid))}; "
            f"CapEff {self.cap_eff:016x}; NoNewPrivs {self.no_new_privs}; Seccomp {self.seccomp}"
        )


def parse_status(text: str) -> ProcStatus:
    """Parse /proc/PID/status; a field missing is an error, never a default."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return ProcStatus(
            uid=tuple(int(v) for v in fields["Uid"].split()),
            gid=tuple(int(v) for v in fields["Gid"].split()),
            cap_eff=int(fields["CapEff"], 16),
            no_new_privs=int(fields["NoNewPrivs"]),
            seccomp=int(fields["Seccomp"]),
        )
    except (KeyError, ValueError) as exc:
        raise PipelineError("/proc status cannot be read", seen=f"missing or malformed field {exc}") from None


def parse_user(user: str) -> tuple[str, str]:
    """Config.User as (user, group); group is "" when not given."""
    u, _, g = user.partition(":")
    return u, g


def parse_passwd(text: str) -> list[tuple[str, int, int, str]]:
    """(name, uid, gid, home) of each well-formed /etc/passwd line."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            out.append((parts[0], int(parts[2]), int(parts[3]), parts[5]))
    return out


def empty_passwords(shadow: str) -> list[str]:
    """Accounts whose /etc/shadow password field is empty (anyone may log in as them)."""
    return [p[0] for p in (line.split(":") for line in shadow.splitlines()) if len(p) >= 2 and p[1] == ""]


def from_lines(dockerfile: str) -> list[tuple[str, str]]:
    """(image, stage alias) of each FROM, continuation lines joined, flags dropped; and ARG defaults before."""
    joined = re.sub(r"\\\r?\n", " ", dockerfile)
    out = []
    for line in joined.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            alias = rest[2] if len(rest) >= 3 and rest[1].upper() == "AS" else ""
            out.append((rest[0], alias))
    return out


def arg_defaults(dockerfile: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in dockerfile.splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and words[0].upper() == "ARG" and "=" in words[1]:
            k, _, v = words[1].strip().partition("=")
            out[k] = v.strip().strip('"')
        if words and words[0].upper() == "FROM":
            break
    return out


def expand(text: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)
