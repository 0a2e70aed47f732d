"""Real PostgreSQL, real worker: no record can crash or stall the ingestion worker.

Two levels. The property test runs the built ingestion image against a
throwaway container of the project's PostgreSQL image (schema from the API
image's migrate job) and drops one hypothesis-generated batch per example into
its inbox: valid documents, documents PostgreSQL refuses (NUL), arbitrary JSON
values, arbitrary text and bytes, NaN tokens, huge integers, deep nesting,
oversized lines. Every valid document must be stored exactly once with its
content, every other non-blank line must be in the rejects file with a reason,
and the worker must still be running, without an unexpected error, at the end.

The stack test brings the Compose stack up (the way `pipelines smoke` does),
drops a poison batch next to good ones and checks search, rejects and health;
then stops the database while work waits and watches health turn unhealthy
after the stall bound and recover once the database is back; and checks the
network split (the database is unreachable from the API's front network).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import composestack as stack
from pipelines import config
from pipelines.tools import Toolchain
from tests.harness import docker
from tests.test_images import local_ref

FIELDS = ("id", "title", "body", "tags")
# The reference worker's directories: service knowledge lives in the project's tests.
INBOX = "/var/lib/ingestion/inbox"
REJECTS = "/var/lib/ingestion/rejects"
# Above the worker's default (64 KiB), so that a document can be big enough for the
# server itself to refuse it (a tsvector over 1 MB, SQLSTATE 54000).
MAX_BYTES = 1_000_000


# --------------------------------------------------------------------------- a throwaway database + worker


@dataclass
class Rig:
    name: str
    db: str
    worker: str
    state: Path
    password: str

    def sql_json(self, query: str) -> Any:
        r = docker(
            "exec",
            "-e",
            f"PGPASSWORD={self.password}",
            self.db,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "documents",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            query,
        )
        return json.loads(r.stdout)

    def rows(self, batch: str) -> list[dict[str, Any]]:
        cols = "json_build_object('id', id, 'title', title, 'body', body, 'tags', tags)"
        where = f"batch = '{batch}'"  # batch names are the test's own: letters, digits, '-', '.'
        rows: list[dict[str, Any]] = self.sql_json(
            f"SELECT coalesce(json_agg({cols}), '[]') FROM documents WHERE {where}"  # noqa: S608
        )
        return rows

    def drop(self, name: str, data: bytes) -> None:
        part = self.state / "inbox" / f".{name}.part"
        part.write_bytes(data)
        part.chmod(0o666)
        os.replace(part, self.state / "inbox" / name)  # appears whole: the worker may take it at once

    def wait_done(self, name: str, deadline: float = 30) -> float:
        start = time.monotonic()
        polls = 0
        while not (self.state / "done" / name).exists():
            polls += 1
            gone = polls % 50 == 0 and not self.inspect()["State"]["Running"]
            if gone or time.monotonic() - start > deadline:
                logs = docker("logs", "--tail", "30", self.worker, check=False)
                why = "the worker exited" if gone else f"not within {deadline:.0f} s"
                raise AssertionError(f"{name} not processed: {why}\n{logs.stdout}{logs.stderr}")
            time.sleep(0.02)
        return time.monotonic() - start

    def rejects(self, name: str) -> list[dict[str, Any]]:
        path = self.state / "rejects" / f"{Path(name).stem}.rejects.jsonl"
        if not path.exists():
            return []
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

    def inspect(self) -> dict[str, Any]:
        return dict(json.loads(docker("inspect", self.worker).stdout)[0])


@pytest.fixture(scope="module")
def rig(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    name = f"pt-worker-{os.getpid()}"
    root = tmp_path_factory.mktemp("worker-rig")
    password = os.urandom(12).hex()
    secret = root / "db_password"
    secret.write_text(password + "\n")
    secret.chmod(0o644)
    state = root / "state"
    for d in ("inbox", "done", "rejects"):
        (state / d).mkdir(parents=True)
        (state / d).chmod(0o777)  # the worker runs as 65532
    state.chmod(0o777)
    images = {n: local_ref(built["images"][n]) for n in ("postgres", "api", "ingestion")}
    db, worker = f"{name}-db", f"{name}-ingestion"
    env = [
        "-e",
        "PGHOST=db",
        "-e",
        "PGUSER=app",
        "-e",
        "PGDATABASE=documents",
        "-e",
        "PGPASSWORD_FILE=/run/secrets/db_password",
    ]
    secret_mount = ["-v", f"{secret}:/run/secrets/db_password:ro"]
    hardening = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"]
    # An internal network: the rig needs no route anywhere.
    docker("network", "create", "--internal", name)
    try:
        docker(
            "run",
            "--detach",
            "--name",
            db,
            "--network",
            name,
            "--network-alias",
            "db",
            *hardening,
            "-e",
            "POSTGRES_DB=documents",
            "-e",
            "POSTGRES_USER=app",
            "-e",
            "POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
            *secret_mount,
            images["postgres"],
        )
        deadline = time.monotonic() + 60
        while docker("exec", db, "pg_isready", "-h", "127.0.0.1", "-q", check=False).returncode != 0:
            assert time.monotonic() < deadline, docker("logs", db, check=False).stderr[-3000:]
            time.sleep(0.5)
        docker(
            "run",
            "--rm",
            "--network",
            name,
            *hardening,
            *env,
            *secret_mount,
            "--entrypoint",
            "/opt/venv/bin/python",
            images["api"],
            "-m",
            "api.migrate",
        )
        docker(
            "run",
            "--detach",
            "--name",
            worker,
            "--network",
            name,
            *hardening,
            "--read-only",
            "--tmpfs",
            "/tmp:size=16m",
            *env,
            *secret_mount,
            "-e",
            "INGEST_POLL_SECONDS=0.05",
            "-e",
            "INGEST_SETTLE_SECONDS=0",  # batches appear by rename, whole
            "-e",
            "INGEST_CHUNK=8",  # small chunks: poison and good records share chunks
            "-e",
            f"INGEST_MAX_DOCUMENT_BYTES={MAX_BYTES}",
            "-v",
            f"{state}:/var/lib/ingestion",
            images["ingestion"],
        )
        yield Rig(name, db, worker, state, password)
    finally:
        docker("rm", "-f", "-v", worker, db, check=False)
        docker("network", "rm", name, check=False)


# --------------------------------------------------------------------------- what a batch is made of

SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)  # lone surrogates and NUL included
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


@dataclass(frozen=True)
class Line:
    kind: str  # good | poison | junk | blank
    data: bytes
    doc: dict[str, Any] | None = None  # what must be stored, for good lines


def _dumps(doc: dict[str, Any], ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def good(draw: st.DrawFn, key: str) -> Line:
    doc: dict[str, Any] = {"body": draw(SAFE_TEXT.filter(lambda t: t.strip() != "")) + f" {key}"}
    if draw(st.booleans()):
        doc["id"] = key
    if draw(st.booleans()):
        doc["title"] = draw(SAFE_TEXT)
    if draw(st.booleans()):
        doc["tags"] = draw(st.lists(SAFE_TEXT.filter(bool), max_size=4))
    return Line("good", _dumps(doc, draw(st.booleans())), doc)


@st.composite
def poison(draw: st.DrawFn, key: str) -> Line:
    """Valid JSON and a valid document shape, but PostgreSQL text cannot hold NUL."""
    doc: dict[str, Any] = {"id": key, "body": f"poison {key}"}
    where = draw(st.sampled_from(["body", "title", "tags", "id"]))
    nul = draw(SAFE_TEXT) + "\x00" + draw(SAFE_TEXT)
    if where == "tags":
        doc["tags"] = ["ok", nul]
    elif where == "id":
        doc["id"] = key + nul
    else:
        doc[where] = doc.get(where, "") + nul
    return Line("poison", _dumps(doc, draw(st.booleans())), doc)


def _is_blank(data: bytes) -> bool:
    return not data.rstrip(b"\r").strip()


JUNK = st.one_of(
    # Any JSON value that is not an object.
    JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(lambda v: _dumps(v, False)),
    # Objects with a field a document does not have.
    st.dictionaries(ANY_TEXT.filter(lambda k: k not in FIELDS), JSON_VALUES, min_size=1, max_size=3).map(
        lambda d: _dumps({**d, "body": "x"}, True)
    ),
    # Document fields of the wrong type or empty.
    st.builds(
        lambda body, title: _dumps({"body": body, "title": title}, False),
        JSON_VALUES.filter(lambda v: not (isinstance(v, str) and v.strip())),
        JSON_VALUES,
    ),
    # Strings JSON can spell but Unicode cannot hold.
    st.integers(0xD800, 0xDFFF).map(lambda c: b'{"body": "half \\u%04x pair"}' % c),
    # Tokens Python's json accepts and JSON does not.
    st.sampled_from([b'{"body": NaN}', b'{"body": "b", "title": Infinity}', b"-Infinity"]),
    # Numbers and nesting beyond what Python's json holds.
    st.integers(4301, 20000).map(lambda n: b'{"body": "b", "id": ' + b"7" * n + b"}"),
    st.integers(2000, 30000).map(lambda n: b"[" * n + b"]" * n),
    # Lines longer than a document may be.
    st.integers(MAX_BYTES + 1, MAX_BYTES + 5000).map(lambda n: b'{"body": "' + b"y" * n + b'"}'),
    # Text that cannot open a JSON object, and bytes that are not UTF-8.
    ANY_TEXT.filter(lambda t: not t.lstrip().startswith("{")).map(
        lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")
    ),
    st.tuples(st.binary(max_size=60), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"])).map(
        lambda t: (t[0] + t[1] + t[0]).replace(b"\n", b" ")
    ),
).filter(lambda b: not _is_blank(b))


@st.composite
def batches(draw: st.DrawFn, prefix: str) -> list[Line]:
    lines: list[Line] = []
    for i in range(draw(st.integers(1, 30))):
        key = f"{prefix}-{i}"
        kind = draw(st.sampled_from(["good", "good", "good", "poison", "junk", "junk", "blank", "repeat"]))
        if kind == "good":
            lines.append(draw(good(key)))
        elif kind == "poison":
            lines.append(draw(poison(key)))
        elif kind == "junk":
            lines.append(Line("junk", draw(JUNK)))
        elif kind == "blank":
            lines.append(Line("blank", draw(st.sampled_from([b"", b"   ", b"\t", b"\r"]))))
        elif any(x.kind == "good" for x in lines):
            # The same document again, as sent twice: stored once, not rejected.
            lines.append(draw(st.sampled_from([x for x in lines if x.kind == "good"])))
    return lines


COUNTER = itertools.count()
THROWN: list[int] = []  # records per example, for the figures in the summary


@settings(
    max_examples=int(os.environ.get("INGEST_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(data=st.data())
def test_every_valid_document_once_every_other_line_rejected(rig: Rig, data: st.DataObject) -> None:
    n = next(COUNTER)
    prefix = f"p{os.getpid()}x{n}"
    lines = data.draw(batches(prefix))
    name = f"{prefix}.jsonl"
    rig.drop(name, b"\n".join(x.data for x in lines) + b"\n")
    rig.wait_done(name)
    THROWN.append(len(lines))

    # Expected: the first occurrence of each good document, every poison and junk line.
    stored: dict[str, dict[str, Any]] = {}
    must_reject: set[int] = set()
    for number, line in enumerate(lines, 1):
        if line.kind == "good" and line.doc is not None:
            stored.setdefault(line.doc["body"], line.doc)
        elif line.kind in ("poison", "junk"):
            must_reject.add(number)

    rows = rig.rows(name)
    bodies = [r["body"] for r in rows]
    assert sorted(bodies) == sorted(stored), "stored documents differ from the valid ones"
    for r in rows:
        want = stored[r["body"]]
        assert r["id"] == want.get("id", r["id"]) and r["id"]
        assert (r["title"], r["tags"]) == (want.get("title", ""), want.get("tags", []))

    rejects = rig.rejects(name)
    numbers = [r["line"] for r in rejects]
    assert len(numbers) == len(set(numbers)), "a line rejected twice"
    assert set(numbers) == must_reject, f"rejected {sorted(numbers)}, expected {sorted(must_reject)}"
    for r in rejects:
        assert r["reason"] and r["batch"] == name
        if lines[r["line"] - 1].kind == "poison":
            assert "database refused it" in r["reason"] and "NUL" in r["reason"], r


def test_a_refused_record_is_isolated_quickly_and_server_side_errors_count(rig: Rig) -> None:
    """One NUL record among 2,000 good ones costs one isolated chunk; SQLSTATE 54 (too big for a
    tsvector, raised by the server, not the driver) is a record's fault as well."""
    key = f"iso{os.getpid()}"
    good = [json.dumps({"id": f"{key}-{i}", "body": f"isolation {key} {i}"}) for i in range(2000)]
    clean = f"{key}-clean.jsonl"
    start = time.monotonic()
    rig.drop(clean, ("\n".join(good) + "\n").encode())
    rig.wait_done(clean)
    clean_s = time.monotonic() - start

    poisoned = [json.dumps({"id": f"{key}-p{i}", "body": f"isolation {key} p{i}"}) for i in range(2000)]
    poisoned[1234] = json.dumps({"id": f"{key}-nul", "body": "a\u0000b"})
    name = f"{key}-poison.jsonl"
    start = time.monotonic()
    rig.drop(name, ("\n".join(poisoned) + "\n").encode())
    rig.wait_done(name)
    poison_s = time.monotonic() - start
    assert len(rig.rows(name)) == 1999
    assert [(r["line"], "NUL" in r["reason"]) for r in rig.rejects(name)] == [(1235, True)]
    print(f"\n2,000 clean records: {clean_s:.2f} s; with one poison record: {poison_s:.2f} s")

    # 80,000 distinct words make a 1.1 MB tsvector: the server refuses the generated
    # column with SQLSTATE 54000 (not the driver, as for NUL); that too is the record's fault.
    words = " ".join(f"w{i:07d}x" for i in range(80_000))
    big = json.dumps({"id": f"{key}-big", "body": words})
    assert len(big) < MAX_BYTES
    name = f"{key}-big.jsonl"
    after = json.dumps({"id": f"{key}-after", "body": "after big"})
    rig.drop(name, "\n".join([after.replace("after", "before"), big, after, ""]).encode())
    rig.wait_done(name)
    assert {r["id"] for r in rig.rows(name)} == {f"{key}-before", f"{key}-after"}
    rejects = rig.rejects(name)
    assert [r["line"] for r in rejects] == [2]
    assert "string is too long for tsvector" in rejects[0]["reason"] and "SQLSTATE 54000" in rejects[0]["reason"]


def test_worker_outlived_the_property_test(rig: Rig) -> None:
    """Runs after the property test (file order): the same container, never restarted, no slip."""
    info = rig.inspect()
    assert info["State"]["Running"] and info["RestartCount"] == 0, info["State"]
    logs = docker("logs", rig.worker, check=False)
    text = logs.stdout + logs.stderr
    assert "Traceback" not in text and "unexpected error" not in text, text[-3000:]
    health = info["State"].get("Health", {}).get("Status")
    assert health in ("healthy", "starting"), info["State"].get("Health")
    print(f"\nhypothesis threw {sum(THROWN)} records in {len(THROWN)} batches at the worker")


# --------------------------------------------------------------------------- the Compose stack

STALL_S = 6  # INGEST_STALL_SECONDS in the stack test; the default is 60


def _search(base: str, token: str) -> int:
    status, _, body = stack.http("GET", f"{base}/search?q={token}&limit=100")
    return len(json.loads(body)["items"]) if status == 200 else -1


def _total(base: str) -> int:
    status, _, body = stack.http("GET", f"{base}/documents?limit=1")
    return int(json.loads(body)["total"]) if status == 200 else -1


def _wait(what: str, probe: Any, deadline: float) -> float:
    start = time.monotonic()
    while not probe():
        assert time.monotonic() - start < deadline, f"{what}: not within {deadline:.0f} s"
        time.sleep(0.25)
    return time.monotonic() - start


def _reach_db(image: str, network: str) -> int:
    """pg_isready against `db` from a fresh container on ``network``: 0 when it answers."""
    r = docker(
        "run",
        "--rm",
        "--network",
        network,
        "--cap-drop",
        "ALL",
        "--entrypoint",
        "/usr/lib/postgresql/15/bin/pg_isready",
        image,
        "-h",
        "db",
        "-t",
        "3",
        check=False,
        timeout=60,
    )
    return r.returncode


def test_stack_poison_batch_stall_and_network_split(built: dict[str, Any], cfg: config.Config, tmp_path: Path) -> None:
    project = f"pt-poison-{os.getpid()}"
    overlay = tmp_path / "stall.yaml"
    overlay.write_text(f'services:\n  ingestion:\n    environment:\n      INGEST_STALL_SECONDS: "{STALL_S}"\n')
    st_ = stack.Stack(
        cfg, "dev", project, cfg.project.artifacts / "smoke" / project, Toolchain(), extra_files=(overlay,)
    )
    figures: dict[str, float] = {}
    try:
        with stack.running(st_, keep=False, deadline_s=180):
            services = st_.config["services"]
            base = "http://" + st_.port("api", 8000)

            # ---- network split: only the API publishes, on loopback; the database is internal.
            published = {n: s.get("ports") for n, s in services.items() if s.get("ports")}
            assert set(published) == {"api"}, published
            assert all(p.get("host_ip") == "127.0.0.1" for p in published["api"]), published
            nets = {k: v["name"] for k, v in st_.config["networks"].items()}
            data = json.loads(docker("network", "inspect", nets["data"]).stdout)[0]
            front = json.loads(docker("network", "inspect", nets["front"]).stdout)[0]
            assert data["Internal"] is True and front["Internal"] is False
            members = {
                net: {c["Name"].removeprefix(f"{project}-").rsplit("-", 1)[0] for c in info["Containers"].values()}
                for net, info in (("data", data), ("front", front))
            }
            assert members == {"data": {"db", "api", "ingestion"}, "front": {"api"}}, members
            db_image = services["db"]["image"]
            assert _reach_db(db_image, nets["data"]) == 0, "the database does not answer on its own network"
            assert _reach_db(db_image, nets["front"]) != 0, "the database is reachable from the front network"

            # ---- a poison batch: the good documents are stored, the rest rejected, the worker healthy.
            token = f"poison{os.getpid()}"
            good = [json.dumps({"id": f"{token}-{i}", "body": f"good {token} {i}"}) for i in range(40)]
            bad = [
                json.dumps({"id": f"{token}-nul", "body": f"NUL {token} \u0000 inside"}).encode(),
                json.dumps({"id": f"{token}-tagnul", "body": f"tag {token}", "tags": ["a\u0000"]}).encode(),
                b"[1, 2, 3]",
                b'"just a string"',
                b"42",
                b"null",
                b'{"body": NaN}',
                b'{"body": "\\ud800"}',
                b'{"body": "caf\xe9 latin-1"}',
                b"\xff\xfe\x00binary",
                b"[" * 20000 + b"]" * 20000,
                b'{"body": "b", "id": ' + b"9" * 6000 + b"}",
                b'{"body": "' + b"z" * 70000 + b'"}',
            ]
            lines = [x.encode() for x in good[:20]] + bad + [x.encode() for x in good[20:]]
            batch = tmp_path / f"{token}.jsonl"
            batch.write_bytes(b"\n".join(lines) + b"\n")
            st_.copy_in(batch, "ingestion", f"{INBOX}/{batch.name}")
            figures["poison batch searchable s"] = _wait(
                "good documents searchable", lambda: _search(base, token) == 40, 60
            )
            assert _search(base, token) == 40
            local = tmp_path / "rejects.jsonl"
            assert st_.copy_out("ingestion", f"{REJECTS}/{token}.rejects.jsonl", local)
            rejects = {r["line"]: r["reason"] for r in map(json.loads, local.read_text().splitlines())}
            assert sorted(rejects) == list(range(21, 21 + len(bad))), rejects
            assert "NUL" in rejects[21] and "NUL" in rejects[22], rejects
            assert st_.ps()["ingestion"].health == "healthy"
            status, _, _ = stack.http("GET", f"{base}/documents/{token}-nul")
            assert status == 404
            logs = st_.compose("logs", "--no-color", "ingestion").stdout
            isolated = re.search(rf"{token}\.jsonl: isolated 2 refused of (\d+) in ([0-9.]+) s", logs)
            assert isolated and int(isolated.group(1)) == 42, logs[-2000:]
            figures[f"isolate 2 NUL records in a chunk of {isolated.group(1)} s"] = float(isolated.group(2))
            # A full chunk (the default 200) with one NUL record among 2,000.
            big = f"chunk{os.getpid()}"
            docs = [json.dumps({"id": f"{big}-{i}", "body": f"chunk {big} {i}"}) for i in range(2000)]
            docs[777] = json.dumps({"id": f"{big}-nul", "body": f"chunk {big} \u0000"})
            batch = tmp_path / f"{big}.jsonl"
            batch.write_text("\n".join(docs) + "\n")
            before = _total(base)
            st_.copy_in(batch, "ingestion", f"{INBOX}/{batch.name}")
            figures["1,999 of 2,000 stored s"] = _wait("chunk batch", lambda: _total(base) == before + 1999, 60)
            logs = st_.compose("logs", "--no-color", "ingestion").stdout
            isolated = re.search(rf"{big}\.jsonl: isolated 1 refused of 200 in ([0-9.]+) s", logs)
            assert isolated, logs[-2000:]
            figures["isolate 1 NUL record in a chunk of 200 s"] = float(isolated.group(1))

            # ---- the database goes away: no work waiting is no stall ...
            st_.compose("stop", "db")
            time.sleep(STALL_S + 6)
            assert st_.ps()["ingestion"].health == "healthy", "idle worker turned unhealthy without work waiting"
            # ... work waiting without progress turns the worker unhealthy after the bound ...
            stalled = f"stall{os.getpid()}"
            batch = tmp_path / f"{stalled}.jsonl"
            batch.write_text("".join(json.dumps({"body": f"waiting {stalled} {i}"}) + "\n" for i in range(5)))
            st_.copy_in(batch, "ingestion", f"{INBOX}/{batch.name}")
            figures["to unhealthy s"] = _wait(
                "ingestion unhealthy", lambda: st_.ps()["ingestion"].health == "unhealthy", 90
            )
            assert figures["to unhealthy s"] >= STALL_S
            # ... and recovers once the database is back: the batch is stored, health returns.
            st_.compose("start", "db")
            start = time.monotonic()
            _wait("stalled batch stored", lambda: _search(base, stalled) == 5, 120)
            figures["db back to batch stored s"] = time.monotonic() - start
            _wait("ingestion healthy again", lambda: st_.ps()["ingestion"].health == "healthy", 60)
            figures["db back to healthy s"] = time.monotonic() - start
            info = json.loads(docker("inspect", f"{project}-ingestion-1").stdout)[0]
            assert info["State"]["Running"] and info["RestartCount"] == 0
            logs = st_.compose("logs", "--no-color", "ingestion").stdout
            assert "Traceback" not in logs and "unexpected error" not in logs, logs[-3000:]
            print("\n" + ", ".join(f"{k}: {v:.3f}" for k, v in figures.items()))
    finally:
        left = stack.leftovers(project)
        assert not any(left.values()), left
