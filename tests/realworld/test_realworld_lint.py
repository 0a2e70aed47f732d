"""The real-world corpus: what was judged wrong must stay gone, what was judged actionable must stay found.

The corpus (SOURCES.md) is other projects' Dockerfiles and Compose files; labels.tsv holds a verdict for
every finding of the project's own rules. Precision figures come from `pipelines bench --lint-corpus`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import bench, lint
from pipelines.findings import Severity
from pipelines.tools import Toolchain

from ..conftest import IN_CI

CORPUS = Path(__file__).parent


@pytest.fixture(scope="module")
def result() -> lint.Result:
    tools = Toolchain()
    try:
        tools.compose_version  # noqa: B018
    except Exception as exc:  # any failure to find compose is reported below
        if IN_CI:
            pytest.fail(f"CI=true and docker compose is not usable: {exc}")
        pytest.skip(f"docker compose not usable: {exc}")
    dockerfiles, composes = lint.targets_from_paths([CORPUS], CORPUS, "unspecified", {})
    settings = lint.Settings(threshold=Severity.WARNING, profile="prod", root=CORPUS)
    return lint.analyse(dockerfiles, composes, settings, tools)


@pytest.fixture(scope="module")
def found(result: lint.Result) -> set[tuple[str, str, int, str]]:
    return {bench.label_key(f.file, f.rule, f.line, f.message) for f in result.findings if f.rule.startswith("PL-")}


LABELS = bench.read_labels(CORPUS / "labels.tsv")


def test_corpus_is_big_and_diverse_enough() -> None:
    dockerfiles = list(CORPUS.glob("dockerfile/*/Dockerfile"))
    composes = [p for p in CORPUS.glob("compose/*/*") if p.suffix in (".yaml", ".yml")]
    assert len(dockerfiles) >= 40 and len(composes) >= 15
    sources = (CORPUS / "SOURCES.md").read_text()
    for p in [*dockerfiles, *composes]:
        assert str(p.relative_to(CORPUS)) in sources, f"{p} has no recorded source"
    assert len(LABELS) >= 200


def test_every_file_is_linted(result: lint.Result) -> None:
    assert result.errors == []
    assert len(result.files) == len(list(CORPUS.glob("dockerfile/*/Dockerfile"))) + len(
        [p for p in CORPUS.glob("compose/*/*") if p.suffix in (".yaml", ".yml")]
    )


def test_no_finding_labelled_wrong_comes_back(found: set[tuple[str, str, int, str]]) -> None:
    wrong = {k for k, (verdict, _) in LABELS.items() if verdict == "wrong"}
    back = sorted(wrong & found)
    # Known and labelled: images whose HEALTHCHECK lives in the image, which a file linter cannot see.
    allowed = {k for k in wrong if k[1] == "PL-C008"}
    assert [k for k in back if k not in allowed] == []


def test_no_finding_labelled_actionable_disappears(found: set[tuple[str, str, int, str]]) -> None:
    actionable = {k for k, (verdict, _) in LABELS.items() if verdict == "actionable"}
    assert sorted(actionable - found) == []


def test_every_finding_is_labelled(found: set[tuple[str, str, int, str]]) -> None:
    assert sorted(found - set(LABELS)) == [], "new findings on the corpus: label them in labels.tsv"


def test_labelled_precision_meets_the_targets() -> None:
    verdicts = [v for v, _ in LABELS.values()]
    assert verdicts.count("actionable") / len(verdicts) >= bench.CORPUS_MIN_ACTIONABLE
    assert verdicts.count("wrong") / len(verdicts) <= bench.CORPUS_MAX_WRONG
