"""The API application."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(title="reference-api", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process serves requests. Depends on nothing else."""
    return {"status": "ok"}
