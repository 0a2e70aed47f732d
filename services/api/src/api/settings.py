"""Settings from environment variables, read when the app starts (not at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    log_level: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=os.environ.get("API_HOST", "0.0.0.0"),  # noqa: S104 - inside its container
            port=int(os.environ.get("API_PORT", "8000")),
            workers=int(os.environ.get("API_WORKERS", "1")),
            log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        )
