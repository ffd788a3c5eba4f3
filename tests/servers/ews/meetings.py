"""Meeting traffic between mailboxes: invitations, updates, cancellations and attendee answers.

What Exchange does when an organiser sends a meeting: each hosted attendee gets a
``MeetingRequest`` in the inbox and a tentative copy of the item in the calendar (so their
free/busy shows it); an answer travels back as a ``MeetingResponse`` carrying an iTIP REPLY and
updates the attendee's ``ResponseType`` on the organiser's item. Mail to addresses this server
does not host is only recorded in ``Store.outbound``.
"""

from __future__ import annotations

import copy
from datetime import datetime

from lxml import etree

from tests.servers.ews import mime
from tests.servers.ews.recurrence import Occurrence, ews_time, item_occurrences, parse_time
from tests.servers.ews.soap import sub, t
from tests.servers.ews.store import Item, Sent, Store

COPIED = ("Subject", "Body", "Sensitivity", "Start", "End", "StartTimeZone", "EndTimeZone", "Recurrence", "UID",
          "IsAllDayEvent", "Location", "RequiredAttendees", "OptionalAttendees")  # fmt: skip
RESPONSE_CLASS = {"Accept": "Pos", "Decline": "Neg", "Tentative": "Tent"}
RESPONSE_SUBJECT = {"Accept": "Accepted", "Decline": "Declined", "Tentative": "Tentative"}
RESPONSE_TYPE = {"Accept": "Accept", "Decline": "Decline", "Tentative": "Tentative"}


def attendees(item: Item) -> list[str]:
    found = []
    for group in ("RequiredAttendees", "OptionalAttendees"):
        for address in item.fields.iterfind(f"{t(group)}/{t('Attendee')}/{t('Mailbox')}/{t('EmailAddress')}"):
            found.append((address.text or "").strip().casefold())
    return found


def sequence(item: Item) -> int:
    return int(item.text("AppointmentSequenceNumber", "0"))


def send_invitations(store: Store, item: Item, *, update: bool, save_copy: bool) -> None:
    """Deliver a request (new or full update) to every attendee, and copy it into the calendars."""
    for address in attendees(item):
        fields = _meeting_fields("MeetingRequest", item, "IPM.Schedule.Meeting.Request")
        sub(fields, t("MeetingRequestType"), "FullUpdate" if update else "NewMeetingRequest")
        invite = _invite("REQUEST", item)
        _deliver(store, item.mailbox, address, fields, invite, item.text("Subject"), save_copy)
        if address in store.mailboxes:
            _copy_into_calendar(store, item, address)


def send_occurrence_update(store: Store, item: Item, occurrence: Occurrence, *, save_copy: bool) -> None:
    """Tell every attendee about one changed occurrence (a REQUEST for its RECURRENCE-ID at its new
    time, as Exchange sends for an exception), and change it in their calendars too."""
    for address in attendees(item):
        fields = _meeting_fields("MeetingRequest", item, "IPM.Schedule.Meeting.Request")
        fields.remove(fields.find(t("Recurrence")))
        fields.find(t("Start")).text = ews_time(occurrence.start)
        fields.find(t("End")).text = ews_time(occurrence.end)
        sub(fields, t("MeetingRequestType"), "FullUpdate")
        _deliver(store, item.mailbox, address, fields, _invite("REQUEST", item, occurrence), item.text("Subject"), save_copy)
        copy_item = store.by_uid(address, item.text("UID")) if address in store.mailboxes else None
        if copy_item is not None:
            copy_item.modified_occurrences = dict(item.modified_occurrences)
            copy_item.occurrence_bodies = dict(item.occurrence_bodies)


def send_cancellations(store: Store, item: Item, occurrence: Occurrence | None, *, save_copy: bool) -> None:
    """Tell every attendee the series (or one occurrence) is off, and take it off their calendars."""
    for address in attendees(item):
        fields = _meeting_fields("MeetingCancellation", item, "IPM.Schedule.Meeting.Canceled")
        invite = _invite("CANCEL", item, occurrence)
        _deliver(store, item.mailbox, address, fields, invite, "Canceled: " + item.text("Subject"), save_copy)
        copy_item = store.by_uid(address, item.text("UID")) if address in store.mailboxes else None
        if copy_item is not None and occurrence is not None:
            copy_item.deleted_occurrences.add(occurrence.index)
        elif copy_item is not None:
            copy_item.folder = "deleteditems"


def respond(store: Store, attendee: str, uid: str, response: str, occurrence: Occurrence | None = None) -> Item:
    """An attendee answers: their copy changes, the organiser gets a MeetingResponse with an iTIP REPLY."""
    copy_item = store.by_uid(attendee, uid)
    if copy_item is None:
        raise KeyError(f"{attendee} has no meeting with UID {uid}")
    if occurrence is None:
        copy_item.set_text("MyResponseType", RESPONSE_TYPE[response])
    elif response == "Decline":  # Outlook takes a declined occurrence off the attendee's calendar
        copy_item.deleted_occurrences.add(occurrence.index)
    organiser = copy_item.fields.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}", "").casefold()
    master = store.by_uid(organiser, uid)
    if master is not None:
        if occurrence is None:
            master.responses[attendee] = RESPONSE_TYPE[response]
        else:  # tracked on the organiser's occurrence (an exception), the series answer stays
            master.occurrence_responses.setdefault(occurrence.index, {})[attendee] = RESPONSE_TYPE[response]
        master.change += 1
    fields = _meeting_fields("MeetingResponse", copy_item, f"IPM.Schedule.Meeting.Resp.{RESPONSE_CLASS[response]}")
    invite = _invite("REPLY", copy_item, occurrence, attendee=attendee, response=response)
    subject = f"{RESPONSE_SUBJECT[response]}: {copy_item.text('Subject')}"
    _deliver(store, attendee, organiser, fields, invite, subject, save_copy=True)
    return copy_item


def _meeting_fields(kind: str, item: Item, item_class: str) -> etree._Element:
    fields = etree.Element(t(kind))
    for name in COPIED:
        node = item.get(name)
        if node is not None:
            fields.append(copy.deepcopy(node))
    sub(fields, t("ItemClass"), item_class)
    sub(fields, t("IsRead"), "false")
    return fields


def _invite(method: str, item: Item, occurrence: Occurrence | None = None, **reply: str) -> mime.Invite:
    start = parse_time(item.text("Start")) if occurrence is None else occurrence.start
    end = parse_time(item.text("End")) if occurrence is None else occurrence.end
    organiser = item.fields.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}") or item.mailbox
    return mime.Invite(
        method=method,
        uid=item.text("UID"),
        sequence=sequence(item),
        summary=item.text("Subject"),
        start=start,
        end=end,
        organizer=organiser,
        recurrence_id=occurrence.recurrence_id if occurrence is not None else None,
        body=_body_text(item, occurrence),
        location=item.text("Location") or "",
        **reply,
    )


def _body_text(item: Item, occurrence: Occurrence | None) -> str:
    """What the attendee reads in the meeting message: that occurrence's own body, else the item's."""
    node = item.occurrence_bodies.get(occurrence.index) if occurrence is not None else None
    return (node.text if node is not None else item.text("Body")) or ""


def _deliver(
    store: Store, sender: str, to: str, fields: etree._Element, invite: mime.Invite, subject: str, save_copy: bool
) -> Item | None:
    now = store.clock()
    raw = mime.meeting_mime(invite, sender, to, subject, now, sender.partition("@")[2] or "example.com")
    fields.find(t("Subject")).text = subject
    _address(fields, "From", sender)
    store.outbound.append(Sent(sender, (to,), etree.QName(fields).localname, subject, raw))
    if save_copy and sender in store.mailboxes:
        sent = store.add_item(sender, "sentitems", fields, mime=raw)
        sent.set_text("IsRead", "true")
    if to not in store.mailboxes:
        return None
    return store.add_item(to, "inbox", fields, mime=raw)


def _address(fields: etree._Element, tag: str, address: str) -> None:
    node = sub(fields, t(tag))
    mailbox = sub(node, t("Mailbox"))
    sub(mailbox, t("EmailAddress"), address)
    sub(mailbox, t("RoutingType"), "SMTP")


def _copy_into_calendar(store: Store, item: Item, address: str) -> None:
    fields = etree.Element(t("CalendarItem"))
    for name in COPIED:
        node = item.get(name)
        if node is not None:
            fields.append(copy.deepcopy(node))
    _address(fields, "Organizer", item.mailbox)
    sub(fields, t("LegacyFreeBusyStatus"), "Tentative")
    sub(fields, t("AppointmentSequenceNumber"), str(sequence(item)))
    existing = store.by_uid(address, item.text("UID"))
    if existing is not None:
        response = existing.text("MyResponseType", "NoResponseReceived")
        existing.fields = fields
        existing.change += 1
    else:
        existing = store.add_item(address, "calendar", fields)
        response = "NoResponseReceived"
    existing.set_text("MyResponseType", response)
    existing.deleted_occurrences = set(item.deleted_occurrences)
    existing.modified_occurrences = dict(item.modified_occurrences)
    existing.occurrence_bodies = dict(item.occurrence_bodies)


def occurrence_at(item: Item, start: datetime) -> Occurrence | None:
    """The occurrence of ``item`` that starts at ``start`` (aware) now, or was planned to."""
    return next((o for o in item_occurrences(item) if start in (o.start, o.original)), None)
