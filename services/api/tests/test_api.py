"""The reference services' own logic that needs no database or web stack."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ROOT

sys.path[:0] = [str(ROOT / "services/ingestion/src"), str(ROOT / "services/api/src")]

from api import healthcheck as api_health  # noqa: E402
from api.auth import basic_auth_ok  # noqa: E402
from api.metrics import Registry  # noqa: E402
from api.settings import secret  # noqa: E402
from ingestion.documents import Document, Invalid, parse  # noqa: E402
from ingestion.healthcheck import check  # noqa: E402
from ingestion.settings import Settings  # noqa: E402


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


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@given(st.binary(max_size=64))
def test_a_status_line_is_read_or_refused_never_a_crash(line: bytes) -> None:
    status = api_health.status_of(line)
    assert status is None or 100 <= status <= 999


@pytest.mark.parametrize(
    ("line", "status"),
    [(b"HTTP/1.1 200 OK", 200), (b"HTTP/1.0 503 Service Unavailable", 503), (b"HTTP/1.1 204", 204),
     (b"SSH-2.0-OpenSSH_9.2", None), (b"", None), (b"HTTP/1.1 20 OK", None), (b"HTTP/1.1 abc OK", None)],
)  # fmt: skip
def test_status_lines(line: bytes, status: int | None) -> None:
    assert api_health.status_of(line) == status


@pytest.fixture
def health_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback HTTP server whose /health answers the next status in the list it hands out."""
    answers: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = answers.pop(0) if self.path == "/health" and answers else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], answers
    finally:
        server.shutdown()
        server.server_close()


def test_the_probe_speaks_http_to_a_real_server(
    health_server: tuple[int, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, answers = health_server
    monkeypatch.setenv("API_PORT", str(port))
    answers[:] = [200, 503]
    assert api_health.main() == 0
    assert api_health.main() == 1  # a 503 is unhealthy
    assert api_health.main() == 1  # nothing queued: 404


def test_the_probe_is_unhealthy_when_nothing_or_no_http_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("API_PORT", str(port))  # closed: connection refused
    assert api_health.main() == 1
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        monkeypatch.setenv("API_PORT", str(srv.getsockname()[1]))

        def garbage() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-not-http\r\n")

        t = threading.Thread(target=garbage, daemon=True)
        t.start()
        assert api_health.main() == 1
        t.join(5)


# --------------------------------------------------------------------------- the api's venv slimming (build step)

SLIM_VENV = ROOT / "services/api/tools/slim_venv.py"


def _slim(tmp_path: Path, prune: str, bytecode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """slim_venv.py on a real, tiny venv holding one package (app) and a module nothing imports (unused)."""
    venv = tmp_path / "venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    [site] = (venv / "lib").glob("python3*/site-packages")
    (site / "app").mkdir(exist_ok=True)
    (site / "app" / "__init__.py").write_text("from . import core\n")
    (site / "app" / "core.py").write_text("import json\nVALUE = 1\n")
    (site / "app" / "stubs.pyi").write_text("VALUE: int\n")
    (site / "unused.py").write_text("import app\n")
    (site / "plugin.py").write_text("import somethingabsent\n")
    (tmp_path / "prune.txt").write_text(prune)
    (tmp_path / "bytecode.txt").write_text(bytecode)
    r = subprocess.run(
        [sys.executable, str(SLIM_VENV), "--venv", str(venv), "--prune", str(tmp_path / "prune.txt"),
         "--bytecode", str(tmp_path / "bytecode.txt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return r, site


def test_slim_venv_prunes_and_compiles_only_what_is_imported(tmp_path: Path) -> None:
    r, site = _slim(tmp_path, "# why\n*.pyi\nplugin.py   needs=somethingabsent\n", "app\n")
    assert r.returncode == 0, r.stderr
    assert "2 files pruned, 2 modules compiled" in r.stdout
    assert not (site / "app" / "stubs.pyi").exists() and not (site / "plugin.py").exists()
    cached = sorted(p.name for p in site.rglob("*.pyc"))
    assert cached == [f"__init__.cpython-{sys.version_info[0]}{sys.version_info[1]}.pyc",
                      f"core.cpython-{sys.version_info[0]}{sys.version_info[1]}.pyc"]  # fmt: skip
    assert (site / "unused.py").exists()  # kept, source only: nothing imports it


@pytest.mark.parametrize(
    ("prune", "message"),
    [
        ("gone/\n", "prune.txt:1: gone/ matches nothing"),
        (
            "# x\napp/core.py needs=json\n",
            "prune.txt:2: app/core.py is pruned because json is not installed, but it is",
        ),
        ("app/core.py because\n", "prune.txt:1: unknown word 'because'"),
    ],
)
def test_slim_venv_refuses_a_stale_or_wrong_prune_list(tmp_path: Path, prune: str, message: str) -> None:
    r, site = _slim(tmp_path, prune, "app\n")
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert (site / "app" / "core.py").exists()
