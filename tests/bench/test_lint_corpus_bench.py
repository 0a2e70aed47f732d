"""The real-world lint measurement: a committed manifest and labels, files read from checkouts made beforehand.

The corpus files are other projects' and never committed; here the "checkouts" are git repositories this test
writes, so the bench's staging, scoring (precision, recall, refused files) and refusals are checked on files
the project owns.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipelines import bench
from pipelines.errors import ConfigError
from tests.harness import run_cli, run_cli_outcome

REALWORLD = Path(__file__).parent / "realworld"

DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY app.py .
RUN curl -fsSL https://example.invalid/get.py | python3 -
EXPOSE 8000
CMD ["python3", "app.py"]
"""
D001 = "final stage #0 (FROM python:3.12-slim) sets no USER: it runs as the base image's user, root unless that image says otherwise"  # noqa: E501


def _git(repo: Path, *args: str) -> str:
    r = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return r.stdout.strip()


def _checkouts(tmp_path: Path) -> tuple[Path, Path, str]:
    """CHECKOUTS/example/app (a git work tree, one commit) and a manifest plus labels for two of its files."""
    repo = tmp_path / "checkouts" / "example" / "app"
    (repo / "svc").mkdir(parents=True)
    (repo / "svc" / "Dockerfile").write_text(DOCKERFILE)
    (repo / "svc" / ".dockerignore").write_text(".git\n.env\n")
    (repo / "deploy").mkdir()
    (repo / "deploy" / "compose.yaml").write_text("services:\n  web: [unclosed\n")  # lint refuses it: exit 2
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "corpus")
    commit = _git(repo, "rev-parse", "HEAD")
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "manifest.tsv").write_text(
        "# name\trepository\tpath\tcommit\tbeside\n"
        f"dockerfile/svc/Dockerfile\texample/app\tsvc/Dockerfile\t{commit}\t.dockerignore\n"
        f"compose/deploy/compose.yaml\texample/app\tdeploy/compose.yaml\t{commit}\t-\n"
    )
    name = "dockerfile/svc/Dockerfile"
    rows = [
        ("PL-D001", 1, "actionable", D001),
        ("PL-D002", 1, "actionable", "final stage #0 (FROM python:3.12-slim) has no HEALTHCHECK"),
        ("PL-D003", 1, "actionable", "FROM python:3.12-slim: tag without a digest"),
        (
            "PL-D013",
            4,
            "actionable",
            "a download is run unverified: curl -fsSL https://example.invalid/get.py | python3",
        ),
        ("PL-D017", 1, "wrong", "missing OCI labels: title, version, created, revision, source"),
        ("PL-D006", 2, "missed", "a problem the linter does not see (stands for a reviewer's find)"),
    ]
    (meta / "labels.tsv").write_text("".join(f"{name}\t{r}\t{n}\t{v}\treason\t{m}\n" for r, n, v, m in rows))
    return tmp_path / "checkouts", meta / "manifest.tsv", commit


def test_the_bench_scores_precision_recall_and_refused_files_from_checkouts(tmp_path: Path) -> None:
    checkouts, manifest_file, commit = _checkouts(tmp_path)
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = run_cli(
        "bench", "--lint-corpus", str(checkouts), "--corpus-manifest", str(manifest_file), "--out", str(out),
        env={"TMPDIR": str(scratch)}, timeout=600,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr  # below the targets: a gate failure, not a crash
    res = json.loads((out / "lint-corpus.json").read_text())
    assert res["files"] == 2 and res["repositories"] == [f"example/app@{commit}"]
    assert res["exit_2"] == ["compose/deploy/compose.yaml"] and res["tracebacks"] == 0
    assert (res["own"]["findings"], res["own"]["actionable"], res["own"]["wrong"]) == (5, 4, 1)
    assert res["own"]["actionable_pct"] == 80.0 and res["recall_pct"] == 80.0
    assert res["missed"] == [
        "dockerfile/svc/Dockerfile:2 PL-D006 a problem the linter does not see (stands for a reviewer's find)"
    ]
    assert res["unlabelled"] == []
    md = (out / "lint-corpus.md").read_text()
    assert "refused (exit 2) 1 (compose/deploy/compose.yaml)" in md and "Recall: 80.0%" in md
    # The scratch copy is gone; the checkout is untouched.
    assert not list(scratch.glob("pipelines-lint-corpus-*"))
    assert _git(checkouts / "example" / "app", "status", "--porcelain") == ""


def test_a_checkout_at_another_commit_is_refused(tmp_path: Path) -> None:
    checkouts, manifest_file, commit = _checkouts(tmp_path)
    repo = checkouts / "example" / "app"
    (repo / "svc" / "app.py").write_text("print('later')\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "later")
    with pytest.raises(ConfigError, match=f"the manifest lists dockerfile/svc/Dockerfile at {commit}"):
        bench.stage_corpus(bench.read_corpus_manifest(manifest_file), checkouts, tmp_path / "stage")


def test_a_missing_checkout_or_file_is_refused_naming_it(tmp_path: Path) -> None:
    checkouts, manifest_file, commit = _checkouts(tmp_path)
    entries = bench.read_corpus_manifest(manifest_file)
    with pytest.raises(ConfigError, match="no checkout of example/app"):
        bench.stage_corpus(entries, tmp_path / "elsewhere", tmp_path / "stage")
    (checkouts / "example" / "app" / "svc" / "Dockerfile").unlink()
    with pytest.raises(ConfigError, match=f"dockerfile/svc/Dockerfile is svc/Dockerfile of example/app at {commit}"):
        bench.stage_corpus(entries, checkouts, tmp_path / "stage")


@pytest.mark.parametrize(
    "line",
    [
        "dockerfile/x/Dockerfile\texample/app\t../etc/passwd\t" + "a" * 40 + "\t-",
        "dockerfile/x/Dockerfile\texample/app\tDockerfile\tmain\t-",
        "dockerfile/x/Dockerfile\texample/app\tDockerfile\t" + "a" * 40 + "\tsecrets.txt",
        "other/x/Dockerfile\texample/app\tDockerfile\t" + "a" * 40 + "\t-",
    ],
)
def test_a_bad_manifest_line_is_refused(tmp_path: Path, line: str) -> None:
    (tmp_path / "m.tsv").write_text(line + "\n")
    with pytest.raises(ConfigError, match="line 1"):
        bench.read_corpus_manifest(tmp_path / "m.tsv")


def test_the_corpus_options_go_together() -> None:
    r = run_cli_outcome("bench", "--lint-corpus", "/nonexistent")
    assert r.returncode == 2 and "--lint-corpus CHECKOUTS and --corpus-manifest FILE go together" in r.stderr


def test_the_committed_manifest_and_labels_agree() -> None:
    entries = bench.read_corpus_manifest(REALWORLD / "manifest.tsv")
    names = [e.name for e in entries]
    assert len(names) == len(set(names))
    assert sum(n.startswith("dockerfile/") for n in names) >= 40 and sum(n.startswith("compose/") for n in names) >= 15
    labels = bench.read_labels(REALWORLD / "labels.tsv")
    assert {k[0] for k in labels} <= set(names)
    verdicts = [v for v, _ in labels.values() if v != bench.MISSED]
    assert len(verdicts) >= bench.CORPUS_MIN_LABELLED
    assert verdicts.count("actionable") / len(verdicts) >= bench.CORPUS_MIN_ACTIONABLE
    assert verdicts.count("wrong") / len(verdicts) <= bench.CORPUS_MAX_WRONG
