"""A session as an occurrence of a pair's series, and what became of it.

Not a stored row: ``programme/sessions.py`` computes these from the stored series, logs,
calendar answers and the clock (``docs/sessions.md``); ``status --json`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum


class SessionStatus(StrEnum):
    """What became of one session (``programme/sessions.py`` computes it; ``docs/sessions.md``)."""

    PLANNED = "planned"  # ahead, or started and its log window still open
    HELD = "held"  # a log says it happened
    MISSED = "missed"  # the log window closed without a log saying it happened
    SKIPPED = "skipped"  # SKIP: taken out of the series in time
    DECLINED = "declined"  # someone declined it in their calendar (and it was not moved)
    MOVED = "moved"  # RESCHEDULE or a picked repair time; ahead (or its log window open)
    CANCELLED = "cancelled"  # the series was cancelled (PAUSE, STOP, roster) before it came


@dataclass(frozen=True)
class Session:
    """One occurrence of a pair's series: named by (series ``uid``, ``planned`` start), happening
    at ``start``; ``number`` is its place in the pair's programme (see ``docs/sessions.md``)."""

    pair_id: str
    uid: str
    token: str
    planned: datetime
    start: datetime
    number: int
    status: SessionStatus
    logged_by: tuple[str, ...] = ()

    def as_json(self) -> dict:
        """The ``status --json`` form (the README's contract)."""
        return {"number": self.number, "start": self.start.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                "status": str(self.status), "logged_by": list(self.logged_by)}

