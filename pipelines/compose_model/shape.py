"""Reading the render with the key path at hand, so a value of the wrong shape names its file and key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import InputError
from .frozen import EMPTY, Frozen, Scalar, freeze


class ComposeShapeError(InputError):
    """A key of the rendered Compose config holds a value of the wrong shape."""


@dataclass(frozen=True, slots=True)
class At:
    """A position in the render, to name in an error."""

    source: str
    path: str

    def __call__(self, key: str | int) -> At:
        if isinstance(key, int):
            return At(self.source, f"{self.path}[{key}]")
        return At(self.source, f"{self.path}.{key}" if self.path else key)

    def fail(self, problem: str) -> ComposeShapeError:
        return ComposeShapeError(
            f"{self.source}: {self.path}: {problem}" if self.path else f"{self.source}: {problem}",
            hint="`docker compose config` renders this key in another shape; check the Compose file",
        )

    def mapping(self, value: object) -> Mapping[str, Any]:
        if value is None:
            return EMPTY
        if not isinstance(value, Mapping):
            raise self.fail(f"expected a mapping, got {_kind(value)}")
        return value

    def seq(self, value: object) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise self.fail(f"expected a list, got {_kind(value)}")
        return list(value)

    def text(self, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"expected a string, got {_kind(value)}")
        return str(value)

    def texts(self, value: object) -> tuple[str, ...]:
        """A list of strings; one string is a list of one (Compose accepts both for tmpfs)."""
        if isinstance(value, str):
            return (value,)
        return tuple(self(i).text(v) or "" for i, v in enumerate(self.seq(value)))

    def flag(self, value: object) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(f"expected true or false, got {_kind(value)}")

    def count(self, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{value!r} is not a count")
        return value

    def scalar(self, value: object) -> Scalar | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"expected a number or a string, got {_kind(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{value!r} is not a finite number")
        return value

    def extras(self, data: Mapping[str, Any], typed: frozenset[str]) -> Mapping[str, Frozen]:
        return MappingProxyType({str(k): freeze(v) for k, v in data.items() if k not in typed})


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"[:80]
