"""Settings from environment variables, read when the worker starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    inbox: Path
    heartbeat: Path
    poll_seconds: float
    max_document_bytes: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            inbox=Path(os.environ.get("INGEST_INBOX", "/var/lib/ingestion/inbox")),
            heartbeat=Path(os.environ.get("INGEST_HEARTBEAT", "/tmp/ingestion.heartbeat")),  # noqa: S108 - a tmpfs the container owns,
            poll_seconds=float(os.environ.get("INGEST_POLL_SECONDS", "1")),
            max_document_bytes=int(os.environ.get("INGEST_MAX_DOCUMENT_BYTES", "65536")),
        )

    @property
    def stale_after(self) -> float:
        """A heartbeat older than this means the loop is stuck."""
        return max(10.0, self.poll_seconds * 5)
