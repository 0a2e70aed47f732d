"""Findings and rules: the common currency of lint (and later scan) reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


class Severity(enum.IntEnum):
    """Ordered so that a threshold is a simple comparison; names match hadolint's levels."""

    STYLE = 0
    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; use error, warning, info or style") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def sarif_level(self) -> str:
        return {Severity.ERROR: "error", Severity.WARNING: "warning"}.get(self, "note")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    rationale: str
    hint: str
    tool: str = "pipelines"


@dataclass(frozen=True)
class Finding:
    tool: str  # which linter said it: hadolint, pipelines-dockerfile, pipelines-compose, ...
    rule: str
    severity: Severity
    message: str
    file: str  # as given or relative to the project root
    line: int = 0  # 1-based; 0 when the finding is about the whole file
    service: str = ""  # compose service, when it is about one
    hint: str = ""
    waived_by: str = ""  # where the waiver that covers it was declared
    waiver_reason: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def waived(self) -> bool:
        return bool(self.waived_by)

    def waive(self, where: str, reason: str) -> Finding:
        return replace(self, waived_by=where, waiver_reason=reason)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file
