"""Measure `pipelines harden --dry-run` on real repositories, after `pipelines init`.

    python tools/measure_harden.py --checkouts DIR --manifest tests/adoption/manifest.tsv --out DIR

CHECKOUTS/<owner>/<name> must be at the commit the manifest lists; nothing is fetched here. Each repository
is copied (real copies, not links: the checkouts must stay as they are whatever a run does) into a scratch
directory. Each is counted as converted (exit 0), stopped (exit 2 with one message) or broken (a traceback or
exit 3, which must never happen). Writes harden.json and harden.md into --out. The interpreter running this
script must have the package installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from tools.measure_adoption import head, read_manifest, run, traceback_in


def _message(out: str, err: str) -> str:
    lines = [line for line in (err or out).strip().splitlines() if line.strip()]
    return " / ".join(line.strip() for line in lines[:3])


def measure(repo: str, src: Path, scratch: Path) -> dict[str, Any]:
    work = scratch / repo.replace("/", "+")
    shutil.copytree(src, work, ignore=shutil.ignore_patterns(".git", "node_modules"), symlinks=True)
    os.symlink(src / ".git", work / ".git")
    py = [sys.executable, "-m", "pipelines"]
    row: dict[str, Any] = {"repository": repo, "commit": head(src)}
    code, out, err, _ = run([*py, "init"], work)
    row["init"] = code
    if code != 0:
        row |= {
            "outcome": "no config",
            "exit": code,
            "message": _message(out, err),
            "traceback": traceback_in(out, err),
        }
        return row
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and ".git" not in p.parts}
    code, out, err, secs = run([*py, "harden", "--dry-run", "--format", "json"], work)
    after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and ".git" not in p.parts}
    row |= {
        "exit": code,
        "seconds": secs,
        "traceback": traceback_in(out, err),
        "wrote": sorted(str(p.relative_to(work)) for p in after if before.get(p) != after[p]),
    }
    if code == 0:
        doc = json.loads(out)
        services = doc.get("services", [])
        services = [s for s in services if s["name"] != "pipeline.toml"]
        row["outcome"] = "converted" if any(s["outcome"] == "pass" for s in services) else "nothing to convert"
        row["services"] = [f"{s['name']}: {s['outcome']}" for s in services]
        row["message"] = "; ".join(f"{s['name']}: {s['detail'].splitlines()[0]}" for s in services)
        row["diff"] = doc.get("diff", "")
    elif code == 2:
        row["outcome"] = "stopped"
        row["message"] = _message(out, err)
        with contextlib.suppress(json.JSONDecodeError):
            row["message"] = json.loads(out).get("error", row["message"]).replace("\n", " / ")
    else:
        row["outcome"] = "broken"
        row["message"] = _message(out, err)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "## harden --dry-run on real repositories",
        "",
        "| repository | outcome | exit | message |",
        "|---|---|---|---|",
    ]
    for r in rows:
        msg = str(r.get("message", "")).replace("|", "\\|")
        out.append(f"| {r['repository']} | {r['outcome']} | {r.get('exit', '-')} | {msg} |")
    count = {
        k: sum(1 for r in rows if r["outcome"] == k)
        for k in ("converted", "nothing to convert", "stopped", "broken", "no config")
    }
    bad = [r["repository"] for r in rows if r.get("traceback") or r.get("exit") == 3]
    wrote = [r["repository"] for r in rows if r.get("wrote")]
    summary = (
        f"converted {count['converted']}, nothing to convert {count['nothing to convert']}, "
        f"stopped with exit 2 {count['stopped']}, traceback or exit 3 {count['broken']} ({bad or 'none'}), "
        f"init refused {count['no config']}; a dry run that wrote: {wrote or 'none'}."
    )
    out += ["", summary]
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkouts", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="harden-") as scratch:
        for repo, commit in read_manifest(args.manifest):
            src = args.checkouts / repo
            if not (src / ".git").exists() or head(src) != commit:
                print(f"error: {src}: not a checkout of {repo} at {commit}", file=sys.stderr)
                return 2
            print(f"measuring {repo}", file=sys.stderr)
            rows.append(measure(repo, src, Path(scratch)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "harden.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "harden.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
