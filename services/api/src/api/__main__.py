"""Entry point: ``python -m api`` serves the app with uvicorn."""

from __future__ import annotations

import uvicorn

from .settings import Settings


def main() -> None:
    s = Settings.from_env()
    uvicorn.run(
        "api.app:app",
        host=s.host,
        port=s.port,
        workers=s.workers,
        log_level=s.log_level,
        # Short graceful window: `docker stop` must end the container quickly.
        timeout_graceful_shutdown=1,
        server_header=False,
    )


if __name__ == "__main__":
    main()
