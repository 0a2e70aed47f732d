"""The api's own logic that needs no database or web stack, and its venv slimming (a build step)."""

from __future__ import annotations

import base64
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

SERVICE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SERVICE / "src"))

from api import healthcheck as api_health  # noqa: E402
from api.auth import basic_auth_ok  # noqa: E402
from api.metrics import Registry  # noqa: E402
from api.settings import secret  # noqa: E402


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

SLIM_VENV = SERVICE / "tools" / "slim_venv.py"


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
