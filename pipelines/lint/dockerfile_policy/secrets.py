"""Secrets kept in ENV and ARG values, and settings that switch authentication off (PL-D004, D020)."""

from __future__ import annotations

from collections.abc import Iterator

from ...credentials import PUBLIC_KEY, auth_disabled, looks_secret, secret_name, url_credential
from ...findings import Finding
from .model import Parsed, Stage, env_pairs
from .rules import Context, finding


def check_secrets(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    global_args = [(k, v) for k, v in p.global_args.items()]
    if global_args:
        yield from _secret_pairs(p, "ARG", p.stages[0].line, global_args)
    for s in p.stages:
        for c in s.commands:
            if c.cmd in ("ENV", "ARG"):
                yield from _secret_pairs(p, c.cmd, c.start_line, env_pairs(c))


def _secret_pairs(p: Parsed, kind: str, line: int, pairs: list[tuple[str, str]]) -> Iterator[Finding]:
    for key, value in pairs:
        named = secret_name(key)
        if auth_disabled(key, value):
            yield finding(p, "PL-D020", line, f"{kind} {key}={value}: switches authentication off")
        elif named and value and not value.startswith("$"):
            yield finding(
                p, "PL-D004", line, f"{kind} {key}: a secret-looking name ({kind} values are kept in the image)"
            )
        elif named and kind == "ARG" and not value:
            yield finding(p, "PL-D004", line, f"ARG {key}: a secret passed as a build arg is kept in the image history")
        elif value and url_credential(value):
            yield finding(p, "PL-D004", line, f"{kind} {key}: a URL with a password in it")
        elif value and looks_secret(value) and not PUBLIC_KEY.search(key):
            yield finding(p, "PL-D004", line, f"{kind} {key}: the value looks like a credential")
