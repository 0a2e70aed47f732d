"""A TOML table being read: typed getters that know their key path, and the value checks the sections share."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from ..errors import ConfigError
from .model import JsonScalar

T = TypeVar("T")
ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a build-arg's or an environment variable's name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Table:
    """A TOML table being read: typed getters that know their key path.

    Each getter marks its key as used; :meth:`done` rejects every key nobody
    asked for, so a typo is an error instead of a silently ignored setting.
    """

    def __init__(self, file: str, path: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.path = path
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem, hint=hint)

    def _get(self, name: str, kind: type[T], kind_name: str, default: T | None, required: bool) -> T | None:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "is required but missing")
            return default
        value = self.data[name]
        # bool is an int subclass; a setting that wants a number must not take true.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(name, f"expected {kind_name}, got {type_name(value)} {value!r}")
        if isinstance(value, str):
            no_control(self, name, value)
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(name, str, "a string", default, required)
        return value if value is not None else ""

    def opt_string(self, name: str) -> str | None:
        return self._get(name, str, "a string", None, False)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, bool, "true or false", default, False)
        return bool(value)

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._get(name, int, "an integer", default, False)
        if value is None:
            raise self.error(name, "is required but missing")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(name, f"must be {bounds}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float, low_open: bool = False) -> float:
        """A float or integer in [low, high] (or (low, high] with ``low_open``); never nan or inf."""
        self.used.add(name)
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"expected a number, got {type_name(value)} {value!r}")
        number = float(value)
        too_low = number <= low if low_open else number < low
        if not math.isfinite(number) or too_low or number > high:
            bounds = f"{'more than' if low_open else 'from'} {low:g} {'and at most' if low_open else 'to'} {high:g}"
            raise self.error(name, f"must be {bounds}, got {value}")
        return number

    def table_list(self, name: str) -> Iterator[Table]:
        """Each ``[[name]]`` table; its key path carries the index."""
        value = self._get(name, list, "a list of tables ([[...]])", [], False) or []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{i}]", f"expected a table, got {type_name(item)} {item!r}")
            yield Table(self.file, f"{self.key(name)}[{i}]", item)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, list, "a list of strings", [], False) or []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{name}[{i}]", f"expected a string, got {type_name(item)} {item!r}")
            no_control(self, f"{name}[{i}]", item)
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self._get(name, dict, "a table of strings", {}, False) or {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"{name}.{k}", f"expected a string, got {type_name(v)} {v!r}")
            no_control(self, f"{name}.{k}", v)
        return dict(value)

    def table(self, name: str, *, required: bool = False) -> Table:
        value = self._get(name, dict, "a table", {}, required)
        return Table(self.file, self.key(name), value or {})

    def tables(self, name: str) -> Iterator[tuple[str, Table]]:
        """Sub-tables of ``name``, e.g. each ``[services.X]``."""
        outer = self.table(name)
        for child, value in outer.data.items():
            outer.used.add(child)
            if not isinstance(value, dict):
                raise outer.error(child, f"expected a table, got {type_name(value)} {value!r}")
            yield child, Table(self.file, outer.key(child), value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used)) or "none"
            raise self.error(unknown[0], "unknown key", hint=f"keys allowed here: {allowed}")


def no_control(t: Table, name: str, value: str) -> None:
    m = _CONTROL.search(value)
    if m:
        raise t.error(name, f"contains the control character {m.group()!r}; settings are plain text")


def type_name(value: object) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        dt.date: "a date",
        dt.datetime: "a date-time",
        dt.time: "a time",
    }.get(type(value), type(value).__name__)


def nonempty(t: Table, name: str) -> str:
    value = t.string(name, required=True)
    if not value.strip():
        raise t.error(name, "must not be empty")
    return value


def required_int(t: Table, name: str, low: int, high: int) -> int:
    if name not in t.data:
        raise t.error(name, "is required but missing")
    return t.integer(name, low, minimum=low, maximum=high)


def url_path(t: Table, name: str, value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise t.error(name, f"{value!r} is not a URL path: it starts with '/' and has no spaces")
    return value


def build_args(t: Table, name: str) -> dict[str, str]:
    args = t.string_map(name)
    for k in args:
        if not ARG_NAME.match(k):
            raise t.error(f"{name}.{k}", "is not a valid build-arg name")
    return args


def matching(t: Table, name: str, default: str, pattern: re.Pattern[str], what: str) -> str:
    value = t.string(name, default)
    if not pattern.match(value):
        raise t.error(name, f"{value!r} is not {what}")
    return value


def json_scalars(t: Table) -> dict[str, JsonScalar]:
    """A probe's `json` table: top-level keys and the scalar each must have in the answer."""
    expected = t.table("json")
    values: dict[str, JsonScalar] = {}
    for key, value in expected.data.items():
        expected.used.add(key)
        if not isinstance(value, (str, int, float, bool)):
            raise expected.error(key, f"expected a string, number or boolean, got {type_name(value)} {value!r}")
        values[key] = value
    return values
