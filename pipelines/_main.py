"""The console entry point, kept free of imports so Ctrl-C during start-up is a clean exit 130.

Importing the CLI pulls in the whole package; a Ctrl-C while that happens
must look like any other interruption, not like a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

EXIT_INTERRUPTED = 130


def interrupted_inside(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C the interpreter wrapped on its way out.

    A KeyboardInterrupt raised while a class body is set up (``__set_name__``,
    as ``cached_property`` does) reaches us as a RuntimeError caused by it; it
    is still the user's Ctrl-C, not a bug.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _leave_interrupted() -> int:
    # The interpreter's own shutdown, after a KeyboardInterrupt that landed inside an import,
    # can turn our 130 into death by SIGINT: everything is stopped and flushed by now, so leave.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def main() -> int:
    try:
        # From here on Ctrl-C is a KeyboardInterrupt this function and the CLI catch.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return _leave_interrupted()
    except Exception as exc:
        if not interrupted_inside(exc):
            raise
        print("interrupted", file=sys.stderr)
        return _leave_interrupted()
    try:
        code = cli_main()
    except KeyboardInterrupt:  # between the CLI's own handler and here
        print("interrupted", file=sys.stderr)
        return _leave_interrupted()
    if code == EXIT_INTERRUPTED:
        return _leave_interrupted()
    # The work is done and reported: a Ctrl-C now would land in the interpreter's own shutdown
    # (logging's atexit flush) and print "Exception ignored ... KeyboardInterrupt" under a finished
    # run. With bytecode a short command reaches this point within 0.2 s of starting.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return _leave(code)


def _leave(code: int) -> int:
    """Exit now with ``code``, without the interpreter's own shutdown.

    Everything is written, closed and waited for by now (reports, records,
    children; the stages' thread pools are joined or their work collected).
    What the shutdown would still do is tear down every module and collect
    the objects of pydantic, docker-py and the stage: 40-50 ms of every
    command, for nothing anyone sees.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
