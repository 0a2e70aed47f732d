"""Package installs and the layers they make: build tooling, apt hygiene, dependency order (PL-D006 to D011)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

import dockerfile

from ...findings import Finding
from .model import REMOTE, Parsed, Stage
from .rules import Context, finding
from .shell import command_words, logical_lines, mounts, run_text, segments
from .stages import shipped_stages, stage_vars

BUILD_TOOLS = re.compile(
    r"^(gcc|g\+\+|cc|clang|make|build-essential|git|subversion|mercurial|cmake|"
    r"python3?-dev|libc6?-dev|[a-z0-9.+-]+-dev)$"
)
DEP_INSTALL = re.compile(
    r"\b(pip3?|python3? -m pip|uv pip)\b[^&;|]*\binstall\b[^&;|]*(\s-r\s|\s--requirement|\s-c\s)|"
    r"\bpoetry install\b|\buv sync\b|\bpipenv (install|sync)\b|\bnpm (ci|install)\b|\byarn( install)?\s*($|&|;)|"
    r"\bpnpm install\b|\bgo mod download\b|\bbundle install\b|\bcomposer install\b|\bdotnet restore\b"
)
# Dependency manifests and lock files, matched against COPY sources (which may be globs).
MANIFEST_NAMES = (
    "requirements.txt",
    "requirements.in",
    "requirements-dev.txt",
    "constraints.txt",
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "Pipfile",
    "Pipfile.lock",
    "setup.py",
    "setup.cfg",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "Cargo.toml",
    "Cargo.lock",
    "pom.xml",
    "build.gradle",
)
MANIFEST_DIR = re.compile(r"(^|/)(requirements|constraints)(/|$)|\.csproj$|(^|/)requirements[^/]*\.(txt|in)$")


def _installs(words: list[str]) -> list[str]:
    if words and words[0] == "sudo":
        words = command_words(words[1:])
    if (
        len(words) >= 2
        and words[0] in ("apt-get", "apt", "apk", "yum", "dnf", "microdnf")
        and ("install" in words or "add" in words)
    ):
        rest = words[words.index("install" if "install" in words else "add") + 1 :]
        out, skip = [], False
        for w in rest:
            if skip:
                skip = False
            elif w in ("--virtual", "-t"):
                skip = True  # apk's virtual package name, not a package
            elif not w.startswith("-"):
                out.append(w)
        return out
    return []


def _removed_in_same_run(c: dockerfile.Command) -> set[str] | None:
    """Packages the RUN removes again; None means "everything it installed" (apt-mark auto + autoremove)."""
    text = run_text(c)
    if re.search(r"apt-mark auto\b", text) and re.search(r"(purge|remove)\b[^&;]*--auto-remove|autoremove", text):
        return None
    removed: set[str] = set()
    virtual: dict[str, list[str]] = {}
    for words, _ in segments(c):
        if words[:1] == ["apk"] and "add" in words and "--virtual" in words:
            i = words.index("--virtual")
            if i + 1 < len(words):
                virtual[words[i + 1]] = _installs(words)
        if words[:1] in (["apt-get"], ["apt"]) and ({"purge", "remove"} & set(words)):
            removed |= {w for w in words[2:] if not w.startswith("-")}
        if words[:1] == ["apk"] and "del" in words:
            for w in words[words.index("del") + 1 :]:
                removed.add(w)
                removed |= set(virtual.get(w, []))
    return removed


def check_final_tooling(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd != "RUN":
            continue
        removed = _removed_in_same_run(c)
        for words, line in segments(c):
            pkgs = [w.split("=", 1)[0] for w in _installs(words)]
            bad = [w for w in pkgs if BUILD_TOOLS.match(w) and removed is not None and w not in removed]
            if bad:
                yield finding(p, "PL-D006", line, f"final stage installs build tooling: {', '.join(bad)}")
            if (
                ("pip" in words[0] or words[:3] == ["python3", "-m", "pip"] or words[:3] == ["python", "-m", "pip"])
                and "install" in words
                and "--no-cache-dir" not in words
                and "/root/.cache" not in mounts(c)
                and "PIP_NO_CACHE_DIR" not in stage_vars(p, final, c.start_line)
            ):
                yield finding(
                    p,
                    "PL-D006",
                    line,
                    "pip install in the final stage leaves its cache (use --no-cache-dir or a cache mount)",
                )


def _apt_lists_cached(c: dockerfile.Command) -> bool:
    return bool(re.search(r"type=cache[^ ]*target=/var/lib/apt(/lists)?/?(,|$|\s)", mounts(c))) or bool(
        re.search(r"target=/var/lib/apt(/lists)?/?[^ ]*type=cache", mounts(c))
    )


def check_apt(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    # A builder stage's package lists and recommends are thrown away with the stage: those two rules
    # judge only what ships; stale lists and upgrades matter wherever they happen.
    shipped = shipped_stages(p, final)
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "RUN":
                continue
            segs = segments(c)
            apt = [(w, ln) for w, ln in segs if w and w[0] in ("apt-get", "apt")]
            updates = [(w, ln) for w, ln in apt if "update" in w]
            installs = [(w, ln) for w, ln in apt if "install" in w]
            for w, ln in installs:
                if s in shipped and "--no-install-recommends" not in w and "APT::Install-Recommends" not in " ".join(w):
                    yield finding(p, "PL-D007", ln, "apt-get install without --no-install-recommends")
            if updates and not installs and not any(w[:2] in (["apt-get", "upgrade"],) for w, _ in apt):
                yield finding(p, "PL-D008", updates[0][1], "apt-get update in a RUN that installs nothing")
            if installs and not updates:
                yield finding(p, "PL-D008", installs[0][1], "apt-get install without apt-get update in the same RUN")
            text = run_text(c)
            # `apt-get dist-clean` (apt >= 2.7) removes the lists as well as the package cache.
            cleaned = "/var/lib/apt/lists" in text or bool(re.search(r"\bapt(-get)? dist-clean\b", text))
            if s in shipped and updates and not cleaned and not _apt_lists_cached(c):
                yield finding(p, "PL-D009", updates[0][1], "apt lists are not removed in the RUN that fetched them")
            for w, ln in apt:
                if {"upgrade", "dist-upgrade", "full-upgrade"} & set(w):
                    yield finding(p, "PL-D010", ln, "apt upgrade in an image build")


def _is_manifest(src: str) -> bool:
    src = src.rstrip("/")
    base = src.rsplit("/", 1)[-1]
    if MANIFEST_DIR.search(src):
        return True
    # Sources may be globs (`package*.json`, `poetry.lock*`): a glob that matches a manifest name counts.
    return any(fnmatch.fnmatchcase(name, base) for name in MANIFEST_NAMES)


def _is_source_copy(c: dockerfile.Command) -> bool:
    if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
        return False
    if any(w.startswith("<<") for w in c.value):
        return False  # a heredoc writes a file; it is not the project's source
    # Remote sources are not the build context's source code.
    sources = [src for src in c.value[:-1] if not REMOTE.match(src)]
    return any(not _is_manifest(src) for src in sources)


def _installs_deps(c: dockerfile.Command) -> bool:
    return c.cmd == "RUN" and any(DEP_INSTALL.search(t) for t, _ in logical_lines(c))


def check_layer_order(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        copied_at = 0
        deps_first = False
        for c in s.commands:
            if _is_source_copy(c) and not copied_at:
                copied_at = c.start_line
            elif _installs_deps(c):
                if not copied_at:
                    # Installed from manifests copied or bind-mounted first: dependency-first already;
                    # a later install after the source copy only adds the project itself.
                    deps_first = True
                elif not deps_first:
                    yield finding(
                        p,
                        "PL-D011",
                        c.start_line,
                        f"dependencies are installed after the source was copied (line {copied_at})",
                    )
                    deps_first = True  # one finding per stage
