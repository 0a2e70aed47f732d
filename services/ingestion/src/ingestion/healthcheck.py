"""Container HEALTHCHECK: the worker's heartbeat file is fresh; exit 0/1.

Runs as ``python -m ingestion.healthcheck``: no shell, no curl.
"""

from __future__ import annotations

import sys
import time

from .settings import Settings


def main() -> int:
    s = Settings.from_env()
    try:
        age = time.time() - s.heartbeat.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {s.heartbeat}", file=sys.stderr)
        return 1
    if age > s.stale_after:
        print(f"unhealthy: heartbeat is {age:.0f} s old", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
