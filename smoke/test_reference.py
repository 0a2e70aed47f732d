"""End-to-end behaviour of the reference services, run by `pipelines smoke` against the live stack.

Not part of the unit test run: these need the stack that `pipelines smoke`
(or `pipelines load`, for the seed) brings up, reached through the
``stack`` fixture of the ``pipelines.testing`` plugin. Every check raises
with what it saw, so the smoke report says what broke.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pipelines.testing import LiveStack

INBOX = "/var/lib/ingestion/inbox"
REJECTS = "/var/lib/ingestion/rejects"
API_PORT = 8000


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _api(stack: LiveStack) -> str:
    return stack.url("api", API_PORT)


def _searchable(stack: LiveStack, token: str, count: int, deadline: float = 30.0) -> int:
    def found() -> int | None:
        status, _, body = stack.http("GET", f"{_api(stack)}/search?q={token}&limit=100")
        data = _json(body)
        items = data.get("items", []) if status == 200 and isinstance(data, dict) else []
        return len(items) if len(items) >= count else None

    return stack.wait_for(f"{count} documents with {token} searchable", found, deadline=deadline)


def test_metrics_reject_a_wrong_password(stack: LiveStack) -> None:
    status, headers, _ = stack.http("GET", f"{_api(stack)}/metrics")
    challenge = {k.lower(): v for k, v in headers.items()}.get("www-authenticate", "")
    if status != 401 or "Basic" not in challenge:
        raise AssertionError(f"anonymous /metrics -> {status}, challenge {challenge!r}; expected 401 with Basic")
    status, _, _ = stack.http("GET", f"{_api(stack)}/metrics", auth=(stack.secret("metrics_user"), "wrong"))
    if status != 401:
        raise AssertionError(f"wrong password -> {status}, expected 401")
    status, _, body = stack.http(
        "GET", f"{_api(stack)}/metrics", auth=(stack.secret("metrics_user"), stack.secret("metrics_password"))
    )
    if status != 200 or b"http_requests_total" not in body:
        raise AssertionError(f"configured credential -> {status}, no request counter in the metrics")


def test_bad_input_gets_json_errors(stack: LiveStack) -> None:
    for path, expected in (
        ("/documents?limit=0", 422),
        ("/search?q=", 422),
        ("/documents/no-such-doc", 404),
        # NUL cannot be stored, so it cannot be asked for: the client's mistake, not a database outage (503).
        ("/documents/a%00b", 422),
        ("/search?q=a%00b", 422),
    ):
        status, _, body = stack.http("GET", f"{_api(stack)}{path}")
        data = _json(body)
        if status != expected or not isinstance(data, dict) or "error" not in data:
            raise AssertionError(f"{path} -> {status} {body[:200]!r}, expected {expected} with a JSON error")


def test_ingested_documents_become_searchable(stack: LiveStack) -> None:
    token = "smoke" + secrets.token_hex(4)
    docs = [
        json.dumps({"id": f"{token}-{i}", "title": f"Smoke {i}", "body": f"probe document {token} {i}", "tags": ["s"]})
        for i in range(5)
    ]
    stack.drop("ingestion", f"{INBOX}/{token}.jsonl", "\n".join(docs) + "\n")
    _searchable(stack, token, 5)
    status, _, body = stack.http("GET", f"{_api(stack)}/documents/{token}-3")
    doc = _json(body)
    if status != 200 or not isinstance(doc, dict) or token not in doc.get("body", ""):
        raise AssertionError(f"fetch by id -> {status} {body[:200]!r}")


def test_a_posted_document_is_stored_each_time_it_is_sent(stack: LiveStack) -> None:
    token = "posted" + secrets.token_hex(4)
    body = json.dumps({"title": "Posted", "body": f"stored through the api {token}", "tags": ["p"]}).encode()
    ids = []
    for _ in range(2):
        status, _, answer = stack.http("POST", f"{_api(stack)}/documents", body=body)
        data = _json(answer)
        if status != 201 or not isinstance(data, dict) or not str(data.get("id", "")).startswith("api:"):
            raise AssertionError(f"POST /documents -> {status} {answer[:200]!r}, expected 201 with a new id")
        ids.append(str(data["id"]))
    if ids[0] == ids[1]:
        raise AssertionError(f"the same document sent twice got one id {ids[0]}: a POST must store it again")
    status, _, answer = stack.http("GET", f"{_api(stack)}/documents/{ids[1]}")
    doc = _json(answer)
    if status != 200 or not isinstance(doc, dict) or token not in doc.get("body", ""):
        raise AssertionError(f"fetch of the posted document -> {status} {answer[:200]!r}")
    status, _, answer = stack.http("POST", f"{_api(stack)}/documents", body=json.dumps({"body": ""}).encode())
    if status != 422:
        raise AssertionError(f"POST of an empty body -> {status} {answer[:200]!r}, expected 422")


def test_malformed_records_are_rejected_and_the_worker_goes_on(stack: LiveStack) -> None:
    token = "reject" + secrets.token_hex(4)
    lines = [
        '{"id": "broken", "body": ',
        json.dumps({"id": f"{token}-nobody", "title": "no body"}),
        json.dumps({"id": f"{token}-ok", "body": f"valid next to broken ones {token}"}),
    ]
    stack.drop("ingestion", f"{INBOX}/{token}.jsonl", "\n".join(lines) + "\n")
    _searchable(stack, token, 1)
    local = stack.run_dir / f"{token}.rejects.jsonl"
    if not stack.copy_out("ingestion", f"{REJECTS}/{token}.rejects.jsonl", local):
        raise AssertionError("no rejects file was written")
    reasons = sorted(json.loads(x)["reason"] for x in local.read_text().splitlines() if x.strip())
    if len(reasons) != 2 or not any("not JSON" in r for r in reasons) or not any("body" in r for r in reasons):
        raise AssertionError(f"rejects: {reasons}")
    after = "after" + secrets.token_hex(4)
    stack.drop("ingestion", f"{INBOX}/{after}.jsonl", json.dumps({"body": f"after the rejects {after}"}) + "\n")
    _searchable(stack, after, 1)
    health = stack.ps()["ingestion"].health
    if health != "healthy":
        raise AssertionError(f"ingestion is {health} after rejecting")
