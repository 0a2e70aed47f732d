"""The smoke stage: bring an environment's stack up and prove it works end to end.

Probes: every service healthy (one-shot jobs exited 0), API liveness and
readiness, metrics refuse anonymous access and accept the configured
credential, bad input gets a JSON 4xx, a batch dropped into ingestion becomes
searchable through the API within a deadline, a malformed document is rejected
(with its reason) while the worker carries on. The stack is always torn down.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, stack
from .config import Config
from .errors import GateFailed, PipelineError
from .tools import Toolchain

INBOX = "/var/lib/ingestion/inbox"
REJECTS = "/var/lib/ingestion/rejects"


@dataclass(frozen=True)
class Options:
    env: str | None = None
    keep: bool = False
    project: str | None = None
    deadline_s: float = 120.0  # up -> all healthy
    ingest_deadline_s: float = 30.0
    extra_files: tuple[Path, ...] = ()


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Report:
    env: str
    project: str
    started: str
    up_to_healthy_s: float | None = None
    probes: list[Probe] = field(default_factory=list)
    error: str = ""
    run_dir: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.probes) and all(p.ok for p in self.probes)


def http(
    method: str, url: str, *, auth: tuple[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)  # noqa: S310 - loopback URL of our own stack
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


class Prober:
    def __init__(self, st: stack.Stack, opts: Options, rep: Report) -> None:
        self.st = st
        self.opts = opts
        self.rep = rep
        self.base = ""

    def probe(self, name: str, fn: Callable[[], str]) -> bool:
        start = time.monotonic()
        try:
            detail, ok = fn(), True
        except AssertionError as exc:
            detail, ok = str(exc) or "assertion failed", False
        except (OSError, PipelineError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        self.rep.probes.append(Probe(name, ok, detail, round(time.monotonic() - start, 2)))
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}", file=sys.stderr)
        return ok

    def services_healthy(self) -> str:
        states = self.st.ps()
        bad = [s for s in states.values() if not (s.done if self.st.one_shot(s.service) else s.ready)]
        assert not bad, "not healthy: " + ", ".join(f"{s.service}={s.state}/{s.health}" for s in bad)
        return ", ".join(f"{s.service} {'done' if s.done else s.health or s.state}" for s in states.values())

    def liveness(self) -> str:
        status, _, body = http("GET", f"{self.base}/health")
        assert status == 200 and _json(body) == {"status": "ok"}, f"/health -> {status} {body[:200]!r}"
        return "/health 200"

    def readiness(self) -> str:
        status, _, body = http("GET", f"{self.base}/ready")
        assert status == 200, f"/ready -> {status} {body[:200]!r}"
        return "/ready 200 (database answers)"

    def metrics_auth(self) -> str:
        status, headers, _ = http("GET", f"{self.base}/metrics")
        assert status == 401, f"anonymous /metrics -> {status}, expected 401"
        assert "Basic" in headers.get("WWW-Authenticate", headers.get("www-authenticate", "")), "no Basic challenge"
        status, _, _ = http("GET", f"{self.base}/metrics", auth=(self.st.secret("metrics_user"), "wrong"))
        assert status == 401, f"wrong password -> {status}, expected 401"
        status, _, body = http(
            "GET", f"{self.base}/metrics", auth=(self.st.secret("metrics_user"), self.st.secret("metrics_password"))
        )
        assert status == 200 and b"http_requests_total" in body, f"configured credential -> {status}"
        return "anonymous 401, wrong password 401, configured credential 200"

    def bad_input(self) -> str:
        for path, expected in (("/documents?limit=0", 422), ("/search?q=", 422), ("/documents/no-such-doc", 404)):
            status, _, body = http("GET", f"{self.base}{path}")
            data = _json(body)
            assert status == expected and isinstance(data, dict) and "error" in data, (
                f"{path} -> {status} {body[:200]!r}, expected {expected} with a JSON error"
            )
        return "422/404 with JSON error bodies"

    def _drop(self, name: str, lines: list[str]) -> None:
        local = self.st.run_dir / name
        local.write_text("\n".join(lines) + "\n")
        # Copied as its final name; the worker waits for the file to settle.
        self.st.copy_in(local, "ingestion", f"{INBOX}/{name}")

    def _searchable(self, token: str, count: int) -> float:
        start = time.monotonic()
        items: list[Any] = []
        while time.monotonic() - start < self.opts.ingest_deadline_s:
            status, _, body = http("GET", f"{self.base}/search?q={token}&limit=100")
            data = _json(body)
            items = data.get("items", []) if status == 200 and isinstance(data, dict) else []
            if len(items) >= count:
                return round(time.monotonic() - start, 2)
            time.sleep(0.5)
        raise AssertionError(f"{len(items)}/{count} documents searchable after {self.opts.ingest_deadline_s:.0f} s")

    def ingest_to_search(self) -> str:
        token = "smoke" + secrets.token_hex(4)
        docs = [
            json.dumps(
                {"id": f"{token}-{i}", "title": f"Smoke {i}", "body": f"probe document {token} {i}", "tags": ["smoke"]}
            )
            for i in range(5)
        ]
        self._drop(f"{token}.jsonl", docs)
        took = self._searchable(token, 5)
        status, _, body = http("GET", f"{self.base}/documents/{token}-3")
        doc = _json(body)
        assert status == 200 and isinstance(doc, dict) and token in doc.get("body", ""), f"fetch -> {status}"
        return f"5 documents searchable after {took:.1f} s, fetched by id"

    def malformed_rejected(self) -> str:
        token = "reject" + secrets.token_hex(4)
        lines = [
            '{"id": "broken", "body": ',
            json.dumps({"id": f"{token}-nobody", "title": "no body"}),
            json.dumps({"id": f"{token}-ok", "body": f"valid next to broken ones {token}"}),
        ]
        self._drop(f"{token}.jsonl", lines)
        self._searchable(token, 1)
        local = self.st.run_dir / f"{token}.rejects.jsonl"
        assert self.st.copy_out("ingestion", f"{REJECTS}/{token}.rejects.jsonl", local), "no rejects file"
        rejects = [json.loads(x) for x in local.read_text().splitlines() if x.strip()]
        reasons = sorted(r["reason"] for r in rejects)
        assert len(rejects) == 2 and any("not JSON" in r for r in reasons) and any("body" in r for r in reasons), (
            f"rejects: {reasons}"
        )
        # The worker carries on: a later batch is still ingested.
        after = "after" + secrets.token_hex(4)
        self._drop(f"{after}.jsonl", [json.dumps({"body": f"after the rejects {after}"})])
        self._searchable(after, 1)
        state = self.st.ps()["ingestion"]
        assert state.health == "healthy", f"ingestion is {state.health} after rejecting"
        return f"2 rejected with reasons ({'; '.join(reasons)}); worker healthy, next batch ingested"


def run(cfg: Config, opts: Options, tools: Toolchain) -> Report:
    tools.engine_version  # noqa: B018 - a clear message when the engine is down
    tools.compose_version  # noqa: B018
    env = cfg.env(opts.env)
    project = opts.project or stack.project_name("pipelines-smoke", env.name)
    run_dir = cfg.project.artifacts / "smoke" / project
    st = stack.Stack(cfg, env.name, project, run_dir, tools, extra_files=opts.extra_files)
    rep = Report(env.name, project, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), run_dir=str(run_dir))
    print(f"smoke: {env.name} as project {project}", file=sys.stderr)
    prober = Prober(st, opts, rep)
    try:
        with stack.running(st, keep=opts.keep, deadline_s=opts.deadline_s) as healthy_after:
            rep.up_to_healthy_s = healthy_after
            print(f"smoke: all services healthy {healthy_after:.1f} s after up", file=sys.stderr)
            prober.base = "http://" + st.port("api", 8000)
            for name, fn in (
                ("services healthy", prober.services_healthy),
                ("api liveness", prober.liveness),
                ("api readiness", prober.readiness),
                ("metrics auth", prober.metrics_auth),
                ("bad input", prober.bad_input),
                ("ingest to search", prober.ingest_to_search),
                ("malformed rejected", prober.malformed_rejected),
            ):
                prober.probe(name, fn)
            if not rep.ok:
                _evidence(st, rep)
    except GateFailed as exc:
        rep.error = exc.what
        if st.config:
            _evidence(st, rep, exc.seen)
        _write(rep, run_dir)
        raise
    _write(rep, run_dir)
    if not rep.ok:
        failed = [p for p in rep.probes if not p.ok]
        raise GateFailed(
            f"smoke of {env.name}: {len(failed)} probe(s) failed: " + ", ".join(p.name for p in failed),
            hint=f"logs and the report are in {run_dir}",
        )
    return rep


def _evidence(st: stack.Stack, rep: Report, states: str | None = None) -> None:
    """What a person needs on failure: states, the last log lines, full logs on disk."""
    try:
        print("service states:\n" + (states or st.states_table()), file=sys.stderr)
        for service, tail in st.save_logs().items():
            print(f"--- last lines of {service} ---\n{tail}", file=sys.stderr)
        print(f"full logs: {st.run_dir / 'logs'}", file=sys.stderr)
    except PipelineError as exc:
        print(f"could not collect evidence: {exc.what}", file=sys.stderr)


def _write(rep: Report, run_dir: Path) -> None:
    data = {**asdict(rep), "ok": rep.ok}
    report.write_json(run_dir / "smoke.json", data)
    rows = [[p.name, "ok" if p.ok else "FAILED", f"{p.seconds:.1f}s", p.detail] for p in rep.probes]
    head = f"### Smoke `{rep.env}` ({rep.project}): {'passed' if rep.ok else 'FAILED'}" + (
        f", healthy {rep.up_to_healthy_s:.1f} s after up" if rep.up_to_healthy_s is not None else ""
    )
    md = "\n".join(
        [
            head,
            "",
            f"Error: {rep.error}" if rep.error else "",
            report.markdown_table(["probe", "result", "time", "detail"], rows) if rows else "",
            "",
        ]
    )
    (run_dir / "smoke.md").write_text(md)
    report.step_summary(md)
    if rows:
        print(report.terminal_table(["probe", "result", "time", "detail"], rows), file=sys.stderr)
