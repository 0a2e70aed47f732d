"""Compose values as Kubernetes wants them: names, durations, sizes, CPUs; each failure names the service key."""

from __future__ import annotations

import math
import re

from .. import compose_model
from ..errors import InputError
from .model import RenderError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _fail(service: str, key: str, problem: str, hint: str) -> InputError:
    return compose_model.service_error(RenderError, service, key, problem, hint)


def _dns(name: str, what: str) -> str:
    out = name.lower().replace("_", "-")
    if not _DNS_LABEL.match(out) or len(out) > 63:
        raise RenderError(
            f"{what} {name!r} does not make a Kubernetes name ({out!r})",
            hint="use lowercase letters, digits and '-' (at most 63), starting and ending with a letter or digit",
        )
    return out


def _duration_ns(value: object, service: str, key: str) -> int:
    """A Compose duration ("1m30s", "500ms") in nanoseconds."""
    return compose_model.duration(value, service, key, RenderError)


def _seconds(ns: int) -> int:
    """Kubernetes probe fields are whole seconds, at least 1: round up so nothing gets stricter."""
    return max(1, math.ceil(ns / 10**9))


def _bytes(value: object, service: str, key: str) -> int:
    return compose_model.size(value, service, key, RenderError)


def _quantity(n: int) -> str:
    for unit, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _cpu(value: object, service: str, key: str) -> str:
    milli = round(compose_model.cpus(value, service, key, RenderError) * 1000)
    if milli <= 0:
        raise _fail(service, key, f"{value!r} is no CPU at all", "give a positive number of CPUs")
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
