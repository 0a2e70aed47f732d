"""What a signed Release says: its suite, its Date and Valid-Until (fresh, or refused as a replay), its hashes."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

from .errors import OsUpdatesError

# The security archive signs its Release valid for 7 days (Valid-Until = Date + 7 days) and re-signs it
# within that; an older Date is a stalled mirror or a replayed index, and "nothing pending" from it
# would be a false pass. Also the bound for a Release that declares no Valid-Until at all.
MAX_RELEASE_AGE = dt.timedelta(days=7)
CLOCK_SKEW = dt.timedelta(minutes=10)  # a Release dated further ahead means this host's clock is wrong


def _release_time(value: str) -> dt.datetime:
    when = parsedate_to_datetime(value)
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return when.astimezone(dt.UTC)


def release_window(text: str, where: str) -> tuple[dt.datetime, dt.datetime | None]:
    """The Date and the Valid-Until (None when the Release declares none) of a Release."""
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    try:
        date = _release_time(rel["Date"])
    except (KeyError, TypeError, ValueError):
        raise OsUpdatesError(f"{where} has no valid Date field", seen=text[:300]) from None
    if "Valid-Until" not in rel:
        return date, None
    try:
        return date, _release_time(rel["Valid-Until"])
    except (TypeError, ValueError):
        raise OsUpdatesError(f"{where} has an unreadable Valid-Until field", seen=rel["Valid-Until"]) from None


def stale_problem(
    date: dt.datetime,
    valid_until: dt.datetime | None,
    now: dt.datetime,
    max_age: dt.timedelta = MAX_RELEASE_AGE,
) -> str | None:
    """Why a Release with this Date and Valid-Until must not be believed at ``now``; None when it may."""
    if valid_until is not None and now > valid_until:
        return f"expired at {valid_until:%Y-%m-%d %H:%M} UTC (its Valid-Until); now is {now:%Y-%m-%d %H:%M} UTC"
    if now - date > max_age:
        return f"dated {date:%Y-%m-%d %H:%M} UTC, more than {_span(max_age)} before now ({now:%Y-%m-%d %H:%M} UTC)"
    if date - now > CLOCK_SKEW:
        return f"dated {date:%Y-%m-%d %H:%M} UTC, in the future (now is {now:%Y-%m-%d %H:%M} UTC)"
    return None


def _span(d: dt.timedelta) -> str:
    return f"{d.days} days" if d.days and d == dt.timedelta(days=d.days) else f"{d.total_seconds() / 3600:g} hours"


def check_fresh(text: str, where: str, now: dt.datetime, max_age: dt.timedelta = MAX_RELEASE_AGE) -> None:
    """Refuse a signed Release that is expired or too old: it may be an old index replayed."""
    date, valid_until = release_window(text, where)
    problem = stale_problem(date, valid_until, now, max_age)
    if problem is None:
        return
    future = date > now
    raise OsUpdatesError(
        f"{where} is {problem}; an old signed index may be replayed, so it is not used",
        hint="check this host's clock"
        if future
        else "the mirror serves an outdated index (a stalled mirror, a proxy cache, or a replay): use an "
        "up-to-date security_mirror, or try again later",
    )


def check_suite(text: str, where: str, suite: str) -> None:
    """Refuse the signed Release of another suite served at this suite's address.

    Every suite of the archive is signed with the same keys: without this, an attacker on the path
    could answer for bookworm-security with a current bookworm-updates Release, whose index holds none
    of the security fixes, and every image would look up to date.
    """
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    names = sorted({str(rel.get(k, "")).strip() for k in ("Codename", "Suite")} - {""})
    if suite not in names:
        raise OsUpdatesError(
            f"{where} is the Release of {' / '.join(names) or 'an unnamed suite'}, not of {suite}",
            hint="the mirror serves another suite's index at this address (misconfigured, or substituted); "
            "check security_mirror and suites in the config",
        )


def parse_release(text: str, where: str) -> tuple[dt.datetime, dict[str, tuple[str, int]]]:
    """The Date and the SHA256 list of an InRelease/Release file."""
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    date, _ = release_window(text, where)
    sums = {str(e["name"]): (str(e["sha256"]), int(e["size"])) for e in rel.get("SHA256", [])}
    if not sums:
        raise OsUpdatesError(f"{where} lists no SHA256 sums", seen=text[:300])
    return date, sums
