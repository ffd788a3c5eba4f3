"""Calendar endpoints: events (list with extended-property filters, create, get, PATCH, cancel),
occurrences (``/instances``, an occurrence's own id for PATCH and cancel), and getSchedule."""

from __future__ import annotations

import base64
import copy
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.servers.graph import meetings
from tests.servers.graph.api import Answer, Context, address, graph_time, iso, page, parse_iso
from tests.servers.graph.odata import expand_ids, extended_props, item_filter, shape, token, untoken
from tests.servers.graph.recurrence import Occurrence, check, moment, occurrences
from tests.servers.graph.store import Event, GraphFault, Hours

GOID_PROPERTY = "binary {6ed8da90-450b-101b-98da-00aa003f1305} id 0x0003"
GOID_PREFIX = bytes.fromhex("040000008200E00074C5B7101A82E008")
WRITABLE = {"subject", "body", "start", "end", "attendees", "recurrence", "categories", "showAs", "sensitivity",
            "isReminderOn", "reminderMinutesBeforeStart", "location", "singleValueExtendedProperties",
            "responseRequested", "allowNewTimeProposals", "importance", "isOnlineMeeting", "onlineMeetingProvider",
            "transactionId"}
MEETING_FIELDS = ("subject", "body", "start", "end", "attendees", "recurrence", "location")
OCCURRENCE_PREFIX = "AAMkADocc"
MAX_SCHEDULES, MAX_WINDOW = 20, timedelta(days=62)
STATUS_CODE = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}


# -- events -------------------------------------------------------------------------------
def list_events(ctx: Context) -> Answer:
    query = ctx.request.query
    keep = item_filter(query.get("$filter"))
    expand = expand_ids(query.get("$expand"))
    found = [e for e in ctx.store.calendar(ctx.mailbox) if keep(e)]
    found.sort(key=lambda e: (e.created, e.id))
    items = [shape(event_json(ctx, e), query.get("$select"), e.extended, expand) for e in found]
    return page(ctx, items, 10, f"users('{ctx.mailbox}')/events")


def create_event(ctx: Context) -> Answer:
    fields = _fields(ctx.request.json(), create=True)
    check(fields)
    transaction = fields.pop("transactionId", None)
    if transaction:  # a retried create: Graph hands back the event it already made
        for event in ctx.store.calendar(ctx.mailbox):
            if event.transaction_id == transaction and event.is_organizer:
                return Answer(201, event_json(ctx, event))
    props = extended_props(fields.pop("singleValueExtendedProperties", None))
    goid = _goid(props)
    event = Event(id=ctx.store.new_id("AAMkADevent"), mailbox=ctx.mailbox, fields=fields, uid=_uid(goid), ical_uid=goid.hex().upper(),
                  organizer=ctx.mailbox, is_organizer=True, created=ctx.store.clock(), transaction_id=transaction, extended=props)
    ctx.store.events[event.id] = event
    _online(event)
    meetings.invite(ctx.store, event)
    return Answer(201, event_json(ctx, event))


def get_event(ctx: Context, event_id: str) -> Answer:
    event, occurrence = _resolve(ctx, event_id)
    query = ctx.request.query
    return Answer(200, shape(event_json(ctx, event, occurrence), query.get("$select"), event.extended, expand_ids(query.get("$expand"))))


def patch_event(ctx: Context, event_id: str) -> Answer:
    event, occurrence = _resolve(ctx, event_id)
    fields = _fields(ctx.request.json(), create=False)
    if occurrence is not None:
        return _move_occurrence(ctx, event, occurrence, fields)
    fields.pop("transactionId", None)
    event.extended.update(extended_props(fields.pop("singleValueExtendedProperties", None)))
    before = copy.deepcopy(event.fields)
    event.fields.update(fields)
    check(event.fields)
    _online(event)
    event.change += 1
    if event.is_organizer and any(k in fields for k in MEETING_FIELDS):  # like EWS's SendToAllAndSaveCopy
        _send_update(ctx, event, before)
    return Answer(200, event_json(ctx, event))


def cancel_event(ctx: Context, event_id: str) -> Answer:
    event, occurrence = _resolve(ctx, event_id)
    if not event.is_organizer:
        raise GraphFault(400, "ErrorInvalidRequest", "Your request can't be completed. You need to be an organizer to cancel a meeting.")
    comment = str((ctx.request.json() or {}).get("comment", "")) if ctx.request.body else ""
    if occurrence is not None:
        event.cancelled.add(occurrence.original)
        event.moved.pop(occurrence.original, None)
    else:
        event.sequence += 1
        event.folder = "deleteditems"
    event.change += 1
    meetings.cancel(ctx.store, event, occurrence, comment)
    return Answer(202)


def instances(ctx: Context, event_id: str) -> Answer:
    event, occurrence = _resolve(ctx, event_id)
    query = ctx.request.query
    if "startDateTime" not in query or "endDateTime" not in query:
        raise GraphFault(400, "ErrorInvalidParameter", "This request requires a time window specified by the query string "
                                                       "parameters StartDateTime and EndDateTime.")
    start, end = parse_iso(query["startDateTime"], "startDateTime"), parse_iso(query["endDateTime"], "endDateTime")
    found = [o for o in occurrences(event) if o.start < end and o.end > start] if event.fields.get("recurrence") else []
    items = [shape(event_json(ctx, event, o), query.get("$select"), event.extended, None) for o in found]
    return page(ctx, items, 10, f"users('{ctx.mailbox}')/events('{event_id}')/instances")


# -- free/busy ----------------------------------------------------------------------------
def get_schedule(ctx: Context) -> Answer:
    body = ctx.request.json() or {}
    people = [str(s).casefold() for s in body.get("schedules") or []]
    if not people or len(people) > MAX_SCHEDULES:
        raise GraphFault(400, "ErrorInvalidParameter", f"The number of schedules must be between 1 and {MAX_SCHEDULES}; got {len(people)}.")
    start, end = moment(body.get("startTime"), "startTime"), moment(body.get("endTime"), "endTime")
    if end <= start or end - start > MAX_WINDOW:
        raise GraphFault(400, "ErrorInvalidParameter", "The requested time window is not valid: it must end after it starts "
                                                       "and be at most 62 days long.")
    interval = int(body.get("availabilityViewInterval", 30))
    value = [_schedule(ctx, person, start, end, interval) for person in people]
    return Answer(200, {"@odata.context": f"{ctx.request.root}/$metadata#Collection(microsoft.graph.scheduleInformation)",
                        "value": value})


def _schedule(ctx: Context, person: str, start: datetime, end: datetime, interval: int) -> dict[str, Any]:
    if person not in ctx.store.mailboxes:
        return {"scheduleId": person, "availabilityView": "", "scheduleItems": [],
                "error": {"message": f"The user or group '{person}' was not found.", "responseCode": "ErrorMailRecipientNotFound"}}
    items = []
    for event in ctx.store.calendar(person):
        status = _status(event)
        if status == "free":
            continue
        for o in occurrences(event):
            if o.start < end and o.end > start:
                items.append((o.start, o.end, status, event.fields.get("subject", "")))
    items += [(b.start, b.end, b.status, "") for b in ctx.store.busy.get(person, []) if b.start < end and b.end > start]
    items.sort()
    zone_name = ctx.request.zone_name
    return {"scheduleId": person, "availabilityView": _view(items, start, end, interval),
            "scheduleItems": [{"isPrivate": False, "status": s, "subject": subject, "location": "",
                               "start": graph_time(a, zone_name), "end": graph_time(b, zone_name)} for a, b, s, subject in items],
            "workingHours": ctx.store.working_hours.get(person, Hours()).json()}


def _status(event: Event) -> str:
    if event.is_organizer:
        return str(event.fields.get("showAs", "busy"))
    return {"accepted": "busy", "declined": "free"}.get(event.my_response, "tentative")


def _view(items: list[tuple[datetime, datetime, str, str]], start: datetime, end: datetime, interval: int) -> str:
    slots, moment_ = [], start
    while moment_ < end:
        slot_end = moment_ + timedelta(minutes=interval)
        codes = [STATUS_CODE.get(s, "2") for a, b, s, _ in items if a < slot_end and b > moment_]
        slots.append(max(codes, default="0"))
        moment_ = slot_end
    return "".join(slots)


# -- shapes -------------------------------------------------------------------------------
def event_json(ctx: Context, event: Event, occurrence: Occurrence | None = None) -> dict[str, Any]:
    f, zone_name = event.fields, ctx.request.zone_name
    start = occurrence.start if occurrence else moment(f["start"], "start")
    end = occurrence.end if occurrence else moment(f["end"], "end")
    kind = "seriesMaster" if f.get("recurrence") else "singleInstance"
    if occurrence is not None:
        kind = "exception" if occurrence.original in event.moved else "occurrence"
    out: dict[str, Any] = {
        "@odata.etag": f'W/"DwAAABYAAAA{event.change:08d}"', "id": occurrence_id(event, occurrence) if occurrence else event.id,
        "createdDateTime": iso(event.created), "lastModifiedDateTime": iso(ctx.store.clock()),
        "categories": list(f.get("categories") or []), "transactionId": event.transaction_id,
        "originalStartTimeZone": f["start"].get("timeZone"), "originalEndTimeZone": f["end"].get("timeZone"),
        "iCalUId": event.ical_uid, "reminderMinutesBeforeStart": f.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": f.get("isReminderOn", True), "subject": f.get("subject", ""), "importance": f.get("importance", "normal"),
        "sensitivity": f.get("sensitivity", "normal"), "isAllDay": False, "isCancelled": False, "isOrganizer": event.is_organizer,
        "responseRequested": f.get("responseRequested", True), "seriesMasterId": event.id if occurrence else None,
        "showAs": f.get("showAs", "busy") if event.is_organizer else _status(event), "type": kind,
        "body": f.get("body", {"contentType": "text", "content": ""}), "start": graph_time(start, zone_name),
        "end": graph_time(end, zone_name), "recurrence": None if occurrence else f.get("recurrence"),
        "responseStatus": {"response": "organizer" if event.is_organizer else event.my_response, "time": "0001-01-01T00:00:00Z"},
        "attendees": [dict(a, status={"response": event.responses.get(str(a["emailAddress"]["address"]).casefold(), "none"),
                                      "time": "0001-01-01T00:00:00Z"}) for a in f.get("attendees") or []],
        "organizer": address(event.organizer, ctx.store.mailboxes.get(event.organizer, "")),
    }
    if occurrence is not None:
        out["originalStart"] = iso(occurrence.original)
    out["location"] = f.get("location") or {"displayName": ""}
    out["isOnlineMeeting"] = bool(f.get("isOnlineMeeting"))
    out["onlineMeetingProvider"] = f.get("onlineMeetingProvider", "unknown")
    out["onlineMeeting"] = f.get("onlineMeeting")
    return out


def _online(event: Event) -> None:
    """What Exchange Online does for ``isOnlineMeeting`` with Teams: a meeting with its own join
    link (answered as ``onlineMeeting.joinUrl``), named as the location when there is none."""
    f = event.fields
    if not f.get("isOnlineMeeting") or f.get("onlineMeetingProvider", "teamsForBusiness") != "teamsForBusiness":
        f.pop("onlineMeeting", None)
        return
    f.setdefault("onlineMeeting", {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{event.id[-12:]}"
                                              f"%40thread.v2/0?context=%7b%22Tid%22%3a%22tenant%22%7d"})
    if not (f.get("location") or {}).get("displayName"):
        f["location"] = {"displayName": "Microsoft Teams Meeting"}


def occurrence_id(event: Event, occurrence: Occurrence) -> str:
    return OCCURRENCE_PREFIX + token({"m": event.id, "o": iso(occurrence.original)})


def _resolve(ctx: Context, event_id: str) -> tuple[Event, Occurrence | None]:
    """A master/single event, or (its master, the occurrence) for an occurrence id."""
    if not event_id.startswith(OCCURRENCE_PREFIX):
        return ctx.store.event(ctx.mailbox, event_id), None
    ref = untoken(event_id[len(OCCURRENCE_PREFIX):])
    master = ctx.store.event(ctx.mailbox, str(ref.get("m")))
    original = parse_iso(str(ref.get("o")), "id")
    found = next((o for o in occurrences(master) if o.original == original), None)
    if found is None:
        raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return master, found


def _fields(body: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GraphFault(400, "BadRequest", "Empty Payload. JSON content expected.")
    unknown = sorted(set(body) - WRITABLE - {"@odata.type", "iCalUId"})
    if unknown:
        raise GraphFault(400, "RequestBodyRead", f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.event'. "
                                                 "Make sure to only use property names that are defined by the type.")
    fields = {k: v for k, v in body.items() if k in WRITABLE}
    if create and ("start" not in fields or "end" not in fields):
        raise GraphFault(400, "ErrorInvalidRequest", "An event needs a start and an end.")
    return fields


def _goid(props: dict[str, tuple[str, str]]) -> bytes:
    """PidLidGlobalObjectId as the client set it, else one Exchange makes up (with a creation time)."""
    if GOID_PROPERTY in props:
        value = base64.b64decode(props[GOID_PROPERTY][1])
        if not value.startswith(GOID_PREFIX) or len(value) < 40:
            raise GraphFault(400, "ErrorInvalidExtendedPropertyValue", "PidLidGlobalObjectId is not a valid global object id.")
        return value
    data = os.urandom(16)
    stamp = int((datetime.now(timezone.utc).timestamp() + 11644473600) * 10_000_000).to_bytes(8, "little")
    return GOID_PREFIX + bytes(4) + stamp + bytes(8) + len(data).to_bytes(4, "little") + data


def _uid(goid: bytes) -> str:
    """The iCalendar UID Exchange writes for a GOID ([MS-OXCICAL] 2.1.3.1.1.20.26)."""
    data = goid[40:]
    if data.startswith(b"vCal-Uid\x01\x00\x00\x00"):
        return data[12:].rstrip(b"\x00").decode("utf-8")
    return goid.hex().upper()


def _send_update(ctx: Context, event: Event, before: dict[str, Any]) -> None:
    """A changed meeting goes out again; a new pattern clears its exceptions (as Exchange does)."""
    if before.get("recurrence") != event.fields.get("recurrence") or before.get("start") != event.fields.get("start"):
        event.cancelled.clear()
        event.moved.clear()
    event.sequence += 1
    old = set(meetings.attendees(Event(**{**event.__dict__, "fields": before})))
    now = meetings.attendees(event)
    removed = [a for a in old if a not in now]
    if removed:
        meetings.cancel(ctx.store, event, None, "", to=removed)
    meetings.invite(ctx.store, event)


def _move_occurrence(ctx: Context, event: Event, occurrence: Occurrence, fields: dict[str, Any]) -> Answer:
    if set(fields) - {"start", "end"}:
        raise GraphFault(400, "ErrorInvalidRequest", "This test server moves occurrences only (start and end).")
    start = moment(fields.get("start", graph_time(occurrence.start)), "start")
    end = moment(fields.get("end", graph_time(occurrence.end)), "end")
    event.moved[occurrence.original] = (start, end)
    event.change += 1
    moved = Occurrence(occurrence.original, start, end)
    meetings.invite(ctx.store, event, occurrence=moved)
    return Answer(200, event_json(ctx, event, moved))
