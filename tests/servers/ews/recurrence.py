"""Expand an EWS ``t:Recurrence`` into occurrences, as Exchange does for views and free/busy.

Instance indexes are 1-based positions in the pattern, counting deleted occurrences too, which is
how ``OccurrenceItemId/@InstanceIndex`` addresses them. A modified occurrence keeps its index and
its ``original`` start (the iTIP RECURRENCE-ID) and happens at its new time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil import rrule
from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from lxml import etree

from tests.servers.ews.soap import EwsError, local, t
from tests.servers.ews.store import Item

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK_INDEX = {"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}
HORIZON_DAYS = 3 * 365  # a NoEndRecurrence is expanded this far


@dataclass(frozen=True)
class Occurrence:
    index: int
    start: datetime  # aware
    end: datetime
    original: datetime | None = None  # the pattern's start, when the occurrence was moved

    @property
    def recurrence_id(self) -> datetime:
        return self.original or self.start


def parse_time(text: str) -> datetime:
    """An EWS dateTime; naive values are UTC, as the server reads them without a context zone."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def ews_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone(ms_id: str | None) -> ZoneInfo:
    """The IANA zone of a Windows zone id; UTC when absent."""
    return ZoneInfo(MS_TIMEZONE_TO_IANA_MAP.get(ms_id or "", "UTC"))


def item_zone(fields: etree._Element) -> ZoneInfo:
    node = fields.find(t("StartTimeZone"))
    return zone(node.get("Id") if node is not None else None)


def occurrences(fields: etree._Element) -> list[Occurrence]:
    """All occurrences of a calendar item (one for a single item), in start order."""
    start = parse_time(fields.findtext(t("Start")) or "")
    end = parse_time(fields.findtext(t("End")) or "")
    recurrence = fields.find(t("Recurrence"))
    if recurrence is None:
        return [Occurrence(1, start, end)]
    tz = item_zone(fields)
    local_start = start.astimezone(tz)
    pattern, boundary = recurrence[0], recurrence[1]
    first = date.fromisoformat(boundary.findtext(t("StartDate"))[:10])
    dtstart = datetime.combine(first, local_start.time(), tz)
    rule = rrule.rrule(dtstart=dtstart, **_pattern(pattern), **_boundary(boundary, tz))
    duration = end - start
    return [Occurrence(i, s, s + duration) for i, s in enumerate(rule, start=1)]


def item_occurrences(item: Item) -> list[Occurrence]:
    """The occurrences of a stored item as they are now: modified ones at their new times (deleted
    ones are still listed; callers leave out ``item.deleted_occurrences``)."""
    found = []
    for occurrence in occurrences(item.fields):
        moved = item.modified_occurrences.get(occurrence.index)
        found.append(Occurrence(occurrence.index, *moved, original=occurrence.start) if moved else occurrence)
    return found


def _pattern(node: etree._Element) -> dict[str, object]:
    kind = local(node)
    interval = int(node.findtext(t("Interval")) or 1)
    days = [WEEKDAYS.index(d) for d in (node.findtext(t("DaysOfWeek")) or "").split() if d in WEEKDAYS]
    if kind == "WeeklyRecurrence":
        wkst = WEEKDAYS.index(node.findtext(t("FirstDayOfWeek")) or "Monday")
        return {"freq": rrule.WEEKLY, "interval": interval, "byweekday": days, "wkst": wkst}
    if kind == "DailyRecurrence":
        return {"freq": rrule.DAILY, "interval": interval}
    if kind == "AbsoluteMonthlyRecurrence":
        return {"freq": rrule.MONTHLY, "interval": interval, "bymonthday": int(node.findtext(t("DayOfMonth")))}
    if kind == "RelativeMonthlyRecurrence":
        nth = WEEK_INDEX[node.findtext(t("DayOfWeekIndex")) or "First"]
        return {"freq": rrule.MONTHLY, "interval": interval, "byweekday": [rrule.weekday(d, nth) for d in days]}
    raise EwsError("ErrorUnsupportedRecurrence", f"{kind} is not supported by this test server")


def _boundary(node: etree._Element, tz: ZoneInfo) -> dict[str, object]:
    kind = local(node)
    if kind == "NumberedRecurrence":
        return {"count": int(node.findtext(t("NumberOfOccurrences")))}
    if kind == "EndDateRecurrence":
        last = date.fromisoformat(node.findtext(t("EndDate"))[:10])
        return {"until": datetime.combine(last, time(23, 59, 59), tz)}
    horizon = datetime.combine(date.fromisoformat(node.findtext(t("StartDate"))[:10]), time(0), tz)
    return {"until": horizon + timedelta(days=HORIZON_DAYS)}
