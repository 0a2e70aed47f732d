"""The parsed-advisory cache of an OSV directory: the same records as a fresh read, and never a stale one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines.scan.vulndb import offline
from tests.harness import osv_dir


@pytest.fixture
def snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "osv"
    shutil.copytree(osv_dir("pypa"), src)
    return src


def _load(src: Path) -> offline.AdvisoryDir:
    return offline.load_advisory_dir(
        src, provenance={"repository": "github.com/pypa/advisory-database", "commit": "c", "date": "2026-07-23"}
    )


def test_a_second_read_comes_from_the_cache_with_the_same_records(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _load(snapshot)
    assert list((snapshot.parent / "cache" / "pipelines" / "osv").glob("*.json"))

    def unread(file: Path) -> object:
        raise AssertionError(f"{file} was parsed again")

    monkeypatch.setattr(offline, "read_record_file", unread)
    assert repr(_load(snapshot)) == repr(first)


def test_a_changed_or_added_file_is_read_again(snapshot: Path) -> None:
    before = _load(snapshot)
    victim = sorted(p for p in snapshot.rglob("*") if p.suffix in (".json", ".yaml", ".yml"))[0]
    victim.write_text("{not osv")  # a changed size: the cache no longer speaks for the directory
    with pytest.raises(Exception, match=str(victim.name)):
        _load(snapshot)
    victim.unlink()
    assert _load(snapshot).records == before.records - 1


def test_a_same_size_change_with_the_old_mtime_is_read_again(snapshot: Path) -> None:
    """The key is the content: an edit that keeps the size and the mtime still reads the file again."""
    _load(snapshot)
    victim = snapshot / "PYSEC-2020-341.yaml"
    st = victim.stat()
    text = victim.read_text()
    edited = text.replace("PYSEC-2020-341", "PYSEC-2020-999", 1)
    assert len(edited) == len(text) and edited != text
    victim.write_text(edited)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "PYSEC-2020-999" in {a.id for a in _load(snapshot).advisories}


def test_a_fresh_copy_of_the_same_snapshot_comes_from_the_cache(
    snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone or copy has new mtimes but the same data: it is not parsed again."""
    first = _load(snapshot)
    copy = tmp_path / "copy"
    shutil.copytree(snapshot, copy, copy_function=shutil.copyfile)  # new mtimes

    def unread(file: Path) -> object:
        raise AssertionError(f"{file} was parsed again")

    monkeypatch.setattr(offline, "read_record_file", unread)
    assert [a.id for a in _load(copy).advisories] == [a.id for a in first.advisories]


def test_an_unreadable_cache_is_only_slower(snapshot: Path) -> None:
    first = _load(snapshot)
    for f in (snapshot.parent / "cache" / "pipelines" / "osv").glob("*.json"):
        f.write_text("[]")
    assert repr(_load(snapshot)) == repr(first)
    os.chmod(snapshot.parent / "cache" / "pipelines" / "osv", 0o500)
    try:
        assert repr(_load(snapshot)) == repr(first)
    finally:
        os.chmod(snapshot.parent / "cache" / "pipelines" / "osv", 0o700)
