"""A series plan's RFC 5545 RRULE → an exchangelib ``Recurrence``, and occurrence → InstanceIndex.

Exchange stores a pattern (weekly, relative/absolute monthly, daily) and a range (numbered, end
date, no end) instead of an RRULE. Only the shapes planning produces are mapped; anything else is
refused with a permanent error rather than booked subtly wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dateutil import rrule
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    WeeklyPattern,
)

from rmdaemon.errors import BackendError
from rmdaemon.model import SeriesPlan

DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday", "SU": "Sunday"}
WEEK_NUMBERS = {1: "First", 2: "Second", 3: "Third", 4: "Fourth", -1: "Last"}
SUPPORTED = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL", "WKST"}


def parts(rule: str) -> dict[str, str]:
    """``FREQ=WEEKLY;INTERVAL=2`` → {"FREQ": "WEEKLY", "INTERVAL": "2"} (a leading ``RRULE:`` is allowed)."""
    text = rule.strip().removeprefix("RRULE:")
    found = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    unknown = set(found) - SUPPORTED
    if unknown:
        raise BackendError(f"recurrence {rule!r}: {', '.join(sorted(unknown))} cannot be booked in Exchange", permanent=True)
    return found


def to_recurrence(plan: SeriesPlan) -> Recurrence:
    rule = parts(plan.rrule)
    return Recurrence(pattern=_pattern(rule, plan), boundary=_boundary(rule, plan))


def _pattern(rule: dict[str, str], plan: SeriesPlan):  # type: ignore[no-untyped-def]  # exchangelib has no stubs
    interval = int(rule.get("INTERVAL", "1"))
    freq = rule.get("FREQ", "")
    days = [d for d in rule.get("BYDAY", "").split(",") if d]
    if freq == "WEEKLY":
        names = [DAYS[d[-2:]] for d in days] or [DAYS[list(DAYS)[plan.first_start.weekday()]]]
        return WeeklyPattern(interval=interval, weekdays=names, first_day_of_week="Monday")
    if freq == "DAILY":
        return DailyPattern(interval=interval)
    if freq == "MONTHLY" and days:
        if len(days) != 1 or len(days[0]) < 3:
            raise BackendError(f"recurrence {plan.rrule!r}: monthly needs one ordinal weekday like 2TU", permanent=True)
        nth = int(days[0][:-2])
        if nth not in WEEK_NUMBERS:
            raise BackendError(f"recurrence {plan.rrule!r}: week {nth} of a month cannot be booked", permanent=True)
        return RelativeMonthlyPattern(interval=interval, weekday=DAYS[days[0][-2:]], week_number=WEEK_NUMBERS[nth])
    if freq == "MONTHLY":
        day = int(rule.get("BYMONTHDAY", plan.first_start.day))
        return AbsoluteMonthlyPattern(interval=interval, day_of_month=day)
    raise BackendError(f"recurrence {plan.rrule!r}: FREQ={freq} cannot be booked in Exchange", permanent=True)


def _boundary(rule: dict[str, str], plan: SeriesPlan):  # type: ignore[no-untyped-def]
    start = plan.first_start.date()
    if "COUNT" in rule:
        return NumberedPattern(start=start, number=int(rule["COUNT"]))
    if "UNTIL" in rule:
        until = _until(rule["UNTIL"]).astimezone(plan.first_start.tzinfo)
        last = until.date()
        if datetime.combine(last, plan.first_start.timetz()) > until:  # that day's session is after UNTIL
            last -= timedelta(days=1)
        return EndDatePattern(start=start, end=last)
    return NoEndPattern(start=start)


def _until(text: str) -> datetime:
    if len(text) == 8:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc)
    return datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)


def instance_index(plan: SeriesPlan, start: datetime) -> int | None:
    """1-based position of the occurrence planned at ``start`` — Exchange's InstanceIndex — or None."""
    wanted = start.astimezone(timezone.utc)
    rule = rrule.rrulestr(plan.rrule.removeprefix("RRULE:"), dtstart=plan.first_start)
    for index, occurrence in enumerate(rule, start=1):
        moment = occurrence.astimezone(timezone.utc)
        if moment == wanted:
            return index
        if moment > wanted or index > 5000:
            return None
    return None
