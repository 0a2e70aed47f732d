"""Assemble a distroless root filesystem from installed Debian packages.

Runs inside the runtime image's assembly stage (Debian's python3 is there).
Starting from the root packages, it follows Depends/Pre-Depends through the
dpkg database, skips the excluded packages, copies every file the remaining
packages own into --out, writes their dpkg status data where scanners look for
it, and adds the nonroot user. It fails if a shell or package manager slipped
in, so a bad package list cannot produce an image that quietly has one.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

FORBIDDEN = ("bin/sh", "bin/bash", "bin/dash", "bin/apt", "bin/apt-get", "bin/dpkg")
# Documentation is dropped to keep the image small; copyright files stay
# because licence scanners read them.
DROP = re.compile(
    r"^/usr/share/(man|info|lintian|locale|bug|doc-base)/|^/usr/share/doc/(?!.*/copyright$)"
    # Extension modules whose libraries exclude.txt leaves out.
    r"|/lib-dynload/(readline|_curses|_curses_panel|_dbm|nis)\.cpython-"
)
# Files that maintainer scripts generate, so dpkg does not list them.
GENERATED = ("/etc/ssl/certs/ca-certificates.crt",)
MERGED = ("bin", "sbin", "lib", "lib64")


def read_list(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def stdlib_patterns(lines: list[str]) -> list[str]:
    """drop.txt's lines with {stdlib} made this Python's standard library directory (no trailing slash)."""
    return [line.replace("{stdlib}", STDLIB.rstrip("/")) for line in lines]


def dpkg_query(fmt: str, pkg: str) -> str:
    return subprocess.run(
        ["dpkg-query", "-W", "-f", fmt, pkg], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", pkg], capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and r.stdout.endswith(" installed")


def closure(roots: list[str], exclude: set[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        pkg = todo.pop()
        if pkg in seen or pkg in exclude:
            continue
        if not installed(pkg):
            sys.exit(f"assemble: package {pkg} is needed but not installed in the assembly stage")
        seen.add(pkg)
        deps = dpkg_query("${Pre-Depends}, ${Depends}", pkg)
        for clause in deps.split(","):
            alternatives = [a.strip().split(" ", 1)[0].split(":", 1)[0] for a in clause.split("|")]
            alternatives = [a for a in alternatives if a]
            if not alternatives:
                continue
            # Take the first alternative that is installed; virtual packages
            # resolve to whatever real package provides them here.
            chosen = next((a for a in alternatives if installed(a)), None)
            if chosen is None:
                chosen = provider(alternatives[0])
            if chosen and chosen not in exclude:
                todo.append(chosen)
    return sorted(seen)


def provider(virtual: str) -> str | None:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Provides}\n"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    for line in out.splitlines():
        name, _, provides = line.partition(" ")
        if virtual in [p.strip().split(" ", 1)[0] for p in provides.split(",")]:
            return name
    return None


def dropped(path: str, drop: list[str]) -> bool:
    """Whether drop.txt leaves this (real, merged-/usr) path out."""
    for pattern in drop:
        if pattern.endswith("/"):
            if path.startswith(pattern):
                return True
        elif fnmatch.fnmatchcase(path, pattern):
            return True
    return False


def copy_entry(src: str, out: Path, drop: list[str]) -> None:
    if DROP.search(src):
        return
    if not os.path.lexists(src) or (os.path.isdir(src) and not os.path.islink(src)):
        return
    # Resolve the directory part through the merged-/usr symlinks so every file
    # lands at its real path; the symlinks themselves are recreated once.
    real_dir = os.path.realpath(os.path.dirname(src))
    real = os.path.join(real_dir, os.path.basename(src))
    if dropped(real, drop):
        return
    dest = out / real_dir.lstrip("/") / os.path.basename(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(src):
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        os.symlink(os.readlink(src), dest)
    else:
        shutil.copy2(src, dest)


# The standard library of the python3 being assembled: this script runs on that very interpreter, so
# one definition serves every Debian suite's Python (drop.txt names it as {stdlib}).
STDLIB = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"
# Imports the listed modules and prints the stdlib source files then loaded.
LOADED = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f and f.endswith(".py"):
        print(f)
"""


def precompile(modules: list[str], out: Path) -> int:
    """Bytecode for the listed stdlib modules and all they import, written into out.

    Unchecked-hash pycs: the image is immutable, so Python need not stat the
    source on every import. Modules drop.txt left out are skipped.
    """
    import py_compile

    files = subprocess.run(
        [sys.executable, "-I", "-c", LOADED, *modules], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    done = 0
    for src in sorted(set(files)):
        if not src.startswith(STDLIB) or not (out / src.lstrip("/")).is_file():
            continue
        rel = Path(src).relative_to(STDLIB)
        cfile = out / STDLIB.lstrip("/") / rel.parent / "__pycache__" / f"{rel.stem}.{sys.implementation.cache_tag}.pyc"
        py_compile.compile(
            src, cfile=str(cfile), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        done += 1
    return done


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", type=Path, required=True)
    ap.add_argument("--exclude", type=Path, required=True)
    ap.add_argument("--drop", type=Path, required=True)
    ap.add_argument("--precompile", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    drop = stdlib_patterns(read_list(args.drop))
    out: Path = args.out
    out.mkdir(parents=True)
    for d in MERGED:
        (out / "usr" / d).mkdir(parents=True, exist_ok=True)
        os.symlink(f"usr/{d}", out / d)

    pkgs = closure(read_list(args.roots), set(read_list(args.exclude)))
    status_dir = out / "var/lib/dpkg/status.d"
    status_dir.mkdir(parents=True)
    for pkg in pkgs:
        for path in dpkg_query("${db-fsys:Files}", pkg).split("\n"):
            path = path.strip()
            if path:
                copy_entry(path, out, drop)
        name = pkg.split(":", 1)[0]
        status = subprocess.run(["dpkg-query", "-s", pkg], check=True, capture_output=True, text=True, timeout=60)
        (status_dir / name).write_text(status.stdout)
        for md5 in (Path(f"/var/lib/dpkg/info/{name}.md5sums"), Path(f"/var/lib/dpkg/info/{name}:amd64.md5sums")):
            if md5.exists():
                shutil.copy2(md5, status_dir / f"{name}.md5sums")
    for path in GENERATED:
        copy_entry(path, out, drop)
    compiled = precompile(read_list(args.precompile), out)

    etc = out / "etc"
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    for d, mode in (("tmp", 0o1777), ("home/nonroot", 0o700), ("root", 0o700)):
        (out / d).mkdir(parents=True, exist_ok=True)
        os.chmod(out / d, mode)
    os.chown(out / "home/nonroot", 65532, 65532)

    bad = [f for f in FORBIDDEN if os.path.lexists(out / "usr" / f)]
    if bad:
        sys.exit(f"assemble: forbidden binaries in the runtime rootfs: {', '.join(bad)}; extend exclude.txt")
    print(f"assemble: {len(pkgs)} packages: {' '.join(pkgs)}; {compiled} stdlib modules precompiled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
