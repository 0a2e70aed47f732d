"""Where what goes into the image comes from, and whether it is verified (PL-D003, D012, D013, D018)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...findings import Finding, Severity
from .model import REMOTE, Parsed, Stage, substitute
from .rules import Context, finding
from .shell import logical_lines, segments
from .stages import stage_vars

PINNED_BY_PIPELINE = "@sha256:" + "0" * 64  # stands for "the pipeline passes a digest here"
ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tar\.xz|txz|zip)$")
# Interpreters a download must never be piped into.
_RUNNER = r"((ba|z|da|k|a)?sh|python[0-9.]*|perl|ruby|node|php|pwsh)"
PIPE_TO_INTERPRETER = re.compile(
    r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+(-\S+\s+)*)?(env\s+)?([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
    rf"(/usr)?(/local)?(/bin/)?{_RUNNER}\b"
)
EVAL_DOWNLOAD = re.compile(
    r"\b(((ba|z|da)?sh|python[0-9.]*)\s+-c\s+|eval\s+)[\"']?\$\((curl|wget)\b"
    # Process substitution: `bash <(curl URL)`, `source <(wget -O- URL)`.
    rf"|(\b{_RUNNER}|\bsource|(^|[;&|]\s*)\.)\s+<\(\s*(curl|wget)\b"
)
# Fetched to a file, then run, with no check in between: `curl -o i.sh URL && sh i.sh`.
DOWNLOAD_TO_FILE = re.compile(r"\b(curl|wget)\b[^|;&]*?\s(-o|-O|--output|--output-document)[= ]\s*(?P<file>[^\s;&|]+)")
VERIFIED = re.compile(r"\b(sha(1|256|512)sum|gpg|gpgv|cosign|minisign|openssl\s+dgst)\b")


def _image_pin(ref: str) -> str | None:
    """Why a resolved image reference is not pinned, or None when it is."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if digest:
        return None
    if not tag:
        return "no tag and no digest (means latest)"
    if tag == "latest":
        return "the `latest` tag"
    return "tag without a digest"


def check_pinned(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    names: set[str] = set()
    for s in p.stages:
        ref = s.resolved
        if ref == "scratch" or ref.lower() in names:
            names.add(s.name.lower())
            continue
        names.add(s.name.lower())
        if "$" in ref:
            continue  # nothing to judge until the build arg is passed: a note (unresolved_bases), not a finding
        why = _image_pin(ref)
        shown = f"FROM {s.base}" + (f" (= {ref})" if ref != s.base else "")
        if why == "tag without a digest":
            sev = Severity.ERROR if ctx.profile == "prod" else Severity.WARNING
            yield finding(p, "PL-D003", s.line, f"{shown}: tag without a digest", sev)
        elif why:
            yield finding(p, "PL-D003", s.line, f"{shown}: {why}")
    # COPY --from=IMAGE pulls from an image as surely as FROM does.
    stage_names = {s.name.lower() for s in p.stages} | {str(i) for i in range(len(p.stages))}
    for s in p.stages:
        known = {**p.global_args, **stage_vars(p, s)}
        for c in s.commands:
            if c.cmd not in ("COPY", "ADD"):
                continue
            for flag in c.flags:
                if not flag.startswith("--from="):
                    continue
                src = substitute(flag.split("=", 1)[1].strip("'\""), known)
                if src.lower() in stage_names or "$" in src:
                    continue
                why = _image_pin(src)
                if why:
                    sev = Severity.ERROR if ctx.profile == "prod" or why != "tag without a digest" else Severity.WARNING
                    yield finding(p, "PL-D003", c.start_line, f"{c.cmd} --from={src}: an external image, {why}", sev)


def unresolved_bases(p: Parsed) -> list[str]:
    """Notes for FROM lines whose build arg has no value here: their pin cannot be checked."""
    return [
        f"{p.display}:{s.line}: FROM {s.base}: the build arg has no value here, so its pin is not checked; "
        "pass --build-arg or give the ARG a pinned default"
        for s in p.stages
        if "$" in s.resolved
    ]


def check_add(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            if c.cmd != "ADD":
                continue
            for src in c.value[:-1]:
                if REMOTE.match(src):
                    checksum = any(f.startswith("--checksum") for f in c.flags)
                    if not checksum:
                        yield finding(p, "PL-D012", c.start_line, f"ADD fetches a remote source: {src}", Severity.ERROR)
                elif ARCHIVE.search(src):
                    continue  # unpacking a local archive is what ADD is for
                # A plain local ADD is hadolint's DL3020; one finding per problem.


def check_pipe_to_shell(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for text, line in logical_lines(c):
                m = PIPE_TO_INTERPRETER.search(text) or EVAL_DOWNLOAD.search(text)
                if m:
                    yield finding(p, "PL-D013", line, f"a download is run unverified: {m.group(0).strip()}")
                    continue
                got = DOWNLOAD_TO_FILE.search(text)
                if got and got.group("file") != "-":
                    rest = text[got.end() :]
                    name = re.escape(got.group("file"))
                    run = re.search(
                        rf"(^|[;&|]\s*|\s){_RUNNER}\s+(-\S+\s+)*{name}(\s|$|;|&)|(^|[;&|]\s*)(\./|\.\s+|source\s+){name}\b",
                        rest,
                    )
                    if run and not VERIFIED.search(rest[: run.start()]):
                        what = f"{got.group(0).strip()} ... {run.group(0).strip(' ;&|')}"
                        yield finding(p, "PL-D013", line, f"a download is run unverified: {what}")


def check_remote_packages(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                pip = words[:1] in (["pip"], ["pip3"]) or words[:3] in (
                    ["python", "-m", "pip"],
                    ["python3", "-m", "pip"],
                )
                pip = pip or words[:2] == ["uv", "pip"]
                if not pip or "install" not in words or "--require-hashes" in words:
                    continue
                option_values = {
                    words[i + 1]
                    for i, w in enumerate(words[:-1])
                    if w
                    in ("-i", "--index", "--default-index", "--index-url", "--extra-index-url", "-f", "--find-links")
                }
                for w in words:
                    if w in option_values or w.startswith("--"):
                        continue  # an index or find-links URL is where packages come from, not a package
                    remote = re.match(r"^(git\+|hg\+|svn\+|bzr\+)?(https?|git|ssh)://", w) or "@ git+" in w
                    if remote and "#sha256=" not in w and "--hash" not in " ".join(words):
                        yield finding(p, "PL-D018", line, f"pip installs a remote package without a hash: {w}")
