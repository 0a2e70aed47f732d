"""Whether a setting gives a secret away or switches authentication off.

Lint's two policies judge settings by these (the Dockerfile one ENV and ARG
values, the Compose one a service's environment), and harden names the same
settings as steps left to a person.
"""

from __future__ import annotations

import math
import re

SECRET_KEY = re.compile(
    r"(?i)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|"
    r"CREDENTIAL|(^|_)KEY$|(^|_)(PASS|PWD)$)"
)
# Names that say the value is public by design: signing keys people verify with, key IDs,
# keyservers, and settings that only name where a secret lives.
PUBLIC_KEY = re.compile(
    r"(?i)(^|_)(GPG|PGP|GNUPG|MINISIGN|COSIGN|SIGNING|PUBLIC|PUB)(_|$)|KEYSERVER|KEYRING|FINGERPRINT|"
    r"(_|^)KEYS?_?(ID|IDS|URL|URI)$|(_FILE|_PATH|_DIR|_LENGTH|_MIN_LENGTH|_ENABLED|_EXPIRY|_TTL|_URL_PATH|_REQUIRED)$"
)
SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
# user:password@ inside a URL; a ${VAR} or $VAR password comes from elsewhere and is not inline.
URL_CREDENTIAL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<pw>[^@\s/]+)@")


def _entropy(s: str) -> float:
    counts = {ch: s.count(ch) for ch in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def looks_secret(value: str) -> bool:
    if SECRET_VALUE.search(value):
        return True
    v = value.strip("'\"")
    return (
        len(v) >= 24
        and " " not in v
        and "/" not in v
        and "$" not in v
        and _entropy(v) >= 4.2
        and any(c.isdigit() for c in v)
        and any(c.isalpha() for c in v)
    )


def secret_name(key: str) -> bool:
    """A name that says its value is a secret, and not one of the public-by-design ones."""
    return bool(SECRET_KEY.search(key)) and not PUBLIC_KEY.search(key)


def url_credential(value: str) -> bool:
    m = URL_CREDENTIAL.search(value)
    return m is not None and not m.group("pw").startswith("$")


# Settings that switch authentication off; (name pattern, values that mean "off").
AUTH_OFF = (
    (re.compile(r"(?i)HOST_AUTH_METHOD$"), {"trust"}),
    (re.compile(r"(?i)ALLOW_EMPTY_PASSWORD$"), {"yes", "true", "1"}),
    (re.compile(r"(?i)^xpack\.security\.enabled$|(^|_)AUTH(ENTICATION)?_(ENABLED|REQUIRED)$"), {"false", "no", "0"}),
    (re.compile(r"(?i)(^|_)(DISABLE|SKIP)_AUTH(ENTICATION)?$"), {"true", "yes", "1"}),
    (re.compile(r"(?i)ANONYMOUS_ENABLED$"), {"true", "yes", "1"}),
)


def auth_disabled(key: str, value: str) -> bool:
    v = value.strip().strip("'\"").lower()
    return any(rx.search(key) and v in off for rx, off in AUTH_OFF)


# A value that is only a variable reference (`$VAR`, `${VAR}`, `${VAR:?message}`): the secret is not in the file.
REFERENCE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")


def passed_by_variable(written: str | None) -> bool:
    """Whether an environment value as written in a Compose file (None: a pass-through) comes from elsewhere."""
    return written is None or bool(REFERENCE.fullmatch(written.strip()))
