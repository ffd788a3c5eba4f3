"""Calendar API v3 on the fake Workspace: events insert/get/list/patch/delete, instances,
freeBusy. Only the programme user's own calendar (``primary`` or its address) is writable; a
client-supplied ``iCalUID`` that exists already is refused with 409 ``duplicate``, as Google does."""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.servers.google.recurrence import (Instance, attendees, check, instances, moment, notify,
                                             split_instance_id)
from tests.servers.google.store import ApiError, Event, Store

MAX_FREEBUSY = 50
MAX_FREEBUSY_RANGE = timedelta(days=90)  # not documented; observed (calcom/cal.diy#11962): a 400 beyond it
MEET = "https://meet.google.com"
WRITABLE = ("summary", "description", "location", "start", "end", "recurrence", "attendees", "visibility",
            "transparency", "reminders", "extendedProperties", "sequence", "guestsCanModify", "conferenceData",
            "status", "guestsCanSeeOtherGuests")


class Calendar:
    def __init__(self, store: Store, user: str, query: dict[str, str]) -> None:
        self.store, self.user, self.query = store, user, query
        self.send = query.get("sendUpdates", "none") in ("all", "externalOnly")

    def calendar(self, ident: str) -> str:
        address = self.user if ident == "primary" else ident.casefold()
        if address != self.user:
            raise ApiError(404, "notFound", "Not Found")
        return address

    # -- events -----------------------------------------------------------------------------
    def insert(self, cal: str, body: dict[str, Any]) -> dict[str, Any]:
        cal = self.calendar(cal)
        ident = str(body.get("id") or base64.b32hexencode(hashlib.sha1(str(self.store.next_id()).encode()).digest()).decode().lower().rstrip("="))
        uid = str(body.get("iCalUID") or f"{ident}@google.com")
        existing = self.store.by_ical_uid(cal, uid)
        if ident in self.store.events or (existing is not None and existing.fields.get("status") != "cancelled"):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        fields = {k: copy.deepcopy(v) for k, v in body.items() if k in WRITABLE}
        check(fields)
        fields |= {"id": ident, "iCalUID": uid, "status": "confirmed", "sequence": int(body.get("sequence", 0)),
                   "organizer": {"email": cal, "self": True}, "kind": "calendar#event",
                   "created": self.store.now().isoformat(), "htmlLink": f"https://www.google.com/calendar/event?eid={ident}"}
        for attendee in fields.get("attendees") or []:
            attendee.setdefault("responseStatus", "needsAction")
        self._conference(fields, body)
        if existing is not None:
            del self.store.events[existing.id]
        event = Event(ident, cal, fields, updated=self.store.bump())
        self.store.events[ident] = event
        if self.send:
            notify(self.store, event, "REQUEST", fields, None)
        if self.store.meet_pending and "conferenceData" in fields:
            return _pending(fields)
        return fields

    def _conference(self, fields: dict[str, Any], body: dict[str, Any]) -> None:
        """A Meet link for a createRequest ("the data is generated asynchronously", says the
        ConferenceData reference: see ``_pending`` for the answer before it exists)."""
        request = (body.get("conferenceData") or {}).get("createRequest")
        if not request or self.query.get("conferenceDataVersion") != "1":
            fields.pop("conferenceData", None)
            return
        code = hashlib.sha1(str(request.get("requestId")).encode()).hexdigest()
        link = f"{MEET}/{code[:3]}-{code[3:7]}-{code[7:10]}"
        fields["conferenceData"] = {"conferenceId": link.rsplit("/", 1)[1], "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
                                    "entryPoints": [{"entryPointType": "video", "uri": link}],
                                    "createRequest": {**request, "status": {"statusCode": "success"}}}
        fields["hangoutLink"] = link

    def get(self, cal: str, ident: str) -> dict[str, Any]:
        self.calendar(cal)
        event, original = self._find(ident)
        return self._instance(event, original).resource if original else event.fields

    def patch(self, cal: str, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calendar(cal)
        event, original = self._find(ident)
        changes = {k: copy.deepcopy(v) for k, v in body.items() if k in WRITABLE}
        if original is None:
            merged = {**event.fields, **changes}
            check(merged)
            if "sequence" not in changes and set(changes) & {"start", "end", "recurrence", "summary"}:
                merged["sequence"] = int(event.fields.get("sequence", 0)) + 1
            self._conference(merged, body) if "conferenceData" in body else None
            event.fields, event.updated = merged, self.store.bump()
            if self.send and set(changes) - {"extendedProperties"}:
                notify(self.store, event, "REQUEST", merged, None)
            return merged
        instance = self._instance(event, original)
        if instance.cancelled:
            raise ApiError(410, "deleted", "Resource has been deleted")
        override = {**event.instances.get(original, {}), **changes}
        event.instances[original], event.updated = override, self.store.bump()
        resource = self._instance(event, original).resource
        check(resource)
        if self.send:
            notify(self.store, event, "REQUEST", resource, original)
        return resource

    def delete(self, cal: str, ident: str) -> None:
        self.calendar(cal)
        event, original = self._find(ident)
        if original is None:
            if event.fields.get("status") == "cancelled":
                raise ApiError(410, "deleted", "Resource has been deleted")
            event.fields["status"], event.updated = "cancelled", self.store.bump()
            event.fields["sequence"] = int(event.fields.get("sequence", 0)) + 1
            if self.send:
                notify(self.store, event, "CANCEL", event.fields, None)
            return
        instance = self._instance(event, original)
        if instance.cancelled:
            raise ApiError(410, "deleted", "Resource has been deleted")
        event.instances[original] = {**event.instances.get(original, {}), "status": "cancelled"}
        event.updated = self.store.bump()
        if self.send:
            notify(self.store, event, "CANCEL", instance.resource, original)

    def list(self, cal: str) -> dict[str, Any]:
        cal = self.calendar(cal)
        q = self.query
        found = [e for e in self.store.events.values() if e.calendar == cal]
        if "syncToken" in q:
            since = _sync_point(q["syncToken"])
            if since < self.store.sync_floor:
                raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            found = [e for e in found if e.updated > since]
        elif q.get("showDeleted") != "true":
            found = [e for e in found if e.fields.get("status") != "cancelled"]
        if "iCalUID" in q:
            found = [e for e in found if e.fields.get("iCalUID") == q["iCalUID"]]
        if "privateExtendedProperty" in q:
            key, _, value = q["privateExtendedProperty"].partition("=")
            found = [e for e in found if ((e.fields.get("extendedProperties") or {}).get("private") or {}).get(key) == value]
        token = base64.urlsafe_b64encode(f"sync:{self.store.change}".encode()).decode()
        items = []
        for event in found:  # a series, then its exceptions (changed or cancelled sessions), as Google lists them
            items.append(event.fields)
            items += [i.resource for i in instances(event) if i.original in event.instances] if event.instances else []
        return {"kind": "calendar#events", "items": items, "nextSyncToken": token}

    def instances(self, cal: str, ident: str) -> dict[str, Any]:
        self.calendar(cal)
        event, original = self._find(ident)
        if original is not None:
            raise ApiError(400, "invalid", "Invalid value for: recurring event id")
        q = self.query
        found = instances(event)
        if q.get("showDeleted") != "true":
            found = [i for i in found if not i.cancelled]
        if "originalStart" in q:
            wanted = datetime.fromisoformat(q["originalStart"].replace("Z", "+00:00")).astimezone(timezone.utc)
            found = [i for i in found if i.original == wanted]
        if "timeMin" in q:
            low = datetime.fromisoformat(q["timeMin"].replace("Z", "+00:00"))
            found = [i for i in found if moment(i.resource["end"], "end") > low]
        if "timeMax" in q:
            high = datetime.fromisoformat(q["timeMax"].replace("Z", "+00:00"))
            found = [i for i in found if moment(i.resource["start"], "start") < high]
        return {"kind": "calendar#events", "items": [i.resource for i in found]}

    def _find(self, ident: str) -> tuple[Event, datetime | None]:
        event = self.store.events.get(ident)
        original = None
        if event is None:
            base, original = split_instance_id(ident, self.store.events)
            event = self.store.events.get(base)
        if event is None or event.calendar != self.user:
            raise ApiError(404, "notFound", "Not Found")
        if original is not None and original not in {i.original for i in instances(event)}:
            raise ApiError(404, "notFound", "Not Found")
        if event.fields.get("status") == "cancelled" and original is not None:
            raise ApiError(410, "deleted", "Resource has been deleted")
        return event, original

    def _instance(self, event: Event, original: datetime) -> Instance:
        return next(i for i in instances(event) if i.original == original)

    # -- free/busy --------------------------------------------------------------------------
    def free_busy(self, body: dict[str, Any]) -> dict[str, Any]:
        low, high = (datetime.fromisoformat(str(body[k]).replace("Z", "+00:00")) for k in ("timeMin", "timeMax"))
        items = body.get("items") or []
        if len(items) > MAX_FREEBUSY:
            raise ApiError(400, "tooManyCalendarsRequested", "The number of calendars requested is too large.")
        if high - low > MAX_FREEBUSY_RANGE:
            raise ApiError(400, "timeRangeTooLong", "The requested time range is too long.")
        calendars: dict[str, Any] = {}
        for item in items:
            address = str(item.get("id", "")).casefold()
            if address not in self.store.users:
                calendars[address] = {"busy": [], "errors": [{"domain": "global", "reason": "notFound"}]}
            else:
                calendars[address] = {"busy": [{"start": _z(a), "end": _z(b)} for a, b in self._busy(address, low, high)]}
        return {"kind": "calendar#freeBusy", "timeMin": _z(low), "timeMax": _z(high), "calendars": calendars}

    def _busy(self, address: str, low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
        spans = list(self.store.busy.get(address, []))
        for event in self.store.events.values():
            if event.fields.get("status") == "cancelled" or event.fields.get("transparency") == "transparent":
                continue
            for instance in instances(event):
                going = event.calendar == address or _going(instance.resource, address)
                if going and not instance.cancelled:
                    spans.append((moment(instance.resource["start"], "start"), moment(instance.resource["end"], "end")))
        return sorted((max(a, low), min(b, high)) for a, b in spans if a < high and b > low)


def _going(resource: dict[str, Any], address: str) -> bool:
    return any(str(a.get("email", "")).casefold() == address and a.get("responseStatus") != "declined"
               for a in resource.get("attendees") or []) and address in attendees(resource)


def _sync_point(token: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("sync:"))
    except ValueError:
        raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.") from None


def _z(moment_: datetime) -> str:
    return moment_.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def respond(store: Store, attendee: str, uid: str, answer: str, original: datetime | None = None, comment: str = "") -> None:
    """An attendee answers in Google Calendar, for the series or one occurrence: the organiser's
    copy carries it as ``responseStatus`` (Calendar sends the organiser no REPLY mail to read)."""
    event = next(e for e in store.events.values() if e.fields.get("iCalUID") == uid and e.fields.get("status") != "cancelled")
    if original is None:
        target = event.fields
    else:
        target = event.instances.setdefault(original, {})
        target.setdefault("attendees", copy.deepcopy(event.fields.get("attendees") or []))
    for entry in target.get("attendees") or []:
        if str(entry.get("email", "")).casefold() == attendee.casefold():
            entry["responseStatus"] = answer
            if comment:
                entry["comment"] = comment
    event.updated = store.bump()


def _pending(fields: dict[str, Any]) -> dict[str, Any]:
    """An event as the insert answers while its conference is still being made."""
    answer = {k: copy.deepcopy(v) for k, v in fields.items() if k != "hangoutLink"}
    request = answer["conferenceData"]["createRequest"]
    answer["conferenceData"] = {"createRequest": {**request, "status": {"statusCode": "pending"}}}
    return answer
