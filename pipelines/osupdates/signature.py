"""The suite's InRelease, trusted only through gpgv: one clearsigned message, a good signature, its signed text."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import _proc
from ..config import DEBIAN_KEYRING
from .errors import OsUpdatesError

KEYRING = DEBIAN_KEYRING
_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"


def verify_inrelease(path: Path, keyring: Path = KEYRING, *, gpgv: str | None = None) -> tuple[str, str]:
    """(what was checked, the signed text) of an InRelease whose signature gpgv verifies against ``keyring``.

    Fails closed: without gpgv or the keyring nothing about the index can be trusted, so the check
    cannot run. Only the text gpgv reports as signed is returned, and the file must be one clearsigned
    message and nothing else: gpgv ignores text around the message, and a Release paragraph put in
    front of a genuine signed one would otherwise be what is read.
    """
    tool = verifier(keyring, gpgv)
    text = path.read_bytes().decode("utf-8", "replace")
    framing = _framing_problem(text)
    if framing:
        raise OsUpdatesError(
            f"{path.name} is not a single clearsigned message: {framing}",
            hint="the mirror (or something on the way) serves altered data; check the mirror in the config",
        )
    # The signed text on stdout, gpgv's machine-readable status (with its messages) on stderr.
    r = _proc.run(
        [tool, "--status-fd", "2", "--keyring", str(keyring.absolute()), "--output", "-", str(path)],
        timeout=60,
        check=False,
        quiet=True,
    )
    status = [line.split()[1:] for line in r.stderr.splitlines() if line.startswith("[GNUPG:] ")]
    words = [s[0] for s in status if s]
    # GOODSIG is a good signature by an unexpired, unrevoked key of the keyring (gpgv reports those as
    # EXPKEYSIG/REVKEYSIG). One is enough, as for apt: a second signature by a key this keyring does not
    # have yet (a key rotation) must not fail the check; a bad signature always does.
    good = [" ".join(s[2:]) for s in status if s and s[0] == "GOODSIG"]
    if not good or "VALIDSIG" not in words or "BADSIG" in words or not r.stdout.strip():
        raise OsUpdatesError(
            f"the signature of {path.name} does not verify against {keyring}",
            seen=_proc.tail(r.stderr or r.stdout, 8),
            hint="the mirror may be serving altered data; check the mirror in the config",
        )
    return f"InRelease signature verified with {keyring.name} ({'; '.join(good)})", r.stdout


def verifier(keyring: Path = KEYRING, gpgv: str | None = None) -> str:
    """gpgv's path, when it and the keyring are here; else the check cannot run (exit 2), never a note."""
    tool = gpgv if gpgv is not None else shutil.which("gpgv")
    if tool is None or not Path(tool).is_file():
        raise OsUpdatesError(
            f"gpgv is not installed{f' ({tool} does not exist)' if tool else ''}: "
            "the security index's signature cannot be checked",
            hint="apt-get install gpgv debian-archive-keyring (the OS updates check never uses an unsigned index)",
        )
    if not keyring.is_file():
        raise OsUpdatesError(
            f"the archive keyring {keyring} does not exist: the security index's signature cannot be checked",
            hint="apt-get install debian-archive-keyring, or set `keyring` of the rootfs image in the config "
            "to the keyring that signs your mirror",
        )
    return tool


def _framing_problem(text: str) -> str | None:
    """What is wrong with the armor of a clearsigned file, or None for exactly one message."""
    if not text.startswith(_SIGNED_BEGIN + "\n") and not text.startswith(_SIGNED_BEGIN + "\r\n"):
        return f"it does not start with {_SIGNED_BEGIN}"
    for marker in (_SIGNED_BEGIN, _SIGNATURE_BEGIN, _SIGNATURE_END):
        if text.count(marker) != 1:
            return f"{marker} occurs {text.count(marker)} times"
    if text.index(_SIGNATURE_BEGIN) > text.index(_SIGNATURE_END) or text.split(_SIGNATURE_END, 1)[1].strip():
        return f"there is text after {_SIGNATURE_END}"
    return None
