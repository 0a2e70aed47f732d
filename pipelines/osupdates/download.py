"""Downloads from the mirror: http(s) only, with a timeout and a size bound."""

from __future__ import annotations

import urllib.error
import urllib.request

from .errors import OsUpdatesError

USER_AGENT = "pipelines-os-updates"
MAX_DEB_BYTES = 200 * 1024 * 1024


def http_get(url: str, timeout: float, limit: int = MAX_DEB_BYTES) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise OsUpdatesError(f"{url} is not an http(s) URL", hint="the mirror in the config must be http(s)://...")
    # Only http(s), checked above: the S310 audit is satisfied.
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            data: bytes = resp.read(limit + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OsUpdatesError(f"cannot fetch {url}", seen=str(exc), hint="check the mirror in the config") from None
    if len(data) > limit:
        raise OsUpdatesError(f"{url} is larger than {limit} bytes")
    return data
