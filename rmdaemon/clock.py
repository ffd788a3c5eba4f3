"""Time is injected, never read from a global: jobs get ``now`` from the daemon, which gets it here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from rmdaemon.errors import UserError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Clock:
    return lambda: moment


def parse_now(text: str) -> datetime:
    """Parse ``--now``; a naive value is refused because it would silently mean the host's zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--now {text!r} is not an ISO 8601 date-time; use e.g. 2027-01-04T08:00:00+00:00") from None
    if moment.tzinfo is None:
        raise UserError(f"--now {text!r} has no UTC offset; add one, e.g. {text}+00:00")
    return moment.astimezone(timezone.utc)
