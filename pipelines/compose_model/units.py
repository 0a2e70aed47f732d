"""Durations, sizes and CPU counts as numbers, for every renderer, raised as the renderer's own error type."""

from __future__ import annotations

import math

from ..composespec import duration_ns, size_bytes
from ..errors import InputError


def service_error(error: type[InputError], service: str, key: str, problem: str, hint: str) -> InputError:
    """The error a renderer raises about one service's key, in the renderer's own error type."""
    return error(f"compose services.{service}.{key}: {problem}", hint=hint)


def duration(value: object, service: str, key: str, error: type[InputError] = InputError) -> int:
    """A Compose duration ("1m30s", "500ms") in nanoseconds; a bad one names the service and key."""
    try:
        return duration_ns(value)
    except ValueError as exc:
        raise service_error(error, service, key, str(exc), "write it like 2s, 500ms or 1m30s") from None


def size(value: object, service: str, key: str, error: type[InputError] = InputError) -> int:
    """A Docker size ("256m", "1g", bytes) in bytes; a bad one names the service and key."""
    try:
        return size_bytes(value)
    except ValueError as exc:
        raise service_error(error, service, key, str(exc), "write it like 256m, 1g or a number of bytes") from None


def cpus(value: object, service: str, key: str, error: type[InputError] = InputError) -> float:
    """A number of CPUs (0.5, "1"); a bad one names the service and key."""
    try:
        n = float(str(value))
    except ValueError:
        raise service_error(
            error, service, key, f"{value!r} is not a number of CPUs", "write it like 0.5 or 1"
        ) from None
    if not math.isfinite(n):
        raise service_error(error, service, key, f"{value!r} is not a number of CPUs", "write it like 0.5 or 1")
    return n
