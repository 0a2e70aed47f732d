"""The database schema, applied by the one-shot ``python -m api.migrate`` job.

Every statement is idempotent, and the job holds an advisory lock, so running
it again (or twice at once) is safe.
"""

from __future__ import annotations

LOCK_ID = 4_242_001

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001-documents",
        """
        CREATE TABLE IF NOT EXISTS documents (
            id          text PRIMARY KEY,
            title       text NOT NULL DEFAULT '',
            body        text NOT NULL,
            tags        text[] NOT NULL DEFAULT '{}',
            content_sha text NOT NULL,
            batch       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            search      tsvector GENERATED ALWAYS AS (
                            to_tsvector('simple', coalesce(title, '') || ' ' || body)) STORED
        );
        CREATE INDEX IF NOT EXISTS documents_search_idx ON documents USING gin (search);
        CREATE INDEX IF NOT EXISTS documents_created_idx ON documents (created_at, id);
        """,
    ),
]
