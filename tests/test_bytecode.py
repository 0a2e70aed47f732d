"""The package's bytecode refresh (tools.bytecode), on real files and the real compiler."""

from __future__ import annotations

import importlib.util
import os
import py_compile
from pathlib import Path

from tests.harness import ROOT
from tools import bytecode


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text("def f() -> int:\n    return 2\n")
    return pkg


def test_only_missing_or_outdated_bytecode_is_compiled(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    mod = pkg / "sub" / "mod.py"
    assert len(bytecode.refresh(pkg)) == 3  # nothing compiled yet
    assert bytecode.stale_modules(pkg) == [] and bytecode.refresh(pkg) == []
    # An edit: a new size and mtime.
    mod.write_text("def f() -> int:\n    return 3  # changed\n")
    assert bytecode.stale_modules(pkg) == [mod]
    assert bytecode.refresh(pkg) == [mod] and bytecode.stale_modules(pkg) == []
    # The same size, another mtime (a checkout of another version of the file).
    st = mod.stat()
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert bytecode.stale_modules(pkg) == [mod]
    bytecode.refresh(pkg)
    # What was written is what the interpreter reads for this source.
    pyc = Path(importlib.util.cache_from_source(str(mod)))
    assert pyc.read_bytes()[:4] == importlib.util.MAGIC_NUMBER
    assert bytecode.stale_modules(pkg) == []


def test_hash_based_bytecode_is_judged_by_the_sources_hash(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    mod = pkg / "sub" / "mod.py"
    for src in (pkg / "__init__.py", pkg / "sub" / "__init__.py", mod):
        py_compile.compile(str(src), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH, doraise=True)
    assert bytecode.stale_modules(pkg) == []
    st = mod.stat()
    mod.write_text("def f() -> int:\n    return 9\n")  # same size, same mtime: only the hash tells
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert bytecode.stale_modules(pkg) == [mod]


def test_a_module_that_does_not_compile_is_left_for_the_import_to_report(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    bad = pkg / "bad.py"
    bad.write_text("def broken(:\n")
    assert bad in bytecode.refresh(pkg)
    assert bytecode.stale_modules(pkg) == [bad]  # still stale: nothing was written for it


def test_the_noxfile_refreshes_the_package_before_a_session_that_reuses_its_install() -> None:
    text = (ROOT / "noxfile.py").read_text()
    install = text[text.index("def _install(") :]
    assert "_fresh_bytecode(session)" in install.split("session.install(")[0]
    assert 'ROOT / "tools" / "bytecode.py"' in text
