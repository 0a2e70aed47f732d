#!/usr/bin/env python3
"""Prove the front door: no failed request while the API is replaced behind it.

Brings up the staging stack (compose.yaml + compose.prod.yaml +
compose.staging.yaml) under a unique project name, puts a constant load on the
proxy's published loopback port, and does what a rolling deploy does:

  good: `up -d --no-deps --no-recreate --scale api=2 api` with another image,
        wait until the new container is healthy, `docker stop` the old one, rm.
  bad:  the same with a container that never turns healthy (its database host
        does not exist), removed while the old one keeps serving.

Prints every failed request and, per phase, how many requests each upstream
slot answered (from HAProxy's log) and how many were retried. Removes the
project, its volumes and its secrets afterwards.

    scripts/proxy_rollover.py --old IMAGE --new IMAGE --proxy IMAGE [--rate 50]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Readiness inside an api container: the bad container's healthcheck, and the "ready" gate.
READY_PROBE = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/ready', timeout=2)"
COMPOSE = ["compose/compose.yaml", "compose/compose.prod.yaml", "compose/compose.staging.yaml"]


class Load:
    """N requests a second on fresh connections, each result kept with its time."""

    def __init__(self, port: int, path: str, rate: float) -> None:
        self.port, self.path, self.rate = port, path, rate
        self.results: list[tuple[float, str]] = []  # (monotonic time, "200" or an error)
        self.latency: list[tuple[float, float]] = []  # (monotonic time, seconds to the answer)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def one(self, at: float) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", self.path)
            r = conn.getresponse()
            r.read()
            conn.close()
            outcome = str(r.status)
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.results.append((at, outcome))
            self.latency.append((at, time.monotonic() - at))

    def run(self) -> None:
        n = 0
        start = time.monotonic()
        while not self.stop.is_set():
            at = start + n / self.rate
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = threading.Thread(target=self.one, args=(time.monotonic(),), daemon=True)
            t.start()
            self.threads.append(t)
            n += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def window(self, t0: float, t1: float) -> tuple[int, list[tuple[float, str]]]:
        with self.lock:
            inside = [r for r in self.results if t0 <= r[0] < t1]
        return len(inside), [r for r in inside if r[1] != "200"]


def sh(*argv: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    if check and r.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def containers(project: str, service: str) -> list[str]:
    out = sh(
        "docker", "ps", "-a", "-q", "--no-trunc",
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", f"label=com.docker.compose.service={service}",
    )  # fmt: skip
    return out.split()


def health(cid: str) -> str:
    return sh(
        "docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", cid, check=False
    ).strip()


def wait_health(cid: str, deadline: float) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        h = health(cid)
        if h in ("healthy", "unhealthy"):
            return h
        time.sleep(0.5)
    return health(cid)


def wait_ready(cid: str, deadline: float) -> str:
    """Readiness, asked inside the container (the api image has Python): what the proxy checks."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        r = subprocess.run(
            ["docker", "exec", cid, "/opt/venv/bin/python", "-c", READY_PROBE],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if r.returncode == 0:
            return "healthy"
        time.sleep(0.5)
    return "unhealthy (never ready)"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="api image the stack starts with")
    ap.add_argument("--new", required=True, help="api image the good deploy switches to")
    ap.add_argument("--proxy", required=True, help="proxy image")
    ap.add_argument("--rate", type=float, default=50.0, help="requests a second (default 50)")
    ap.add_argument("--path", default="/ready", help="what the load requests (default /ready: touches the database)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of load before and after each step")
    ap.add_argument(
        "--gap", type=float, default=0.0, help="seconds between the new container's health and stopping the old one"
    )
    ap.add_argument("--unready", action="store_true", help="also switch to a container that is live but not ready")
    ap.add_argument(
        "--gate",
        choices=("health", "ready"),
        default="health",
        help="what the old container is stopped after: the engine's health (liveness) or readiness as well",
    )
    args = ap.parse_args()
    if not 0 < args.rate <= 200:
        sys.exit("--rate must be in (0, 200]: the load stays bounded")

    project = f"pltest-proxy-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{project}-"))
    for name in ("db_password", "metrics_user", "metrics_password"):
        (tmp / name).write_text(os.urandom(12).hex())
    override = tmp / "override.yaml"
    override.write_text(
        json.dumps(
            {
                "services": {
                    "api": {"image": "${ROLLOVER_API_IMAGE}", "stop_grace_period": "10s"},
                    "migrate": {"image": args.old},
                    "proxy": {"image": args.proxy},
                }
            }
        )
    )
    env = {
        **os.environ,
        "SECRETS_DIR": str(tmp),
        "API_PORT": "",
        "API_BIND": "127.0.0.1",
        "IMAGE_TAG": "staging",
        "ROLLOVER_API_IMAGE": args.old,
    }
    base = ["docker", "compose", "-p", project, "--project-directory", str(ROOT / "compose")]
    for f in COMPOSE:
        base += ["-f", str(ROOT / f)]
    base += ["-f", str(override)]
    load: Load | None = None
    phases: list[dict[str, object]] = []
    try:
        log(f"up {project}")
        sh(*base, "up", "-d", "--wait", "--wait-timeout", "180", env=env)
        port = int(sh(*base, "port", "proxy", "8080", env=env).strip().rpartition(":")[2])
        log(f"proxy on 127.0.0.1:{port}; load {args.rate:g}/s on {args.path}")
        load = Load(port, args.path, args.rate)
        threading.Thread(target=load.run, daemon=True).start()
        time.sleep(args.settle)

        def roll(name: str, image: str, extra: dict[str, object] | None = None) -> None:
            """What the deploy engine does: new beside old, wait for health, stop and remove the old one."""
            t0 = time.monotonic()
            (old,) = containers(project, "api")
            files = list(base)
            if extra:
                (tmp / f"{name}.yaml").write_text(json.dumps({"services": {"api": extra}}))
                files += ["-f", str(tmp / f"{name}.yaml")]
            sh(*files, "up", "-d", "--no-deps", "--no-recreate", "--scale", "api=2", "api",
               env={**env, "ROLLOVER_API_IMAGE": image})  # fmt: skip
            (new,) = [c for c in containers(project, "api") if c != old]
            verdict = wait_health(new, 60)
            log(f"{name}: new container {verdict} after {time.monotonic() - t0:.1f} s")
            if verdict == "healthy" and args.gate == "ready":
                verdict = wait_ready(new, 60)
                log(f"{name}: new container {verdict} after {time.monotonic() - t0:.1f} s")
            if verdict == "healthy":
                time.sleep(args.gap)
                t_stop = time.monotonic()
                sh("docker", "stop", old)
                sh("docker", "rm", old)
                log(f"{name}: old container stopped and removed in {time.monotonic() - t_stop:.1f} s")
            else:
                sh("docker", "rm", "-f", new)
                log(f"{name}: new container removed, the old one serves")
            time.sleep(args.settle)
            phases.append({"phase": name, "t0": t0, "t1": time.monotonic(), "verdict": verdict})

        roll("good deploy", args.new)
        roll("good deploy back", args.old)
        # Never turns healthy: its database host does not exist and its health is readiness.
        roll("bad deploy", args.new, {
            "environment": {"PGHOST": "no-such-host.invalid"},
            "healthcheck": {"test": ["CMD", "/opt/venv/bin/python", "-c", READY_PROBE],
                            "interval": "2s", "timeout": "3s", "retries": 3, "start_period": "6s"},
        })  # fmt: skip
        if args.unready:
            # Live but never ready: the engine's health (liveness) passes, the proxy's check does not.
            roll("live but not ready", args.new, {"environment": {"PGHOST": "no-such-host.invalid"}})
            roll("recovery", args.new)
    finally:
        if load is not None:
            load.finish()
        logs = sh(*base, "logs", "--no-color", "--no-log-prefix", "proxy", env=env, check=False)
        sh(*base, "down", "-v", "--remove-orphans", "-t", "5", env=env, check=False)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    if load is None:
        return 2
    total, failures = load.window(0, float("inf"))
    print(json.dumps({"requests": total, "failed": len(failures)}))
    for p in phases:
        n, bad_results = load.window(float(str(p["t0"])), float(str(p["t1"])))
        with load.lock:
            took = sorted(s for at, s in load.latency if float(str(p["t0"])) <= at < float(str(p["t1"])))
        p99 = took[min(len(took) - 1, int(0.99 * len(took)))] if took else float("nan")
        print(
            f"{p['phase']}: {n} requests, {len(bad_results)} failed, new container {p['verdict']}; "
            f"latency p50 {took[len(took) // 2] * 1000 if took else float('nan'):.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {took[-1] * 1000 if took else float('nan'):.0f} ms"
        )
        for at, what in bad_results[:20]:
            print(f"  +{at - float(str(p['t0'])):.2f} s: {what}")
    # HAProxy's httplog: "... upstream/up2 0/0/1/3/4 200 ... 0/0/0/0/RETRIES ..."
    per_server: dict[str, int] = {}
    retried = 0
    for line in logs.splitlines():
        m = re.search(r" upstream/(\S+) \S+ (\d{3}) .* \d+/\d+/\d+/\d+/(\+?\d+) ", line)
        if m:
            per_server[m.group(1)] = per_server.get(m.group(1), 0) + 1
            retried += m.group(3) not in ("0",)
    print(f"answered per upstream slot: {per_server}; requests retried: {retried}")
    # A slot that (re)appears in DNS is UP at once in HAProxy 2.6, before its
    # first check: count the requests a container answered in that gap.
    unchecked: set[str] = set()
    early: dict[str, int] = {}
    for line in logs.splitlines():
        if "[WARNING]" in line:
            continue  # the same event, repeated on stderr
        m = re.search(r"Server upstream/(\S+) \('[^']*'\) is UP/READY \(resolves again\)", line)
        if m:
            unchecked.add(m.group(1))
            continue
        m = re.search(r"Health check for server upstream/(\S+) (succeeded|failed)", line)
        if m:
            unchecked.discard(m.group(1))
            continue
        m = re.search(r" upstream/(\S+) \S+ (\d{3}) ", line)
        if m and m.group(1) in unchecked:
            key = f"{m.group(1)} {m.group(2)}"
            early[key] = early.get(key, 0) + 1
    print(f"answered by a container before its first passing check (slot status: n): {early or 'none'}")
    state_changes = [
        line.replace("\x1b[2K", "")
        for line in logs.splitlines()
        if ("Server upstream/" in line or "Health check for server" in line) and "[WARNING]" not in line
    ]
    print("proxy state changes:\n  " + "\n  ".join(state_changes))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
