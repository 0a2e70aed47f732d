"""The ingestion loop: JSON-lines batches from the inbox into PostgreSQL.

A batch file `inbox/NAME.jsonl` is read line by line; valid documents are
inserted in chunks with `ON CONFLICT (id) DO NOTHING`, invalid ones are
written with their reason to `rejects/NAME.rejects.jsonl`, and the batch moves
to `done/`. A worker killed at any point reprocesses the batch on restart and,
because the id (client id or content hash) is the key, every valid document
ends up stored exactly once.

Two kinds of failure are kept apart. A record the database refuses for what it
is (a data or integrity error: NUL in a text, a value out of range) is that
record's fault: the chunk is redone one record at a time under savepoints, the
refused records go to the rejects file with the database's reason, and the
rest are stored. A database that is down or failing is nobody's record's fault:
nothing is rejected, the batch stays in the inbox and is retried with backoff.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
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
# SQLSTATE classes that say "this value", not "this database": 22 data exception
# (NUL in text, untranslatable character, numeric out of range, string too long),
# 23 integrity constraint violation, 54 program limit exceeded (e.g. a tsvector or
# index row too large). Everything else (connection loss, shutdown, missing table,
# lock timeouts) is the database's state and is retried, never blamed on a record.
PERMANENT_CLASSES = frozenset({"22", "23", "54"})
MAX_BACKOFF = 5.0  # seconds; below stale_after so the heartbeat stays fresh while the database is away
RECORD_PREVIEW = 2000  # characters of a rejected record kept in its reject line


class Stopped(Exception):
    """Shutdown asked for mid-batch: the batch stays in the inbox and is redone next start."""


def permanent(exc: BaseException) -> bool:
    """True when the database (or the driver, for it) refused a value for what it is."""
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate:
            return exc.sqlstate[:2] in PERMANENT_CLASSES
        # No SQLSTATE: psycopg refused to send the value (e.g. NUL in a text); a DataError
        # is about the value, anything else (a closed connection) about the connection.
        return isinstance(exc, psycopg.DataError)
    # Adapting one record's values failed in Python: that record cannot be sent as it is.
    return isinstance(exc, UnicodeError | ValueError | OverflowError)


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    return f"database refused it: {text}" + (f" (SQLSTATE {state})" if state else "")


def store(conn: psycopg.Connection, docs: Sequence[Document], batch: str) -> list[tuple[int, str]]:
    """Insert ``docs`` (autocommit connection); return the indexes the database refused, with why.

    Raises psycopg.Error when the failure is not a record's fault; nothing is stored then.
    """
    rows = [(d.id, d.title, d.body, list(d.tags), d.content_sha, batch) for d in docs]
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(INSERT, rows)
        return []
    except Exception as exc:
        if not permanent(exc):
            raise
        log.info("%s: a chunk of %d was refused (%s); isolating the records", batch, len(rows), reason(exc))
    # One transaction, one savepoint per record: the refused ones roll back alone,
    # the others commit together, so a redo after a crash still stores each once.
    refused: list[tuple[int, str]] = []
    started = time.monotonic()
    with conn.transaction():
        for i, row in enumerate(rows):
            try:
                with conn.transaction():
                    conn.execute(INSERT, row)
            except Exception as exc:
                if not permanent(exc):
                    raise
                refused.append((i, reason(exc)))
    log.info("%s: isolated %d refused of %d in %.3f s", batch, len(refused), len(rows), time.monotonic() - started)
    return refused


def _preview(raw: bytes) -> str:
    # Invalid UTF-8 stays visible as \xNN escapes instead of vanishing into U+FFFD.
    return raw[: RECORD_PREVIEW * 4].decode("utf-8", "backslashreplace")[:RECORD_PREVIEW]


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stop = threading.Event()
        self.conn: psycopg.Connection | None = None
        self.pending = 0
        self.progress_at = time.time()

    # ---------------------------------------------------------------- health
    def beat(self) -> None:
        self.s.heartbeat.touch()
        self.write_status()

    def progressed(self) -> None:
        """Work moved (a chunk committed, a batch finished) or there was none to move."""
        self.progress_at = time.time()
        self.beat()

    def write_status(self) -> None:
        tmp = self.s.status.with_name(self.s.status.name + ".tmp")
        tmp.write_text(json.dumps({"pending": self.pending, "progress_at": self.progress_at, "at": time.time()}))
        os.replace(tmp, self.s.status)

    def connected(self) -> psycopg.Connection:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        # Autocommit: every write is an explicit transaction block (store), never an implicit one.
        self.conn = psycopg.connect(self.s.db_conninfo, autocommit=True)
        return self.conn

    def drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def healthy_db(self) -> bool:
        try:
            self.connected().execute("SELECT 1").fetchone()
            return True
        except psycopg.Error as exc:
            log.warning("database unavailable: %s", str(exc).strip().splitlines()[0] if str(exc) else exc)
            self.drop_connection()
            return False

    # ---------------------------------------------------------------- batches
    def ready_batches(self) -> list[Path]:
        """Batches whose writer is done: unchanged for settle_seconds (a copy may still be arriving)."""
        now = time.time()
        out = []
        for p in sorted(self.s.inbox.glob("*.jsonl")):
            try:
                st = p.stat()
            except OSError:
                continue
            if p.is_file() and now - st.st_mtime >= self.s.settle_seconds:
                out.append(p)
        return out

    def process(self, path: Path, batch: str | None = None) -> tuple[int, int]:
        batch = batch or path.name
        conn = self.connected()
        accepted = rejected = 0
        chunk: list[tuple[int, bytes, Document]] = []
        rejects: list[str] = []

        def reject(number: int, why: str, raw: bytes) -> None:
            nonlocal rejected
            rejected += 1
            rejects.append(json.dumps({"batch": batch, "line": number, "reason": why, "record": _preview(raw)}))

        def flush() -> None:
            nonlocal accepted
            if not chunk:
                return
            refused = dict(store(conn, [d for _, _, d in chunk], batch))
            for i, (number, raw, _) in enumerate(chunk):
                if i in refused:
                    reject(number, refused[i], raw)
                else:
                    accepted += 1
            chunk.clear()
            self.progressed()

        limit = self.s.max_document_bytes + 2  # the record, then "\r\n"
        with path.open("rb") as f:
            number = 0
            while True:
                # Bounded reads: a line of any length costs at most `limit` bytes of memory.
                raw = f.readline(limit)
                if not raw:
                    break
                number += 1
                if not raw.endswith(b"\n") and len(raw) >= limit:
                    rest = raw
                    while rest and not rest.endswith(b"\n"):
                        rest = f.readline(1 << 16)
                    reject(number, f"document larger than {self.s.max_document_bytes} bytes", raw)
                    continue
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                try:
                    chunk.append((number, line, parse(line, self.s.max_document_bytes)))
                except Invalid as exc:
                    reject(number, str(exc), line)
                except Exception as exc:  # parse is meant to be total; a slip must still not stop the batch
                    log.exception("%s line %d: unexpected error while validating", batch, number)
                    reject(number, f"could not be validated ({type(exc).__name__})", line)
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
        seeded = self.s.seed_file is None
        wait = self.s.poll_seconds
        while not self.stop.is_set():
            ready = self.ready_batches()
            self.pending = len(ready) + (0 if seeded else 1)
            if self.pending == 0:
                self.progressed()  # nothing waiting is not a stall
            else:
                self.beat()
            ok = False
            if self.healthy_db():
                try:
                    if not seeded:
                        self.seed()
                        seeded = True
                        self.pending -= 1
                        self.progressed()
                    for batch in ready:
                        if self.stop.is_set():
                            break
                        try:
                            accepted, rejected = self.process(batch)
                            os.replace(batch, self.s.done / batch.name)
                        except FileNotFoundError:  # taken away after it was listed: nothing to do
                            log.info("%s: gone from the inbox before it was done", batch.name)
                            continue
                        self.pending -= 1
                        self.progressed()
                        log.info("%s: %d accepted, %d rejected", batch.name, accepted, rejected)
                    ok = True
                except Stopped:
                    log.info("stopping mid-batch; it will be redone on the next start")
                except psycopg.Error as exc:
                    # Not a record's fault (store() keeps those): the batch stays in the inbox
                    # and is retried; idempotent inserts make the redo safe.
                    log.warning("database error, will retry: %s", str(exc).strip()[:500])
                    self.drop_connection()
                except Exception:  # the loop must outlive any one batch; health shows the stall
                    log.exception("unexpected error, will retry")
                    self.drop_connection()
            # Back off while failing, so a database on its way up is not hammered;
            # the cap keeps the heartbeat fresh. Event.wait returns at once on SIGTERM.
            wait = self.s.poll_seconds if ok else min(MAX_BACKOFF, max(wait, self.s.poll_seconds) * 2)
            self.stop.wait(wait)
        self.drop_connection()
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
