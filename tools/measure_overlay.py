"""Measure the hardening overlay on real repositories: lint's Compose findings before and after it.

    python tools/measure_overlay.py --checkouts DIR --manifest tests/adoption/manifest.tsv --out DIR

CHECKOUTS/<owner>/<name> must be at the commit the manifest lists (fetched at measurement time, never
committed). Each repository is copied into a scratch directory and adopted with `pipelines init`; for each
Compose file group of its config (the base file, and each environment with its overlays) the render is
planned, the overlay written beside the files and rendered on top of them (so `docker compose config`
must accept it), and lint's Compose policy runs on both renders at production strictness. Variables the
files require and nothing provides are set from a committed example env file, else to a placeholder.
Writes overlay.json and overlay.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

# The manifest reader is measure_adoption's: the same list of repositories, the same format.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import composefile, config
from pipelines.errors import PipelineError
from pipelines.harden import overlay
from pipelines.lint import ComposeTarget, compose_policy, targets_from_config
from pipelines.tools import Toolchain
from tools.measure_adoption import read_manifest

ANSWERED = ("PL-C004", "PL-C005", "PL-C006", "PL-C007", "PL-C009", "PL-C010", "PL-C013", "PL-C020")


def _findings(r: composefile.Rendered) -> Counter[str]:
    ctx = compose_policy.Context("prod", "prod", {})
    return Counter(f.rule for f in compose_policy.check(r, ctx))


def _variables(target: ComposeTarget) -> dict[str, str]:
    needed = {
        m.group(1) for f in target.files for m in composefile.REQUIRED_VAR.finditer(f.read_text(errors="replace"))
    }
    found = overlay.needed_variables(needed, target.project_dir, dict(os.environ))
    return {v.name: v.value if v.value is not None else "placeholder" for v in found}


def measure_target(tools: Toolchain, target: ComposeTarget) -> dict[str, Any]:
    variables = _variables(target)
    before = composefile.render(
        tools, list(target.files), list(target.displays), project_dir=target.project_dir, variables=variables
    )
    plan = overlay.plan(before)
    path = target.project_dir / "compose.hardened.yaml"
    path.write_text(plan.text())
    for rel, content in plan.secret_files.items():
        (target.project_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (target.project_dir / rel).write_text(content)
    after = composefile.render(
        tools,
        [*target.files, path],
        [*target.displays, "compose.hardened.yaml"],
        project_dir=target.project_dir,
        variables=variables,
    )
    b, a = _findings(before), _findings(after)
    return {
        "files": list(target.displays),
        "services": len(before.project.services),
        "answered_before": sum(b[r] for r in ANSWERED),
        "answered_after": sum(a[r] for r in ANSWERED),
        "all_before": sum(b.values()),
        "all_after": sum(a.values()),
        "left": dict(sorted(a.items())),
        "changes": len(plan.changes),
        "manual": list(plan.manual),
        "variables_placeholder": sorted(k for k, v in variables.items() if v == "placeholder"),
    }


def measure(repo: str, commit: str, src: Path, scratch: Path, tools: Toolchain) -> dict[str, Any]:
    work = scratch / repo.replace("/", "+")
    shutil.copytree(src, work, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    os.symlink(src / ".git", work / ".git")
    row: dict[str, Any] = {"repository": repo, "commit": commit, "groups": []}
    r = subprocess.run(
        [sys.executable, "-m", "pipelines", "init", str(work)], capture_output=True, text=True, timeout=600, check=False
    )
    if r.returncode != 0:
        row["outcome"] = f"init exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[0][:200]}"
        return row
    try:
        _, composes = targets_from_config(config.load(work / "pipeline.toml"))
    except PipelineError as exc:
        row["outcome"] = f"config: {str(exc)[:200]}"
        return row
    if not composes:
        row["outcome"] = "no Compose file"
        return row
    for target in composes:
        try:
            row["groups"].append(measure_target(tools, target))
        except PipelineError as exc:
            row["groups"].append({"files": list(target.displays), "error": str(exc).splitlines()[0][:300]})
        except Exception:  # a bug of the overlay: recorded, the other repositories still measured
            row["groups"].append({"files": list(target.displays), "bug": traceback.format_exc()[-1500:]})
    row["outcome"] = "measured"
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Hardening overlay on real repositories",
        "",
        "Lint's Compose findings at production strictness, before and after the generated overlay, on the",
        f"rules the overlay answers ({', '.join(ANSWERED)}); all rules in brackets.",
        "",
        "| repository | commit | files | services | answered before → after | all before → after | manual steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        groups = row["groups"] or [{"files": ["-"], "error": row.get("outcome", "")}]
        for g in groups:
            files = " + ".join(g["files"])
            if "error" in g or "bug" in g:
                what = "bug: " + g["bug"].strip().splitlines()[-1] if "bug" in g else g["error"]
                lines.append(f"| {row['repository']} | {row['commit'][:12]} | {files} | | {what} | | |")
                continue
            lines.append(
                f"| {row['repository']} | {row['commit'][:12]} | {files} | {g['services']} | "
                f"{g['answered_before']} → {g['answered_after']} | [{g['all_before']} → {g['all_after']}] | "
                f"{len(g['manual'])} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkouts", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tools = Toolchain()
    rows = []
    with tempfile.TemporaryDirectory(prefix="measure-overlay-") as tmp:
        for repo, commit in read_manifest(args.manifest):
            src = args.checkouts / repo
            if not src.is_dir():
                rows.append({"repository": repo, "commit": commit, "groups": [], "outcome": "no checkout"})
                continue
            rows.append(measure(repo, commit, src, Path(tmp), tools))
            print(f"{repo}: {rows[-1]['outcome']}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overlay.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "overlay.md").write_text(markdown(rows))
    bugs = sum("bug" in g for row in rows for g in row["groups"])
    print(f"wrote {args.out}/overlay.json and overlay.md ({bugs} bugs)", file=sys.stderr)
    return 1 if bugs else 0


if __name__ == "__main__":
    raise SystemExit(main())
