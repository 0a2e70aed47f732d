"""Build, check and ship hardened container images of Python services."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # Nothing has started yet (no child, no temp file): leave at once, as an
    # interruption, instead of a traceback from the middle of an import.
    _sys.stderr.write("interrupted\n")
    _os._exit(130)


# Only when this package is the program being started (`pipelines ...` or
# `python -m pipelines ...`), never when it is imported as a library: the
# entry point puts Python's own handler back once it can catch Ctrl-C itself.
if _os.path.basename(_sys.argv[0]) in ("pipelines", "-m") and _signal.getsignal(_signal.SIGINT) is (
    _signal.default_int_handler
):
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
