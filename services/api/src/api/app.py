"""The API application: health, readiness, metrics and the documents API.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint
annotations at runtime to build request validation.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import basic_auth_ok
from .metrics import MetricsMiddleware, Registry
from .settings import Settings
from .state import DRAINING

log = logging.getLogger("api")
DB_TIMEOUT = 2.0
# PostgreSQL's text cannot hold NUL: psycopg refuses such a parameter before it
# is sent, which the database-error handler would answer with 503. A NUL in an
# id or a query is the client's mistake: 422 like any other invalid value.
NO_NUL = r"^[^\x00]*$"
PAGE_MAX = 100
MAX_BODY, MAX_TITLE, MAX_TAGS, MAX_TAG = 100_000, 500, 50, 100


class NewDocument(BaseModel):
    """A document a client stores: the same fields and limits as an ingested record, without the id."""

    model_config = {"extra": "forbid"}
    title: str = Field("", max_length=MAX_TITLE, pattern=NO_NUL)
    body: str = Field(min_length=1, max_length=MAX_BODY, pattern=NO_NUL)
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TAG, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=MAX_TAGS
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    registry = Registry()
    pool = AsyncConnectionPool(
        settings.db_conninfo,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Do not wait for the database: liveness must not depend on it, and
        # /ready reports when it is reachable.
        await pool.open(wait=False)
        try:
            yield
        finally:
            await pool.close(timeout=1)

    app = FastAPI(title="reference-api", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, registry=registry)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "details": details}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(psycopg.Error)
    async def db_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        log.warning("database error on %s: %s", request.url.path, exc)
        return JSONResponse({"error": "database unavailable"}, status_code=503)

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        return JSONResponse({"error": "database unavailable"}, status_code=503)

    async def query(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with pool.connection(timeout=DB_TIMEOUT) as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process serves requests. Depends on nothing else."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the database answers, and the api is not draining before it stops."""
        if DRAINING.exists():
            return JSONResponse({"status": "draining"}, status_code=503)
        try:
            await query("SELECT 1 AS ok")
        except (psycopg.Error, PoolTimeout) as exc:
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        if not settings.metrics_user or not settings.metrics_password:
            # No credential configured: the endpoint is off, never open.
            raise HTTPException(404, "metrics are disabled (no METRICS_USER/METRICS_PASSWORD)")
        header = request.headers.get("authorization", "")
        if not basic_auth_ok(header, settings.metrics_user, settings.metrics_password):
            challenge = {"WWW-Authenticate": 'Basic realm="metrics"'}
            raise HTTPException(401, "authentication required", headers=challenge)
        return PlainTextResponse(registry.render(), media_type="text/plain; version=0.0.4")

    @app.get("/documents")
    async def list_documents(
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 20,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        rows = await query(
            "SELECT id, title, tags, created_at FROM documents ORDER BY created_at, id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        total = (await query("SELECT count(*) AS n FROM documents"))[0]["n"]
        return {"items": [_jsonable(r) for r in rows], "limit": limit, "offset": offset, "total": total}

    @app.get("/documents/{doc_id}")
    async def get_document(
        doc_id: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    ) -> dict[str, Any]:
        rows = await query("SELECT id, title, body, tags, created_at FROM documents WHERE id = %s", (doc_id,))
        if not rows:
            raise HTTPException(404, f"no document {doc_id!r}")
        return _jsonable(rows[0])

    @app.post("/documents", status_code=201)
    async def store_document(doc: NewDocument) -> dict[str, Any]:
        """Store a new document under an id of its own: sending it twice stores it twice (not idempotent)."""
        canonical = json.dumps({"title": doc.title, "body": doc.body, "tags": doc.tags}, sort_keys=True)
        sha = hashlib.sha256(canonical.encode()).hexdigest()
        rows = await query(
            "INSERT INTO documents (id, title, body, tags, content_sha, batch) VALUES (%s, %s, %s, %s, %s, 'api') "
            "RETURNING id, created_at",
            (f"api:{uuid.uuid4().hex}", doc.title, doc.body, doc.tags, sha),
        )
        return _jsonable(rows[0])

    @app.get("/search")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)],
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 20,
    ) -> dict[str, Any]:
        rows = await query(
            "SELECT id, title, tags, created_at, ts_rank(search, query) AS rank "
            "FROM documents, plainto_tsquery('simple', %s) AS query "
            "WHERE search @@ query ORDER BY rank DESC, id LIMIT %s",
            (q, limit),
        )
        return {"query": q, "items": [_jsonable(r) for r in rows]}

    return app


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k != "rank"}
