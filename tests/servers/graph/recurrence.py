"""Graph's ``recurrence`` (pattern + range) expanded into occurrences, as Exchange does for views,
``/instances`` and free/busy; and checked the way Graph checks it on create and update."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule
from tzlocal.windows_tz import win_tz

from tests.servers.graph.store import Event, GraphFault

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
HORIZON = timedelta(days=3 * 365)  # a noEnd series is expanded this far


@dataclass(frozen=True)
class Occurrence:
    original: datetime  # planned start, UTC
    start: datetime  # actual start (moved or not), UTC
    end: datetime


def zone(name: str) -> ZoneInfo:
    """A Windows zone name (what Outlook uses) or an IANA one; unknown names are refused like Graph does."""
    try:
        return ZoneInfo(win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphFault(400, "TimeZoneNotSupportedException",
                         f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.") from None


def moment(value: Any, what: str) -> datetime:
    """A dateTimeTimeZone from a request body → aware UTC."""
    if not isinstance(value, dict) or "dateTime" not in value or "timeZone" not in value:
        raise GraphFault(400, "ErrorInvalidRequest", f"{what} must be a dateTimeTimeZone with dateTime and timeZone.")
    try:
        naive = datetime.fromisoformat(str(value["dateTime"]).rstrip("Z")[:26])
    except ValueError:
        raise GraphFault(400, "ErrorInvalidRequest", f"Cannot convert the literal '{value['dateTime']}' to a DateTime.") from None
    return naive.replace(tzinfo=zone(str(value["timeZone"]))).astimezone(timezone.utc)


def check(fields: dict[str, Any]) -> None:
    """Graph's own checks of a series: a pattern it knows, a range that starts on the event's day."""
    start = moment(fields.get("start"), "start")
    end = moment(fields.get("end"), "end")
    if end <= start:
        raise GraphFault(400, "ErrorInvalidRequest", "The end of the event must be after its start.")
    recurrence = fields.get("recurrence")
    if recurrence is None:
        return
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    if pattern.get("type") not in ("daily", "weekly", "absoluteMonthly", "relativeMonthly"):
        raise GraphFault(400, "ErrorInvalidRecurrence", f"Recurrence pattern type '{pattern.get('type')}' is not supported here.")
    if pattern.get("type") in ("weekly", "relativeMonthly") and not pattern.get("daysOfWeek"):
        raise GraphFault(400, "ErrorInvalidRecurrence", "daysOfWeek is required for this pattern.")
    local = start.astimezone(zone(str(fields["start"]["timeZone"])))
    if rng.get("startDate") != local.date().isoformat():
        raise GraphFault(400, "ErrorPropertyValidationFailure",
                         "The recurrence range startDate must be the same as the date of the start of the event.")
    if rng.get("type") not in ("numbered", "endDate", "noEnd"):
        raise GraphFault(400, "ErrorInvalidRecurrence", f"Recurrence range type '{rng.get('type')}' is not valid.")


def occurrences(event: Event) -> list[Occurrence]:
    """Every live occurrence (cancelled ones left out, moved ones at their new time), in order."""
    start, end = moment(event.fields["start"], "start"), moment(event.fields["end"], "end")
    recurrence = event.fields.get("recurrence")
    if not recurrence:
        return [Occurrence(start, start, end)]
    tz = zone(str(event.fields["start"]["timeZone"]))
    local = start.astimezone(tz)
    first = datetime.combine(date.fromisoformat(recurrence["range"]["startDate"]), local.time(), tz)
    rule = rrule.rrule(dtstart=first, **_pattern(recurrence["pattern"]), **_range(recurrence["range"], tz))
    found = []
    for planned in rule:
        original = planned.astimezone(timezone.utc)
        if original in event.cancelled:
            continue
        actual = event.moved.get(original, (original, original + (end - start)))
        found.append(Occurrence(original, *actual))
    return found


def _pattern(pattern: dict[str, Any]) -> dict[str, Any]:
    kind, interval = pattern["type"], int(pattern.get("interval", 1))
    days = [DAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or []]
    if kind == "weekly":
        return {"freq": rrule.WEEKLY, "interval": interval, "byweekday": days,
                "wkst": DAYS.index(pattern.get("firstDayOfWeek", "sunday").lower())}
    if kind == "daily":
        return {"freq": rrule.DAILY, "interval": interval}
    if kind == "absoluteMonthly":
        return {"freq": rrule.MONTHLY, "interval": interval, "bymonthday": int(pattern["dayOfMonth"])}
    nth = INDEX[pattern.get("index", "first")]
    return {"freq": rrule.MONTHLY, "interval": interval, "byweekday": [rrule.weekday(d, nth) for d in days]}


def _range(rng: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    if rng["type"] == "numbered":
        return {"count": int(rng["numberOfOccurrences"])}
    if rng["type"] == "endDate":
        return {"until": datetime.combine(date.fromisoformat(rng["endDate"]), time(23, 59, 59), tz)}
    return {"until": datetime.combine(date.fromisoformat(rng["startDate"]), time(0), tz) + HORIZON}


def rrule_text(event: Event) -> str:
    """The RRULE Exchange writes into the iCalendar of an invitation for this series."""
    recurrence = event.fields.get("recurrence")
    if not recurrence:
        return ""
    pattern, rng = recurrence["pattern"], recurrence["range"]
    codes = {d: d[:2].upper() for d in DAYS}
    parts = {"daily": ["FREQ=DAILY"], "weekly": ["FREQ=WEEKLY"], "absoluteMonthly": ["FREQ=MONTHLY"],
             "relativeMonthly": ["FREQ=MONTHLY"]}[pattern["type"]]
    parts.append(f"INTERVAL={pattern.get('interval', 1)}")
    if pattern["type"] == "weekly":
        parts.append("BYDAY=" + ",".join(codes[d.lower()] for d in pattern["daysOfWeek"]))
    elif pattern["type"] == "relativeMonthly":
        nth = INDEX[pattern.get("index", "first")]
        parts.append("BYDAY=" + ",".join(f"{nth}{codes[d.lower()]}" for d in pattern["daysOfWeek"]))
    elif pattern["type"] == "absoluteMonthly":
        parts.append(f"BYMONTHDAY={pattern['dayOfMonth']}")
    if rng["type"] == "numbered":
        parts.append(f"COUNT={rng['numberOfOccurrences']}")
    elif rng["type"] == "endDate":
        parts.append(f"UNTIL={rng['endDate'].replace('-', '')}T235959Z")
    return ";".join(parts)
