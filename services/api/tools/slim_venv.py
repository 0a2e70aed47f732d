"""Slim the service's virtualenv in the builder stage: prune.txt, then bytecode.txt.

1. Every path prune.txt names is removed from site-packages. A pattern that
   matches nothing fails the build: after a dependency update the list must be
   looked at again, not silently drop nothing. A line's ``needs=MODULE`` words
   name the third-party modules without which the pruned modules cannot import;
   the build fails if one of them is installed after all.
2. Bytecode is written for the modules bytecode.txt names and everything they
   import, and for nothing else (pip installs with --no-compile): the runtime
   user cannot write bytecode, so what the service imports must have it, while
   modules it never imports keep their source only. The pycs are unchecked-hash:
   the image is immutable, so Python need not stat the source on each import.

Run with the venv's own interpreter's base (python3 in the builder).
"""

from __future__ import annotations

import argparse
import fnmatch
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

# Imports the listed modules in the venv, prints the site-packages source files then loaded.
LOADED = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f and f.endswith(".py"):
        print(f)
"""


def entries(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, pattern, needs) per non-comment line."""
    out = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *rest = line.split()
        needs = []
        for word in rest:
            if not word.startswith("needs="):
                sys.exit(f"{path}:{n}: unknown word {word!r}; a line is PATTERN [needs=MODULE ...]")
            needs.append(word.removeprefix("needs="))
        out.append((n, pattern, needs))
    return out


def installed(venv: Path, modules: list[str]) -> list[str]:
    """Those of the modules the venv's interpreter can find."""
    code = "import importlib.util, sys; print(*[m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-I", "-c", code, *modules], check=True, capture_output=True, text=True, timeout=60)
    return r.stdout.split()


def prune(venv: Path, site: Path, listing: Path) -> int:
    present = set(installed(venv, [m for _, _, needs in entries(listing) for m in needs]))
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() or p.is_symlink())
    removed = 0
    for n, pattern, needs in entries(listing):
        if present.intersection(needs):
            sys.exit(f"{listing}:{n}: {pattern} is pruned because {' '.join(needs)} is not installed, but it is")
        if pattern.endswith("/"):
            hits = [f for f in files if f.startswith(pattern)]
        else:
            hits = [f for f in files if fnmatch.fnmatchcase(f, pattern)]
        if not hits:
            sys.exit(f"{listing}:{n}: {pattern} matches nothing in {site}; update the list")
        for f in hits:
            (site / f).unlink(missing_ok=True)
            removed += 1
        if pattern.endswith("/"):
            shutil.rmtree(site / pattern, ignore_errors=True)
    return removed


def compile_imported(venv: Path, site: Path, listing: Path) -> int:
    modules = [pattern for _, pattern, _ in entries(listing)]
    loaded = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", LOADED, *modules],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.split()
    done = 0
    for src in sorted(set(loaded)):
        path = Path(src)
        if not path.is_relative_to(site):
            continue
        cfile = path.parent / "__pycache__" / f"{path.stem}.cpython-{sys.version_info[0]}{sys.version_info[1]}.pyc"
        py_compile.compile(
            src, cfile=str(cfile), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        done += 1
    return done


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--prune", type=Path, required=True)
    ap.add_argument("--bytecode", type=Path, required=True)
    args = ap.parse_args()
    venv: Path = args.venv
    sites = list((venv / "lib").glob("python3*/site-packages"))
    if len(sites) != 1:
        sys.exit(f"slim_venv: expected one site-packages under {venv}/lib, found {sites}")
    site = sites[0]
    if any(site.rglob("*.pyc")):
        sys.exit(f"slim_venv: {site} already has bytecode; install with pip --no-compile")
    removed = prune(venv, site, args.prune)
    compiled = compile_imported(venv, site, args.bytecode)
    print(f"slim_venv: {removed} files pruned, {compiled} modules compiled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
