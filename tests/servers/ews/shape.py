"""How a stored item looks on the wire: client fields plus the ones the server manages.

FindItem restrictions and sorting read this same rendering, so a field is filterable exactly
when the client could read it back.
"""

from __future__ import annotations

import base64
import copy

from lxml import etree

from tests.servers.ews.meetings import attendees
from tests.servers.ews.recurrence import Occurrence, ews_time, item_occurrences, occurrences
from tests.servers.ews.soap import local, sub, t
from tests.servers.ews.store import Item, Store

ITEM_CLASS = {"CalendarItem": "IPM.Appointment", "Message": "IPM.Note", "MeetingRequest": "IPM.Schedule.Meeting.Request",
              "MeetingCancellation": "IPM.Schedule.Meeting.Canceled"}  # fmt: skip


def put(node: etree._Element, name: str, value: str) -> etree._Element:
    """Set a child's text, replacing what the client sent for a server-managed field."""
    child = node.find(t(name))
    if child is None:
        child = sub(node, t(name))
    child.text = value
    return child


def render(item: Item, store: Store, *, with_mime: bool = False, occurrence: Occurrence | None = None) -> etree._Element:
    node = etree.Element(t(item.kind))
    item_id = item.item_id if occurrence is None else f"{item.item_id}.{occurrence.index}"
    sub(node, t("ItemId"), Id=item_id, ChangeKey=item.change_key)
    if with_mime and item.mime is not None:
        sub(node, t("MimeContent"), base64.b64encode(item.mime).decode(), CharacterSet="UTF-8")
    for child in item.fields:
        if isinstance(child.tag, str) and local(child) != "MimeContent":
            node.append(copy.deepcopy(child))
    sub(node, t("ParentFolderId"), Id=store.folder(item.mailbox, item.folder).folder_id, ChangeKey="CK1")
    if node.find(t("ItemClass")) is None:
        put(node, "ItemClass", ITEM_CLASS.get(item.kind, "IPM.Note"))
    for name in ("DateTimeReceived", "DateTimeSent", "DateTimeCreated", "LastModifiedTime"):
        put(node, name, ews_time(item.created))
    put(node, "HasAttachments", "false")
    if item.mime is not None:
        put(node, "Size", str(len(item.mime)))  # what Exchange reports of a message, before its MIME is asked for
    if node.find(t("IsRead")) is None:
        put(node, "IsRead", "false")
    if item.kind == "CalendarItem":
        _calendar_fields(node, item, occurrence)
    return node


def _calendar_fields(node: etree._Element, item: Item, occurrence: Occurrence | None) -> None:
    recurring = item.get("Recurrence") is not None
    exception = occurrence is not None and (occurrence.index in item.modified_occurrences
                                            or occurrence.index in item.occurrence_bodies)
    if occurrence is not None:
        put(node, "Start", ews_time(occurrence.start))
        put(node, "End", ews_time(occurrence.end))
        node.remove(node.find(t("Recurrence")))
        if occurrence.index in item.occurrence_bodies:
            node.replace(node.find(t("Body")), copy.deepcopy(item.occurrence_bodies[occurrence.index]))
    kind = "Exception" if exception else "Occurrence"
    put(node, "CalendarItemType", kind if occurrence else ("RecurringMaster" if recurring else "Single"))
    put(node, "IsMeeting", "true" if attendees(item) else "false")
    put(node, "IsCancelled", "false")
    put(node, "IsRecurring", "true" if recurring else "false")
    if node.find(t("Organizer")) is None:
        organizer = sub(sub(node, t("Organizer")), t("Mailbox"))
        sub(organizer, t("EmailAddress"), item.mailbox)
        sub(organizer, t("RoutingType"), "SMTP")
    if node.find(t("MyResponseType")) is None:
        put(node, "MyResponseType", "Organizer")
    answers = {**item.responses, **(item.occurrence_responses.get(occurrence.index, {}) if occurrence else {})}
    for attendee in node.iterfind(f".//{t('Attendee')}"):
        address = (attendee.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") or "").casefold()
        if address in answers:
            put(attendee, "ResponseType", answers[address])
    if recurring and occurrence is None and item.modified_occurrences:
        _modified(node, item)
    if recurring and occurrence is None and item.deleted_occurrences:
        _deleted(node, item)


def _modified(node: etree._Element, item: Item) -> None:
    modified = sub(node, t("ModifiedOccurrences"))
    for occ in item_occurrences(item):
        if occ.index in item.modified_occurrences and occ.index not in item.deleted_occurrences:
            entry = sub(modified, t("Occurrence"))
            sub(entry, t("ItemId"), Id=f"{item.item_id}.{occ.index}", ChangeKey=item.change_key)
            sub(entry, t("Start"), ews_time(occ.start))
            sub(entry, t("End"), ews_time(occ.end))
            sub(entry, t("OriginalStart"), ews_time(occ.recurrence_id))


def _deleted(node: etree._Element, item: Item) -> None:
    deleted = sub(node, t("DeletedOccurrences"))
    for occ in occurrences(item.fields):
        if occ.index in item.deleted_occurrences:
            sub(sub(deleted, t("DeletedOccurrence")), t("Start"), ews_time(occ.start))
