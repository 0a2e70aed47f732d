"""The subprocess seam, exercised with real child processes."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipelines import _proc
from pipelines.errors import CommandFailed, CommandTimeout, Interrupted, ToolNotFound

PY = sys.executable


def test_captures_output_and_exit_code() -> None:
    r = _proc.run(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        timeout=30,
        check=False,
        log=None,
    )
    assert (r.returncode, r.stdout.strip(), r.stderr.strip()) == (3, "out", "err")
    assert not r.ok


def test_failure_raises_with_what_and_output_tail() -> None:
    with pytest.raises(CommandFailed) as err:
        _proc.run(
            [PY, "-c", "import sys; [print(i, file=sys.stderr) for i in range(100)]; sys.exit(7)"],
            timeout=30,
            what="the probe",
            hint="do better",
            log=None,
        )
    text = err.value.render()
    assert "the probe failed with exit code 7" in text
    assert "99" in text and "earlier lines" in text  # only the tail is shown
    assert "hint: do better" in text
    assert err.value.returncode == 7


def test_missing_tool_is_a_clear_error() -> None:
    with pytest.raises(ToolNotFound, match="no-such-tool-xyz was not found"):
        _proc.run(["no-such-tool-xyz", "--version"], timeout=5, log=None)


def test_timeout_stops_the_child_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="did not finish within 1 s"):
        _proc.run([PY, "-c", "import time; time.sleep(60)"], timeout=1, log=None)
    assert time.monotonic() - start < 10


def test_timeout_in_streaming_mode(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(CommandTimeout):
        _proc.run(
            [PY, "-u", "-c", "import time\nprint('started')\ntime.sleep(60)"], timeout=1, stream=lines.append, log=None
        )
    assert lines[0] == "started"


def test_streaming_merges_stderr_line_by_line() -> None:
    seen: list[str] = []
    r = _proc.run(
        [PY, "-u", "-c", "import sys; print('a'); print('b', file=sys.stderr); print('c')"],
        timeout=30,
        stream=seen.append,
        log=None,
    )
    assert seen == ["a", "b", "c"]
    assert r.stdout.splitlines() == ["a", "b", "c"]


def test_env_is_added_not_replaced() -> None:
    r = _proc.run(
        [PY, "-c", "import os; print(os.environ['EXTRA'], 'PATH' in os.environ)"],
        timeout=30,
        env={"EXTRA": "yes"},
        log=None,
    )
    assert r.stdout.split() == ["yes", "True"]


def test_variables_with_a_prefix_can_be_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_IGNORE", "X1")
    monkeypatch.setenv("TOOLBOX", "kept")
    code = "import os; print(sorted(k for k in os.environ if k.startswith('TOOL')), os.environ.get('EXTRA'))"
    r = _proc.run([PY, "-c", code], timeout=30, unset_prefix="TOOL_", log=None)
    assert r.stdout.split() == ["['TOOLBOX']", "None"]
    r = _proc.run([PY, "-c", code], timeout=30, unset_prefix="TOOL_", env={"EXTRA": "yes"}, log=None)
    assert r.stdout.split() == ["['TOOLBOX']", "yes"]


def test_logged_command_line_masks_secrets() -> None:
    logged: list[str] = []
    _proc.run(
        [PY, "-c", "pass", "--password", "hunter2", "API_TOKEN=abc123", "--token=zzz", "plain"],
        timeout=30,
        log=logged.append,
        secrets=["s3cr3t-value"],
    )
    line = logged[0]
    assert "hunter2" not in line and "abc123" not in line and "zzz" not in line
    assert "API_TOKEN=*****" in line and "--token=*****" in line and "plain" in line
    assert _proc.redact(["x", "pw=s3cr3t-value"], ["s3cr3t-value"]) == "x 'pw=*****'"
    # Secret values passed in the child's environment are masked where they appear.
    logged.clear()
    _proc.run([PY, "-c", "pass", "db-pass-123"], timeout=30, env={"DB_PASSWORD": "db-pass-123"}, log=logged.append)
    assert "db-pass-123" not in logged[0]


# A child that ignores SIGINT and records which signals reached it.
STUBBORN = textwrap.dedent(
    """
    import signal, sys, time
    log = open(sys.argv[1], "a", buffering=1)
    def note(sig, frame):
        log.write(signal.Signals(sig).name + "\\n")
        if sig == signal.SIGTERM and sys.argv[2] == "exit-on-term":
            sys.exit(0)
    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    log.write("ready\\n")
    while True:
        time.sleep(0.1)
    """
)


def _wait_ready(path: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and "ready" in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("child never became ready")


@pytest.mark.parametrize("mode", ["exit-on-term", "ignore-all"])
def test_stop_all_escalates_interrupt_terminate_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(_proc, "GRACE_INTERRUPT", 0.5)
    monkeypatch.setattr(_proc, "GRACE_TERMINATE", 0.5)
    log = tmp_path / "signals.log"
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _proc.run([PY, str(script), str(log), mode], timeout=60, log=None)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    _wait_ready(log)
    start = time.monotonic()
    _proc.stop_all()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - start < 5
    assert log.read_text().split()[1:] == ["SIGINT", "SIGTERM"]
    if mode == "exit-on-term":
        assert errors == []  # it exited 0 on SIGTERM: a clean end, no kill needed
    else:
        assert len(errors) == 1 and isinstance(errors[0], CommandFailed)
        assert errors[0].returncode == -signal.SIGKILL


def test_ctrl_c_while_waiting_stops_the_child(tmp_path: Path) -> None:
    """KeyboardInterrupt in the waiting thread becomes Interrupted, and the child is gone."""
    pidfile = tmp_path / "pid"
    main_thread = threading.get_ident()

    def interrupt_soon() -> None:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=interrupt_soon, daemon=True).start()
    with pytest.raises(Interrupted):
        _proc.run(
            [PY, "-c", f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(60)"],
            timeout=60,
            log=None,
        )
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_children_and_waits_are_logged_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline benchmark's log: one JSON line per child and per watched wait, nothing when unset."""
    import json

    log = tmp_path / "proc.jsonl"
    monkeypatch.delenv(_proc.PROC_LOG_ENV, raising=False)
    _proc.run([sys.executable, "-c", "pass"], timeout=30, quiet=True)
    _proc.wait(0.01)
    assert not log.exists()
    monkeypatch.setenv(_proc.PROC_LOG_ENV, str(log))
    before = time.time()
    _proc.run([sys.executable, "-c", "import time; time.sleep(0.2)"], timeout=30, quiet=True)
    _proc.wait(0.05)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["tool"] for r in lines] == [os.path.basename(sys.executable), "container wait"]
    child = lines[0]
    assert before <= child["start"] < child["end"] and child["end"] - child["start"] >= 0.2


def test_withheld_variables_reach_a_child_only_when_given_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    # The signing key and its password while a command runs: Compose and every other child would pass them on.
    monkeypatch.setenv("PLTEST_SIGNING_KEY", "pem-text")
    monkeypatch.setenv("PLTEST_KEY_PASSWORD", "hunter2")
    code = "import os; print(*(os.environ.get(k, '-') for k in ('PLTEST_SIGNING_KEY', 'PLTEST_KEY_PASSWORD', 'HOME')))"
    home = os.environ["HOME"]
    with _proc.withholding(["PLTEST_SIGNING_KEY"]):
        _proc.withhold(["PLTEST_KEY_PASSWORD"])
        assert _proc.run([PY, "-c", code], timeout=30, log=None).stdout.split() == ["-", "-", home]
        # Extra variables do not bring them back; the one a call gives explicitly (cosign's) reaches it.
        r = _proc.run([PY, "-c", code], timeout=30, env={"PLTEST_KEY_PASSWORD": "given", "X": "1"}, log=None)
        assert r.stdout.split() == ["-", "given", home]
        assert "PLTEST_SIGNING_KEY" not in _proc.inherited_environ()
    # The scope ends with the command: a later one (main() again, in-process) withholds only its own.
    assert _proc.run([PY, "-c", code], timeout=30, log=None).stdout.split() == ["pem-text", "hunter2", home]
