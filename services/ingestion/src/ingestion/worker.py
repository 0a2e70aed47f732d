"""The ingestion loop: pick up JSON-lines batches from the inbox.

Each loop iteration touches the heartbeat file, which the container's
HEALTHCHECK reads; a loop that hangs stops touching it and turns unhealthy.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from .settings import Settings

log = logging.getLogger("ingestion")


def validate(line: str, max_bytes: int) -> str | None:
    """Why a JSON-lines record is invalid, or None when it is a valid document."""
    if len(line.encode()) > max_bytes:
        return f"document larger than {max_bytes} bytes"
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    if not isinstance(doc.get("id"), str) or not doc["id"]:
        return "missing string field 'id'"
    if not isinstance(doc.get("body"), str):
        return "missing string field 'body'"
    return None


def process_batch(path: Path, settings: Settings) -> tuple[int, int]:
    accepted = rejected = 0
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        reason = validate(line, settings.max_document_bytes)
        if reason:
            rejected += 1
            log.warning("%s:%d rejected: %s", path.name, number, reason)
        else:
            accepted += 1
    return accepted, rejected


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()

    def beat(self) -> None:
        self.settings.heartbeat.touch()

    def run(self) -> None:
        self.settings.inbox.mkdir(parents=True, exist_ok=True)
        done = self.settings.inbox / "done"
        done.mkdir(exist_ok=True)
        log.info("watching %s", self.settings.inbox)
        while not self.stop.is_set():
            self.beat()
            for batch in sorted(self.settings.inbox.glob("*.jsonl")):
                accepted, rejected = process_batch(batch, self.settings)
                batch.rename(done / batch.name)
                log.info("%s: %d accepted, %d rejected", batch.name, accepted, rejected)
            # Event.wait returns at once on SIGTERM, so `docker stop` is quick.
            self.stop.wait(self.settings.poll_seconds)
        log.info("stopped")

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stop.set()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = Worker(Settings.from_env())
    signal.signal(signal.SIGTERM, worker.handle_signal)
    signal.signal(signal.SIGINT, worker.handle_signal)
    worker.run()
