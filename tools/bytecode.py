"""Keep the package's own bytecode current where Python is told not to write it.

Hosts and images that keep trees clean set PYTHONDONTWRITEBYTECODE: the
package is installed editable and its bytecode is written once per install,
so every module edited since then (a pull, a merge, a local change) was
compiled from source again by every `pipelines` start. The noxfile calls
:func:`refresh` before each session: it reads each module's bytecode header
(a few ms for the whole package) and compiles only the stale ones. Standard
library only: the noxfile runs it with nox's own interpreter.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _stale(src: Path) -> bool:
    """Whether the interpreter would not use ``src``'s cached bytecode (or it does not match the source)."""
    pyc = Path(importlib.util.cache_from_source(str(src)))
    try:
        with pyc.open("rb") as f:
            head = f.read(16)
        st = src.stat()
    except OSError:
        return True
    if len(head) < 16 or head[:4] != importlib.util.MAGIC_NUMBER:
        return True
    flags = int.from_bytes(head[4:8], "little")
    if flags & 0b1:  # hash-based (SOURCE_DATE_EPOCH builds): compare the source's hash
        try:
            return head[8:16] != importlib.util.source_hash(src.read_bytes())
        except OSError:
            return True
    mtime, size = int.from_bytes(head[8:12], "little"), int.from_bytes(head[12:16], "little")
    return mtime != int(st.st_mtime) & 0xFFFFFFFF or size != st.st_size & 0xFFFFFFFF


def stale_modules(package: Path) -> list[Path]:
    """The package's modules whose bytecode is missing or older than their source."""
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts and _stale(p))


def refresh(package: Path) -> list[Path]:
    """Compile the stale modules of ``package``; those that do not compile are left for the import to report."""
    stale = stale_modules(package)
    if stale:
        import py_compile

        for src in stale:
            try:
                py_compile.compile(str(src), doraise=True)
            except (py_compile.PyCompileError, OSError):
                continue  # a syntax error is the import's to report, with its line
    return stale
