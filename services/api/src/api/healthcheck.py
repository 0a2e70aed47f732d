"""Container HEALTHCHECK: GET /health on loopback; exit 0 healthy, 1 not.

Runs as ``python -m api.healthcheck`` so the image needs no shell and no curl.
The engine starts it every interval (every 250-500 ms while a smoke stack
starts), so it speaks HTTP/1.0 over a plain socket: importing urllib.request
(http.client, email, ssl) tripled the probe's time (about 55 ms against 15 ms
on an idle machine) and took that CPU from the server starting beside it.
"""

from __future__ import annotations

import os
import socket
import sys

TIMEOUT_S = 2.0


def status_of(first_line: bytes) -> int | None:
    """The status code of an HTTP status line (``HTTP/1.1 200 OK``), or None when it is not one."""
    parts = first_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        return None
    return int(parts[1])


def probe(port: int, path: str = "/health", timeout: float = TIMEOUT_S) -> int | None:
    """GET ``path`` on 127.0.0.1:``port``: the response's status code, or None when the answer is no HTTP."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode("ascii"))
        head = b""
        while b"\r\n" not in head and len(head) < 1024:
            chunk = conn.recv(1024)
            if not chunk:
                break
            head += chunk
    return status_of(head.split(b"\r\n", 1)[0])


def main() -> int:
    port = int(os.environ.get("API_PORT", "8000"))
    try:
        status = probe(port)
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: GET /health answered {status if status is not None else 'no HTTP status line'}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
