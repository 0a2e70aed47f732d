"""System packages a Dockerfile installs: which ones building needs, and what the runtime needs of them.

The builder (Debian bookworm) installs the -dev packages to compile wheels; the distroless runtime has no
apt, so the shared libraries those wheels load are named, Debian bookworm package by package.
"""

from __future__ import annotations

import re
import shlex

# Debian bookworm: a -dev package (or an Alpine one) -> the runtime package holding its shared library.
RUNTIME = {
    "libpq-dev": "libpq5",
    "postgresql-dev": "libpq5",
    "libpq": "libpq5",
    "libldap2-dev": "libldap-2.5-0",
    "openldap-dev": "libldap-2.5-0",
    "libsasl2-dev": "libsasl2-2",
    "cyrus-sasl-dev": "libsasl2-2",
    "libjpeg-dev": "libjpeg62-turbo",
    "libjpeg62-turbo-dev": "libjpeg62-turbo",
    "jpeg-dev": "libjpeg62-turbo",
    "libpng-dev": "libpng16-16",
    "zlib1g-dev": "zlib1g",
    "zlib-dev": "zlib1g",
    "libwebp-dev": "libwebp7",
    "libtiff-dev": "libtiff6",
    "libtiff5-dev": "libtiff6",
    "libfreetype6-dev": "libfreetype6",
    "freetype-dev": "libfreetype6",
    "liblcms2-dev": "liblcms2-2",
    "libopenjp2-7-dev": "libopenjp2-7",
    "libxml2-dev": "libxml2",
    "libxml2": "libxml2",
    "libxslt1-dev": "libxslt1.1",
    "libxslt-dev": "libxslt1.1",
    "libffi-dev": "libffi8",
    "libssl-dev": "libssl3",
    "openssl-dev": "libssl3",
    "default-libmysqlclient-dev": "libmariadb3",
    "libmariadb-dev": "libmariadb3",
    "libmariadb-dev-compat": "libmariadb3",
    "mariadb-dev": "libmariadb3",
    "libmagic-dev": "libmagic1",
    "libmagic1": "libmagic1",
    "libyaml-dev": "libyaml-0-2",
    "libzbar-dev": "libzbar0",
    "libzbar0": "libzbar0",
    "libcairo2-dev": "libcairo2",
    "libpango1.0-dev": "libpango-1.0-0",
    "libgdal-dev": "libgdal32",
    "gdal-bin": "libgdal32",
    "libgeos-dev": "libgeos-c1v5",
    "libproj-dev": "libproj25",
    "libkrb5-dev": "libgssapi-krb5-2",
    "libcurl4-openssl-dev": "libcurl4",
    "libsqlite3-dev": "libsqlite3-0",
    "libbz2-dev": "libbz2-1.0",
    "liblzma-dev": "liblzma5",
    "libxmlsec1-dev": "libxmlsec1-openssl",
    "libsnappy-dev": "libsnappy1v5",
    "libgmp-dev": "libgmp10",
    "libpcre3-dev": "libpcre3",
    "libre2-dev": "libre2-9",
    "libsodium-dev": "libsodium23",
    "librdkafka-dev": "librdkafka1",
    "unixodbc-dev": "libodbc1",
    "libgl1": "libgl1",
    "libglib2.0-0": "libglib2.0-0",
    "libpq5": "libpq5",
    "libjpeg62-turbo": "libjpeg62-turbo",
}
# Packages only building needs (compilers, headers of Python itself, fetch and VCS tools): the builder has or
# takes them, the runtime never needs them.
BUILD_ONLY = frozenset(
    {
        "build-essential",
        "gcc",
        "g++",
        "make",
        "cmake",
        "pkg-config",
        "pkgconf",
        "musl-dev",
        "linux-headers",
        "python3-dev",
        "python-dev",
        "git",
        "curl",
        "wget",
        "ca-certificates",
        "gnupg",
        "apt-transport-https",
        "cargo",
        "rustc",
        "gettext",
        "libc-dev",
        "libc6-dev",
    }
)
_INSTALL = re.compile(r"\b(?:apt-get|apt|apk|aptitude)\s+(?:[-\w=]+\s+)*(?:install|add)\b")


def installed(run: str) -> list[str]:
    """The packages an apt-get/apk install in a RUN names, in order (options and version pins dropped)."""
    out: list[str] = []
    for m in _INSTALL.finditer(run):
        rest = run[m.end() :]
        # The package list ends at the next shell operator.
        rest = re.split(r"&&|\|\||;|\||\)|>|<", rest, maxsplit=1)[0]
        try:
            words = shlex.split(rest, posix=True)
        except ValueError:
            words = rest.split()
        for w in words:
            if w.startswith("-") or "$" in w or not re.match(r"^[a-z0-9][a-z0-9.+:=~_-]*$", w):
                continue
            out.append(w.split("=")[0])
    return list(dict.fromkeys(out))


def runtime_packages(packages: list[str]) -> tuple[list[str], list[str]]:
    """(the runtime packages ``packages`` need, the ones whose runtime need is not known here)."""
    need: list[str] = []
    unknown: list[str] = []
    for p in packages:
        if p in BUILD_ONLY or p.endswith("-doc"):
            continue
        if p in RUNTIME:
            need.append(RUNTIME[p])
        elif p.startswith("lib") and not p.endswith("-dev"):
            need.append(p)  # already the runtime library
        else:
            unknown.append(p)
    return list(dict.fromkeys(need)), unknown


def builder_packages(packages: list[str]) -> list[str]:
    """What the Debian builder installs to compile wheels: the -dev package of each library (Alpine names too)."""
    dev_of = {v: k for k, v in RUNTIME.items() if k.startswith("lib") and k.endswith("-dev")}
    out: list[str] = []
    for p in packages:
        if p in BUILD_ONLY:
            continue
        if p.startswith("lib") and p.endswith("-dev"):
            out.append(p)
        elif RUNTIME.get(p) in dev_of:
            out.append(dev_of[RUNTIME[p]])
    return list(dict.fromkeys(out))
