"""What a RUN executes: its shell text, simple commands and logical lines, each with its line."""

from __future__ import annotations

import re
import shlex

import dockerfile

HEREDOC_MARKER = re.compile(r"<<-?\s*['\"]?[A-Za-z_][A-Za-z0-9_]*['\"]?")
SHELLS = re.compile(r"^(/usr)?(/bin/)?(ba|z|da|k|a)?sh$")


def scripts(c: dockerfile.Command) -> list[tuple[str, int]]:
    """The shell text a RUN executes, with the line each part starts on: the command line and every heredoc body."""
    if c.cmd != "RUN":
        return []
    out: list[tuple[str, int]] = []
    main = HEREDOC_MARKER.sub("", " ".join(c.value)).strip()
    if main:
        out.append((main, c.start_line))
    # `RUN <<EOF` and `RUN bash -e <<EOF` run the body as shell; `RUN python3 <<EOF` or `cat <<EOF > f` do not.
    words = command_words(main.split())
    program = words[0] if words else ""
    body_is_shell = not program or bool(SHELLS.match(program))
    original_lines = c.original.split("\n")
    cursor = 1
    for h in c.heredocs:
        body = h.content.split("\n")
        first = body[0] if body else ""
        line = c.start_line + cursor
        for i in range(cursor, len(original_lines)):
            if original_lines[i] == first:
                line = c.start_line + i
                cursor = i + len(body)
                break
        if body_is_shell:
            out.append((h.content, line))
    return out


def segments(c: dockerfile.Command) -> list[tuple[list[str], int]]:
    """A RUN's shell text split into simple commands, each as words with its line (best effort)."""
    out: list[tuple[list[str], int]] = []
    for text, first in scripts(c):
        # Join backslash-continued lines but remember where each logical line starts.
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            start = i
            logical = lines[i]
            while logical.endswith("\\") and i + 1 < len(lines):
                i += 1
                logical = logical[:-1] + " " + lines[i]
            i += 1
            for part in re.split(r"&&|\|\||;|\|", logical):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    words = part.split()
                words = command_words(words)
                if words:
                    out.append((words, first + start))
    return out


def logical_lines(c: dockerfile.Command) -> list[tuple[str, int]]:
    out = []
    for text, first in scripts(c):
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            start = i
            logical = lines[i]
            while logical.endswith("\\") and i + 1 < len(lines):
                i += 1
                logical = logical[:-1] + " " + lines[i]
            i += 1
            out.append((logical, first + start))
    return out


def command_words(words: list[str]) -> list[str]:
    """Drop what runs a command rather than being it: VAR=value prefixes, env, command, exec, time, nice."""
    i = 0
    while i < len(words):
        w = words[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) or w in ("env", "command", "exec", "time", "nice", "(", "{"):
            i += 1
        else:
            break
    return words[i:]


def run_text(c: dockerfile.Command) -> str:
    return "\n".join(t for t, _ in scripts(c))


def mounts(c: dockerfile.Command) -> str:
    return " ".join(f for f in c.flags if f.startswith("--mount"))
