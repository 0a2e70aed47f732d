"""The one boundary where results and errors become output and exit codes.

0 success, 1 the stage said no, 2 it could not run, 3 a bug in the pipeline
(the traceback goes to a crash log, never to the user as a verdict), 130
interrupted.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__, _proc, result
from .. import config as config_mod
from .._main import interrupted_inside
from ..errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, InputError, PipelineError
from . import commands, parser
from .reports import emit


def run(args: argparse.Namespace) -> int:
    # What commands.load() withholds from children lasts for this command only (main() may run again in-process).
    with _proc.withholding():
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    ctx, res = commands.guarded(args)
    try:
        emit(res, args.format, args.output, artifacts=ctx.artifacts if ctx is not None else None)
    except InputError:
        if not res.error:
            raise
        # The stage's own error first: an unwritable report must not hide why the stage stopped.
        print(f"error: {res.error}", file=sys.stderr)
        raise
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    # The rest was examined and reported; these could not be, so the run is no verdict (exit 2).
    for problem in res.unusable:
        print(f"error: {problem}", file=sys.stderr)
    return result.exit_code(res)


def crash_log(exc: BaseException, argv: Sequence[str]) -> Path:
    """Write the traceback of a bug where a person will look: ARTIFACTS/logs, else a temp file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = f"pipelines {__version__}: internal error\nargv: {list(argv)}\n\n" + "".join(traceback.format_exception(exc))
    candidates = []
    try:
        candidates.append(config_mod.load(config_mod.find_config()).project.artifacts / "logs")
    except Exception as cfg_exc:  # the config may be what broke; fall back below
        text += f"\n(the config could not name the artifacts directory: {type(cfg_exc).__name__})\n"
    candidates += [Path.cwd() / "artifacts" / "logs", Path(os.environ.get("TMPDIR", "/tmp"))]  # noqa: S108
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    raise OSError("no directory to write the crash log to")


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The argument parser, built once a process: parsing leaves it unchanged, and building it costs
    about 15 ms (argparse looks up a translation for every help text) that callers running many
    commands in one process would pay each time."""
    return parser.build()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        return run(args)
    except PipelineError as exc:
        print(exc.render(), file=sys.stderr)
        if exc.exit_code == EXIT_INTERRUPTED:
            _proc.stop_all()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: stopping child processes", file=sys.stderr)
        _proc.stop_all()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SystemExit:
        raise  # argparse's own usage errors (exit 2) and --help/--version (exit 0)
    except Exception as exc:
        _proc.stop_all()
        if interrupted_inside(exc):
            print("interrupted: stopping child processes", file=sys.stderr)
            return EXIT_INTERRUPTED
        try:
            where = f"details in {crash_log(exc, argv)}"
        except OSError:
            where = "no crash log could be written"
        print(
            f"error: internal error (a bug in pipelines): {type(exc).__name__}: {str(exc)[:200]}; {where}",
            file=sys.stderr,
        )
        return EXIT_BUG
