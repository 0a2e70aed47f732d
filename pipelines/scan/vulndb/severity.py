"""How severe an advisory is: CVSS vectors (scored by the `cvss` library), GHSA's words, configured defaults."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

from ...dbseverity import DEFAULT_SEVERITY, SEVERITIES, check_default_severity
from ...errors import ConfigError

if TYPE_CHECKING:
    from .osv_schema import OsvRecord, OsvSeverity


def severity_of_score(score: float) -> str:
    """The qualitative rating of a CVSS v3/v4 score; a score of 0 (None) is UNKNOWN to Trivy."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score >= 0.1:
        return "LOW"
    return "UNKNOWN"


def _v2_severity(score: float) -> str:
    # CVSS v2 has no CRITICAL band (NVD's v2 ratings).
    return "HIGH" if score >= 7.0 else "MEDIUM" if score >= 4.0 else "LOW" if score > 0 else "UNKNOWN"


def cvss_severity(kind: str, vector: str) -> str:
    """The rating of a CVSS_V2/V3/V4 vector (scored by the `cvss` library); ValueError if malformed."""
    try:
        if kind == "CVSS_V3":
            if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
                raise ValueError("expected a vector starting with CVSS:3.0/ or CVSS:3.1/")
            return severity_of_score(float(CVSS3(vector).base_score))
        if kind == "CVSS_V4":
            if not vector.startswith("CVSS:4.0/"):
                raise ValueError("expected a vector starting with CVSS:4.0/")
            return severity_of_score(float(CVSS4(vector).base_score))
        if kind == "CVSS_V2":
            return _v2_severity(float(CVSS2(vector).base_score))
    except CVSSError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError(f"severity type {kind!r} is not a CVSS vector type")


# GHSA's words, and Trivy's own.
_SEVERITY_WORDS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "MODERATE": "MEDIUM",
    "MEDIUM": "MEDIUM",
    "LOW": "LOW",
}


def parse_default_severity(pairs: Iterable[str], *, where: str) -> dict[str, str]:
    """``ECOSYSTEM=LEVEL`` pairs (e.g. ``Debian=MEDIUM``) over the built-in defaults."""
    out = dict(DEFAULT_SEVERITY)
    for pair in pairs:
        eco, sep, level = pair.partition("=")
        out.update(check_default_severity({eco.strip(): level.strip()} if sep else {pair: ""}, where=where))
    return out


def record_severity(record: OsvRecord, file: str) -> str:
    """A record's own rating: its database's word (GHSA's), else its CVSS vectors; UNKNOWN when it gives none."""
    specific = record.database_specific or {}
    word = specific.get("severity")
    if isinstance(word, str) and word.strip().upper() in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[word.strip().upper()]
    return vector_severity(record.severity, file, "severity")


def vector_severity(entries: list[OsvSeverity], file: str, where: str) -> str:
    """The highest rating among the CVSS vectors given (v3 and v4 alike; v2 only when alone)."""
    found: list[str] = []
    v2: list[str] = []
    for i, entry in enumerate(entries):
        if entry.type not in ("CVSS_V2", "CVSS_V3", "CVSS_V4"):
            continue  # e.g. Ubuntu's own words: not a vector
        try:
            rating = cvss_severity(entry.type, entry.score.strip())
        except ValueError as exc:
            raise ConfigError(file, f"{where}[{i}].score", f"is not a {entry.type} vector: {exc}") from None
        (v2 if entry.type == "CVSS_V2" else found).append(rating)
    ratings = found or v2
    return max(ratings, key=SEVERITIES.index) if ratings else "UNKNOWN"
