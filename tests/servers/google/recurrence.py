"""Calendar v3 times and recurrences: ``{"dateTime", "timeZone"}`` values, RRULE expansion into
instances, and the iTIP mail Google sends attendees when ``sendUpdates`` asks for it.

Instance ids are opaque here, as Google says they are: its ids of recurring events' instances
changed format in Q3 2026 and "must be treated as opaque identifiers" (Google's notice to API
developers, quoted in phw198/OutlookGoogleCalendarSync#2205). A client that builds an instance id
from the series id and a start time finds nothing; it must ask ``instances`` (``originalStart``)."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from tests.servers.ews import mime
from tests.servers.google.store import ApiError, Event, Outbound, Store

HORIZON = timedelta(days=3 * 366)  # an open-ended series is expanded this far


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
    """Opaque: nothing of the start time can be read from it, nor built into it."""
    tag = hashlib.sha256(f"{event_id} {original.astimezone(timezone.utc).isoformat()}".encode()).hexdigest()[:16]
    return f"{event_id}_r{tag}"


def split_instance_id(ident: str, events: dict[str, Event]) -> tuple[str, datetime | None]:
    """The series id and original start of one of our instance ids (found among the series' instances)."""
    base, _, suffix = ident.rpartition("_")
    event = events.get(base) if base and suffix.startswith("r") else None
    if event is None:
        return ident, None
    found = next((o for o in originals(event) if instance_id(base, o) == ident), None)
    return (base, found) if found is not None else (ident, None)


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
