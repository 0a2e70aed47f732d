"""Measure adoption on real repositories: `pipelines init`, `pipelines config`, `nox -l` and `pipelines lint`.

    python tools/measure_adoption.py --checkouts DIR --manifest tests/adoption/manifest.tsv --out DIR

CHECKOUTS/<owner>/<name> must be at the commit the manifest lists (fetched at measurement time, never
committed); nothing is fetched here. Each repository is copied (hard links: init only adds files) into a
scratch directory, so the checkouts stay as they are. Writes adoption.json and adoption.md into --out.
The interpreter running this script must have the package and nox installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TIMEOUT = 900


def read_manifest(path: Path) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise SystemExit(f"{path}:{n}: expected repository<TAB>commit")
        rows.append((cols[0], cols[1]))
    return rows


def head(repo: Path) -> str:
    r = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=60)
    return r.stdout.strip()


def run(argv: list[str], cwd: Path) -> tuple[int, str, str, float]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOX_SCRIPT_MODE", None)
    started = time.monotonic()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    return r.returncode, r.stdout, r.stderr, round(time.monotonic() - started, 2)


def traceback_in(*texts: str) -> bool:
    return any("Traceback (most recent call last)" in t for t in texts)


def measure(repo: str, src: Path, scratch: Path) -> dict[str, Any]:
    work = scratch / repo.replace("/", "+")
    shutil.copytree(src, work, copy_function=os.link, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    # init asks git which env files are committed: give it the checkout's history.
    os.symlink(src / ".git", work / ".git")
    py = [sys.executable, "-m", "pipelines"]
    row: dict[str, Any] = {"repository": repo, "commit": head(src)}
    code, out, err, secs = run([*py, "init", "--format", "json"], work)
    row["init"] = {"exit": code, "seconds": secs, "traceback": traceback_in(out, err)}
    if code == 0:
        data = json.loads(out)
        compose = data.get("compose", [])
        datastores = {s["name"] for f in compose for s in f.get("services", []) if s.get("role") == "datastore"}
        row["init"] |= {
            "services": len(data.get("services", [])) + len(datastores),
            "built": len(data.get("services", [])),
            "datastores": sorted(datastores),
            "compose_files": len(compose),
            "environments": data.get("environments", []),
            "written": data.get("written", []),
            "undecided": len(data.get("undecided", [])),
            "undecided_examples": [f"{u['file']}: {u['what']}" for u in data.get("undecided", [])][:3],
        }
    else:
        row["init"]["message"] = (err or out).strip().splitlines()[:3]
    code, out, err, secs = run([*py, "config", "--format", "table"], work)
    row["config"] = {"exit": code, "traceback": traceback_in(out, err), "message": (err or out).strip()[:300]}
    code, out, err, secs = run([sys.executable, "-m", "nox", "-l"], work)
    row["nox_list"] = {"exit": code, "traceback": traceback_in(err) and "pipelines" in err}
    code, out, err, secs = run([*py, "lint", "--format", "json"], work)
    lint: dict[str, Any] = {"exit": code, "seconds": secs, "traceback": traceback_in(out, err)}
    try:
        doc = json.loads(out)
        lint["findings"] = len(doc.get("findings", []))
        lint["gated"] = sum(1 for f in doc.get("findings", []) if f.get("gated"))
    except json.JSONDecodeError:
        lint["message"] = (err or out).strip().splitlines()[:3]
    row["lint"] = lint
    # The gradual start: accept today's findings, then lint again; only new findings may gate.
    code, out, err, secs = run([*py, "baseline", "--format", "json"], work)
    row["baseline"] = {"exit": code, "traceback": traceback_in(out, err)}
    code, out, err, secs = run([*py, "lint", "--format", "json"], work)
    after: dict[str, Any] = {"exit": code, "traceback": traceback_in(out, err)}
    try:
        doc = json.loads(out)
        after["findings"] = len(doc.get("findings", []))
        after["gated"] = sum(1 for f in doc.get("findings", []) if f.get("gated"))
    except json.JSONDecodeError:
        after["message"] = (err or out).strip().splitlines()[:3]
    row["lint_after_baseline"] = after
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "## Adoption on real repositories",
        "",
        "| repository | commit | init | services (built) | Compose files | undecided | config | nox -l | lint exit | "
        "findings (gated) | baseline | lint exit after (gated) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        i, lint = r["init"], r["lint"]
        out.append(
            f"| {r['repository']} | {r['commit'][:12]} | {i['exit']} | "
            f"{i.get('services', '-')} ({i.get('built', '-')}) "
            f"| {i.get('compose_files', '-')} | {i.get('undecided', '-')} | {r['config']['exit']} | "
            f"{r['nox_list']['exit']} | {lint['exit']} | {lint.get('findings', '-')} ({lint.get('gated', '-')}) | "
            f"{r['baseline']['exit']} | {r['lint_after_baseline']['exit']} "
            f"({r['lint_after_baseline'].get('gated', '-')}) |"
        )
    steps = ("init", "config", "lint", "baseline", "lint_after_baseline")
    bad = [r["repository"] for r in rows if any(r[k].get("traceback") for k in steps)]
    exit3 = [r["repository"] for r in rows if any(r[k]["exit"] == 3 for k in steps)]
    through = sum(1 for r in rows if r["init"]["exit"] == 0 and r["lint"]["exit"] in (0, 1))
    out += [
        "",
        f"{through} of {len(rows)} through init and lint (exit 0 or 1); tracebacks: {bad or 'none'}; "
        f"exit 3: {exit3 or 'none'}.",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkouts", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="adoption-") as scratch:
        for repo, commit in read_manifest(args.manifest):
            src = args.checkouts / repo
            if not (src / ".git").exists() or head(src) != commit:
                print(f"error: {src}: not a checkout of {repo} at {commit}", file=sys.stderr)
                return 2
            print(f"measuring {repo}", file=sys.stderr)
            rows.append(measure(repo, src, Path(scratch)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adoption.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "adoption.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
