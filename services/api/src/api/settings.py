"""Settings from environment variables, read when the app starts (not at import).

Secrets come from files (``*_FILE``, e.g. Compose secrets under /run/secrets)
or, failing that, from the variable itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def secret(name: str, env: dict[str, str] | None = None) -> str | None:
    """``NAME_FILE``'s contents if set, else ``NAME``; None when neither is set or the file is missing."""
    env = dict(os.environ) if env is None else env
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError:
            return None
    return env.get(name) or None


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    log_level: str
    reload: bool
    db_conninfo: str
    db_pool_min: int
    db_pool_max: int
    metrics_user: str | None
    metrics_password: str | None
    drain_s: float = 0.0  # on SIGPWR: not ready for this long, still serving, then the usual SIGTERM shutdown

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ) if env is None else env
        password = secret("PGPASSWORD", e) or ""
        conninfo = " ".join(
            f"{k}={v}"
            for k, v in (
                ("host", e.get("PGHOST", "db")),
                ("port", e.get("PGPORT", "5432")),
                ("dbname", e.get("PGDATABASE", "documents")),
                ("user", e.get("PGUSER", "app")),
                ("password", password),
                ("connect_timeout", e.get("PGCONNECT_TIMEOUT", "3")),
                ("application_name", "api"),
            )
            if v
        )
        return cls(
            host=e.get("API_HOST", "0.0.0.0"),  # noqa: S104 - inside its container
            port=int(e.get("API_PORT", "8000")),
            workers=int(e.get("API_WORKERS", "1")),
            log_level=e.get("LOG_LEVEL", "info").lower(),
            reload=e.get("API_RELOAD", "") in ("1", "true", "yes"),
            db_conninfo=conninfo,
            db_pool_min=int(e.get("DB_POOL_MIN", "2")),
            db_pool_max=int(e.get("DB_POOL_MAX", "10")),
            metrics_user=secret("METRICS_USER", e),
            metrics_password=secret("METRICS_PASSWORD", e),
            drain_s=float(e.get("API_DRAIN_S", "0")),
        )
