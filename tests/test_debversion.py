"""Debian version ordering and grammar, checked against the real dpkg binary on this host."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.debversion import debian_version_cmp, is_debian_version
from tests.harness import examples

DPKG = shutil.which("dpkg")


def _dpkg(*args: str) -> int:
    if DPKG is None:
        pytest.fail("these tests compare with dpkg itself: run them on a Debian or Ubuntu host")
    return subprocess.run([DPKG, *args], capture_output=True, timeout=10, check=False).returncode


def _dpkg_cmp(a: str, b: str) -> int:
    if _dpkg("--compare-versions", a, "lt", b) == 0:
        return -1
    return 1 if _dpkg("--compare-versions", a, "gt", b) == 0 else 0


# Small alphabets, so that equal and nearly equal versions come up: "1.0" and "1.00" are equal to dpkg,
# "~" sorts before the end of a string, letters before other symbols.
_UPSTREAM = "0123456789ab.+~"
_REVISION = "01ab+.~"


@st.composite
def versions(draw: st.DrawFn) -> str:
    epoch = draw(st.one_of(st.just(""), st.integers(0, 3).map(lambda n: f"{n}:")))
    upstream = draw(st.sampled_from("0123456789")) + draw(st.text(_UPSTREAM + (":" if epoch else ""), max_size=6))
    revision = draw(st.one_of(st.just(""), st.text(_REVISION, min_size=1, max_size=4).map(lambda r: f"-{r}")))
    # A hyphen inside the upstream part is valid only when a revision follows (the last hyphen splits them).
    if revision and draw(st.booleans()):
        upstream += "-" + draw(st.text("0123456789a", min_size=1, max_size=2))
    return epoch + upstream + revision


@settings(max_examples=examples(200), deadline=None)
@given(versions(), versions())
def test_comparison_agrees_with_dpkg(a: str, b: str) -> None:
    assert is_debian_version(a) and is_debian_version(b)
    assert debian_version_cmp(a, b) == _dpkg_cmp(a, b)


@settings(max_examples=examples(200), deadline=None)
@given(versions(), versions(), versions())
def test_comparison_is_antisymmetric_and_transitive(a: str, b: str, c: str) -> None:
    ab, bc, ac = debian_version_cmp(a, b), debian_version_cmp(b, c), debian_version_cmp(a, c)
    assert ab in (-1, 0, 1)
    assert debian_version_cmp(b, a) == -ab
    if ab <= 0 and bc <= 0:
        assert ac <= 0
    if ab == 0 and bc == 0:
        assert ac == 0


# Any string, from characters that are valid somewhere and some that never are.
@settings(max_examples=examples(200), deadline=None)
@given(st.text("019a:.-+~_ \n\u0663", max_size=7).filter(lambda s: not s.startswith("-")))
def test_the_grammar_is_dpkgs(text: str) -> None:
    # dpkg --validate-version: 0 valid, 1 a warning (e.g. no leading digit), 2 an error; only 0 is a version.
    # Two quirks of dpkg's C parsing are refused here (stricter, never looser): whitespace around a version
    # (dpkg trims it) and a plus sign before the epoch ("+0:0"; strtol reads it).
    dpkg_reads = _dpkg("--validate-version", text) == 0
    assert is_debian_version(text) == (dpkg_reads and text == text.strip() and not text.startswith("+"))


# The first six python-debian alone reads; the rest it refuses too.
@pytest.mark.parametrize("text", ["1.0-", "1:-1", "abc", "1.0\n", "\u0663:1.0", "4294967296:1", "a:1", ":1", "1.0_1"])
def test_what_dpkg_calls_bad_syntax_is_no_version(text: str) -> None:
    assert _dpkg("--validate-version", text) != 0
    assert not is_debian_version(text)


def test_an_unreadable_version_is_a_value_error_not_an_order() -> None:
    with pytest.raises(ValueError, match=r"1\.0_1"):
        debian_version_cmp("1.0_1", "1.0")
