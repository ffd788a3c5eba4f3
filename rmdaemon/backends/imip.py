"""Calendars by email (iMIP, RFC 6047): what the local and SMTP backends publish instead of
writing to a calendar server. One email per attendee, ``To:`` equal to that ATTENDEE, because a
person reached by Cc or in a shared message gets no RSVP buttons in Outlook or Gmail."""

from __future__ import annotations

from datetime import datetime, timezone

from rmdaemon import compose, itip
from rmdaemon.model import Meeting, Outgoing


def series_messages(meeting: Meeting, stamp: datetime) -> list[Outgoing]:
    """REQUEST (book or update) or CANCEL (series) for every attendee."""
    method = "CANCEL" if meeting.cancelled else "REQUEST"
    ics = itip.build_cancel(meeting, stamp) if meeting.cancelled else itip.build_request(meeting, stamp)
    return [_message(meeting, stamp, method, ics, person, "") for person in meeting.attendees]


def occurrence_messages(meeting: Meeting, start: datetime, stamp: datetime) -> list[Outgoing]:
    """CANCEL of one occurrence (RECURRENCE-ID) for every attendee."""
    ics = itip.build_cancel(meeting, stamp, occurrence=start)
    label = start.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return [_message(meeting, stamp, "CANCEL", ics, person, label) for person in meeting.attendees]


def _message(meeting: Meeting, stamp: datetime, method: str, ics: bytes, person, occurrence: str) -> Outgoing:
    key = ":".join(filter(None, ["itip", meeting.uid, str(meeting.sequence), method.lower(), occurrence, person.address]))
    subject = meeting.subject or meeting.summary
    if occurrence:
        subject = f"Cancelled: one session of {meeting.summary}"
    envelope = compose.Envelope(
        key=key,
        sender=meeting.organizer_email,
        sender_name=meeting.organizer_name,
        to=(person,),
        date=stamp,
        message_id=compose.message_id("itip", key, compose.domain_of(meeting.organizer_email),
                                      secret=bytes.fromhex(meeting.token_key) or None),
    )
    own = {address: (subj, text, html) for address, subj, text, html in meeting.bodies}.get(person.address)
    if own and not occurrence:
        subject, text, html = own
    else:
        text, html = meeting.body_text or meeting.description, meeting.body_html or ""
    content = compose.Rendered(subject=subject, text=text, html=html)
    raw = compose.build_email(envelope, content, calendar=(method, ics))
    return Outgoing(key=key, to=(person.email,), raw=raw, kind=f"itip-{method.lower()}", pair_id=meeting.plan.pair_id)
