"""A ``Meeting`` as a Calendar v3 event: one recurring event with our RRULE and our UID
(``iCalUID``), the pair as attendees, private and opaque, with a reminder; what we need to know
again later (sequence applied, shape, skipped and moved sessions) in private extended properties.

The shape and exceptions digests are the graph backend's (``graph_events``): the same idea, so a
light update (only skipped or moved sessions changed) reaches attendees as those sessions alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from rmdaemon.backends.graph_events import exceptions, shape
from rmdaemon.backends.graph_state import digest
from rmdaemon.model import Meeting

SEQUENCE, SHAPE, EXCEPTIONS = "rmdaemon-sequence", "rmdaemon-shape", "rmdaemon-exceptions"
REMINDER_MINUTES = 15

__all__ = ["event_body", "exceptions", "local_time", "meet_link", "private", "record_of", "rfc3339", "shape"]


def local_time(moment: datetime, tzid: str) -> dict[str, str]:
    """An EventDateTime on the wall clock of ``tzid``, so a DST change keeps the hour."""
    return {"dateTime": moment.astimezone(ZoneInfo(tzid)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": tzid}


def private(meeting: Meeting) -> dict[str, Any]:
    return {"private": {SEQUENCE: str(meeting.sequence), SHAPE: shape(meeting), EXCEPTIONS: exceptions(meeting)}}


def event_body(meeting: Meeting, *, create: bool, meet: bool = False) -> dict[str, Any]:
    """Every field we own; on create also our UID and, with ``meet``, the request for a Google Meet
    link (its requestId derived from the UID, so a repeated insert asks for the same conference).
    ``sequence`` is ours, so attendees' clients see the same SEQUENCE as with the other backends."""
    plan = meeting.plan
    body: dict[str, Any] = {
        "summary": meeting.summary,
        "description": meeting.body_text or meeting.description,
        "start": local_time(plan.first_start, plan.tzid),
        "end": local_time(plan.first_start + timedelta(minutes=plan.duration_minutes), plan.tzid),
        "recurrence": ["RRULE:" + plan.rrule.removeprefix("RRULE:")],
        "attendees": [{"email": p.email, "displayName": p.name} for p in meeting.attendees],
        "visibility": "private",
        "transparency": "opaque",
        "guestsCanModify": False,
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": REMINDER_MINUTES}]},
        "sequence": meeting.sequence,
        "extendedProperties": private(meeting),
    }
    if create:
        body["iCalUID"] = meeting.uid
    if create and meet:
        body["conferenceData"] = {"createRequest": {"requestId": "rm-" + digest(meeting.uid),
                                                    "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    return body


def meet_link(item: dict[str, Any]) -> str | None:
    """The Google Meet link of an event, if it has one."""
    for point in (item.get("conferenceData") or {}).get("entryPoints") or []:
        if point.get("entryPointType") == "video" and point.get("uri"):
            return str(point["uri"])
    return item.get("hangoutLink")


def record_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of an event Google returned."""
    props = (item.get("extendedProperties") or {}).get("private") or {}
    return {"id": item["id"], "sequence": int(props.get(SEQUENCE) or 0), "shape": props.get(SHAPE),
            "exceptions": props.get(EXCEPTIONS)}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
