"""GetServerTimeZones: full Windows-style zone definitions computed from the IANA database.

exchangelib asks for the definition of its zone before every free/busy request and turns the
transition group for the year into the Bias/StandardTime/DaylightTime of ``t:TimeZone``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from lxml import etree

from tests.servers.ews.context import Context
from tests.servers.ews.soap import m, response_message, sub, t

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
REFERENCE_YEAR = 2027


@dataclass(frozen=True)
class Change:
    month: int
    weekday: int
    occurrence: int  # 1-4, or -1 for the last
    offset: timedelta  # local time of day the change happens (before it)
    to_daylight: bool


def duration(delta: timedelta) -> str:
    """xs:duration of a (possibly negative) whole-minute offset: -PT1H, PT0M..."""
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}PT{hours}H{rest}M" if rest else f"{sign}PT{hours}H"


@lru_cache(maxsize=64)
def changes(tz: ZoneInfo, year: int = REFERENCE_YEAR) -> tuple[Change, ...]:
    """The UTC-offset changes of ``tz`` in ``year``, found hour by hour (9,000 steps: remembered,
    since every free/busy answer writes each mailbox's zone)."""
    found = []
    moment = datetime(year, 1, 1, tzinfo=timezone.utc)
    before = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        after = moment.astimezone(tz).utcoffset()
        if after != before:
            local = (moment - timedelta(hours=1)).astimezone(tz) + timedelta(hours=1)
            day = local.day
            occurrence = -1 if day + 7 > _days_in_month(year, local.month) else (day - 1) // 7 + 1
            offset = timedelta(hours=local.hour, minutes=local.minute)
            found.append(Change(local.month, local.weekday(), occurrence, offset, after > before))
            before = after
    return tuple(found)


def _days_in_month(year: int, month: int) -> int:
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def definition(ms_id: str) -> etree._Element:
    tz = ZoneInfo(MS_TIMEZONE_TO_IANA_MAP.get(ms_id, "UTC"))
    found = changes(tz)
    january = datetime(REFERENCE_YEAR, 1, 15, tzinfo=tz).utcoffset()
    july = datetime(REFERENCE_YEAR, 7, 15, tzinfo=tz).utcoffset()
    standard, daylight = min(january, july), max(january, july)
    node = etree.Element(t("TimeZoneDefinition"), Id=ms_id, Name=ms_id)
    periods = sub(node, t("Periods"))
    sub(periods, t("Period"), Bias=duration(-standard), Name="Standard", Id="Std")
    if found:
        sub(periods, t("Period"), Bias=duration(-daylight), Name="Daylight", Id="Dlt")
    group = sub(sub(node, t("TransitionsGroups")), t("TransitionsGroup"), Id="0")
    if not found:
        sub(sub(group, t("Transition")), t("To"), "Std", Kind="Period")
    for change in found:
        transition = sub(group, t("RecurringDayTransition"))
        sub(transition, t("To"), "Dlt" if change.to_daylight else "Std", Kind="Period")
        sub(transition, t("TimeOffset"), duration(change.offset))
        sub(transition, t("Month"), change.month)
        sub(transition, t("DayOfWeek"), WEEKDAYS[change.weekday])
        sub(transition, t("Occurrence"), change.occurrence)
    sub(sub(sub(node, t("Transitions")), t("Transition")), t("To"), "0", Kind="Group")
    return node


def get_server_time_zones(ctx: Context) -> etree._Element:
    ids = [node.text or "" for node in ctx.body.iterfind(f"{m('Ids')}/{t('Id')}")]
    response = etree.Element(m("GetServerTimeZonesResponse"))
    message = response_message("GetServerTimeZonesResponseMessage")
    sub(response, m("ResponseMessages")).append(message)
    container = sub(message, m("TimeZoneDefinitions"))
    for ms_id in ids or sorted(MS_TIMEZONE_TO_IANA_MAP):
        container.append(definition(ms_id))
    return response


OPERATIONS = {"GetServerTimeZones": get_server_time_zones}
