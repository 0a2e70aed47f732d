"""The golden PostgreSQL image's entry point: initialise an empty data directory, then become the server.

The image has Python and no shell, so this replaces the usual shell entry point and reads the same
settings, so a Compose file written for the upstream image runs unchanged:

- ``POSTGRES_PASSWORD`` or ``POSTGRES_PASSWORD_FILE`` (one of them, required on first start): the
  superuser's password;
- ``POSTGRES_USER`` / ``POSTGRES_USER_FILE`` (default ``postgres``): the superuser's name;
- ``POSTGRES_DB`` / ``POSTGRES_DB_FILE`` (default: the user's name): a database created on first start;
- ``PGDATA`` (default ``/var/lib/postgresql/data``);
- ``/docker-entrypoint-initdb.d/*.sql``, run in name order on first start (a ``*.sh`` is refused:
  there is no shell to run it).

initdb runs programs through ``/bin/sh``, which this image does not have: the cluster is initialised
when the image is built (``TEMPLATE``, superuser ``postgres``, packed). On first start it is unpacked
into the empty data directory, then the user, its password, the database and the SQL files are set up in
single-user mode (no network listener is opened before that is done, and the password reaches the
server on its standard input, never an argument list), and this process replaces itself with
``postgres``: the server is the process tini signals. Every refusal is one line on stderr naming the
setting, and exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INITDB_DIR = Path("/docker-entrypoint-initdb.d")
# Where the local socket goes: the clients' default, else /tmp. Docker mounts a tmpfs at
# /var/run/postgresql (a symlinked path) owned by root on a restart, and this user may not own it.
SOCKET_DIRS = ("/var/run/postgresql", "/tmp")  # noqa: S108 - a socket directory, not a temporary file
TEMPLATE = Path("/var/lib/postgresql/template.tar.gz")
EXIT_USAGE = 2


class Refused(Exception):
    """A setting this entry point cannot work with: the message names it and what to do."""


@dataclass(frozen=True)
class Settings:
    pgdata: Path
    user: str
    database: str
    password: str | None  # None: the data directory is initialised already, none is needed


def _value(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` or the content of the file ``NAME_FILE`` names; both set is refused, as upstream does."""
    direct, file = env.get(name), env.get(f"{name}_FILE")
    if direct and file:
        raise Refused(f"both {name} and {name}_FILE are set; set one of them")
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise Refused(f"{name}_FILE={file}: cannot be read ({exc.__class__.__name__})") from None
    return direct or None


def settings(env: Mapping[str, str]) -> Settings:
    pgdata = Path(env.get("PGDATA") or "/var/lib/postgresql/data")
    user = _value(env, "POSTGRES_USER") or "postgres"
    database = _value(env, "POSTGRES_DB") or user
    initialised = (pgdata / "PG_VERSION").is_file()
    password = None if initialised else _value(env, "POSTGRES_PASSWORD")
    if not initialised and not password:
        raise Refused(
            f"{pgdata} is empty and no password is set: set POSTGRES_PASSWORD_FILE (a Compose secret) "
            "or POSTGRES_PASSWORD for the first start"
        )
    for what, value in (("POSTGRES_USER", user), ("POSTGRES_DB", database)):
        if "\0" in value or len(value.encode()) > 63:
            raise Refused(f"{what}: {value[:70]!r} is not a PostgreSQL name (at most 63 bytes, no NUL)")
    return Settings(pgdata, user, database, password)


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted: the name exactly as given, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def init_scripts(directory: Path) -> list[Path]:
    """The SQL files to run on first start, in name order; anything a shell would have run is refused."""
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.iterdir() if p.is_file())
    for p in files:
        if p.suffix != ".sql":
            raise Refused(
                f"{p}: this image runs only *.sql files on first start (it has no shell); "
                "turn it into SQL or run it as a one-shot job"
            )
    return files


def quote_literal(text: str) -> str:
    """An SQL string literal (standard_conforming_strings is on: only quotes need doubling)."""
    return "'" + text.replace("'", "''") + "'"


def single_user_input(s: Settings) -> str:
    """What single-user mode reads in the ``postgres`` database (``-j``: a statement ends with a semicolon
    and an empty line): the user with its password, and its database."""
    # A failing statement is not written to the log: it may be the one carrying the password.
    parts = ["SET log_min_error_statement = panic;\n\n"]
    password = quote_literal(s.password or "")
    if s.user == "postgres":
        parts.append(f"ALTER ROLE postgres PASSWORD {password};\n\n")
    else:
        parts.append(f"CREATE ROLE {quote_ident(s.user)} SUPERUSER LOGIN PASSWORD {password};\n\n")
    if s.database != "postgres":
        parts.append(f"CREATE DATABASE {quote_ident(s.database)} OWNER {quote_ident(s.user)};\n\n")
    return "".join(parts)


def scripts_input(s: Settings, scripts: Sequence[Path]) -> str:
    """The first-start SQL files, run in the user's database as that user (as the upstream image does)."""
    parts = [f"SET ROLE {quote_ident(s.user)};\n\n"] if s.user != "postgres" else []
    parts += [script.read_text(encoding="utf-8").rstrip() + "\n\n" for script in scripts]
    return "".join(parts)


def copy_template(template: Path, pgdata: Path) -> None:
    """The build-time cluster into the data directory, which must be empty (a fresh volume is)."""
    if not template.is_file():
        raise Refused(f"{template} is missing: the image is damaged; rebuild it")
    if pgdata.exists() and any(pgdata.iterdir()):
        raise Refused(f"PGDATA={pgdata}: holds files but no cluster (no PG_VERSION); give it an empty volume")
    pgdata.mkdir(parents=True, exist_ok=True)
    with tarfile.open(template, "r:gz") as tar:
        members = tar.getmembers()
        if not any(m.name in ("PG_VERSION", "./PG_VERSION") for m in members):
            raise Refused(f"{template} holds no cluster: the image is damaged; rebuild it")
        # The image's own archive, still held to plain files and directories inside PGDATA (Debian 12's
        # Python has no extraction filters).
        for m in members:
            parts = Path(m.name).parts
            if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or ".." in parts:
                raise Refused(f"{template}: {m.name!r} is not a file inside the cluster; rebuild the image")
        # Where extraction filters exist (Python 3.12, and 3.11 from Debian 13 on), the data filter too.
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(pgdata, members=members, **extra)  # type: ignore[arg-type]  # noqa: S202 - checked above
    pgdata.chmod(0o700)  # the server refuses a data directory others can read


def initialise(
    s: Settings, scripts: Sequence[Path], template: Path = TEMPLATE, run: Callable[..., object] = subprocess.run
) -> None:
    """The template cluster, then the role, the database and the scripts in single-user mode."""
    copy_template(template, s.pgdata)
    single = ["postgres", "--single", "-j", "-D", str(s.pgdata), "-c", "listen_addresses="]
    sessions = [("postgres", single_user_input(s))]
    if scripts:
        sessions.append((s.database, scripts_input(s, scripts)))
    for database, sql in sessions:
        run([*single, database], input=sql, text=True, check=True, stdout=subprocess.DEVNULL)


def socket_directory() -> str:
    """The first writable of SOCKET_DIRS; empty (TCP only) when none is."""
    return next((d for d in SOCKET_DIRS if os.access(d, os.W_OK | os.X_OK)), "")


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    try:
        s = settings(env)
        if s.password is not None:
            print(f"entrypoint: initialising {s.pgdata}", file=sys.stderr)
            initialise(s, init_scripts(INITDB_DIR))
            print(f"entrypoint: database {s.database} owned by {s.user} is ready", file=sys.stderr)
    except Refused as exc:
        print(f"entrypoint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except subprocess.CalledProcessError as exc:
        print(f"entrypoint: {exc.cmd[0]} failed with exit {exc.returncode}", file=sys.stderr)
        return 1
    except (OSError, tarfile.TarError) as exc:
        print(f"entrypoint: cannot initialise {env.get('PGDATA') or 'PGDATA'}: {exc}", file=sys.stderr)
        return 1
    socket_dir = socket_directory()
    if socket_dir != SOCKET_DIRS[0]:
        print(f"entrypoint: {SOCKET_DIRS[0]} is not writable: local socket in {socket_dir or 'none'}", file=sys.stderr)
    server = [
        "postgres",
        "-D",
        str(s.pgdata),
        "-c",
        "listen_addresses=*",
        "-c",
        f"unix_socket_directories={socket_dir}",
    ]
    server += argv
    os.execvp(server[0], server)  # noqa: S606 - becoming the server: an argument list, no shell exists
    return 1  # not reached: exec replaces this process


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], os.environ))
