"""Settings from environment variables, read when the worker starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def secret(name: str, env: dict[str, str]) -> str | None:
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError:
            return None
    return env.get(name) or None


@dataclass(frozen=True)
class Settings:
    state: Path  # inbox/, done/ and rejects/ live here (a volume)
    heartbeat: Path
    status: Path  # pending work and last progress, for the healthcheck
    poll_seconds: float
    settle_seconds: float
    max_document_bytes: int
    chunk: int
    seed_file: Path | None
    db_conninfo: str
    stall_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ) if env is None else env
        conninfo = " ".join(
            f"{k}={v}"
            for k, v in (
                ("host", e.get("PGHOST", "db")),
                ("port", e.get("PGPORT", "5432")),
                ("dbname", e.get("PGDATABASE", "documents")),
                ("user", e.get("PGUSER", "app")),
                ("password", secret("PGPASSWORD", e) or ""),
                ("connect_timeout", e.get("PGCONNECT_TIMEOUT", "3")),
                ("application_name", "ingestion"),
            )
            if v
        )
        seed = e.get("INGEST_SEED_FILE")
        return cls(
            state=Path(e.get("INGEST_STATE_DIR", "/var/lib/ingestion")),
            heartbeat=Path(e.get("INGEST_HEARTBEAT", "/tmp/ingestion.heartbeat")),  # noqa: S108 - its own tmpfs
            status=Path(e.get("INGEST_STATUS", "/tmp/ingestion.status.json")),  # noqa: S108 - its own tmpfs
            poll_seconds=float(e.get("INGEST_POLL_SECONDS", "1")),
            settle_seconds=float(e.get("INGEST_SETTLE_SECONDS", "0.5")),
            max_document_bytes=int(e.get("INGEST_MAX_DOCUMENT_BYTES", "65536")),
            chunk=int(e.get("INGEST_CHUNK", "200")),
            seed_file=Path(seed) if seed else None,
            db_conninfo=conninfo,
            stall_seconds=float(e.get("INGEST_STALL_SECONDS", "60")),
        )

    @property
    def inbox(self) -> Path:
        return self.state / "inbox"

    @property
    def done(self) -> Path:
        return self.state / "done"

    @property
    def rejects(self) -> Path:
        return self.state / "rejects"

    @property
    def stale_after(self) -> float:
        """A heartbeat older than this means the loop itself is stuck (a statement that never returns)."""
        return max(10.0, self.poll_seconds * 5)
