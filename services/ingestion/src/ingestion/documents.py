"""Validation of one JSON-lines record into a document, and its idempotency key.

`parse` is total: whatever bytes or text it is given, it returns a Document or
raises Invalid with a reason. A record is never allowed to raise anything else,
because one record must not stop the batch (or the worker) it arrived in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NoReturn

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


def _no_constant(token: str) -> NoReturn:
    # Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not.
    raise Invalid(f"not JSON: {token} is not a JSON value")


def _text(value: str, field: str) -> str:
    """A string JSON can spell but UTF-8 cannot (a lone surrogate such as \\ud800) is not text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Invalid(
            f"{field!r} contains a lone surrogate (U+{ord(value[exc.start]):04X}), which is not Unicode text"
        ) from None
    return value


def _decode(line: bytes | str, max_bytes: int) -> str:
    if isinstance(line, str):
        try:
            size = len(line.encode("utf-8"))
        except UnicodeEncodeError:
            raise Invalid("not UTF-8: the line contains a lone surrogate") from None
        text = line
    else:
        size = len(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid(f"not UTF-8: byte 0x{line[exc.start]:02x} at offset {exc.start}") from None
    if size > max_bytes:
        raise Invalid(f"document larger than {max_bytes} bytes")
    return text


def parse(line: bytes | str, max_bytes: int) -> Document:
    text = _decode(line, max_bytes)
    try:
        raw: Any = json.loads(text, parse_constant=_no_constant)
    except Invalid:
        raise
    except json.JSONDecodeError as exc:
        raise Invalid(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise Invalid(f"not JSON this worker can read: {str(exc)[:200]}") from None
    except RecursionError:
        raise Invalid("not JSON this worker can read: nested too deeply") from None
    if not isinstance(raw, dict):
        raise Invalid("not a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        shown = ", ".join(k[:60] for k in unknown[:10])
        raise Invalid(f"unknown fields: {shown}{' ...' if len(unknown) > 10 else ''}")
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
    _text(body, "body")
    _text(title, "title")
    for t in tags:
        _text(t, "tags")
    doc_id = raw.get("id")
    if doc_id is not None and (not isinstance(doc_id, str) or not 0 < len(doc_id) <= MAX_ID):
        raise Invalid(f"'id' must be a string of 1 to {MAX_ID} characters")
    canonical = json.dumps({"title": title, "body": body, "tags": tags}, sort_keys=True, ensure_ascii=False)
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    if doc_id is None:
        # No client id: the content is the key, so a re-sent document is the same document.
        doc_id = f"sha256:{sha}"
    _text(doc_id, "id")
    # NUL and whatever else PostgreSQL cannot hold is left to the database to refuse: it is
    # the judge of what it stores, and the worker isolates and rejects such records (worker.store).
    return Document(doc_id, title, body, tuple(tags), sha)
