"""The ingestion loop: JSON-lines batches from the inbox into PostgreSQL.

A batch file `inbox/NAME.jsonl` is read line by line; valid documents are
inserted in chunks with `ON CONFLICT (id) DO NOTHING`, invalid ones are
written with their reason to `rejects/NAME.rejects.jsonl`, and the batch moves
to `done/`. A worker killed at any point reprocesses the batch on restart and,
because the id (client id or content hash) is the key, every valid document
ends up stored exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import psycopg

from .documents import Document, Invalid, parse
from .settings import Settings

log = logging.getLogger("ingestion")
INSERT = (
    "INSERT INTO documents (id, title, body, tags, content_sha, batch) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO NOTHING"
)


class Stopped(Exception):
    """Shutdown asked for mid-batch: the batch stays in the inbox and is redone next start."""


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stop = threading.Event()
        self.conn: psycopg.Connection | None = None

    # ---------------------------------------------------------------- health
    def beat(self) -> None:
        self.s.heartbeat.touch()

    def connected(self) -> psycopg.Connection:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        self.conn = psycopg.connect(self.s.db_conninfo)
        return self.conn

    def healthy_db(self) -> bool:
        try:
            self.connected().execute("SELECT 1").fetchone()
            self.connected().commit()
            return True
        except psycopg.Error as exc:
            log.warning("database unavailable: %s", str(exc).strip().splitlines()[0] if str(exc) else exc)
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return False

    # ---------------------------------------------------------------- batches
    def ready_batches(self) -> list[Path]:
        """Batches whose writer is done: unchanged for settle_seconds (a copy may still be arriving)."""
        now = time.time()
        out = []
        for p in sorted(self.s.inbox.glob("*.jsonl")):
            try:
                if now - p.stat().st_mtime >= self.s.settle_seconds:
                    out.append(p)
            except FileNotFoundError:
                continue
        return out

    def process(self, path: Path, batch: str | None = None) -> tuple[int, int]:
        batch = batch or path.name
        conn = self.connected()
        accepted = rejected = 0
        chunk: list[Document] = []
        rejects: list[str] = []

        def flush() -> None:
            if chunk:
                with conn.cursor() as cur:
                    cur.executemany(
                        INSERT, [(d.id, d.title, d.body, list(d.tags), d.content_sha, batch) for d in chunk]
                    )
                conn.commit()
                chunk.clear()
                self.beat()

        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    chunk.append(parse(line.rstrip("\n"), self.s.max_document_bytes))
                    accepted += 1
                except Invalid as exc:
                    rejected += 1
                    rejects.append(
                        json.dumps(
                            {"batch": batch, "line": number, "reason": str(exc), "record": line.rstrip("\n")[:2000]}
                        )
                    )
                if len(chunk) >= self.s.chunk:
                    flush()
                    if self.stop.is_set():
                        raise Stopped
        flush()
        if rejects:
            self.s.rejects.mkdir(parents=True, exist_ok=True)
            target = self.s.rejects / f"{path.stem}.rejects.jsonl"
            tmp = target.with_suffix(".tmp")
            tmp.write_text("\n".join(rejects) + "\n")
            os.replace(tmp, target)  # a reprocessed batch rewrites, never duplicates
        return accepted, rejected

    def seed(self) -> None:
        if self.s.seed_file is None:
            return
        if not self.s.seed_file.exists():
            log.warning("seed file %s does not exist", self.s.seed_file)
            return
        accepted, rejected = self.process(self.s.seed_file, batch=f"seed:{self.s.seed_file.name}")
        log.info("seed %s: %d accepted, %d rejected", self.s.seed_file.name, accepted, rejected)

    def run(self) -> None:
        for d in (self.s.inbox, self.s.done, self.s.rejects):
            d.mkdir(parents=True, exist_ok=True)
        log.info("watching %s", self.s.inbox)
        seeded = False
        while not self.stop.is_set():
            if self.healthy_db():
                self.beat()
                try:
                    if not seeded:
                        self.seed()
                        seeded = True
                    for batch in self.ready_batches():
                        if self.stop.is_set():
                            break
                        accepted, rejected = self.process(batch)
                        os.replace(batch, self.s.done / batch.name)
                        log.info("%s: %d accepted, %d rejected", batch.name, accepted, rejected)
                except Stopped:
                    log.info("stopping mid-batch; it will be redone on the next start")
                except psycopg.Error as exc:
                    # The batch stays in the inbox and is retried; idempotent inserts make that safe.
                    log.warning("database error, will retry: %s", exc)
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = None
            # Event.wait returns at once on SIGTERM, so `docker stop` is quick.
            self.stop.wait(self.s.poll_seconds)
        if self.conn is not None:
            self.conn.close()
        log.info("stopped")

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current chunk", signum)
        self.stop.set()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "info").upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    worker = Worker(Settings.from_env())
    signal.signal(signal.SIGTERM, worker.handle_signal)
    signal.signal(signal.SIGINT, worker.handle_signal)
    worker.run()
