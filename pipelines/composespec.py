"""What Compose values mean, for every renderer of a Compose file (Kubernetes, Swarm, the deploy gate).

Compose writes durations Go's way ("1m30s", "500ms") and sizes Docker's way
("256m", "1g"); Docker fills an unset healthcheck field with its own default.
Parsed here once, so the renderers agree; :mod:`pipelines.compose_model`
names the service and key of a bad value in each renderer's own error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Default:
    """A value a renderer sets that Compose did not say, and why (renderers list them for traceability)."""

    value: Any
    why: str


DOCKER_HEALTHCHECK = Default(
    {"interval": "30s", "timeout": "30s", "retries": 3, "start_period": "0s"},
    "Docker's own defaults for an unset healthcheck field",
)

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)


def duration_ns(value: object) -> int:
    """A Compose duration ("1m30s", "500ms"; a bare number is seconds) in nanoseconds; ValueError if not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is not a duration")
        return int(value * 10**9)
    text = str(value).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration")
    return int(total)


def size_bytes(value: object) -> int:
    """A Docker size ("256m", "1g", "512k", bytes) in bytes; ValueError if not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _BYTES.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a size")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))
