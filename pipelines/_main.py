"""The console entry point, kept free of imports so Ctrl-C during start-up is a clean exit 130.

Importing the CLI pulls in the whole package; a Ctrl-C while that happens
must look like any other interruption, not like a crash.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return cli_main()
