"""PyPI project names as Trivy looks them up, and as PyPI means them."""

from __future__ import annotations

import re

_MAX_SPELLINGS_SEPARATORS = 6


def pip_name(name: str) -> str:
    """A PyPI name as Trivy looks it up: lowercase, "_" as "-", dots KEPT (zope.interface)."""
    return name.lower().replace("_", "-")


def pip_canonical(name: str) -> str:
    """PEP 503's name: the one project behind every spelling ("Zope.Interface", "zope_interface")."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_spellings(name: str) -> list[str]:
    """Every key Trivy may look this project up under, the given spelling first.

    Trivy keeps dots and folds only "_" and case, so "zope.interface" and
    "zope-interface" are different keys to it, while PyPI treats them as one
    project. Feeds differ in which they write (GitHub keeps the dots, the PyPA
    database folds them), so each advisory is filed under every dot/dash
    spelling of its name (for up to six separators; beyond that, the
    all-dots and all-dashes spellings).
    """
    given = pip_name(name)
    parts = re.split(r"[-.]+", pip_canonical(name))
    seps = len(parts) - 1
    out = [given]
    if 0 < seps <= _MAX_SPELLINGS_SEPARATORS:
        for mask in range(1 << seps):
            spelled = parts[0] + "".join(("." if mask >> i & 1 else "-") + p for i, p in enumerate(parts[1:]))
            out.append(spelled)
    elif seps:
        out += ["-".join(parts), ".".join(parts)]
    return list(dict.fromkeys(out))
