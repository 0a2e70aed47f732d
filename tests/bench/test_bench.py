"""Benchmark helpers: the deploy benchmark's load generator and report against real HTTP servers on
loopback; interval arithmetic and the throwaway fleet project.

No engine and no deploy command are needed: the servers are this process's own
ThreadingHTTPServers, which count what reached them, so the generator's numbers
are checked against the server's, not against themselves.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import bench, config, loadgen, render
from pipelines.errors import ConfigError, InputError, ToolNotFound
from pipelines.result import Check, Outcome, Result
from tests.config.test_config import GOOD, project
from tests.harness import ROOT, examples, run_cli_outcome


class Server(ThreadingHTTPServer):
    """Answers GET; ``status`` decides the answer, ``delay`` how long it takes; counts what it saw."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        self.answered: dict[int, int] = {}
        self.paths: set[str] = set()
        self.methods: dict[str, int] = {}
        self.bodies: set[tuple[str, bytes]] = set()  # (content type, body) of requests that had one
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        s = self.server
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        with s.lock:
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            s.paths.add(self.path)
            s.methods[self.command] = s.methods.get(self.command, 0) + 1
            if sent:
                s.bodies.add((self.headers.get("Content-Type", ""), sent))
            status = s.status
        time.sleep(s.delay)
        body = b'{"status": "ok"}'
        with s.lock:  # counted before it is sent: the client may read the answer before this thread runs on
            s.answered[status] = s.answered.get(status, 0) + 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with s.lock:
            s.in_flight -= 1

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def test_constant_rate_every_request_answered(server: Server) -> None:
    with loadgen.LoadGenerator("127.0.0.1", server.port, "/ready?x=1", 40) as load:
        time.sleep(1.5)
    r = load.report
    # Open loop: ticks at 0, 1/40, ... for 1.5 s; the ticker wakes late now and then on a busy machine, and
    # the test's own sleep may end late too: no tick is sent before it is due, so none past the run's end.
    assert 55 <= r.sent <= math.floor(r.duration_s * 40) + 1, (r.sent, r.duration_s)
    assert r.failures == []
    assert r.ok == r.sent == server.answered[200]
    assert server.paths == {"/ready?x=1"}
    # Percentiles are ordered and measured; how fast is the benchmarks' to judge, not a unit test's.
    assert r.summary()["failed"] == 0 and r.percentile_ms(99) >= r.percentile_ms(50) > 0


def test_a_mix_of_methods_is_sent_in_turn_by_weight(server: Server) -> None:
    doc = b'{"body": "stored"}'
    mix = (
        loadgen.Request("GET", "/ready", weight=2),
        loadgen.Request("POST", "/documents", body=doc, weight=1),
    )
    assert loadgen.schedule(mix) == [0, 1, 0]  # spread out, not two GETs then a POST
    with loadgen.LoadGenerator("127.0.0.1", server.port, "/", 60, requests=mix) as load:
        time.sleep(1.0)
    r = load.report
    assert r.failures == [] and r.ok == r.sent
    assert server.paths == {"/ready", "/documents"}
    assert server.bodies == {("application/json", doc)}  # only the POSTs carry one, with its type
    tallies = r.summary()["mix"]
    assert tallies == {
        "GET /ready": {"weight": 2, "sent": server.methods["GET"], "ok": server.methods["GET"], "failed": 0},
        "POST /documents": {"weight": 1, "sent": server.methods["POST"], "ok": server.methods["POST"], "failed": 0},
    }
    # Tick n takes the cycle's n-th request: two GETs for every POST, whatever the run's length.
    assert server.methods["POST"] == r.sent // 3 + (1 if r.sent % 3 == 2 else 0)


def test_a_failed_request_says_which_of_the_mix_it_was(server: Server) -> None:
    mix = (loadgen.Request("GET", "/a"), loadgen.Request("POST", "/b", body=b"{}"))
    server.status = 503
    with loadgen.LoadGenerator("127.0.0.1", server.port, "/", 40, requests=mix) as load:
        time.sleep(0.5)
    r = load.report
    assert {f.what for f in r.failures} == {"GET /a: HTTP 503", "POST /b: HTTP 503"}
    assert all(t.failed == t.sent > 0 for t in r.mix.values())


def test_a_mix_is_checked_before_any_request(server: Server) -> None:
    for mix, message in [
        ((loadgen.Request("GET", "x"),), "does not start with '/'"),
        ((loadgen.Request("GET", "/", weight=0),), "weight 0"),
        ((loadgen.Request("GET", "/"), loadgen.Request("GET", "/")), "one method and path twice"),
        ((loadgen.Request("POST", "/", body=b"x" * (loadgen.MAX_BODY + 1)),), "bytes is over"),
    ]:
        with pytest.raises(InputError, match=message):
            loadgen.LoadGenerator("127.0.0.1", server.port, "/", 10, requests=mix)
    assert server.methods == {}


def test_every_failure_is_kept_with_its_time(server: Server) -> None:
    load = loadgen.LoadGenerator("127.0.0.1", server.port, "/", 50).start()
    time.sleep(0.6)
    server.status = 503
    broke = load.elapsed()
    time.sleep(0.6)
    server.status = 200
    healed = load.elapsed()
    time.sleep(0.6)
    r = load.stop()
    assert len(r.failures) == server.answered[503] > 0
    assert {f.what for f in r.failures} == {"GET /: HTTP 503"}
    # A failure's time is when its request was sent: inside the window, give or take the requests
    # in flight when the server changed (a few ms; 0.3 s of slack for a busy machine).
    assert all(broke - 0.3 <= f.at <= healed + 0.3 for f in r.failures), [f.at for f in r.failures]
    assert r.ok == server.answered[200] and r.ok + len(r.failures) == r.sent
    assert r.failures_between(0, broke - 0.3) == [] and r.failures_between(healed + 0.3, math.inf) == []


def test_a_server_that_goes_away_is_counted_as_refused(server: Server) -> None:
    load = loadgen.LoadGenerator("127.0.0.1", server.port, "/", 50).start()
    time.sleep(0.5)
    server.shutdown()
    server.server_close()  # the port now refuses connections
    gone = load.elapsed()
    time.sleep(0.5)
    r = load.stop()
    refused = [f for f in r.failures if "ConnectionRefusedError" in f.what]
    assert len(refused) >= 15, r.failures[:5]
    assert all(f.at >= gone - 0.3 for f in r.failures)
    assert r.ok == server.answered[200]


def test_requests_in_flight_are_bounded(server: Server) -> None:
    """A server that stops keeping up gets no more than the ceiling; the ticks over it are failures."""
    server.delay = 0.5
    with loadgen.LoadGenerator("127.0.0.1", server.port, "/", 40, max_in_flight=3) as load:
        time.sleep(1.0)
    r = load.report
    assert server.max_in_flight <= 3
    not_sent = [f for f in r.failures if f.what.startswith("GET /: not sent: 3 requests in flight")]
    assert len(not_sent) >= 20
    assert r.ok == server.answered[200] and r.ok + len(r.failures) == r.sent


@settings(max_examples=examples(200), deadline=None)
@given(st.ip_addresses())
def test_only_loopback_addresses_are_loaded(address: object) -> None:
    host = str(address)
    if getattr(address, "is_loopback", False):
        loadgen.check_loopback(host)
    else:
        with pytest.raises(InputError, match="loopback addresses only"):
            loadgen.check_loopback(host)


@pytest.mark.parametrize("host", ["example.com", "0.0.0.0", "10.0.0.1", "", "127.0.0.1.nip.io"])  # noqa: S104
def test_names_and_wildcards_are_refused(host: str) -> None:
    with pytest.raises(InputError):
        loadgen.LoadGenerator(host, 80, "/", 1)


@settings(max_examples=examples(100), deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_the_rate_is_bounded(rate: float) -> None:
    if 0 < rate <= loadgen.MAX_RATE:
        assert loadgen.LoadGenerator("127.0.0.1", 8080, "/", rate).rate == rate
    else:
        with pytest.raises(InputError, match="outside"):
            loadgen.LoadGenerator("127.0.0.1", 8080, "/", rate)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.floats(min_value=0.1, max_value=loadgen.MAX_RATE),
    st.integers(min_value=0, max_value=5000),
    st.lists(st.floats(min_value=0, max_value=100), max_size=6),
)
def test_windows_partition_the_requests(rate: float, sent: int, cuts: list[float]) -> None:
    """However a run is cut into deploy windows, their request counts add up to what was sent."""
    r = loadgen.LoadReport("127.0.0.1", 1, "/", rate, started="", sent=sent)
    edges = [0.0, *sorted(cuts), math.inf]
    counts = [r.requests_between(a, b) for a, b in itertools.pairwise(edges)]
    assert all(c >= 0 for c in counts)
    assert sum(counts) == sent


def _deploy_result(steps: list[tuple[str, Outcome, float]], total: float) -> dict[str, object]:
    """A deploy's JSON result as the common renderer writes it (the `--format json` contract)."""
    checks = tuple(Check(name, outcome, "", seconds, "api", "deploy") for name, outcome, seconds in steps)
    r = Result("deploy", "staging r2", checks=checks, timings={"deploy": total}, data={"release": {"project": "p"}})
    return json.loads(json.dumps(render.to_json(r)))  # type: ignore[no-any-return]


def test_verdict_to_rollback_is_read_from_the_deploys_steps() -> None:
    result = _deploy_result(
        [("signature", Outcome.PASS, 0.0), ("job ran", Outcome.PASS, 4.0), ("rolled", Outcome.FAIL, 20.0),
         ("restored", Outcome.PASS, 3.5)],
        total=28.0,
    )  # fmt: skip
    assert bench.verdict_to_rollback_s(result) == 4.0  # 28 - (4 + 20)
    good = _deploy_result([("rolled", Outcome.PASS, 9.0)], total=9.5)
    assert bench.verdict_to_rollback_s(good) is None
    assert bench.verdict_to_rollback_s({}) is None
    assert bench.verdict_to_rollback_s({"timings": {"deploy": 28.0, "rollback": 1.234}, "checks": []}) == 1.23
    assert bench.verdict_to_rollback_s({"timings": {"deploy": "x"}, "checks": []}) is None


def test_the_deployed_project_is_read_from_the_deploys_json() -> None:
    assert bench.project_of(_deploy_result([("rolled", Outcome.PASS, 9.0)], total=9.5)) == "p"
    with pytest.raises(ToolNotFound, match="did not say which Compose project"):
        bench.project_of({"stage": "deploy"})


def test_deploy_json_is_found_after_other_output() -> None:
    assert bench.deploy_json('note: waited\n{"stage": "deploy", "timings": {}}') == {"stage": "deploy", "timings": {}}
    assert bench.deploy_json("no json here") == {}
    assert bench.deploy_json("{broken") == {}
    assert bench.deploy_json("[1, 2]") == {}


def test_report_puts_each_failure_in_its_deploy(server: Server, tmp_path: Path) -> None:
    """Real load against a server that fails during the "bad" window: the report blames that deploy only."""
    load = loadgen.LoadGenerator("127.0.0.1", server.port, "/ready", 50).start()
    time.sleep(0.4)
    good_t0 = load.elapsed()
    time.sleep(0.6)
    bad_t0 = load.elapsed()
    # The server answers when a request arrives, its failure is dated when it was sent: let the
    # requests sent before the bad window finish before the server turns bad.
    time.sleep(0.3)
    server.status = 502
    time.sleep(0.4)
    server.status = 200
    time.sleep(0.4)
    bad_t1 = load.elapsed()
    time.sleep(0.3)
    report = load.stop()
    bad_result = _deploy_result([("rolled", Outcome.FAIL, 0.5), ("restored", Outcome.PASS, 0.2)], total=0.8)
    runs = [
        bench.DeployRun("good", {"API_WORKERS": "2"}, good_t0, good_t0 + 0.5, 0, _deploy_result([], 0.5), ""),
        bench.DeployRun("bad", {"API_WORKERS": "x"}, bad_t0, bad_t1, 1, bad_result, ""),
    ]
    spec = config.DeployBench("proxy", 8080, "/ready", 50, 0.3, {"API_WORKERS": "2"}, {"API_WORKERS": "x"})
    res = bench.deploy_results("staging", spec, report, runs, out=tmp_path)
    results = bench.bench_json(res)
    phases = {str(p["deploy"]): p for p in results["deploys"]}  # type: ignore[union-attr, index]
    assert phases["good"]["failed"] == 0
    assert phases["bad"]["failed"] == server.answered[502] > 0
    assert phases["bad"]["verdict_to_rollback_s"] == 0.3
    assert results["ok"] is False
    missed = [c["check"] for c in results["checks"] if not c["ok"]]  # type: ignore[union-attr, index]
    assert missed == ["failed requests during the bad deploy"]
    # The bad deploy's rollback is judged too: 0.3 s from its gate's verdict, against the target.
    slow = bench.bench_json(
        bench.deploy_results("staging", dataclasses.replace(spec, max_rollback_s=0.2), report, runs, out=tmp_path)
    )
    missed = [c["check"] for c in slow["checks"] if not c["ok"]]  # type: ignore[union-attr, index]
    assert missed == ["failed requests during the bad deploy", "bad deploy: gate verdict to rollback complete"]
    assert not res.passed  # a missed target is a failed run (exit 1), its reports written
    bench.write_deploy(tmp_path, res)
    md = (tmp_path / "deploy.md").read_text()
    assert "| bad | 1 |" in md and "HTTP 502" in md and "MISSED" in md
    written = json.loads((tmp_path / "deploy.json").read_text())
    assert written["load"]["failed"] == server.answered[502]
    assert all(f["what"] == "GET /ready: HTTP 502" for f in written["deploys"][1]["failures"])


def test_deploy_bench_config(tmp_path: Path) -> None:
    base = textwrap.dedent(GOOD) + "\n[bench.deploy]\n"
    cfg = config.load(project(tmp_path, base + 'service = "edge"\nport = 8080\npath = "/"\nbad = { X = "1" }\n'))
    assert cfg.bench.deploy == config.DeployBench("edge", 8080, "/", 20.0, 5.0, {}, {"X": "1"}, 0)
    for extra, message in [
        ('service = "edge"\nport = 8080\npath = "/"\n', r"bench\.deploy\.bad: needs the Compose variables"),
        ('service = "edge"\npath = "/"\nbad = { X = "1" }\n', r"bench\.deploy\.port: is required"),
        ('service = "e"\nport = 1\npath = "x"\nbad = { X = "1" }\n', r"bench\.deploy\.path: 'x' is not a URL path"),
        ('service = "e"\nport = 1\npath = "/"\nrate = 0\nbad = { X = "1" }\n', r"bench\.deploy\.rate"),
        ('service = "e"\nport = 1\npath = "/"\nbad = { X = "1" }\nrat = 2\n', r"bench\.deploy.*rat"),
        (
            'service = "e"\nport = 1\npath = "/"\nbad = { X = "1" }\nmax_rollback_s = 0\n',
            r"bench\.deploy\.max_rollback_s",
        ),
    ]:
        with pytest.raises(ConfigError, match=message):
            config.load(project(tmp_path, base + extra))


def test_deploy_bench_request_mix_config(tmp_path: Path) -> None:
    base = textwrap.dedent(GOOD) + '\n[bench.deploy]\nservice = "edge"\nport = 8080\nbad = { X = "1" }\n'
    mix = (
        '[[bench.deploy.requests]]\npath = "/r"\nweight = 3\n'
        '[[bench.deploy.requests]]\nmethod = "POST"\npath = "/d"\nbody = \'{"a": 1}\'\n'
    )
    spec = config.load(project(tmp_path, base + mix)).bench.deploy
    assert spec is not None and spec.path == "/r"
    assert spec.requests == (
        loadgen.Request("GET", "/r", None, "application/json", 3),
        loadgen.Request("POST", "/d", b'{"a": 1}', "application/json", 1),
    )
    for extra, message in [
        ('path = "/"\n' + mix, r"bench\.deploy\.path: is the load of a single GET"),
        ('[[bench.deploy.requests]]\nmethod = "get"\npath = "/"\n', r"bench\.deploy\.requests\[0\]\.method"),
        ('[[bench.deploy.requests]]\npath = "x"\n', r"bench\.deploy\.requests\[0\]\.path: 'x' is not a URL path"),
        ('[[bench.deploy.requests]]\npath = "/"\nbody = "{}"\n', r"requests\[0\]\.body: a GET request carries no"),
        ('[[bench.deploy.requests]]\npath = "/"\nweight = 0\n', r"requests\[0\]\.weight"),
        (
            '[[bench.deploy.requests]]\npath = "/"\n[[bench.deploy.requests]]\npath = "/"\n',
            r"requests\[1\]: names GET /",
        ),
        ('[[bench.deploy.requests]]\npath = "/"\nverb = "GET"\n', r"requests\[0\].*verb"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config.load(project(tmp_path, base + extra))


def test_the_repository_benchmarks_its_front_door() -> None:
    spec = config.load(ROOT / "pipeline.toml").bench.deploy
    assert spec is not None and spec.service == "proxy" and spec.bad and spec.good
    # Reads and writes that are not safe to send twice, both through the front door during every deploy.
    assert {r.method for r in spec.requests} >= {"GET", "POST"}
    assert all(r.body for r in spec.requests if r.method == "POST")


def test_without_a_deploy_command_the_benchmark_cannot_run() -> None:
    """Exit 2 naming what is missing, never a traceback; once `pipelines deploy` exists, the check lets it run."""
    has_deploy = run_cli_outcome("deploy", "--help", timeout=120).returncode == 0
    if has_deploy:
        bench.require_deploy_command(config.load(ROOT / "pipeline.toml"))
        return
    r = run_cli_outcome("bench", "--deploy", "--env", "staging", timeout=120)
    assert r.returncode == 2, r.stderr
    assert "needs the `pipelines deploy` command" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ToolNotFound):
        bench.require_deploy_command(config.load(ROOT / "pipeline.toml"))


def test_a_closed_port_is_all_failures_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with loadgen.LoadGenerator("127.0.0.1", port, "/", 20) as load:
            time.sleep(0.5)
    r = load.report
    assert r.ok == 0 and len(r.failures) == r.sent >= 8


# ---- the fleet and pipeline benchmarks' helpers


def test_union_counts_overlapping_intervals_once() -> None:
    assert bench.union([]) == 0
    assert bench.union([(0, 1), (0.5, 2), (3, 4)]) == 3
    assert bench.union([(0, 10), (1, 2), (3, 4)]) == 10
    assert bench.union([(5, 6), (0, 1)]) == 2


def test_fleet_config_copies_the_service_and_keeps_the_bases(tmp_path: Path) -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    fleet = bench.fleet_config(cfg, tmp_path, 3, "bench-fleet-t")
    services = fleet.services
    assert [s.name for s in services] == ["bench-fleet-t-1", "bench-fleet-t-2", "bench-fleet-t-3"]
    assert {s.image for s in services} == {s.name for s in services}
    assert {b.name for b in fleet.bases} == {b.name for b in cfg.bases}
    assert fleet.project.lock.parent == tmp_path and fleet.project.artifacts.parent == tmp_path
    if cfg.project.lock.is_file():
        assert json.loads(fleet.project.lock.read_text()) == json.loads(cfg.project.lock.read_text())
    src = cfg.images[cfg.bench.change_service or cfg.services[0].name]
    assert src.context is not None
    contents = []
    for s in services:
        assert s.context is not None and s.dockerfile is not None
        assert s.context.parent == tmp_path and s.dockerfile.is_file()
        assert (s.context / "requirements.txt").read_bytes() == (src.context / "requirements.txt").read_bytes()
        contents.append(b"".join(p.read_bytes() for p in sorted(s.context.rglob("*.py"))))
    # Each copy differs from the others (one source line of its own), so no two images are equal.
    assert len(set(contents)) == 3
    # A second call with more services reuses the contexts already there.
    assert len(bench.fleet_config(cfg, tmp_path, 4, "bench-fleet-t").services) == 4


def test_session_breakdown_of_a_recorded_pipeline_run() -> None:
    data = json.loads((ROOT / "tests" / "data" / "recorded" / "bench" / "pipeline-run.json").read_text())
    lines = [(float(t), str(line)) for t, line in data["lines"]]
    out = bench.session_breakdown(lines, data["records"], data["start"], data["wall"])
    rows = {r["session"]: r for r in out["sessions"]}  # type: ignore[union-attr]
    assert list(rows) == ["build", "scan", "verify", "smoke"]
    assert out["before_first_session_s"] == 0.14
    # Each session's time is its start-up, its tools and what lies between and after them; nothing is lost.
    for r in rows.values():
        assert r["wall_s"] >= r["in_tools_s"] > 0
        assert abs(r["wall_s"] - r["in_tools_s"] - r["outside_s"]) < 0.02
        assert r["outside_s"] >= r["start_up_s"] + r["after_last_tool_s"] - 0.02
    assert rows["smoke"]["up_to_healthy_s"] == 5.9 and "up_to_healthy_s" not in rows["verify"]
    assert rows["smoke"]["by_tool_s"]["docker compose"] > rows["smoke"]["by_tool_s"]["container wait"] > 0
    # The sessions cover the run between nox's first and last session lines.
    assert abs(sum(r["wall_s"] for r in rows.values()) - (31.403 - 0.139)) < 0.05
    assert "| 1 | smoke |" in bench.session_table([out])


def test_up_to_healthy_reads_each_runs_smoke_line_and_misses_a_run_without_one() -> None:
    data = json.loads((ROOT / "tests" / "data" / "recorded" / "bench" / "pipeline-run.json").read_text())
    lines = [(float(t), str(line)) for t, line in data["lines"]]
    run = bench.session_breakdown(lines, data["records"], data["start"], data["wall"])
    assert bench.up_to_healthy([run, run]) == [5.9, 5.9]
    # A run whose smoke printed no figure (it failed before healthy) adds nothing: the check then counts it missing.
    silent = bench.session_breakdown([(t, line) for t, line in lines if "healthy" not in line], [], 0.0, 1.0)
    assert bench.up_to_healthy([run, silent]) == [5.9]
    assert bench.up_to_healthy([]) == []
