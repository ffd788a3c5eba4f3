"""Meeting traffic inside the fake tenant: invitations, updates, cancellations and answers.

What Exchange Online does for an organiser's event: each attendee gets an invitation (iTIP
REQUEST) in the inbox and a tentative copy in the calendar, so free/busy shows it; updates raise
the sequence and go out again; a cancellation (whole series or one occurrence) goes out as iTIP
CANCEL and takes the copies off the calendars; an answer comes back to the organiser's inbox as an
iTIP REPLY. The MIME is written by the EWS server's writer: it is the same Exchange underneath.
"""

from __future__ import annotations

import copy
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from tests.servers.ews import mime
from tests.servers.graph.recurrence import Occurrence, moment, occurrences, rrule_text
from tests.servers.graph.store import Event, Message, Outbound, Store

PARTSTAT_TO_RESPONSE = {"Accept": "accepted", "Decline": "declined", "Tentative": "tentativelyAccepted"}
SUBJECT = {"Accept": "Accepted", "Decline": "Declined", "Tentative": "Tentative"}


def attendees(event: Event) -> list[str]:
    return [str(a["emailAddress"]["address"]).casefold() for a in event.fields.get("attendees") or []]


def deliver(store: Store, sender: str, to: str, raw: bytes, kind: str) -> Message | None:
    """One message from ``sender`` to ``to``: recorded as outbound, filed in ``to``'s inbox if hosted."""
    headers = mime.read(raw)
    store.outbound.append(Outbound(sender, (to,), kind, headers.subject, raw))
    if to not in store.mailboxes:
        return None
    return file_message(store, to, "inbox", raw, kind)


def file_message(store: Store, mailbox: str, folder: str, raw: bytes, kind: str = "message", **extra: object) -> Message:
    headers = mime.read(raw)
    message = Message(id=store.new_id(), mailbox=mailbox, folder=folder, mime=raw, subject=headers.subject,
                      sender=headers.sender, to=headers.to, cc=headers.cc, bcc=(), message_id=headers.message_id,
                      received=store.clock(), version=store.bump(), kind=kind, **extra)  # type: ignore[arg-type]
    return store.add_message(message)


def invite(store: Store, event: Event, to: list[str] | None = None, occurrence: Occurrence | None = None) -> None:
    """REQUEST to every attendee (or ``to``): the series, or one moved occurrence."""
    for address in to if to is not None else attendees(event):
        raw = _mime(store, event, "REQUEST", address, event.fields.get("subject", ""), occurrence)
        deliver(store, event.mailbox, address, raw, "eventMessageRequest")
        if address in store.mailboxes:
            _copy_into_calendar(store, event, address)


def cancel(store: Store, event: Event, occurrence: Occurrence | None, comment: str, to: list[str] | None = None) -> None:
    """CANCEL of the series (or one occurrence) to every attendee; their copies follow."""
    for address in to if to is not None else attendees(event):
        subject = "Canceled: " + event.fields.get("subject", "")
        raw = _mime(store, event, "CANCEL", address, subject, occurrence, comment=comment)
        deliver(store, event.mailbox, address, raw, "eventMessage")
        own = store.by_uid(address, event.uid) if address in store.mailboxes else None
        if own is not None and occurrence is not None:
            own.cancelled.add(occurrence.original)
        elif own is not None:
            own.folder = "deleteditems"


def respond(store: Store, attendee: str, uid: str, answer: str, occurrence_start: datetime | None = None) -> None:
    """The attendee clicks Accept / Decline / Tentative, for the series or one occurrence."""
    own = store.by_uid(attendee, uid)
    if own is None:
        raise KeyError(f"{attendee} has no meeting with UID {uid}")
    occurrence = None
    if occurrence_start is not None:
        occurrence = next((o for o in occurrences(own) if o.original == occurrence_start), None)
        if occurrence is None:
            raise KeyError(f"{attendee} has no occurrence of {uid} at {occurrence_start}")
    else:
        own.my_response = PARTSTAT_TO_RESPONSE[answer]
    master = store.by_uid(own.organizer, uid)
    if master is not None and occurrence is None:
        master.responses[attendee] = PARTSTAT_TO_RESPONSE[answer]
    invitation = _invitation(own, "REPLY", occurrence, attendee=attendee, response=answer)
    subject = f"{SUBJECT[answer]}: {own.fields.get('subject', '')}"
    raw = mime.meeting_mime(invitation, attendee, own.organizer, subject, store.clock(), attendee.partition("@")[2])
    store.outbound.append(Outbound(attendee, (own.organizer,), "eventMessageResponse", subject, raw))
    if own.organizer in store.mailboxes:
        file_message(store, own.organizer, "inbox", raw, "eventMessageResponse")


def _mime(store: Store, event: Event, method: str, to: str, subject: str, occurrence: Occurrence | None,
          comment: str = "") -> bytes:
    """Exchange's meeting MIME; the organiser's comment (on a cancellation) is the body text."""
    now = store.clock()
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = event.mailbox, to, subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=event.mailbox.partition("@")[2] or "example.com")
    join = (event.fields.get("onlineMeeting") or {}).get("joinUrl")
    msg.set_content(f"{comment or subject}\n" + (f"\nMicrosoft Teams meeting\nJoin: {join}\n" if join else ""))
    msg.add_alternative(mime.ical(_invitation(event, method, occurrence), now), subtype="calendar",
                        params={"method": method})
    return msg.as_bytes()


def _invitation(event: Event, method: str, occurrence: Occurrence | None, **reply: str) -> mime.Invite:
    start = occurrence.start if occurrence else moment(event.fields["start"], "start")
    end = occurrence.end if occurrence else moment(event.fields["end"], "end")
    return mime.Invite(method=method, uid=event.uid, sequence=event.sequence, summary=event.fields.get("subject", ""),
                       start=start, end=end, organizer=event.organizer,
                       recurrence_id=occurrence.original if occurrence else None,
                       rrule=rrule_text(event) if method == "REQUEST" else "",
                       location=(event.fields.get("location") or {}).get("displayName", ""), **reply)


def _copy_into_calendar(store: Store, event: Event, address: str) -> None:
    fields = {k: copy.deepcopy(v) for k, v in event.fields.items() if k not in ("transactionId",)}
    fields["showAs"] = "tentative"
    own = store.by_uid(address, event.uid)
    if own is None:
        own = Event(id=store.new_id("AAMkADcopy"), mailbox=address, fields=fields, uid=event.uid, ical_uid=event.ical_uid,
                    organizer=event.organizer, is_organizer=False, created=store.clock(), sequence=event.sequence)
        store.events[own.id] = own
    else:
        own.fields, own.sequence, own.change = fields, event.sequence, own.change + 1
    own.cancelled, own.moved = set(event.cancelled), dict(event.moved)
