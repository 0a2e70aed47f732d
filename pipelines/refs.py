"""What a name must look like before it reaches Docker, a registry or the file system.

OCI image references, registry addresses and project-relative paths are all
input: a value that parses here can be handed to ``docker``, ``buildx`` or
``trivy`` as an argument without being mistaken for an option, and a path that
passes :func:`inside` cannot read or write outside the project.

The grammar is the distribution spec's (github.com/distribution/reference):
a path component is lowercase letters and digits, joined by one of ``.``,
``_``, ``__`` or runs of ``-``; a tag is up to 128 word characters, dots and
dashes, not starting with a dot or dash.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
IMAGE_ID = re.compile(r"^(?:sha256:)?[a-f0-9]{12,64}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_NAME = 255  # the distribution spec's limit on a repository name


def component_problem(value: str) -> str | None:
    """Why ``value`` is not one path component of a repository name (None: it is)."""
    if not COMPONENT.match(value):
        return (
            f"{value!r} is not a valid image name component: lowercase letters and digits, "
            "separated by single '.', '_' or '__', or by '-'"
        )
    return None


def repository_problem(value: str) -> str | None:
    """Why ``value`` is not a repository path such as ``team/api`` (None: it is)."""
    if not value:
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long; at most {MAX_NAME}"
    for part in value.split("/"):
        if not COMPONENT.match(part):
            return (
                f"{value!r} is not a valid repository name (component {part!r}: lowercase letters and digits, "
                "separated by single '.', '_' or '__', or by '-')"
            )
    return None


def tag_problem(value: str) -> str | None:
    if not TAG.match(value):
        return (
            f"{value!r} is not a valid image tag: 1 to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return None


def address_problem(value: str) -> str | None:
    """Why ``value`` is not a registry address ``host[:port]`` (None: it is)."""
    if not value:
        return "is empty; expected host[:port], e.g. 127.0.0.1:5000 or registry.example.com"
    if "://" in value or "/" in value:
        return f"{value!r} is not host[:port]: no scheme and no path (e.g. 127.0.0.1:5000)"
    host, port = value, None
    if value.startswith("["):  # [IPv6]:port
        end = value.find("]")
        if end < 0:
            return f"{value!r} is not host[:port]: unclosed '['"
        host, rest = value[1:end], value[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{value!r} is not host[:port]: {host!r} is not an IPv6 address"
        if rest:
            if not rest.startswith(":"):
                return f"{value!r} is not host[:port]"
            port = rest[1:]
    else:
        if value.count(":") > 1:
            return f"{value!r} is not host[:port] (write an IPv6 address as [addr]:port)"
        host, _, port_text = value.partition(":")
        port = port_text if ":" in value else None
        labels = host.split(".")
        if not all(_HOST_LABEL.match(label) for label in labels):
            return f"{value!r} is not host[:port]: {host!r} is not a host name or IPv4 address"
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"{value!r} is not host[:port]: the port must be a number from 1 to 65535"
    return None


def reference_problem(ref: str) -> str | None:
    """Why ``ref`` is not a local image reference ``[host[:port]/]path[:tag][@digest]`` or image ID."""
    if not ref:
        return "'' is an empty image reference"
    if ref.startswith("-"):
        return f"{ref!r} starts with '-': an image reference never does (it would be read as an option)"
    if any(c.isspace() or ord(c) < 32 for c in ref):
        return f"{ref!r} contains white space or control characters"
    if IMAGE_ID.match(ref):
        return None
    name, at, digest = ref.partition("@")
    if at and not DIGEST.match(digest):
        return f"{ref!r}: {digest!r} is not a digest (sha256: and 64 hex digits)"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if problem := tag_problem(tag):
            return f"{ref!r}: {problem}"
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if problem := address_problem(parts[0]):
            return f"{ref!r}: registry {problem}"
        parts = parts[1:]
    if problem := repository_problem("/".join(parts)):
        return f"{ref!r}: {problem}"
    return None


def inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` with symlinks resolved, when that stays inside ``root``; else None."""
    real_root = root.resolve()
    path = (real_root / rel).resolve()
    if path == real_root or real_root in path.parents:
        return path
    return None
