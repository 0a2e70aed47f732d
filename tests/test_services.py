"""The reference services' own logic that needs no database or web stack."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

sys.path[:0] = [str(ROOT / "services/ingestion/src"), str(ROOT / "services/api/src")]

from api.auth import basic_auth_ok  # noqa: E402
from api.metrics import Registry  # noqa: E402
from api.settings import secret  # noqa: E402
from ingestion.documents import Invalid, parse  # noqa: E402


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
    ],
)
def test_invalid_documents_say_why(line: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        parse(line, 1000)


def test_basic_auth() -> None:
    header = "Basic " + base64.b64encode(b"metrics:pw").decode()
    assert basic_auth_ok(header, "metrics", "pw")
    assert not basic_auth_ok(header, "metrics", "other")
    assert not basic_auth_ok("Bearer x", "metrics", "pw")
    assert not basic_auth_ok("Basic !!notbase64", "metrics", "pw")


def test_metrics_render_prometheus_text() -> None:
    r = Registry()
    r.observe("GET", "/documents/{doc_id}", 200, 0.003)
    r.observe("GET", "/documents/{doc_id}", 404, 0.2)
    text = r.render()
    assert 'http_requests_total{method="GET",route="/documents/{doc_id}",status="200"} 1' in text
    assert 'http_request_duration_seconds_bucket{route="/documents/{doc_id}",le="0.005"} 1' in text
    assert 'http_request_duration_seconds_bucket{route="/documents/{doc_id}",le="+Inf"} 2' in text
    assert 'http_request_duration_seconds_count{route="/documents/{doc_id}"} 2' in text


def test_secrets_come_from_files_first(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    assert secret("PGPASSWORD", {"PGPASSWORD_FILE": str(f), "PGPASSWORD": "from-env"}) == "from-file"
    assert secret("PGPASSWORD", {"PGPASSWORD": "from-env"}) == "from-env"
    # A configured but missing file is "no secret", never a silent fallback to something else.
    assert (
        secret("METRICS_PASSWORD", {"METRICS_PASSWORD_FILE": str(tmp_path / "nope"), "METRICS_PASSWORD": "x"}) is None
    )
