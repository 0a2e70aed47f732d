"""Entry point: ``python -m api`` serves the app with uvicorn."""

from __future__ import annotations

import uvicorn

from .settings import Settings


def main() -> None:
    s = Settings.from_env()
    uvicorn.run(
        "api.app:create_app",
        factory=True,  # the app is built when the server starts, not at import
        host=s.host,
        port=s.port,
        workers=None if s.reload else s.workers,
        reload=s.reload,  # dev: source is bind-mounted and reloaded on change
        reload_dirs=["/opt/app"] if s.reload else None,
        log_level=s.log_level,
        # Short graceful window: `docker stop` must end the container quickly.
        timeout_graceful_shutdown=1,
        server_header=False,
        access_log=s.log_level == "debug",
    )


if __name__ == "__main__":
    main()
