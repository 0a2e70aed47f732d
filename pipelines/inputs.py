"""Reading and writing the files a user points the pipeline at, without surprises.

A config that is a FIFO would block ``read()`` forever, a device never ends, a
directory raises ``IsADirectoryError``, a 2 GB file eats the memory, a deeply
nested document overflows the parser's stack. Every one of those becomes one
:class:`ConfigError` naming the file here, before any parser sees the bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import yaml

MiB = 1 << 20
# Hand-written files: a config, a ledger, a Dockerfile, a Compose file.
SMALL = 4 * MiB
# Generated data: an OSV advisory (the largest on osv.dev are a few MB).
LARGE = 32 * MiB


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path, display: str | None = None, *, limit: int = SMALL, key: str = "") -> bytes:
    """The content of a regular file of at most ``limit`` bytes, or one clear error.

    The file is opened non-blocking (a FIFO swapped in after the check cannot
    hang the read) and checked on the open descriptor, not the name.
    """
    name = display or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(name, key, "file not found") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise ConfigError(name, key, "file not found (a parent in its path is a file)") from None
        raise ConfigError(name, key, f"cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # an embedded NUL byte
        raise ConfigError(name, key, f"is not a usable path ({exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(name, key, f"is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise ConfigError(
                name, key, f"is too large ({st.st_size / MiB:.1f} MiB; at most {limit // MiB} MiB is read)"
            )
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            total += len(chunk)
            if total > limit:  # it grew while we read
                raise ConfigError(name, key, f"is too large (more than {limit // MiB} MiB)")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(name, key, f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: Path, display: str | None = None, *, limit: int = SMALL, key: str = "") -> str:
    """:func:`read_bytes`, decoded as UTF-8; the first bad byte is named by line."""
    raw = read_bytes(path, display, limit=limit, key=key)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            display or str(path), key, f"is not UTF-8 text (line {line}: byte 0x{raw[exc.start]:02x})"
        ) from None


def check_output_file(path: Path, what: str) -> None:
    """An output file must be creatable: an existing regular file or a new name in an existing directory."""
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise ConfigError(name, "", f"cannot write the {what}: a parent in its path is a file") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot write the {what}: {exc.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(name, "", f"cannot write the {what}: it is {_kind(st.st_mode)}")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(
            name,
            "",
            f"cannot write the {what}: directory {parent} does not exist",
            hint="create the directory first, or name a file in an existing one",
        )
    if not os.access(parent, os.W_OK):
        raise ConfigError(name, "", f"cannot write the {what}: directory {parent} is not writable")


def write_text(path: Path, text: str, what: str, *, append: bool = False) -> None:
    """Write (or append) ``text``; any OS error is one ConfigError naming the file."""
    check_output_file(path, what)
    try:
        # O_NONBLOCK: a FIFO with no reader fails instead of blocking forever.
        flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(path, flags, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot write the {what}: {exc.strerror}") from None


def check_output_dir(path: Path, display: str, key: str = "") -> None:
    """A directory the pipeline will create files under: it, or its nearest existing parent, is a directory."""
    probe = path
    while True:
        try:
            st = probe.stat()
            break
        except FileNotFoundError:
            if probe.parent == probe:
                return
            probe = probe.parent
        except NotADirectoryError:
            probe = probe.parent
        except OSError as exc:
            raise ConfigError(display, key, f"{path} cannot be used: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        where = "is" if probe == path else f"is under {probe}, which is"
        raise ConfigError(display, key, f"{path} {where} {_kind(st.st_mode)}, not a directory")


# --------------------------------------------------------------------------- YAML, strictly

MAX_DEPTH = 64  # no hand-written ledger or Compose file nests deeper


def load_yaml(text: str, display: str) -> tuple[object, dict[str, int]]:
    """One YAML document as plain data, plus the line of every key path (``waivers[0].expires``).

    Stricter than ``yaml.safe_load``: aliases are refused (a "billion laughs"
    document expands to gigabytes when walked), so are duplicate keys (the last
    one would silently win), nesting deeper than :data:`MAX_DEPTH`, and scalars
    that cannot be what they look like (``2026-02-30``). Each is one
    :class:`ConfigError` naming the file and line.
    """
    import yaml  # here, not at the top: a stage that reads no YAML does not pay for the parser

    depth, line = flow_depth(text)
    if depth > MAX_DEPTH:
        # Before the parser: PyYAML's scanner slows down quadratically with flow nesting.
        raise ConfigError(display, "", f"line {line}: nested too deeply (at most {MAX_DEPTH} levels)")
    try:
        # Aliases first, from the event stream: only there is the line of their use known.
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                use = event.start_mark.line + 1 if event.start_mark else 0
                raise ConfigError(
                    display,
                    "",
                    f"line {use}: YAML aliases (*{event.anchor}) are not allowed here; write the value out",
                )
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(display, "", f"is not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(display, "", f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(display, "", f"is not usable YAML: nested too deeply (at most {MAX_DEPTH} levels)") from None
    if node is None:
        return None, {}
    lines: dict[str, int] = {}
    return _Converter(display, lines).convert(node, "", 0), lines


def flow_depth(text: str) -> tuple[int, int]:
    """The deepest nesting of [ and { outside quotes and comments, and its line (a cheap upper bound)."""
    depth = deepest = 0
    line = deepest_line = 1
    quote = ""
    prev = "\n"
    comment = False
    for c in text:
        if c == "\n":
            line += 1
            comment = False
        elif comment:
            pass
        elif quote:
            if c == quote:
                quote = ""
        elif c in "'\"" and prev in " \t\n[{,:":
            quote = c
        elif c == "#" and prev in " \t\n":
            comment = True
        elif c in "[{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        elif c in "]}":
            depth = max(0, depth - 1)
        prev = c
    return deepest, deepest_line


class _Converter:
    def __init__(self, display: str, lines: dict[str, int]) -> None:
        self.display = display
        self.lines = lines
        self.seen: set[int] = set()
        import yaml

        self.constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, key: str, problem: str) -> ConfigError:
        return ConfigError(self.display, key, f"line {node.start_mark.line + 1}: {problem}")

    def convert(self, node: yaml.Node, key: str, depth: int) -> object:
        import yaml

        if id(node) in self.seen or (node.tag == "tag:yaml.org,2002:merge"):
            raise self.fail(node, key, "YAML aliases (*name) and merge keys are not allowed here; write it out")
        self.seen.add(id(node))
        self.lines.setdefault(key, node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise self.fail(node, key, f"nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(node, yaml.MappingNode):
            out: dict[object, object] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    raise self.fail(k, key, "a mapping key must be a plain value")
                name = self.scalar(k, key)
                if not isinstance(name, (str, int, float, bool)) and name is not None:
                    name = str(name)
                sub = f"{key}.{name}" if key else str(name)
                if k.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(k, key, "YAML merge keys (<<) are not allowed here; write it out")
                if name in out:
                    raise self.fail(k, sub, f"duplicate key {name!r} (the earlier one would be ignored)")
                out[name] = self.convert(v, sub, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(v, f"{key}[{i}]", depth + 1) for i, v in enumerate(node.value)]
        return self.scalar(node, key)

    def scalar(self, node: yaml.Node, key: str) -> object:
        import yaml

        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            raise self.fail(node, key, f"{node.value!r} cannot be read ({exc})") from None


def check_yaml_expansion(node: yaml.Node | None, display: str, limit: int = 200_000) -> None:
    """Refuse a document whose aliases expand to more than ``limit`` nodes (a "billion laughs").

    Anchors and aliases are legitimate in Compose files; what they expand to
    when a consumer walks the tree is counted here, each shared node once per use.
    """
    import yaml

    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a cycle counts once
        total = 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        elif isinstance(n, yaml.SequenceNode):
            for v in n.value:
                total += size(v)
                if total > limit:
                    break
        sizes[id(n)] = total
        return total

    if node is not None and size(node) > limit:
        raise ConfigError(
            display, "", f"its aliases expand to more than {limit} values (a YAML bomb?); write it out plainly"
        )


def make_dir(path: Path, what: str) -> None:
    """Create a directory for output; a file in the way or a permission problem is one clear error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(str(path), "", f"cannot hold the {what}: it exists and is not a directory") from None
    except NotADirectoryError:
        raise ConfigError(str(path), "", f"cannot hold the {what}: a parent in its path is a file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot hold the {what}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(str(path), "", f"cannot hold the {what}: the directory is not writable")
