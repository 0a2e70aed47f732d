"""The lint benchmark on a labelled real-world corpus: its manifest and labels, staging, and scoring."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _proc
from ..errors import ConfigError
from ..report import markdown_table
from ..result import Result, stderr_log
from .report import Log, check, now, result, write_files

# What a linter must reach on real files before a team keeps it switched on.
CORPUS_MIN_ACTIONABLE = 0.90
CORPUS_MAX_WRONG = 0.02
CORPUS_MIN_LABELLED = 200
VERDICTS = ("actionable", "not-actionable", "wrong")
# A problem a reviewer found in a corpus file that the linter did not report: the denominator of recall.
MISSED = "missed"
# The files a corpus entry may bring from its own directory, and why: the rules read them.
SIDECARS = {".dockerignore": "the build context's exclusions (PL-D016)", ".env": "Compose's interpolation defaults"}


def label_key(file: str, rule: str, line: int, message: str) -> tuple[str, str, int, str]:
    """A finding's identity for labels: the environment tag (`[base] `, `[compose] `) depends on how it was called."""
    return (file, rule, line, re.sub(r"^\[[^\]]*\] ", "", message))


def read_labels(path: Path) -> dict[tuple[str, str, int, str], tuple[str, str]]:
    """(file, rule, line, message) -> (verdict, reason), from a tab-separated labels file.

    A `missed` line names a problem the linter should report and does not; its message column describes it.
    """
    out: dict[tuple[str, str, int, str], tuple[str, str]] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) != 6 or parts[3] not in (*VERDICTS, MISSED) or not parts[2].isdigit():
            raise ConfigError(
                str(path),
                f"line {n}",
                "expected file, rule, line, verdict (actionable|not-actionable|wrong|missed), "
                "reason and message, tab-separated",
            )
        out[label_key(parts[0], parts[1], int(parts[2]), parts[5])] = (parts[3], parts[4])
    return out


@dataclass(frozen=True)
class CorpusEntry:
    """One file of the real-world corpus: where it comes from, and its name in the labels."""

    name: str  # e.g. dockerfile/netbox-docker/Dockerfile: the labels' file column
    repository: str  # owner/name on GitHub
    path: str  # inside the repository
    commit: str
    beside: tuple[str, ...]  # files of the same directory the entry brings along (SIDECARS)


def read_corpus_manifest(path: Path) -> list[CorpusEntry]:
    """The committed list of corpus files: name, repository, path, commit, files beside (tab-separated)."""
    if not path.is_file():
        raise ConfigError(
            str(path), "", "not found", hint="give the corpus manifest (e.g. tests/bench/realworld/manifest.tsv)"
        )
    out: list[CorpusEntry] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        beside = () if len(parts) != 5 or parts[4] == "-" else tuple(parts[4].split(","))
        ok = (
            len(parts) == 5
            and re.fullmatch(r"(dockerfile|compose)/[\w.-]+/[\w.-]+", parts[0]) is not None
            and re.fullmatch(r"[\w.-]+/[\w.-]+", parts[1]) is not None
            and not parts[2].startswith("/")
            and ".." not in Path(parts[2]).parts
            and re.fullmatch(r"[0-9a-f]{40}", parts[3]) is not None
            and all(b in SIDECARS for b in beside)
        )
        if not ok:
            raise ConfigError(
                str(path),
                f"line {n}",
                "expected name (dockerfile|compose/DIR/FILE), repository (owner/name), path, 40-hex commit and "
                f"the files beside it ({', '.join(SIDECARS)} or -), tab-separated",
            )
        out.append(CorpusEntry(parts[0], parts[1], parts[2], parts[3], beside))
    if not out:
        raise ConfigError(str(path), "", "lists no corpus file")
    return out


def stage_corpus(entries: Sequence[CorpusEntry], checkouts: Path, stage: Path) -> list[str]:
    """Copy each listed file out of CHECKOUTS/<owner>/<name> (checked out at its commit) into STAGE/<name>.

    Fetches nothing: the checkouts are made at measurement time by whoever measures. Returns notes on checkouts
    whose commit could not be checked (not a git work tree).
    """
    notes: list[str] = []
    heads: dict[Path, str | None] = {}
    for e in entries:
        repo = checkouts / e.repository
        if not repo.is_dir():
            raise ConfigError(
                str(repo), "", f"no checkout of {e.repository}", hint=f"check out {e.repository} at {e.commit} there"
            )
        if repo not in heads:
            r = _proc.run(["git", "-C", str(repo), "rev-parse", "HEAD"], timeout=30, check=False, quiet=True)
            heads[repo] = r.stdout.strip() if r.returncode == 0 and (repo / ".git").exists() else None
            if heads[repo] is None:
                notes.append(f"{e.repository}: not a git work tree, its commit was not checked")
        head = heads[repo]
        if head is not None and head != e.commit:
            raise ConfigError(
                str(repo), "HEAD", f"is {head}, the manifest lists {e.name} at {e.commit}",
                hint=f"git -C {repo} checkout {e.commit}",
            )  # fmt: skip
        src = repo / e.path
        if not src.is_file():
            raise ConfigError(str(src), "", f"not found: {e.name} is {e.path} of {e.repository} at {e.commit}")
        dest = stage / e.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        for b in e.beside:
            if not (src.parent / b).is_file():
                raise ConfigError(str(src.parent / b), "", f"not found: the manifest lists it beside {e.name}")
            shutil.copyfile(src.parent / b, dest.parent / b)
    return notes


def _shares(verdicts: list[str]) -> dict[str, object]:
    n = len(verdicts)
    return {
        "findings": n,
        **{v: verdicts.count(v) for v in VERDICTS},
        **{f"{v}_pct": round(100 * verdicts.count(v) / n, 1) if n else 0.0 for v in VERDICTS},
    }


def run_lint_corpus(checkouts: Path, manifest_file: Path, *, out: Path, log: Log = stderr_log) -> Result:
    """Lint every file of the labelled real-world corpus one by one, as a new user would, and score the findings.

    The corpus is the manifest's list (repository, path, commit) read out of checkouts made beforehand; the
    labels (labels.tsv beside the manifest) judge every finding of the project's own rules. Reports Python
    tracebacks, refused files (exit 2), time per file, precision (the share labelled actionable, not actionable
    and wrong) and recall (the actionable problems found over those found plus those labelled missed).
    """
    import tempfile

    from .. import lint  # the lint stage; imported here so a build benchmark does not load it

    entries = read_corpus_manifest(manifest_file)
    labels_file = manifest_file.parent / "labels.tsv"
    if not labels_file.is_file():
        raise ConfigError(str(labels_file), "", "not found", hint="label the corpus's findings first")
    labels = read_labels(labels_file)
    with tempfile.TemporaryDirectory(prefix="pipelines-lint-corpus-") as tmp:
        corpus = Path(tmp)
        notes = stage_corpus(entries, checkouts, corpus)
        results = _score_corpus(corpus, labels, lint.targets_from_paths([corpus], corpus, "unspecified", {}))
    results["manifest"] = str(manifest_file)
    repositories = sorted({f"{e.repository}@{e.commit}" for e in entries})
    results["repositories"] = repositories
    results["notes"] = notes
    before = manifest_file.parent / "labels-before.tsv"
    own_before = _shares([v for v, _ in read_labels(before).values() if v != MISSED]) if before.is_file() else None
    if own_before is not None:
        results["own_before"] = own_before
    own = results["own"]
    if not isinstance(own, dict):
        raise TypeError("corpus shares are a mapping")
    exit_2 = results["exit_2"]
    exit_3 = results["exit_3"]
    if not isinstance(exit_2, list) or not isinstance(exit_3, list):
        raise TypeError("corpus lists are lists")
    checks = [
        check("Python tracebacks", str(results["tracebacks"]), "0", not results["tracebacks"]),
        check("files refused (exit 2)", str(len(exit_2)), "0", not exit_2),
        check("files that crashed lint (exit 3)", str(len(exit_3)), "0", not exit_3),
        check("findings labelled", str(own["findings"]), f">= {CORPUS_MIN_LABELLED}",
              int(own["findings"]) >= CORPUS_MIN_LABELLED),
        check("actionable (precision)", f"{own['actionable_pct']}%", f">= {CORPUS_MIN_ACTIONABLE:.0%}",
              float(own["actionable_pct"]) >= 100 * CORPUS_MIN_ACTIONABLE),
        check("wrong", f"{own['wrong_pct']}%", f"<= {CORPUS_MAX_WRONG:.0%}",
              float(own["wrong_pct"]) <= 100 * CORPUS_MAX_WRONG),
    ]  # fmt: skip
    res = result("lint-corpus", out, results, checks)
    ok = all(c.ok for c in checks)
    rows = [["now", *_share_row(own)]]
    if own_before is not None:
        rows.insert(0, ["before", *_share_row(own_before)])
    unlabelled = results["unlabelled"]
    missed = results["missed"]
    if not isinstance(unlabelled, list) or not isinstance(missed, list):
        raise TypeError("corpus lists are lists")
    md = "\n".join(
        [
            f"## Lint on a real-world corpus ({results['when']})",
            "",
            f"{results['files']} files ({results['dockerfiles']} Dockerfiles, {results['compose_files']} Compose) "
            f"from {len(repositories)} repositories, {results['findings_total']} findings (Hadolint's "
            f"included); tracebacks {results['tracebacks']}, refused (exit 2) {len(exit_2)}"
            + (f" ({', '.join(map(str, exit_2))})" if exit_2 else "")
            + f"; {results['seconds_per_file_median']:.2f} s a file alone (median; max "
            f"{results['seconds_per_file_max']:.2f} s), {results['seconds_per_file_one_call']:.2f} s a file in one "
            "call over the corpus.",
            "",
            markdown_table(
                ["project's own findings", "labelled", "actionable (precision)", "not actionable", "wrong"], rows
            ),
            "",
            f"Recall: {results['recall_pct']}% ({results['found_actionable']} actionable problems found, "
            f"{len(missed)} labelled missed and still missed, {results['missed_now_found']} labelled missed and now "
            "found).",
            "",
            f"Targets: >= {CORPUS_MIN_ACTIONABLE:.0%} actionable, <= {CORPUS_MAX_WRONG:.0%} wrong, "
            f">= {CORPUS_MIN_LABELLED} labelled, no traceback, no exit 2: {'met' if ok else 'MISSED'}."
            + (f" {len(unlabelled)} findings have no label." if unlabelled else ""),
            "",
        ]
    )
    write_files(out, res, md)
    log(md)
    return res


def _score_corpus(
    corpus: Path,
    labels: Mapping[tuple[str, str, int, str], tuple[str, str]],
    targets: tuple[Sequence[Any], Sequence[Any]],
) -> dict[str, object]:
    """Lint each staged file alone with the real CLI, then the whole corpus in one call; match the labels."""
    dockerfiles, composes = targets
    paths = sorted({t.path for t in dockerfiles} | {f for c in composes for f in c.files})
    per_file: list[dict[str, object]] = []
    verdicts: list[str] = []
    unlabelled: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for path in paths:
        argv = [sys.executable, "-m", "pipelines", "lint", "--no-config", "--format", "json", str(path.resolve())]
        start = time.monotonic()
        r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=corpus)
        seconds = round(time.monotonic() - start, 3)
        findings = json.loads(r.stdout)["findings"] if r.stdout.strip().startswith("{") else []
        mine = [f for f in findings if str(f["rule"]).startswith("PL-")]
        for f in mine:
            key = label_key(str(f["file"]), str(f["rule"]), int(f["line"]), str(f["message"]))
            seen.add(key[:3])
            if key in labels and labels[key][0] != MISSED:
                verdicts.append(labels[key][0])
            elif key not in labels:
                unlabelled.append(f"{f['file']}:{f['line']} {f['rule']} {f['message']}")
        per_file.append(
            {
                "file": str(path.relative_to(corpus)),
                "exit": r.returncode,
                "seconds": seconds,
                "findings": len(findings),
                "own": len(mine),
                "traceback": "Traceback (most recent call last)" in r.stderr,
                "refused": r.stderr.strip().splitlines()[-1] if r.returncode == 2 and r.stderr.strip() else "",
            }
        )
    # One call over the whole corpus, as a CI job would run it: time per file without process start-up.
    argv = [sys.executable, "-m", "pipelines", "lint", "--no-config", "--format", "json", str(corpus.resolve())]
    start = time.monotonic()
    _proc.run(argv, timeout=600, check=False, quiet=True, cwd=corpus)
    batch = round((time.monotonic() - start) / max(len(paths), 1), 3)
    times = sorted(float(str(p["seconds"])) for p in per_file)
    # A missed problem counts as found once the linter reports its rule at its line, whatever the wording.
    missed = sorted(f"{k[0]}:{k[2]} {k[1]} {k[3]}" for k, (v, _) in labels.items() if v == MISSED and k[:3] not in seen)
    now_found = sum(1 for k, (v, _) in labels.items() if v == MISSED and k[:3] in seen)
    found_actionable = verdicts.count("actionable") + now_found
    known = found_actionable + len(missed)
    return {
        "when": now(),
        "files": len(per_file),
        "dockerfiles": len(dockerfiles),
        "compose_files": len(paths) - len(dockerfiles),
        "tracebacks": sum(1 for p in per_file if p["traceback"]),
        "exit_2": [str(p["file"]) for p in per_file if p["exit"] == 2],
        "exit_3": [p["file"] for p in per_file if p["exit"] == 3],
        "seconds_per_file_median": times[len(times) // 2] if times else 0.0,
        "seconds_per_file_max": times[-1] if times else 0.0,
        "seconds_per_file_one_call": batch,
        "findings_total": sum(int(str(p["findings"])) for p in per_file),
        "own": _shares(verdicts),
        "found_actionable": found_actionable,
        "missed": missed,
        "missed_now_found": now_found,
        "recall_pct": round(100 * found_actionable / known, 1) if known else 0.0,
        "unlabelled": unlabelled,
        "per_file": per_file,
    }


def _share_row(s: dict[str, object]) -> list[str]:
    return [
        str(s["findings"]),
        f"{s['actionable']} ({s['actionable_pct']}%)",
        f"{s['not-actionable']} ({s['not-actionable_pct']}%)",
        f"{s['wrong']} ({s['wrong_pct']}%)",
    ]
