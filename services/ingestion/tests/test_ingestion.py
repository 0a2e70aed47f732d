"""The ingestion worker's own logic that needs no database: documents and its health."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import examples

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ingestion.documents import Document, Invalid, parse
from ingestion.healthcheck import check
from ingestion.settings import Settings


def test_valid_document_and_its_key() -> None:
    d = parse(json.dumps({"id": "a-1", "title": "T", "body": "hello", "tags": ["x"]}), 1000)
    assert (d.id, d.title, d.body, d.tags) == ("a-1", "T", "hello", ("x",))
    # Without a client id the content hash is the key: the same content is the same document.
    a = parse(json.dumps({"body": "same", "tags": ["t"]}), 1000)
    b = parse(json.dumps({"tags": ["t"], "body": "same"}), 1000)
    assert a.id == b.id and a.id.startswith("sha256:")
    assert parse(json.dumps({"body": "other"}), 1000).id != a.id


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"id": "x", "body": ', "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": "x"}', "'body' must be a non-empty string"),
        ('{"id": "x", "body": "  "}', "'body' must be a non-empty string"),
        ('{"id": 5, "body": "b"}', "'id' must be a string"),
        ('{"id": "x", "body": "b", "tags": "t"}', "'tags' must be a list"),
        ('{"id": "x", "body": "b", "extra": 1}', "unknown fields: extra"),
        (json.dumps({"id": "x", "body": "b" * 2000}), "larger than 1000 bytes"),
        ('{"body": NaN}', "NaN is not a JSON value"),
        ('{"body": "b", "title": -Infinity}', "-Infinity is not a JSON value"),
        ('{"body": "\\ud800 half a pair"}', "'body' contains a lone surrogate"),
        ('{"body": "b", "tags": ["\\udfff"]}', "'tags' contains a lone surrogate"),
        (b'{"body": "caf\xe9"}', "not UTF-8: byte 0xe9 at offset 13"),
        ('{"body": "\ud800"}', "not UTF-8"),  # a str that is not even encodable
    ],
)
def test_invalid_documents_say_why(line: str | bytes, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        parse(line, 1000)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"body": "b", "id": ' + "9" * 5000 + "}", "not JSON this worker can read"),
    ],
)
def test_json_python_cannot_hold_is_invalid_not_a_crash(line: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        parse(line, 1_000_000)


# Any code point, lone surrogates included (st.text() leaves them out by default).
ANY_TEXT = st.text(st.characters(exclude_categories=()))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(ANY_TEXT.filter(lambda k: len(k) < 9), inner, max_size=5)
    ),
    max_leaves=20,
)
DOC_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON_VALUES,
        "title": JSON_VALUES,
        "body": JSON_VALUES,
        "tags": st.lists(JSON_VALUES, max_size=4) | JSON_VALUES,
    },
)


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        ANY_TEXT.filter(lambda t: len(t) <= 300),
        JSON_VALUES.map(json.dumps),
        DOC_LIKE.map(lambda d: json.dumps(d, ensure_ascii=False)),
        DOC_LIKE.map(json.dumps),
        DOC_LIKE.map(lambda d: json.dumps(d).encode("utf-8", "surrogatepass")),
    )
)
def test_parse_is_total(line: str | bytes) -> None:
    """Whatever a line holds, parse gives a document or an Invalid with a reason, never anything else."""
    try:
        doc = parse(line, 2000)
    except Invalid as exc:
        assert str(exc)
        return
    assert isinstance(doc, Document) and doc.body.strip() and 0 < len(doc.id) <= 200
    # What it accepts can be written as UTF-8 (what the database connection speaks).
    for text in (doc.id, doc.title, doc.body, *doc.tags):
        text.encode("utf-8")


def _health(tmp_path: Path, stall: float = 30) -> Settings:
    env = {
        "INGEST_HEARTBEAT": str(tmp_path / "hb"),
        "INGEST_STATUS": str(tmp_path / "status.json"),
        "INGEST_STALL_SECONDS": str(stall),
    }
    return Settings.from_env(env)


def test_health_is_progress_not_only_a_heartbeat(tmp_path: Path) -> None:
    s = _health(tmp_path)
    now = time.time()
    assert check(s, now) == f"no heartbeat at {s.heartbeat}"
    s.heartbeat.touch()
    assert "no readable status" in (check(s, now) or "")
    # Alive, idle: healthy however long ago the last batch was.
    s.status.write_text(json.dumps({"pending": 0, "progress_at": now - 3600}))
    assert check(s, now) is None
    # Alive, work waiting, progress within the bound: healthy.
    s.status.write_text(json.dumps({"pending": 2, "progress_at": now - 29}))
    assert check(s, now) is None
    # Alive but the work has not moved for longer than the bound: a stall.
    s.status.write_text(json.dumps({"pending": 2, "progress_at": now - 31}))
    assert check(s, now) == "2 batch(es) waiting and no progress for 31 s (bound 30 s)"
    # A loop that stopped turning is unhealthy whatever the status says.
    os.utime(s.heartbeat, (now - 60, now - 60))
    s.status.write_text(json.dumps({"pending": 0, "progress_at": now}))
    assert check(s, now) == "heartbeat is 60 s old"
