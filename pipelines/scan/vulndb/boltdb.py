"""A minimal BoltDB (etcd-io/bbolt) file writer and reader.

Trivy keeps its vulnerability database in a BoltDB file. :mod:`.build`
decides what goes into it; this module lays it out on disk and reads it back.

:func:`bolt_file` writes bbolt's version 2 format with 4 KiB pages: two meta
pages (FNV-1a checksummed), an empty freelist page, and every bucket as a
B+tree of leaf pages (a big leaf spills over several pages) under as many
branch levels as its size needs. A small bucket without sub-buckets is stored
inline in its parent's leaf, as bbolt does.

The writer only ever writes a fresh file in one go and never updates one, so it
needs none of bbolt's transaction machinery: no copy-on-write, no pages to
free, and both meta pages point at the one tree there is.

:class:`BoltReader` walks such a file back, checking meta checksums, page
bounds and that no page is referenced twice: anything inconsistent is a
ValueError, so a damaged database is reported rather than trusted.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TypeAlias

PAGE_SIZE = 4096
_MAGIC = 0xED0CDAED
_BOLT_VERSION = 2
_BRANCH, _LEAF, _META, _FREELIST = 0x01, 0x02, 0x04, 0x10
_BUCKET_LEAF_FLAG = 0x01

_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
_BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, ksize, child pgid
_BUCKET_HEADER = struct.Struct("<QQ")  # root pgid (0 = inline), sequence
# magic, version, page size, flags, root bucket (root, sequence), freelist, high-water pgid, txid
_META_FIELDS = struct.Struct("<IIIIQQQQQ")
_CHECKSUM = struct.Struct("<Q")

_FIRST_DATA_PAGE = 3  # 0 and 1: meta, 2: freelist
# Nodes are cut at about this size: big enough that leaves do span overflow
# pages, small enough that a lookup touches little. Element counts are u16.
_NODE_TARGET = 4 * PAGE_SIZE
_MAX_ELEMENTS = 0xFFFF
# bbolt itself keeps a bucket inline (inside its parent's leaf) below this size.
_INLINE_MAX = PAGE_SIZE // 4
_MAX_DEPTH = 64  # deeper than any real tree: only a damaged file gets there

# What bolt_file writes: a dict is a bucket, a bytes value a plain key's value.
Tree: TypeAlias = "dict[bytes, bytes | Tree]"
_Item: TypeAlias = tuple[bytes, bytes, int]  # key, value, element flags


def fnv1a_64(data: bytes) -> int:
    """The FNV-1a 64-bit hash bbolt checksums its meta pages with."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bolt_file(tree: Tree) -> bytes:
    """A complete BoltDB file holding ``tree``: nested dicts are buckets, bytes values are keys."""
    return _BoltWriter().file(tree)


class _BoltWriter:
    def __init__(self) -> None:
        self._pages: list[bytes] = []
        self._next = _FIRST_DATA_PAGE

    def file(self, tree: Tree) -> bytes:
        root = self._btree(self._items(tree))
        freelist = _PAGE_HEADER.pack(2, _FREELIST, 0, 0).ljust(PAGE_SIZE, b"\0")
        # bbolt opens the valid meta page with the higher txid; both are valid here.
        metas = [self._meta(txid, root) for txid in (0, 1)]
        return b"".join([*metas, freelist, *self._pages])

    def _meta(self, txid: int, root: int) -> bytes:
        fields = _META_FIELDS.pack(_MAGIC, _BOLT_VERSION, PAGE_SIZE, 0, root, 0, 2, self._next, txid)
        meta = fields + _CHECKSUM.pack(fnv1a_64(fields))
        return (_PAGE_HEADER.pack(txid, _META, 0, 0) + meta).ljust(PAGE_SIZE, b"\0")

    def _items(self, tree: Tree) -> list[_Item]:
        items: list[_Item] = []
        for key in sorted(tree):  # bbolt binary-searches keys in bytewise order
            if not key:
                raise ValueError("BoltDB keys must not be empty")
            value = tree[key]
            if isinstance(value, dict):
                items.append((key, self._bucket(value), _BUCKET_LEAF_FLAG))
            else:
                items.append((key, value, 0))
        return items

    def _bucket(self, tree: Tree) -> bytes:
        """The value a bucket is stored as in its parent: its header, and its leaf when inline."""
        items = self._items(tree)
        body = _leaf_body(items)
        if len(body) + _PAGE_HEADER.size <= _INLINE_MAX and not any(flags for _, _, flags in items):
            return _BUCKET_HEADER.pack(0, 0) + _PAGE_HEADER.pack(0, _LEAF, len(items), 0) + body
        return _BUCKET_HEADER.pack(self._btree(items), 0)

    def _btree(self, items: list[_Item]) -> int:
        """Write ``items`` as leaves plus branch levels; the root page's id."""
        sizes = [_LEAF_ELEMENT.size + len(key) + len(value) for key, value, _ in items]
        # (first key, page id) of each node of the level just written; an empty tree is one empty leaf.
        level = [
            (items[run.start][0] if run else b"", self._page(_LEAF, len(run), _leaf_body(items[run.start : run.stop])))
            for run in _runs(sizes)
        ]
        while len(level) > 1:
            sizes = [_BRANCH_ELEMENT.size + len(key) for key, _ in level]
            level = [
                (level[run.start][0], self._page(_BRANCH, len(run), _branch_body(level[run.start : run.stop])))
                for run in _runs(sizes)
            ]
        return level[0][1]

    def _page(self, flags: int, count: int, body: bytes) -> int:
        pages = -(-(_PAGE_HEADER.size + len(body)) // PAGE_SIZE)
        pgid = self._next
        self._pages.append((_PAGE_HEADER.pack(pgid, flags, count, pages - 1) + body).ljust(pages * PAGE_SIZE, b"\0"))
        self._next += pages
        return pgid


def _runs(sizes: list[int]) -> Iterator[range]:
    """Split elements of these sizes into consecutive runs, one node each; always at least one run."""
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (total + size > _NODE_TARGET or i - start == _MAX_ELEMENTS):
            yield range(start, i)
            start, total = i, 0
        total += size
    yield range(start, len(sizes))


def _leaf_body(items: list[_Item]) -> bytes:
    # Each element's pos counts from the element itself to its key; the value follows the key.
    head = bytearray()
    data = bytearray()
    end_of_elements = len(items) * _LEAF_ELEMENT.size
    for i, (key, value, flags) in enumerate(items):
        pos = end_of_elements + len(data) - i * _LEAF_ELEMENT.size
        head += _LEAF_ELEMENT.pack(flags, pos, len(key), len(value))
        data += key + value
    return bytes(head + data)


def _branch_body(children: list[tuple[bytes, int]]) -> bytes:
    head = bytearray()
    data = bytearray()
    end_of_elements = len(children) * _BRANCH_ELEMENT.size
    for i, (key, pgid) in enumerate(children):
        pos = end_of_elements + len(data) - i * _BRANCH_ELEMENT.size
        head += _BRANCH_ELEMENT.pack(pos, len(key), pgid)
        data += key
    return bytes(head + data)


class BoltReader:
    """Reads a BoltDB file back, checking as it goes; every inconsistency is a ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.page_size, self.root, self.high_water = self._best_meta()
        self._visited: set[int] = set()

    def _best_meta(self) -> tuple[int, int, int]:
        first = self._meta_at(0, 0)
        # The second meta page sits one page in, and the page size is only
        # known from a valid meta page; without one, try every size bbolt allows.
        sizes = [first[1]] if isinstance(first, tuple) else [1024 << i for i in range(15)]
        tries = [self._meta_at(1, size) for size in sizes]
        second = next((m for m in tries if isinstance(m, tuple)), None)
        found = [m for m in (first, second) if isinstance(m, tuple)]
        if not found:
            at_default = tries[sizes.index(PAGE_SIZE)] if PAGE_SIZE in sizes else tries[0]
            raise ValueError(f"meta page 0: {first}; meta page 1: {at_default}")
        _, page_size, root, high_water = max(found)  # bbolt, too, trusts the newer valid meta page
        if len(self.data) < high_water * page_size:
            raise ValueError(f"file is {len(self.data)} bytes, its pages need {high_water * page_size}")
        return page_size, root, high_water

    def _meta_at(self, index: int, offset: int) -> tuple[int, int, int, int] | str:
        """(txid, page size, root, high water) of a valid meta page at ``offset``, else what is wrong."""
        start = offset + _PAGE_HEADER.size
        raw = bytes(self.data[start : start + _META_FIELDS.size + _CHECKSUM.size])
        if len(raw) < _META_FIELDS.size + _CHECKSUM.size:
            return "truncated"
        fields = raw[: _META_FIELDS.size]
        magic, version, page_size, _, root, _, _, high_water, txid = _META_FIELDS.unpack(fields)
        (checksum,) = _CHECKSUM.unpack(raw[_META_FIELDS.size :])
        if magic != _MAGIC or version != _BOLT_VERSION:
            return "not a BoltDB v2 meta page"
        if checksum != fnv1a_64(fields):
            return "checksum mismatch"
        if page_size < 512 or page_size & (page_size - 1) or (index == 1 and offset != page_size):
            return f"implausible page size {page_size}"
        return txid, page_size, root, high_water

    def _page(self, pgid: int) -> tuple[int, int, memoryview]:
        if not _FIRST_DATA_PAGE <= pgid < self.high_water:
            raise ValueError(f"page id {pgid} out of range")
        start = pgid * self.page_size
        page_id, flags, count, overflow = _PAGE_HEADER.unpack(self.data[start : start + _PAGE_HEADER.size])
        end = start + (overflow + 1) * self.page_size
        if page_id != pgid or end > len(self.data):
            raise ValueError(f"page {pgid} is damaged (header says id {page_id}, {overflow} overflow pages)")
        return flags, count, self.data[start:end]

    def items(self, pgid: int, depth: int = 0) -> Iterator[tuple[bytes, bytes, bool]]:
        """Every key/value of the B+tree rooted at ``pgid``, with whether it is a sub-bucket."""
        if depth > _MAX_DEPTH:
            raise ValueError("tree too deep")
        # Every page belongs to exactly one node; seeing one twice means a cycle or crossed trees.
        if pgid in self._visited:
            raise ValueError(f"page {pgid} is referenced twice")
        self._visited.add(pgid)
        flags, count, page = self._page(pgid)
        if flags == _BRANCH:
            for _, child in _branch_elements(page, count):
                yield from self.items(child, depth + 1)
        elif flags == _LEAF:
            yield from _leaf_elements(page, count)
        else:
            raise ValueError(f"page {pgid} has flags {flags:#x}, expected a branch or leaf")

    def bucket_items(self, value: bytes) -> Iterator[tuple[bytes, bytes, bool]]:
        if len(value) < _BUCKET_HEADER.size:
            raise ValueError("bucket header truncated")
        root, _ = _BUCKET_HEADER.unpack(value[: _BUCKET_HEADER.size])
        if root:
            yield from self.items(root)
            return
        inline = memoryview(value)[_BUCKET_HEADER.size :]
        if len(inline) < _PAGE_HEADER.size:
            raise ValueError("inline bucket truncated")
        _, flags, count, _ = _PAGE_HEADER.unpack(inline[: _PAGE_HEADER.size])
        if flags != _LEAF:
            raise ValueError(f"inline bucket page has flags {flags:#x}")
        yield from _leaf_elements(inline, count)


def count_nested_keys(data: bytes, top_level: Callable[[bytes], bool]) -> int:
    """Keys two bucket levels below the top-level buckets ``top_level`` accepts; ValueError if damaged.

    That is, for each such bucket, the keys of each of its sub-buckets (its
    plain keys are not counted). The file is checked as far as it is walked.
    """
    return sum(nested_key_counts(data, top_level).values())


def nested_key_counts(data: bytes, top_level: Callable[[bytes], bool]) -> dict[bytes, int]:
    """:func:`count_nested_keys`, per top-level bucket (every accepted bucket, even with 0 keys)."""
    reader = BoltReader(data)
    counts: dict[bytes, int] = {}
    for name, value, is_bucket in reader.items(reader.root):
        if not is_bucket or not top_level(name):
            continue
        count = 0
        for _key, sub_value, sub_is_bucket in reader.bucket_items(value):
            if sub_is_bucket:
                count += sum(1 for _ in reader.bucket_items(sub_value))
        counts[name] = count
    return counts


def read_key(data: bytes, bucket: bytes, key: bytes) -> bytes | None:
    """The value of ``key`` in the top-level ``bucket``; None when either is absent. ValueError if damaged."""
    reader = BoltReader(data)
    for name, value, is_bucket in reader.items(reader.root):
        if name == bucket and is_bucket:
            for k, v, sub_is_bucket in reader.bucket_items(value):
                if k == key and not sub_is_bucket:
                    return v
    return None


def bucket_keys(data: bytes, bucket: bytes) -> list[bytes] | None:
    """The keys of the top-level ``bucket``; None when it is absent. ValueError if damaged."""
    reader = BoltReader(data)
    for name, value, is_bucket in reader.items(reader.root):
        if name == bucket and is_bucket:
            return [k for k, _v, _sub in reader.bucket_items(value)]
    return None


def _leaf_elements(page: memoryview, count: int) -> Iterator[tuple[bytes, bytes, bool]]:
    for i in range(count):
        at = _PAGE_HEADER.size + i * _LEAF_ELEMENT.size
        if at + _LEAF_ELEMENT.size > len(page):
            raise ValueError("leaf element outside its page")
        flags, pos, ksize, vsize = _LEAF_ELEMENT.unpack(page[at : at + _LEAF_ELEMENT.size])
        start = at + pos
        if start + ksize + vsize > len(page):
            raise ValueError("leaf key/value outside its page")
        yield bytes(page[start : start + ksize]), bytes(page[start + ksize : start + ksize + vsize]), bool(flags & 1)


def _branch_elements(page: memoryview, count: int) -> Iterator[tuple[bytes, int]]:
    for i in range(count):
        at = _PAGE_HEADER.size + i * _BRANCH_ELEMENT.size
        if at + _BRANCH_ELEMENT.size > len(page):
            raise ValueError("branch element outside its page")
        pos, ksize, child = _BRANCH_ELEMENT.unpack(page[at : at + _BRANCH_ELEMENT.size])
        if at + pos + ksize > len(page):
            raise ValueError("branch key outside its page")
        yield bytes(page[at + pos : at + pos + ksize]), child
