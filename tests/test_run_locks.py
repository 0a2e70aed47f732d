"""The run-wide locks that let engine tests run on several workers (tests/harness.py RunLocks).

flock(2) locks belong to an open file, so two threads here contend exactly as two xdist workers do.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.harness import RunLocks

WAIT = 10.0  # seconds: only a broken lock makes a test wait this long


def _in_thread(target: object) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    t.start()
    return t


def test_an_exclusive_holder_keeps_readers_and_writers_out(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path / "locks")
    events: list[str] = []
    held = threading.Event()

    def writer() -> None:
        with locks.exclusive("dev"):
            held.set()
            time.sleep(0.3)
            events.append("writer done")

    def reader() -> None:
        held.wait(WAIT)
        with locks.shared("dev"):
            events.append("reader in")

    threads = [_in_thread(writer), _in_thread(reader)]
    for t in threads:
        t.join(WAIT)
    assert events == ["writer done", "reader in"]


def test_readers_share_and_a_waiting_writer_goes_before_later_readers(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path / "locks")
    events: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def first_reader() -> None:
        with locks.shared("dev"):
            first_in.set()
            release_first.wait(WAIT)
            # Still holding it: once released, the writer may run before this thread is scheduled again.
            events.append("first reader out")

    def writer() -> None:
        with locks.exclusive("dev"):
            events.append("writer in")

    def later_reader() -> None:
        with locks.shared("dev"):
            events.append("later reader in")

    threads = [_in_thread(first_reader)]
    assert first_in.wait(WAIT)
    # A second reader is let in beside the first.
    with locks.shared("dev"):
        pass
    threads.append(_in_thread(writer))
    time.sleep(0.5)  # the writer now waits for the first reader, holding the turnstile
    threads.append(_in_thread(later_reader))
    time.sleep(0.5)
    assert events == [], "nobody may pass while the first reader holds the lock and the writer waits"
    release_first.set()
    for t in threads:
        t.join(WAIT)
    assert events == ["first reader out", "writer in", "later reader in"]


def test_once_makes_its_result_once_for_every_caller(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path / "locks")
    made: list[int] = []
    results: list[str] = []

    def make() -> tuple[bool, str]:
        made.append(1)
        time.sleep(0.2)  # long enough for the other caller to arrive meanwhile
        return True, "the record"

    threads = [_in_thread(lambda: results.append(locks.once("build-dev-x", "build", make))) for _ in range(3)]
    for t in threads:
        t.join(WAIT)
    assert results == ["the record"] * 3
    assert made == [1]
    # Another key (changed inputs) is made again.
    assert locks.once("build-dev-y", "build", make) == "the record" and made == [1, 1]


def test_a_failure_is_kept_so_later_callers_fail_without_trying_again(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path / "locks")
    tries: list[int] = []

    def make() -> tuple[bool, str]:
        tries.append(1)
        return False, "the build said no"

    for _ in range(2):
        with pytest.raises(pytest.fail.Exception, match="the build said no"):
            locks.once("build-dev-z", "build", make)
    assert tries == [1]


def test_locks_outside_the_one_order_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError), RunLocks(tmp_path / "locks").exclusive("swarm"):
        pass
