"""Calendar v3 times and recurrences: ``{"dateTime", "timeZone"}`` values, RRULE expansion into
instances with Google's instance ids (``{eventId}_{YYYYMMDDTHHMMSSZ}``), and the iTIP mail Google
sends attendees when ``sendUpdates`` asks for it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from tests.servers.ews import mime
from tests.servers.google.store import ApiError, Event, Outbound, Store

HORIZON = timedelta(days=3 * 366)  # an open-ended series is expanded this far
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Instance:
    original: datetime  # UTC
    resource: dict[str, Any]

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


def moment(value: Any, what: str) -> datetime:
    """An EventDateTime → aware UTC; an offset in ``dateTime`` wins, else ``timeZone`` places it."""
    if not isinstance(value, dict) or "dateTime" not in value:
        raise ApiError(400, "required", f"Missing {what} time.")
    try:
        parsed = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(str(value.get("timeZone") or "")))
    except (ValueError, ZoneInfoNotFoundError):
        raise ApiError(400, "invalid", f"Invalid {what} time.") from None
    return parsed.astimezone(timezone.utc)


def zone_of(fields: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(str(fields["start"].get("timeZone") or "UTC"))
    except ZoneInfoNotFoundError:
        raise ApiError(400, "timeRangeEmpty", "Invalid time zone definition for start time.") from None


def stamp(moment_: datetime, tz: ZoneInfo) -> dict[str, str]:
    return {"dateTime": moment_.astimezone(tz).isoformat(), "timeZone": tz.key}


def check(fields: dict[str, Any]) -> None:
    start, end = moment(fields.get("start"), "start"), moment(fields.get("end"), "end")
    if end <= start:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    for line in fields.get("recurrence") or []:
        if not str(line).startswith(("RRULE:", "EXDATE", "RDATE")):
            raise ApiError(400, "invalid", "Invalid recurrence rule.")
    if fields.get("recurrence") and not fields["start"].get("timeZone"):
        raise ApiError(400, "missingTimeZone", "Missing time zone definition for start time.")


def originals(event: Event) -> list[datetime]:
    """Every planned start (UTC) of the event's RRULE, or its one start."""
    fields = event.fields
    start = moment(fields["start"], "start")
    rules = [str(r).removeprefix("RRULE:") for r in fields.get("recurrence") or [] if str(r).startswith("RRULE:")]
    if not rules:
        return [start]
    tz = zone_of(fields)
    rule = rrule.rrulestr(rules[0], dtstart=start.astimezone(tz))
    limit = start + HORIZON
    return [o.astimezone(timezone.utc) for o in rule.between(start - timedelta(seconds=1), limit, inc=True)]


def instances(event: Event) -> list[Instance]:
    """The series as instance resources: the master's fields, the occurrence's times, its overrides."""
    fields = event.fields
    if not fields.get("recurrence"):
        return [Instance(moment(fields["start"], "start"), fields)]
    tz = zone_of(fields)
    length = moment(fields["end"], "end") - moment(fields["start"], "start")
    found = []
    for original in originals(event):
        resource = {k: copy.deepcopy(v) for k, v in fields.items() if k not in ("recurrence", "id")}
        resource |= {"id": instance_id(event.id, original), "recurringEventId": event.id,
                     "originalStartTime": stamp(original, tz), "start": stamp(original, tz),
                     "end": stamp(original + length, tz)}
        resource |= copy.deepcopy(event.instances.get(original, {}))
        found.append(Instance(original, resource))
    return found


def instance_id(event_id: str, original: datetime) -> str:
    return f"{event_id}_{original.astimezone(timezone.utc):{STAMP}}"


def split_instance_id(ident: str) -> tuple[str, datetime | None]:
    base, _, suffix = ident.rpartition("_")
    if not base:
        return ident, None
    try:
        return base, datetime.strptime(suffix, STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return ident, None


def attendees(fields: dict[str, Any]) -> list[str]:
    return [str(a.get("email", "")).casefold() for a in fields.get("attendees") or []]


def notify(store: Store, event: Event, method: str, resource: dict[str, Any], original: datetime | None) -> None:
    """What Google mails each attendee for ``sendUpdates=all``: an invitation, an update or a
    cancellation of the series (``original`` None) or of one occurrence, as iTIP."""
    fields = event.fields
    rules = [str(r).removeprefix("RRULE:") for r in fields.get("recurrence") or [] if str(r).startswith("RRULE:")]
    invite = mime.Invite(method=method, uid=str(fields.get("iCalUID")), sequence=int(resource.get("sequence", 0)),
                         summary=str(resource.get("summary", "")), start=moment(resource["start"], "start"),
                         end=moment(resource["end"], "end"), organizer=event.calendar, recurrence_id=original,
                         rrule=rules[0] if rules and original is None else "",
                         body=str(resource.get("description", "")))
    verb = {"REQUEST": "Invitation", "CANCEL": "Canceled event"}[method]
    for address in attendees(fields if original is None else resource):
        subject = f"{verb}: {resource.get('summary', '')}"
        raw = mime.meeting_mime(invite, event.calendar, address, subject, store.now(), "calendar.google.com")
        store.outbound.append(Outbound(event.calendar, (address,), "invitation", raw))
        if address in store.users:
            store.file(address, raw, {"INBOX", "UNREAD"}, "")
