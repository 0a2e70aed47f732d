"""The ``pipelines`` command: one subcommand per stage.

:mod:`.parser` declares the command line; :mod:`.commands` turns parsed flags
into a stage's options and calls its ``run(context, options) -> Result``;
:mod:`.reports` writes a Result in every format and records its verdict;
:mod:`.boundary` is the one place where results and errors become output and
exit codes (0 ok, 1 the stage said no, 2 it could not run, 3 a bug, with its
crash log, 130 interrupted).
"""

from __future__ import annotations

from .boundary import crash_log, main
from .commands import STAGES
from .reports import emit

__all__ = ["STAGES", "crash_log", "emit", "main"]
