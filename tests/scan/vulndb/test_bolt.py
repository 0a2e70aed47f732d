"""The BoltDB writer and reader: round trips through every kind of page, meta checksums, a page used twice."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.scan.vulndb import boltdb as bolt


def read_tree(data: bytes) -> dict[bytes, Any]:
    reader = bolt.BoltReader(data)

    def bucket(items: Any) -> dict[bytes, Any]:
        return {k: bucket(reader.bucket_items(v)) if is_bucket else v for k, v, is_bucket in items}

    return bucket(reader.items(reader.root))


def test_bolt_round_trip_with_inline_paged_and_branched_buckets() -> None:
    tree: dict[bytes, Any] = {
        b"small": {b"b": b"2", b"a": b"1"},  # inline in its parent's leaf
        b"big-values": {f"k{i}".encode(): bytes([i]) * 9000 for i in range(5)},  # overflowing leaves
        b"many-keys": {f"{i:06d}".encode(): b"v" * 50 for i in range(20_000)},  # several branch levels
        b"nested": {b"inner": {b"deeper": {b"x": b""}}, b"plain": b"value"},
        b"empty": {},
        "ключ".encode(): {b"\x00\xff": b"binary"},
    }
    data = bolt.bolt_file(tree)
    assert len(data) % bolt.PAGE_SIZE == 0
    assert read_tree(data) == tree


def test_fnv1a_64_known_values() -> None:
    assert bolt.fnv1a_64(b"") == 0xCBF29CE484222325
    assert bolt.fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert bolt.fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_reader_rejects_a_page_used_twice() -> None:
    big = {f"{i:04d}".encode(): b"v" * 100 for i in range(100)}
    data = bytearray(bolt.bolt_file({b"a": big, b"b": dict(big)}))
    reader = bolt.BoltReader(bytes(data))
    headers = {key: value for key, value, _ in reader.items(reader.root)}
    at = data.find(headers[b"b"])
    data[at : at + 8] = headers[b"a"][:8]  # bucket b's root is now bucket a's root page
    reader = bolt.BoltReader(bytes(data))
    assert len(list(reader.bucket_items(headers[b"a"]))) == 100
    with pytest.raises(ValueError, match="referenced twice"):
        list(reader.bucket_items(bytes(data[at : at + 16])))
