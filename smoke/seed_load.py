"""The load check's seed, run by `pipelines load` against its live stack (see [load].seed).

It stores documents through the ingestion worker and hands their
``/documents/{id}`` paths to the load check, which drives them with wrk.
"""

from __future__ import annotations

import json
import secrets

from pipelines.testing import LiveStack

from .test_reference import API_PORT, INBOX

LOAD_DOCUMENTS = 2000


def test_seed_documents_for_load(stack: LiveStack) -> None:
    """Seed for `pipelines load`: documents to fetch by id, handed over as the paths to drive."""
    token = "load" + secrets.token_hex(4)
    ids = [f"{token}-{i}" for i in range(LOAD_DOCUMENTS)]
    batch = "\n".join(json.dumps({"id": i, "title": f"Load {i}", "body": f"load test document {i} " * 8}) for i in ids)
    stack.drop("ingestion", f"{INBOX}/{token}.jsonl", batch + "\n")

    def last_stored() -> bool | None:
        return True if stack.http("GET", f"{stack.url('api', API_PORT)}/documents/{ids[-1]}")[0] == 200 else None

    stack.wait_for("the seed documents ingested", last_stored, deadline=60)
    stack.add_load_paths([f"/documents/{i}" for i in ids])
