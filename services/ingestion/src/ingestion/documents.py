"""Validation of one JSON-lines record into a document, and its idempotency key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

FIELDS = {"id", "title", "body", "tags"}
MAX_ID, MAX_TITLE, MAX_TAGS, MAX_TAG = 200, 500, 50, 100


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    body: str
    tags: tuple[str, ...]
    content_sha: str


class Invalid(ValueError):
    """Why a record is not a document; the batch goes on."""


def parse(line: str, max_bytes: int) -> Document:
    if len(line.encode()) > max_bytes:
        raise Invalid(f"document larger than {max_bytes} bytes")
    try:
        raw: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise Invalid(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(raw, dict):
        raise Invalid("not a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)}")
    body = raw.get("body")
    if not isinstance(body, str) or not body.strip():
        raise Invalid("'body' must be a non-empty string")
    title = raw.get("title", "")
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise Invalid(f"'title' must be a string of at most {MAX_TITLE} characters")
    tags = raw.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG for t in tags)
    ):
        raise Invalid(f"'tags' must be a list of at most {MAX_TAGS} non-empty strings")
    canonical = json.dumps({"title": title, "body": body, "tags": tags}, sort_keys=True, ensure_ascii=False)
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    doc_id = raw.get("id")
    if doc_id is None:
        # No client id: the content is the key, so a re-sent document is the same document.
        doc_id = f"sha256:{sha}"
    elif not isinstance(doc_id, str) or not 0 < len(doc_id) <= MAX_ID:
        raise Invalid(f"'id' must be a string of 1 to {MAX_ID} characters")
    return Document(doc_id, title, body, tuple(tags), sha)
