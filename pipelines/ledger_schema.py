"""The waiver ledger's schema, strictly, as pydantic models (see :mod:`pipelines.waivers`).

What the file must look like is checked here: a wrong type, an unknown key,
an impossible date or a date-time is an error naming the key path and line
(exit 2). What an entry says (no reason, no owner, expired, too far ahead) is
judged in :mod:`pipelines.waivers` and reported as a finding that closes the gate.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .errors import ConfigError


def _rule_ids(value: object) -> object:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, list):
        bad = next(v for v in value if not isinstance(v, str))
        raise ValueError(f"rule ids are strings; {_yaml_type(bad)} {bad!r} is not (quote it)")
    raise ValueError(f"expected a rule id or a list of them, got {_yaml_type(value)} {value!r} (quote it)")


def _date(value: object) -> object:
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date YYYY-MM-DD, got a date and time {value.isoformat()!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"{value!r} is not a date YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    raise ValueError(f"expected a date YYYY-MM-DD, got {_yaml_type(value)} {value!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class _Scope(_Strict):
    path: str = ""
    service: str = ""
    image: str = ""
    package: str = ""


class _Entry(_Strict):
    id: Annotated[list[str], BeforeValidator(_rule_ids)] = []
    scope: _Scope = _Scope()
    reason: str = ""
    owner: str = ""
    expires: Annotated[dt.date | None, BeforeValidator(_date)] = None


class Ledger(_Strict):
    waivers: list[_Entry] = []


def _yaml_type(value: object) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
        dt.date: "a date",
        dt.datetime: "a date and time",
    }.get(type(value), type(value).__name__)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_error(display: str, exc: ValidationError, lines: dict[str, int]) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    key = _key_path(tuple(err["loc"]))
    line = lines.get(key) or lines.get(key.rsplit(".", 1)[0].rsplit("[", 1)[0], 0)
    where = f"line {line}: " if line else ""
    if err["type"] == "extra_forbidden":
        parent = key.rsplit(".", 1)[0]
        allowed = "path, service, image, package" if parent.endswith(".scope") else "id, scope, reason, owner, expires"
        if "." not in key:
            allowed = "waivers"
        return ConfigError(display, key, f"{where}unknown key", hint=f"keys allowed here: {allowed}")
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] not in ("value_error",):
        message += f", got {_yaml_type(err.get('input'))} {err.get('input')!r}"[:200]
    return ConfigError(
        display,
        key,
        where + message,
        hint="each entry: id (a rule id or a list), reason, owner, expires (YYYY-MM-DD), optional scope "
        "(path, service, image, package)",
    )


def read(data: object, display: str, lines: dict[str, int]) -> Ledger:
    """``data`` (from :func:`pipelines.inputs.load_yaml`) as a ledger, or one ConfigError with key path and line."""
    if not isinstance(data, dict):
        raise ConfigError(
            display, "waivers", f"expected a mapping with a top-level 'waivers:' list, got {_yaml_type(data)}"
        )
    try:
        return Ledger.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(display, exc, lines) from None
