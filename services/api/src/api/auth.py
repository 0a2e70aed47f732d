"""HTTP basic auth check for the metrics endpoint (standard library only)."""

from __future__ import annotations

import base64
import binascii
import secrets


def basic_auth_ok(header: str, user: str, password: str) -> bool:
    """Whether an Authorization header carries exactly this user and password."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, _, given_password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both comparisons always run: no timing hint about which part was wrong.
    ok_user = secrets.compare_digest(given_user.encode(), user.encode())
    ok_password = secrets.compare_digest(given_password.encode(), password.encode())
    return ok_user and ok_password
