"""Entry point: ``python -m api`` serves the app with uvicorn.

Behind a front door that routes by readiness, SIGTERM is the wrong way to stop:
uvicorn closes its socket at once, and a request the front door had just sent
is lost (one that is not safe to repeat cannot be retried elsewhere). So the
stack stops the api with SIGPWR (``stop_signal``): /ready answers 503 for
API_DRAIN_S seconds while every request is still served, the front door takes
the container out, and then the usual SIGTERM shutdown runs. SIGPWR because
uvicorn's multi-worker supervisor takes SIGUSR1, SIGUSR2 and SIGWINCH for
itself (and ignores them): this handler would never run there.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import uvicorn

from .settings import Settings
from .state import DRAINING

log = logging.getLogger("api")
DRAIN_SIGNAL = signal.SIGPWR


def _drain_then_stop(seconds: float) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        try:
            DRAINING.touch()
        except OSError as exc:  # nowhere to say it: stop now rather than never
            log.warning("cannot mark the api draining (%s); stopping at once", exc)
            seconds_left = 0.0
        else:
            seconds_left = seconds
            log.info("draining: not ready for %.1f s, then stopping", seconds)
        threading.Timer(seconds_left, os.kill, (os.getpid(), signal.SIGTERM)).start()

    signal.signal(DRAIN_SIGNAL, stop)


def main() -> None:
    s = Settings.from_env()
    DRAINING.unlink(missing_ok=True)
    _drain_then_stop(s.drain_s)
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
