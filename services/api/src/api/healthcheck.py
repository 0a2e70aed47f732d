"""Container HEALTHCHECK: GET /health on loopback; exit 0 healthy, 1 not.

Runs as ``python -m api.healthcheck`` so the image needs no shell and no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
