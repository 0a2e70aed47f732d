"""One service's container: its user, probes, resources and tmpfs mounts, from Compose and the image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..compose_model import Healthcheck, Service
from ..engine import ImageInfo
from .model import DEFAULTS
from .values import _bytes, _cpu, _duration_ns, _fail, _quantity, _seconds


def _user(info: ImageInfo, override: object, service: str, image: str) -> tuple[int, int, str]:
    """(uid, gid, source) from Compose `user` or the image's USER: numeric, not root."""
    if override not in (None, ""):
        text, source, key = str(override), f"compose services.{service}.user", "user"
    else:
        text, source, key = info.user, f"image {image} config User", "image"
    uid, _, gid = text.partition(":")
    hint = "run as a numeric non-root user with its group: USER 65532:65532 in the Dockerfile (or Compose user:)"
    if not text:
        raise _fail(service, key, f"image {image} sets no USER: it would run as root", hint)
    if uid.isdigit() and not gid:
        raise _fail(service, key, f"user {text!r} names no group (runAsGroup needs a numeric GID)", hint)
    if not uid.isdigit() or not gid.isdigit():
        raise _fail(service, key, f"user {text!r} is not numeric UID:GID (runAsUser needs numbers)", hint)
    if int(uid) == 0:
        raise _fail(service, key, f"user {text!r} is root; the restricted profile forbids UID 0", hint)
    return int(uid), int(gid), source


def _probe_command(test: Sequence[str], service: str, key: str) -> list[str] | None:
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD" and len(test) > 1:
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        raise _fail(
            service,
            key,
            "a shell-form healthcheck (CMD-SHELL) needs a shell the hardened images do not have",
            'write it in exec form: test: ["CMD", "/path/to/program", "arg"]',
        )
    raise _fail(service, key, f"healthcheck test {list(test)!r} is not understood", 'use ["CMD", "program", ...]')


def _probes(name: str, spec: Service, info: ImageInfo, image: str) -> tuple[dict[str, Any], str]:
    """liveness/readiness/startup probes from Compose's healthcheck (which wins) or the image's."""
    hc: Healthcheck | None = spec.healthcheck
    dflt = DEFAULTS["docker.healthcheck"].value
    image_src = f"image {image} config Healthcheck"
    # Docker merges a container's healthcheck with the image's field by field: what Compose leaves
    # unset (no test, a zero duration) comes from the image, then from Docker's own defaults.
    test: list[str] = list(info.healthcheck)
    interval, timeout = info.health_interval_ns, info.health_timeout_ns
    start, retries = info.health_start_period_ns, info.health_retries
    source, key = image_src, "image"
    if hc is not None:
        if hc.disable:
            return {}, f"compose services.{name}.healthcheck.disable"
        source = f"compose services.{name}.healthcheck (unset fields: {image_src})"
        if hc.test:
            test = ["CMD-SHELL", hc.test] if isinstance(hc.test, str) else list(hc.test)
            key = "healthcheck.test"
        if hc.interval:
            interval = _duration_ns(hc.interval, name, "healthcheck.interval")
        if hc.timeout:
            timeout = _duration_ns(hc.timeout, name, "healthcheck.timeout")
        if hc.start_period:
            start = _duration_ns(hc.start_period, name, "healthcheck.start_period")
        if hc.retries:
            retries = hc.retries
    command = _probe_command(test, name, key)
    if command is None:
        return {}, source
    interval = interval or _duration_ns(dflt["interval"], name, key)
    timeout = timeout or _duration_ns(dflt["timeout"], name, key)
    retries = retries or int(dflt["retries"])
    period_s = _seconds(interval)
    base = {"exec": {"command": command}, "periodSeconds": period_s, "timeoutSeconds": _seconds(timeout)}
    probes = {
        "livenessProbe": {**base, "failureThreshold": retries},
        "readinessProbe": {**base, "failureThreshold": retries},
        # Docker ignores failures during start_period: the startup probe gives the same grace.
        "startupProbe": {**base, "failureThreshold": max(1, math.ceil(_seconds(start) / period_s)) + retries},
    }
    return probes, source + "; default docker.healthcheck"


def _resources(name: str, spec: Service) -> tuple[dict[str, Any], dict[str, str]]:
    limits_src, reserv_src = spec.limits, spec.reservations
    limits: dict[str, str] = {}
    sources: dict[str, str] = {}
    if limits_src.cpus not in (None, "", 0):
        limits["cpu"] = _cpu(limits_src.cpus, name, "deploy.resources.limits.cpus")
        sources["limits.cpu"] = f"compose services.{name}.deploy.resources.limits.cpus"
    elif spec.cpus not in (None, "", 0):
        limits["cpu"] = _cpu(spec.cpus, name, "cpus")
        sources["limits.cpu"] = f"compose services.{name}.cpus"
    else:
        limits["cpu"] = str(DEFAULTS["limits.cpu"].value)
        sources["limits.cpu"] = "default limits.cpu"
    if limits_src.memory not in (None, "", 0):
        limits["memory"] = _quantity(_bytes(limits_src.memory, name, "deploy.resources.limits.memory"))
        sources["limits.memory"] = f"compose services.{name}.deploy.resources.limits.memory"
    elif spec.mem_limit not in (None, "", 0):
        limits["memory"] = _quantity(_bytes(spec.mem_limit, name, "mem_limit"))
        sources["limits.memory"] = f"compose services.{name}.mem_limit"
    else:
        limits["memory"] = str(DEFAULTS["limits.memory"].value)
        sources["limits.memory"] = "default limits.memory"
    requests = dict(limits)
    sources["requests"] = "default requests (= limits)"
    if reserv_src.cpus not in (None, "", 0):
        requests["cpu"] = _cpu(reserv_src.cpus, name, "deploy.resources.reservations.cpus")
        sources["requests.cpu"] = f"compose services.{name}.deploy.resources.reservations.cpus"
    if reserv_src.memory not in (None, "", 0):
        requests["memory"] = _quantity(_bytes(reserv_src.memory, name, "deploy.resources.reservations.memory"))
        sources["requests.memory"] = f"compose services.{name}.deploy.resources.reservations.memory"
    return {"limits": limits, "requests": requests}, sources


def _tmpfs_entries(name: str, spec: Service) -> list[tuple[str, int | None, str]]:
    """(path, size in bytes or None, source) for every tmpfs of the service."""
    out: list[tuple[str, int | None, str]] = []
    for i, entry in enumerate(spec.tmpfs):
        path, _, opts = str(entry).partition(":")
        size = None
        for opt in opts.split(","):
            if opt.startswith("size="):
                size = _bytes(opt.removeprefix("size="), name, f"tmpfs[{i}]")
        out.append((path, size, f"compose services.{name}.tmpfs[{i}]"))
    for i, v in enumerate(spec.volumes):
        if v.type == "tmpfs":
            given = v.tmpfs.get("size")
            out.append(
                (
                    v.target,
                    _bytes(given, name, f"volumes[{i}]") if given else None,
                    f"compose services.{name}.volumes[{i}]",
                )
            )
    return out
