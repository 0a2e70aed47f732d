"""One-shot migration job: ``python -m api.migrate``; exits 0 when the schema is current."""

from __future__ import annotations

import logging
import sys
import time

import psycopg

from .schema import LOCK_ID, MIGRATIONS
from .settings import Settings

log = logging.getLogger("migrate")


def migrate(conninfo: str, *, attempts: int = 30) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    for attempt in range(1, attempts + 1):
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
            break
        except psycopg.OperationalError as exc:
            if attempt == attempts:
                raise
            log.info("database not reachable yet (%s); retrying", str(exc).strip().splitlines()[0])
            time.sleep(1)
    applied = []
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, at timestamptz DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return applied


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        applied = migrate(Settings.from_env().db_conninfo)
    except psycopg.Error as exc:
        log.error("migration failed: %s", exc)
        return 1
    log.info("schema current; applied now: %s", ", ".join(applied) or "nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
