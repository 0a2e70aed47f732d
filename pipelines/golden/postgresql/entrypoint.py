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

On first start it runs ``initdb`` (password from a file that never reaches an argument list),
creates the database and runs the SQL files in single-user mode (no network listener is opened
before the database is ready), then replaces itself with ``postgres``: the server is the process
tini signals. Every refusal is one line on stderr naming the setting, and exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INITDB_DIR = Path("/docker-entrypoint-initdb.d")
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


def single_user_input(s: Settings, scripts: Sequence[Path]) -> str:
    """What single-user mode reads (``-j``: a statement ends with a semicolon and an empty line)."""
    parts = []
    if s.database != "postgres":
        parts.append(f"CREATE DATABASE {quote_ident(s.database)} OWNER {quote_ident(s.user)};\n\n")
    for script in scripts:
        parts.append(script.read_text(encoding="utf-8").rstrip() + "\n\n")
    return "".join(parts)


def initialise(s: Settings, scripts: Sequence[Path], run: Callable[..., object] = subprocess.run) -> None:
    """initdb, then the database and the scripts in single-user mode (no listener before they are done)."""
    s.pgdata.mkdir(parents=True, exist_ok=True)
    # The password reaches initdb in a file of this user's, under the tmpfs /tmp, removed right after.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", prefix="pwfile-") as pw:
        pw.write(s.password or "")
        pw.flush()
        run(
            [
                "initdb",
                "-D",
                str(s.pgdata),
                f"--username={s.user}",
                f"--pwfile={pw.name}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    with (s.pgdata / "pg_hba.conf").open("a", encoding="utf-8") as hba:
        # Clients on the stack's network reach the server over TCP, with the password.
        hba.write("host all all all scram-sha-256\n")
    sql = single_user_input(s, scripts)
    if sql:
        run(
            ["postgres", "--single", "-j", "-D", str(s.pgdata), "-c", "listen_addresses=", "postgres"],
            input=sql,
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )


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
    server = ["postgres", "-D", str(s.pgdata), "-c", "listen_addresses=*", *argv]
    os.execvp(server[0], server)  # noqa: S606 - becoming the server: an argument list, no shell exists
    return 1  # not reached: exec replaces this process


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], os.environ))
