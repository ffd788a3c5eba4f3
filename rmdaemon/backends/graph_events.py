"""A ``Meeting`` as a Graph event: recurrence, Windows time zones, our extended properties, the UID.

Graph cannot set an event's ``iCalUId``; Exchange derives it (and the ``UID`` attendees see in
their invitations) from the MAPI property PidLidGlobalObjectId. Written in the "vCal-Uid" form of
[MS-OXCICAL] 2.1.3.1.1.20.26 it carries our own uid, so attendees' clients, their RSVPs and the
reply parser all see the same UID as with the local, SMTP and Exchange backends.

The uid and the sequence last applied sit in the same named-property set the exchange backend
uses, so a series booked through EWS is found and updated through Graph too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import tz_win

from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting, SeriesPlan

PROPERTY_SET = "6f0b1f8e-3c56-4a3e-9d3a-7a2c5e1b9d40"  # rmdaemon's named properties (shared with EWS)
KEY = f"String {{{PROPERTY_SET}}} Name rmdaemon-key"
SEQUENCE = f"Integer {{{PROPERTY_SET}}} Name rmdaemon-sequence"
SHAPE = f"String {{{PROPERTY_SET}}} Name rmdaemon-shape"  # same digest as the exchange backend's
EXCEPTIONS = f"String {{{PROPERTY_SET}}} Name rmdaemon-exceptions"  # same JSON as the exchange backend's
PSETID_MEETING = "6ED8DA90-450B-101B-98DA-00AA003F1305"
GLOBAL_OBJECT_ID = f"Binary {{{PSETID_MEETING}}} Id 0x0003"
CLEAN_GLOBAL_OBJECT_ID = f"Binary {{{PSETID_MEETING}}} Id 0x0023"
GOID_PREFIX = bytes.fromhex("040000008200E00074C5B7101A82E008")
DAYS = {"MO": "monday", "TU": "tuesday", "WE": "wednesday", "TH": "thursday", "FR": "friday", "SA": "saturday", "SU": "sunday"}
INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
REMINDER_MINUTES = 15
SUPPORTED = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL", "WKST"}


def key_filter(value: str) -> str:
    """OData ``$filter`` for items carrying our key (a series uid or a message's idempotency key)."""
    escaped = value.replace("'", "''")
    return f"singleValueExtendedProperties/Any(ep: ep/id eq '{KEY}' and ep/value eq '{escaped}')"


EXPAND = (f"singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{SEQUENCE}' or id eq '{SHAPE}' "
          f"or id eq '{EXCEPTIONS}')")


def shape(meeting: Meeting) -> str:
    """What the series looks like apart from skipped and moved sessions: when only those change,
    attendees get just those sessions, not the whole series again."""
    plan = meeting.plan
    parts = [plan.tzid, plan.first_start.isoformat(), plan.duration_minutes, plan.rrule, meeting.summary,
             [(p.email.casefold(), p.name) for p in meeting.attendees], meeting.body_text, meeting.body_html,
             meeting.description, list(meeting.categories)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def exceptions(meeting: Meeting) -> str:
    """The skipped and moved sessions a series carries, as JSON (UTC ISO keys)."""
    skipped = sorted(s.astimezone(timezone.utc).isoformat() for s in meeting.exdates)
    moved = sorted([a.astimezone(timezone.utc).isoformat(), b.astimezone(timezone.utc).isoformat()] for a, b in meeting.moved
                   if a.astimezone(timezone.utc).isoformat() not in skipped)
    return json.dumps({"exdates": skipped, "moved": moved}, separators=(",", ":"))


def extended(item: dict[str, Any], prop: str) -> str | None:
    """The value of one single-value extended property of a Graph item (ids compare case-blind)."""
    for entry in item.get("singleValueExtendedProperties") or ():
        if str(entry.get("id", "")).casefold() == prop.casefold():
            return str(entry.get("value"))
    return None


def global_object_id(uid: str) -> bytes:
    """PidLidGlobalObjectId for an iCalendar UID that is not itself a hex GOID ([MS-OXCICAL])."""
    data = b"vCal-Uid" + struct.pack("<I", 1) + uid.encode("utf-8") + b"\x00"
    return GOID_PREFIX + bytes(4) + bytes(8) + bytes(8) + struct.pack("<I", len(data)) + data


def windows_zone(tzid: str) -> str:
    """Graph's create/update accept Windows zone names everywhere, IANA names only for some zones."""
    name = tz_win.get(tzid) or ("UTC" if tzid in ("UTC", "Etc/UTC") else None)
    if name is None:
        raise BackendError(f"time zone {tzid} has no Windows equivalent that Exchange Online accepts", permanent=True)
    return name


def local_time(moment: datetime, tzid: str) -> dict[str, str]:
    """A dateTimeTimeZone: the wall-clock time in ``tzid``, so DST changes keep the hour."""
    wall = moment.astimezone(ZoneInfo(tzid))
    return {"dateTime": wall.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": windows_zone(tzid)}


def parse_time(value: dict[str, str]) -> datetime:
    """A dateTimeTimeZone Graph returned; we ask for UTC (``Prefer: outlook.timezone``)."""
    text = value["dateTime"].rstrip("Z")
    moment = datetime.fromisoformat(text[:26] if "." in text else text)
    zone = value.get("timeZone", "UTC")
    return moment.replace(tzinfo=timezone.utc if zone in ("UTC", "Etc/UTC", "") else ZoneInfo(iana_zone(zone)))


def iana_zone(zone: str) -> str:
    """The IANA name of a zone Graph names the Windows way ("GMT Standard Time"); IANA names pass."""
    from tzlocal.windows_tz import win_tz

    return win_tz.get(zone, zone)


def event_body(meeting: Meeting, *, create: bool, online: bool = False) -> dict[str, Any]:
    """Every field we own; on create also the transactionId and the UID property. ``online``: a
    Teams meeting, whose join link Graph answers with (``onlineMeeting.joinUrl``)."""
    plan = meeting.plan
    body: dict[str, Any] = {
        "subject": meeting.summary,
        "body": {"contentType": "HTML", "content": meeting.body_html} if meeting.body_html
        else {"contentType": "Text", "content": meeting.body_text or meeting.description},
        "start": local_time(plan.first_start, plan.tzid),
        "end": local_time(plan.first_start + timedelta(minutes=plan.duration_minutes), plan.tzid),
        "attendees": [{"emailAddress": {"address": p.email, "name": p.name}, "type": "required"} for p in meeting.attendees],
        "recurrence": recurrence(plan),
        "showAs": "busy",
        "sensitivity": "private",
        "categories": list(meeting.categories),
        "isReminderOn": True,
        "reminderMinutesBeforeStart": REMINDER_MINUTES,
        "responseRequested": True,
        "allowNewTimeProposals": False,
        "singleValueExtendedProperties": [{"id": SEQUENCE, "value": str(meeting.sequence)}, {"id": SHAPE, "value": shape(meeting)},
                                          {"id": EXCEPTIONS, "value": exceptions(meeting)}],
    }
    if meeting.location:
        body["location"] = {"displayName": meeting.location}
    if online:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = "teamsForBusiness"
    if create:
        goid = base64.b64encode(global_object_id(meeting.uid)).decode()
        body["transactionId"] = transaction_id(meeting.uid)
        body["singleValueExtendedProperties"] += [{"id": KEY, "value": meeting.uid}, {"id": GLOBAL_OBJECT_ID, "value": goid},
                                                  {"id": CLEAN_GLOBAL_OBJECT_ID, "value": goid}]
    return body


def transaction_id(uid: str) -> str:
    """Graph's idempotency key for a create: the same uid always gives the same id."""
    return "rm-" + hashlib.sha256(uid.encode()).hexdigest()[:40]


def parts(rule: str) -> dict[str, str]:
    """``FREQ=WEEKLY;INTERVAL=2`` → {"FREQ": "WEEKLY", "INTERVAL": "2"}; parts Graph cannot express are refused."""
    found = dict(p.split("=", 1) for p in rule.strip().removeprefix("RRULE:").split(";") if "=" in p)
    unknown = set(found) - SUPPORTED
    if unknown:
        raise BackendError(f"recurrence {rule!r}: {', '.join(sorted(unknown))} cannot be booked in Microsoft 365", permanent=True)
    return found


def recurrence(plan: SeriesPlan) -> dict[str, Any]:
    """The RRULE shapes planning produces, as Graph's pattern + range; anything else is refused."""
    rule = parts(plan.rrule)
    local_start = plan.first_start.astimezone(ZoneInfo(plan.tzid))
    return {"pattern": _pattern(rule, plan, local_start), "range": _range(rule, plan, local_start)}


def _pattern(rule: dict[str, str], plan: SeriesPlan, start: datetime) -> dict[str, Any]:
    interval = int(rule.get("INTERVAL", "1"))
    freq = rule.get("FREQ", "")
    days = [d for d in rule.get("BYDAY", "").split(",") if d]
    if freq == "WEEKLY":
        names = [DAYS[d[-2:]] for d in days] or [list(DAYS.values())[start.weekday()]]
        return {"type": "weekly", "interval": interval, "daysOfWeek": names, "firstDayOfWeek": "monday"}
    if freq == "DAILY":
        return {"type": "daily", "interval": interval}
    if freq == "MONTHLY" and days:
        nth = int(days[0][:-2] or "0") if len(days) == 1 else 0
        if nth not in INDEX:
            raise BackendError(f"recurrence {plan.rrule!r}: monthly needs one ordinal weekday like 2TU", permanent=True)
        return {"type": "relativeMonthly", "interval": interval, "daysOfWeek": [DAYS[days[0][-2:]]], "index": INDEX[nth]}
    if freq == "MONTHLY":
        return {"type": "absoluteMonthly", "interval": interval, "dayOfMonth": int(rule.get("BYMONTHDAY", start.day))}
    raise BackendError(f"recurrence {plan.rrule!r}: FREQ={freq} cannot be booked in Microsoft 365", permanent=True)


def _range(rule: dict[str, str], plan: SeriesPlan, start: datetime) -> dict[str, Any]:
    base = {"startDate": start.date().isoformat(), "recurrenceTimeZone": windows_zone(plan.tzid)}
    if "COUNT" in rule:
        return {"type": "numbered", "numberOfOccurrences": int(rule["COUNT"]), **base}
    if "UNTIL" in rule:
        return {"type": "endDate", "endDate": _last_day(rule["UNTIL"], start).isoformat(), **base}
    return {"type": "noEnd", **base}


def _last_day(text: str, start: datetime) -> date:
    """The last local day with a session at or before UNTIL (Graph's endDate is a day)."""
    stamp = "%Y%m%d" if len(text) == 8 else "%Y%m%dT%H%M%S"
    until = datetime.strptime(text.rstrip("Z"), stamp).replace(tzinfo=timezone.utc).astimezone(start.tzinfo)
    last = until.date()
    if datetime.combine(last, start.timetz()) > until:
        last -= timedelta(days=1)
    return last
