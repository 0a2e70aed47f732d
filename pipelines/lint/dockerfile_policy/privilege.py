"""Who the image runs as and what that user may change (PL-D001, D014, D015, D019)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from ...findings import Finding
from .model import Parsed, Stage, substitute
from .rules import Context, finding
from .shell import scripts, segments
from .stages import stage_name, stage_vars

PRIVILEGE_DROP = re.compile(r"\b(gosu|su-exec|setpriv|chroot --userspec|runuser)\b")


def check_user(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    users = [c for c in final.commands if c.cmd == "USER"]
    if not users:
        if any(PRIVILEGE_DROP.search(text) for c in final.commands for text, _ in scripts(c)):
            # The entrypoint starts as root only to fix ownership, then drops to a service user
            # (the official database images do this); USER would break that design.
            return
        yield finding(
            p,
            "PL-D001",
            final.line,
            f"final stage {stage_name(final)} sets no USER: it runs as the base "
            "image's user, root unless that image says otherwise",
        )
        return
    last = users[-1]
    written = last.value[0] if last.value else ""
    value = substitute(written.strip("'\""), stage_vars(p, final, last.start_line)).strip("'\"")
    user = value.split(":", 1)[0]
    if "$" in user:
        return  # a build arg without a default: nothing to judge until it is passed
    if not user.isdigit():
        yield finding(p, "PL-D001", last.start_line, f"USER {written!r} is a name, not a numeric UID")
    elif int(user) == 0:
        yield finding(p, "PL-D001", last.start_line, "the final stage runs as root (UID 0)")


def check_sudo(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                if words[0] == "sudo":
                    yield finding(p, "PL-D014", line, "RUN uses sudo")


# Where a service keeps what it writes (FHS state, caches, logs, scratch): a copy there owned by the
# runtime user is a data directory handed over on purpose, not code.
STATE_DIRS = ("/var/lib/", "/var/cache/", "/var/log/", "/var/run/", "/run/", "/tmp/", "/var/tmp/", "/data/")  # noqa: S108 (paths in images, not ours)


def _user_part(value: str) -> str:
    return value.split(":", 1)[0].strip()


def _owner_may_write(flags: Sequence[str]) -> bool:
    """False only when --chmod gives the owner no write bit (e.g. 0555): then ownership grants nothing."""
    for f in flags:
        if f.startswith("--chmod="):
            mode = f.split("=", 1)[1]
            if re.fullmatch(r"0?[0-7]{3,4}", mode):
                return bool(int(mode[-3], 8) & 2)
    return True


def check_chown(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    # Files the runtime user owns are files the running process can rewrite; root-owned, read-only
    # application files are the safe default. Only a --chown to the very user the stage runs as is
    # certain (a name and a numeric id cannot be matched without the image's passwd).
    runtime = ""
    for c in final.commands:
        if c.cmd == "USER" and c.value:
            runtime = _user_part(c.value[0])
    if runtime in ("", "root", "0"):
        return
    for c in final.commands:
        if c.cmd not in ("COPY", "ADD"):
            continue
        owner = next((_user_part(f.split("=", 1)[1]) for f in c.flags if f.startswith("--chown=")), "")
        dest = c.value[-1] if c.value else ""
        is_state = (dest.rstrip("/") + "/").startswith(STATE_DIRS)
        if owner == runtime and _owner_may_write(c.flags) and not is_state:
            yield finding(
                p,
                "PL-D015",
                c.start_line,
                f"{c.cmd} --chown={owner}: the runtime user ({runtime}) owns these files and can rewrite them",
            )


WORLD_MODE = re.compile(r"^[0-7]?[0-7]{2}[2367]$")


def check_world_writable(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for s in p.stages:
        for c in s.commands:
            for words, line in segments(c):
                if words[0] != "chmod":
                    continue
                args = [w for w in words[1:] if not w.startswith("-") or re.match(r"^-[rwx]+$", w)]
                if len(args) < 2:
                    continue
                mode, paths = args[0], args[1:]
                world = False
                if WORLD_MODE.match(mode):
                    # The sticky bit (1777) is /tmp's shared-scratch pattern: each user keeps their own files.
                    world = not (len(mode) == 4 and int(mode[0]) & 1)
                elif re.search(r"(^|,)[oa]*[oa][oa]*\+[rx]*w|(^|,)\+[rx]*w", mode):
                    world = "t" not in mode
                if world:
                    yield finding(p, "PL-D019", line, f"chmod {mode} makes {' '.join(paths)} world-writable")
