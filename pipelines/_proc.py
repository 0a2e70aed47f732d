"""The only place in the package that starts child processes.

Argument lists only, never a shell; every call has a timeout; command lines are
logged with secrets masked; Ctrl-C is passed on to the child and escalates
interrupt -> terminate -> kill so no build or container client is orphaned.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandFailed, CommandTimeout, Interrupted, ToolNotFound

# Seconds a child gets after SIGINT, then after SIGTERM, before SIGKILL.
GRACE_INTERRUPT = 5.0
GRACE_TERMINATE = 5.0
TAIL_LINES = 40

_SECRET_FLAG = re.compile(r"^--?(password|passwd|token|api[-_]?key)$", re.IGNORECASE)
_SECRET_ASSIGN = re.compile(
    r"(?i)\b([A-Z0-9_]*(PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY)[A-Z0-9_]*)=([^\s,]+)"
)
MASK = "*****"

Log = Callable[[str], None]

# Children alive right now, from any thread: Ctrl-C lands in the main thread
# while parallel builds run their children from worker threads.
_live: set[subprocess.Popen[str]] = set()
_live_lock = threading.Lock()


# Variables no child inherits (the signing key and its password while a command runs): a child that needs
# one (cosign) is given it in ``env``. One set for the process, read by every thread that starts a child.
_withheld: frozenset[str] = frozenset()


def withhold(names: Iterable[str]) -> None:
    """From now on, within the current :func:`withholding` scope, no child inherits these variables."""
    global _withheld
    _withheld = _withheld | {n for n in names if n}


@contextmanager
def withholding(names: Iterable[str] = ()) -> Iterator[None]:
    """A scope (one CLI command) whose children inherit none of ``names`` nor what :func:`withhold` adds in it."""
    global _withheld
    before = _withheld
    withhold(names)
    try:
        yield
    finally:
        _withheld = before


def inherited_environ(unset_prefix: str = "") -> dict[str, str]:
    """The environment a child inherits: ours, without the withheld variables (and ``unset_prefix``'s)."""
    return {
        k: v for k, v in os.environ.items() if k not in _withheld and not (unset_prefix and k.startswith(unset_prefix))
    }


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def redact(argv: Sequence[str], secrets: Iterable[str] = ()) -> str:
    """The command line as it may be shown: known secret values masked."""
    secrets = [s for s in secrets if s]
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        if _SECRET_FLAG.match(arg):
            hide_next = True
            shown.append(arg)
            continue
        if "=" in arg and _SECRET_FLAG.match(arg.split("=", 1)[0]):
            shown.append(arg.split("=", 1)[0] + "=" + MASK)
            continue
        arg = _SECRET_ASSIGN.sub(lambda m: f"{m.group(1)}={MASK}", arg)
        for s in secrets:
            arg = arg.replace(s, MASK)
        shown.append(arg)
    return shlex.join(shown)


def _stop(proc: subprocess.Popen[str]) -> None:
    """Escalate SIGINT -> SIGTERM -> SIGKILL on the child's process group."""
    for sig, grace in ((signal.SIGINT, GRACE_INTERRUPT), (signal.SIGTERM, GRACE_TERMINATE), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if grace is None:
            proc.wait()
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_all() -> None:
    """Stop every child still running (Ctrl-C at the top of the program)."""
    with _live_lock:
        procs = list(_live)
    threads = [threading.Thread(target=_stop, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    check: bool = True,
    what: str | None = None,
    hint: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    unset_prefix: str = "",
    input: str | None = None,
    stream: Log | None = None,
    secrets: Iterable[str] = (),
    log: Log | None = _stderr_log,
    quiet: bool = False,
    passthrough: bool = False,
) -> Result:
    """Run ``argv`` and return its result.

    ``stream``: when given, stdout and stderr are merged and each line is
    passed to it as it arrives (build progress); otherwise both are captured.
    ``passthrough``: the child writes straight to our stdout/stderr (BuildKit's
    terminal progress needs the real terminal); nothing is captured.
    ``check``: raise :class:`CommandFailed` on a non-zero exit.
    ``env``: entries added to (not replacing) the inherited environment; the only way a withheld
    variable (see :func:`withhold`) reaches a child.
    ``unset_prefix``: variables starting with it are left out of the child's environment.
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("empty argv")
    secrets = list(secrets) + [v for v in (env or {}).values() if _looks_secret_value(env or {}, v)]
    shown = redact(args, secrets)
    if log is not None and not quiet:
        log(f"$ {shown}")
    full_env = None
    if env or unset_prefix or _withheld:
        full_env = inherited_environ(unset_prefix)
        full_env.update(env or {})
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=None if passthrough else subprocess.PIPE,
            stderr=None if passthrough else (subprocess.STDOUT if stream else subprocess.PIPE),
            text=True,
            errors="replace",
            # Own process group: a terminal's Ctrl-C reaches us, and we decide
            # how the child is stopped (and that it is stopped at all).
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolNotFound(
            f"{args[0]} was not found",
            seen=f"tried to run: {shown}",
            hint="install it (see the README's prerequisites) or put it on PATH",
        ) from exc
    except PermissionError as exc:
        raise ToolNotFound(f"{args[0]} is not executable", seen=str(exc)) from exc

    with _live_lock:
        _live.add(proc)
    try:
        if stream is not None and not passthrough:
            stdout, stderr = _pump(proc, stream, timeout, input), ""
        else:
            stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise CommandTimeout(
            f"{what or args[0]} did not finish within {timeout:.0f} s and was stopped",
            argv=args,
            seen=shown,
            hint=hint or "raise the timeout in the config if the work is legitimately slow",
        ) from None
    except KeyboardInterrupt:
        _stop(proc)
        raise Interrupted(f"interrupted while running {what or args[0]}; the child process was stopped") from None
    finally:
        with _live_lock:
            _live.discard(proc)
        for stream_ in (proc.stdin, proc.stdout, proc.stderr):
            if stream_ is not None:
                stream_.close()
    seconds = time.monotonic() - start
    if os.environ.get(PROC_LOG_ENV):
        tool = os.path.basename(args[0])
        record_interval(f"{tool} {args[1]}" if tool == "docker" and len(args) > 1 else tool, seconds)
    result = Result(tuple(args), proc.returncode, stdout or "", stderr or "", seconds)
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"{what or args[0]} failed with exit code {proc.returncode}",
            argv=args,
            returncode=proc.returncode,
            seen=f"$ {shown}\n" + tail(result.stderr or result.stdout),
            hint=hint,
        )
    return result


# When set, every child's tool and wall-clock interval is appended here as one
# JSON line: `pipelines bench --pipeline` measures the time spent outside them.
PROC_LOG_ENV = "PIPELINES_PROC_LOG"


def wait(seconds: float, on: str = "container wait") -> None:
    """Sleep while watching something else work (a container starting, a stack answering).

    The same as time.sleep, but the pipeline benchmark counts it as time of
    the tools being watched, not as the package's own.
    """
    time.sleep(seconds)
    record_interval(on, seconds)


def record_interval(tool: str, seconds: float) -> None:
    """Append one finished interval of `tool` to the benchmark's log, if one is asked for."""
    path = os.environ.get(PROC_LOG_ENV)
    if not path:
        return
    import json

    end = time.time()
    line = json.dumps({"tool": tool, "start": end - seconds, "end": end}) + "\n"
    # One short append per child: lines from parallel processes do not interleave.
    with open(path, "a") as f:
        f.write(line)


def _looks_secret_value(env: Mapping[str, str], value: str) -> bool:
    return any(_SECRET_ASSIGN.match(f"{k}=x") and v == value for k, v in env.items())


def tail(text: str, lines: int = TAIL_LINES) -> str:
    parts = text.rstrip().splitlines()
    if len(parts) > lines:
        return "\n".join([f"... ({len(parts) - lines} earlier lines)", *parts[-lines:]])
    return "\n".join(parts)


def _pump(proc: subprocess.Popen[str], stream: Log, timeout: float, input: str | None) -> str:
    """Forward merged output line by line, keeping the tail for the result."""
    if proc.stdout is None:  # a programming error: _pump needs the merged pipe run() opens
        raise RuntimeError("_pump needs a child started with stdout=PIPE")
    lines: collections.deque[str] = collections.deque(maxlen=5000)
    if input is not None and proc.stdin is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        _stop(proc)

    # Reading blocks until the child closes its output, so the deadline is
    # enforced from a timer thread rather than between lines.
    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            stream(line)
        proc.wait()
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return "\n".join(lines)
