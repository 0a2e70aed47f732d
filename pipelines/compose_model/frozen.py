"""JSON values of the render made immutable, made plain again, and what Compose counts as "not set"."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias

# A JSON value with every list a tuple and every object a read-only mapping.
Frozen: TypeAlias = "bool | int | float | str | tuple[Frozen, ...] | Mapping[str, Frozen] | None"
# A duration, size or CPU count as Compose wrote it ("1m30s", "256m", 0.5).
Scalar: TypeAlias = str | int | float

EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def freeze(value: object) -> Frozen:
    """A JSON value made immutable: lists become tuples, objects read-only mappings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return str(value)  # not JSON: kept as text rather than refused, nothing interprets it


def thaw(value: object) -> Any:
    """A frozen value as plain JSON again (lists and dicts), for writing it out."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def _empty(value: object) -> bool:
    # What Compose treats as "not set": null, an empty list or mapping, false.
    return value is None or value is False or (isinstance(value, list | tuple | Mapping) and not value)


def is_set(value: object) -> bool:
    """Whether a value says anything: not null, false, an empty string, list or mapping."""
    return not _empty(value) and value != ""


def given_keys(data: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(k) for k, v in data.items() if not _empty(v))
