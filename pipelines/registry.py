"""Reachability of the configured registry and presence of image digests."""

from __future__ import annotations

import ipaddress
import time
import urllib.error
import urllib.request

from . import _proc
from .errors import RegistryUnavailable
from .tools import Toolchain

__all__ = ["RegistryUnavailable", "check", "has", "scheme"]


def _scheme(address: str) -> str:
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    if host == "localhost":
        return "http"
    try:
        return "http" if ipaddress.ip_address(host.strip("[]")).is_loopback else "https"
    except ValueError:
        return "https"


def scheme(address: str) -> str:
    """http for loopback registries, https for every other one."""
    return _scheme(address)


def check(address: str, *, timeout: float = 5.0) -> None:
    """Raise :class:`RegistryUnavailable` unless the registry's /v2/ endpoint answers."""
    url = f"{_scheme(address)}://{address}/v2/"
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - configured registry
            return
    except urllib.error.HTTPError as exc:
        if exc.code == 401:  # answers, wants credentials: docker login handles that
            return
        seen = f"GET {url} -> HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        seen = f"GET {url} -> {reason}"
    finally:
        # Waiting on the registry, like an engine request: the pipeline benchmark counts it as the tool's time.
        _proc.record_interval("registry http", time.monotonic() - start)
    raise RegistryUnavailable(
        f"the registry {address} does not answer",
        seen=seen,
        hint="start it (as root: `scripts/provision.sh` runs one on 127.0.0.1:5000) "
        "or name the right one ([registry].address or the environment's registry in pipeline.toml, "
        "or PIPELINES_REGISTRY)",
    )


def has(tools: Toolchain, ref: str) -> bool:
    """Whether ``ref`` (name@sha256:...) exists in its registry."""
    r = _proc.run([tools.docker, "buildx", "imagetools", "inspect", "--raw", ref], timeout=30, check=False, quiet=True)
    return r.returncode == 0
