"""Container HEALTHCHECK: the loop turns and the work moves; exit 0/1.

Two signals. The heartbeat file is touched on every turn of the loop: an old one
means the loop itself is stuck. The status file says how many batches are
waiting and when work last moved: batches waiting with no progress for
INGEST_STALL_SECONDS (a database that stays away, a batch that fails again and
again) is a stall, and a stalled worker is unhealthy even though it is alive.

Runs as ``python -m ingestion.healthcheck``: no shell, no curl.
"""

from __future__ import annotations

import json
import sys
import time

from .settings import Settings


def check(s: Settings, now: float) -> str | None:
    """Why the worker is unhealthy, or None."""
    try:
        age = now - s.heartbeat.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {s.heartbeat}"
    if age > s.stale_after:
        return f"heartbeat is {age:.0f} s old"
    try:
        status = json.loads(s.status.read_text())
        pending, progress_at = int(status["pending"]), float(status["progress_at"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"no readable status at {s.status}: {exc}"
    stalled = now - progress_at
    if pending > 0 and stalled > s.stall_seconds:
        return f"{pending} batch(es) waiting and no progress for {stalled:.0f} s (bound {s.stall_seconds:.0f} s)"
    return None


def main() -> int:
    problem = check(Settings.from_env(), time.time())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
