"""Writing pipeline.toml text: the quoting init writes a new file with and harden edits an existing one with.

Reading stays in :mod:`.reader`; here are only the strings, so what one command writes the other recognises.
"""

from __future__ import annotations

import json
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# The golden images a Dockerfile starting FROM ${BUILDER_IMAGE} and ${RUNTIME_IMAGE} builds on, by build arg.
GOLDEN_BASES = {"BUILDER_IMAGE": "python-builder", "RUNTIME_IMAGE": "python-runtime"}


def q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def key(name: str) -> str:
    return name if _BARE_KEY.match(name) else q(name)


def inline(table: dict[str, str]) -> str:
    """An inline table of strings: ``{ A = "x", B = "y" }``."""
    return "{ " + ", ".join(f"{key(k)} = {q(v)}" for k, v in table.items()) + " }"


def golden_table(name: str) -> list[str]:
    """The ``[images.NAME]`` table taking the package's golden image of that name."""
    return [f"[images.{key(name)}]", f"golden = {q(name)}"]
