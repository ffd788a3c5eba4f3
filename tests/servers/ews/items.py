"""Item operations: CreateItem (incl. meeting responses and cancellations), GetItem, UpdateItem,
DeleteItem (incl. occurrences) and MoveItem. One response message per item, errors as values."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable

from lxml import etree

from tests.servers.ews import meetings, mime
from tests.servers.ews.context import Context
from tests.servers.ews.paths import find_field, remove_field
from tests.servers.ews.recurrence import Occurrence, item_occurrences, occurrences, parse_time
from tests.servers.ews.shape import put, render
from tests.servers.ews.soap import EwsError, local, m, response_message, sub, t
from tests.servers.ews.store import Item, Sent

SENDS = ("SendOnly", "SendAndSaveCopy")
INVITES = ("SendOnlyToAll", "SendToAllAndSaveCopy", "SendOnlyToChanged", "SendToChangedAndSaveCopy")
RESPONSES = {"AcceptItem": "Accept", "TentativelyAcceptItem": "Tentative", "DeclineItem": "Decline"}
# What a client may set on one occurrence here (it then becomes an exception of the series).
OCCURRENCE_FIELDS = ("calendar:Start", "calendar:End", "calendar:StartTimeZone", "calendar:EndTimeZone", "item:Body")


def _respond_each(ctx: Context, tag: str, nodes: list[etree._Element], one: Callable[[etree._Element], list[etree._Element]]) -> etree._Element:
    """Run ``one`` per request node, turning EwsError into that node's error response message."""
    response = etree.Element(m(tag.replace("ResponseMessage", "Response")))
    messages = sub(response, m("ResponseMessages"))
    for node in nodes:
        try:
            payload = one(node)
        except EwsError as error:
            messages.append(response_message(tag, error))
            continue
        message = response_message(tag)
        for child in payload:
            message.append(child)
        messages.append(message)
    return response


def _items(*elements: etree._Element) -> etree._Element:
    container = etree.Element(m("Items"))
    for element in elements:
        container.append(element)
    return container


def _id_only(item: Item) -> etree._Element:
    node = etree.Element(t(item.kind))
    sub(node, t("ItemId"), Id=item.item_id, ChangeKey=item.change_key)
    return node


# -- CreateItem ---------------------------------------------------------------------------------
def create_item(ctx: Context) -> etree._Element:
    body = ctx.body
    disposition = body.get("MessageDisposition", "SaveOnly")
    invitations = body.get("SendMeetingInvitations", "SendToNone")
    saved = body.find(m("SavedItemFolderId"))
    folder = ctx.folder(saved[0]) if saved is not None else None

    def one(node: etree._Element) -> list[etree._Element]:
        kind = local(node)
        if kind in RESPONSES or kind == "CancelCalendarItem":
            _response_item(ctx, node, kind)
            return [_items()]
        if kind == "CalendarItem":
            return [_items(_id_only(_create_calendar_item(ctx, node, folder, invitations)))]
        if kind == "Message":
            created = _create_message(ctx, node, folder, disposition)
            return [_items(*([_id_only(created)] if created and disposition == "SaveOnly" else []))]
        raise EwsError("ErrorInvalidItemForOperation", f"{kind} is not supported by this test server")

    return _respond_each(ctx, "CreateItemResponseMessage", list(body.find(m("Items"))), one)


def _create_calendar_item(ctx: Context, node: etree._Element, folder, invitations: str) -> Item:  # type: ignore[no-untyped-def]
    mailbox = folder.mailbox if folder is not None else ctx.default_mailbox
    if node.find(t("Start")) is None or node.find(t("End")) is None:
        raise EwsError("ErrorInvalidPropertySet", "A calendar item needs Start and End")
    item = ctx.store.add_item(mailbox, folder.name if folder is not None else "calendar", node)
    if item.get("UID") is None:
        put(item.fields, "UID", f"{item.item_id}@ews-test-server")
    put(item.fields, "AppointmentSequenceNumber", "0")
    occurrences(item.fields)  # rejects unsupported patterns before anything is sent
    if invitations in INVITES and meetings.attendees(item):
        meetings.send_invitations(ctx.store, item, update=False, save_copy=invitations.endswith("SaveCopy"))
    return item


def _create_message(ctx: Context, node: etree._Element, folder, disposition: str) -> Item | None:  # type: ignore[no-untyped-def]
    mailbox = folder.mailbox if folder is not None else ctx.default_mailbox
    fields = copy.deepcopy(node)
    raw = _mime_of(fields)
    if raw is not None:
        headers = mime.read(raw)
        put(fields, "Subject", headers.subject)
        put(fields, "InternetMessageId", headers.message_id)
        recipients = headers.to + headers.cc
    else:
        recipients = tuple(
            (a.text or "").casefold()
            for a in fields.iterfind(f"{t('ToRecipients')}/{t('Mailbox')}/{t('EmailAddress')}")
        )
    if disposition not in SENDS:
        return ctx.store.add_item(mailbox, folder.name if folder is not None else "drafts", fields, mime=raw)
    if not recipients:
        raise EwsError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
    if mailbox != ctx.account.mailbox and ctx.request.impersonated != mailbox and not ctx.account.send_as:
        raise EwsError("ErrorSendAsDenied", "The user account which was used to submit this request does not have the "
                                            "right to send mail on behalf of the specified sending account., Cannot submit message.")
    for address in recipients:  # checked before anything leaves, for this message alone
        if address in ctx.store.refusals:
            raise EwsError(*ctx.store.refusals[address])
    raw = raw or _plain_mime(fields, mailbox, recipients)
    ctx.store.outbound.append(Sent(mailbox, recipients, "Message", fields.findtext(t("Subject"), ""), raw))
    for address in recipients:
        if address in ctx.store.mailboxes:
            delivered = ctx.store.add_item(address, "inbox", fields, mime=raw)
            put(delivered.fields, "IsRead", "false")
    if disposition == "SendAndSaveCopy":
        saved = ctx.store.add_item(mailbox, folder.name if folder is not None else "sentitems", fields, mime=raw)
        put(saved.fields, "IsRead", "true")
        return saved
    return None


def _mime_of(fields: etree._Element) -> bytes | None:
    node = fields.find(t("MimeContent"))
    if node is None:
        return None
    fields.remove(node)
    return base64.b64decode(node.text or "")


def _plain_mime(fields: etree._Element, sender: str, recipients: tuple[str, ...]) -> bytes:
    subject = fields.findtext(t("Subject"), "")
    text = fields.findtext(t("Body"), "")
    return f"From: {sender}\r\nTo: {', '.join(recipients)}\r\nSubject: {subject}\r\n\r\n{text}\r\n".encode()


def _response_item(ctx: Context, node: etree._Element, kind: str) -> None:
    ref = node.find(t("ReferenceItemId"))
    if ref is None:
        raise EwsError("ErrorInvalidIdEmpty", "ReferenceItemId is required")
    item = ctx.item(ref)
    uid = item.text("UID")
    if kind == "CancelCalendarItem":
        if item.kind != "CalendarItem" or item.mailbox != item.fields.findtext(
            f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}", item.mailbox
        ):
            raise EwsError("ErrorInvalidOperation", "Only the organizer can cancel a meeting.")
        meetings.send_cancellations(ctx.store, item, None, save_copy=True)
        item.folder = "deleteditems"
        return
    try:
        meetings.respond(ctx.store, item.mailbox, uid, RESPONSES[kind])
    except KeyError as exc:
        raise EwsError("ErrorItemNotFound", str(exc)) from None


# -- GetItem ------------------------------------------------------------------------------------
def wants_mime(shape: etree._Element | None) -> bool:
    if shape is None:
        return False
    if (shape.findtext(t("IncludeMimeContent")) or "").strip() in ("true", "1"):
        return True
    return any(f.get("FieldURI") == "item:MimeContent" for f in shape.iterfind(f".//{t('FieldURI')}"))


def get_item(ctx: Context) -> etree._Element:
    with_mime = wants_mime(ctx.body.find(m("ItemShape")))

    def one(node: etree._Element) -> list[etree._Element]:
        item, occurrence = resolve(ctx, node)
        return [_items(render(item, ctx.store, with_mime=with_mime, occurrence=occurrence))]

    return _respond_each(ctx, "GetItemResponseMessage", list(ctx.body.find(m("ItemIds"))), one)


def resolve(ctx: Context, node: etree._Element) -> tuple[Item, Occurrence | None]:
    """An ItemId, or an OccurrenceItemId (master + 1-based index), or our rendered occurrence ids."""
    if local(node) == "OccurrenceItemId":
        master = ctx.item(etree.Element(t("ItemId"), Id=node.get("RecurringMasterId", "")))
        return master, _occurrence(master, int(node.get("InstanceIndex", "0")))
    item_id = node.get("Id", "")
    if "." in item_id:
        master_id, _, index = item_id.rpartition(".")
        master = ctx.item(etree.Element(t("ItemId"), Id=master_id))
        return master, _occurrence(master, int(index))
    return ctx.item(node), None


def _occurrence(master: Item, index: int) -> Occurrence:
    if master.get("Recurrence") is None:
        raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "The item is not a recurring master.")
    for occurrence in item_occurrences(master):
        if occurrence.index == index:
            if index in master.deleted_occurrences:
                raise EwsError("ErrorCalendarOccurrenceIsDeletedFromRecurrence", "Occurrence has been deleted.")
            return occurrence
    raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", f"No occurrence {index} in this series.")


# -- UpdateItem ---------------------------------------------------------------------------------
def update_item(ctx: Context) -> etree._Element:
    invitations = ctx.body.get("SendMeetingInvitationsOrCancellations", "SendToNone")
    resolution = ctx.body.get("ConflictResolution", "AutoResolve")

    def one(change: etree._Element) -> list[etree._Element]:
        id_node = change[0]
        item, occurrence = resolve(ctx, id_node)
        if resolution == "NeverOverwrite" and id_node.get("ChangeKey") not in (None, item.change_key):
            raise EwsError("ErrorIrresolvableConflict", "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.")
        conflicts = etree.Element(m("ConflictResults"))
        sub(conflicts, t("Count"), 0)
        if occurrence is not None:
            changed = _update_occurrence(ctx, item, occurrence, change.find(t("Updates")), invitations)
            node = etree.Element(t(item.kind))
            sub(node, t("ItemId"), Id=f"{item.item_id}.{changed.index}", ChangeKey=item.change_key)
            return [_items(node), conflicts]
        pattern = [o.start for o in occurrences(item.fields)] if item.get("Recurrence") is not None else None
        for update in change.find(t("Updates")):
            _apply(item, update)
        item.change += 1
        if pattern is not None and pattern != [o.start for o in occurrences(item.fields)]:
            # A new pattern drops every exception (MS-OXOCAL 3.1.4.7.3.5): skipped and moved sessions come back.
            item.deleted_occurrences.clear()
            item.modified_occurrences.clear()
            item.occurrence_bodies.clear()
        if item.kind == "CalendarItem" and invitations in INVITES and meetings.attendees(item):
            put(item.fields, "AppointmentSequenceNumber", str(meetings.sequence(item) + 1))
            meetings.send_invitations(ctx.store, item, update=True, save_copy=invitations.endswith("SaveCopy"))
        return [_items(_id_only(item)), conflicts]

    return _respond_each(ctx, "UpdateItemResponseMessage", list(ctx.body.find(m("ItemChanges"))), one)


def _update_occurrence(ctx: Context, master: Item, occurrence: Occurrence, updates: etree._Element, invitations: str) -> Occurrence:
    """One occurrence gets its own time and/or body: it becomes an exception on the master, and the
    attendees get a request for it alone when invitations are asked for."""
    start, end, body = occurrence.start, occurrence.end, None
    for update in updates:
        uri = update[0].get("FieldURI", "")
        if local(update) != "SetItemField" or uri not in OCCURRENCE_FIELDS:
            raise EwsError("ErrorInvalidPropertySet", f"{local(update)} of {uri or 'that field'} on an occurrence is not supported by this test server")
        value = find_field(update[1], update[0])
        if uri == "calendar:Start":
            start = parse_time(value.text or "")
        elif uri == "calendar:End":
            end = parse_time(value.text or "")
        elif uri == "item:Body":
            body = copy.deepcopy(value)
    if end <= start:
        raise EwsError("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate")
    planned = next(o for o in occurrences(master.fields) if o.index == occurrence.index)
    if (start, end) == (planned.start, planned.end):
        master.modified_occurrences.pop(occurrence.index, None)  # moved back where the pattern has it
    else:
        master.modified_occurrences[occurrence.index] = (start, end)
    if body is not None:
        master.occurrence_bodies[occurrence.index] = body
    master.change += 1
    changed = Occurrence(occurrence.index, start, end, original=planned.start)
    if invitations in INVITES and meetings.attendees(master):
        meetings.send_occurrence_update(ctx.store, master, changed, save_copy=invitations.endswith("SaveCopy"))
    return changed


def _apply(item: Item, update: etree._Element) -> None:
    """SetItemField / AppendToItemField / DeleteItemField on the stored element."""
    path = update[0]
    action = local(update)
    if action == "DeleteItemField":
        remove_field(item.fields, path)
        return
    carrier = update[1]
    new = find_field(carrier, path)
    if new is None:
        raise EwsError("ErrorInvalidPropertySet", f"{action} carries no value for {etree.tostring(path).decode()}")
    old = find_field(item.fields, path)
    if action == "AppendToItemField" and old is not None:
        old.extend(copy.deepcopy(list(new)))
        return
    if old is not None:
        item.fields.replace(old, copy.deepcopy(new))
    else:
        item.fields.append(copy.deepcopy(new))


# -- DeleteItem / MoveItem ----------------------------------------------------------------------
def delete_item(ctx: Context) -> etree._Element:
    cancellations = ctx.body.get("SendMeetingCancellations", "SendToNone")
    delete_type = ctx.body.get("DeleteType", "MoveToDeletedItems")

    def one(node: etree._Element) -> list[etree._Element]:
        item, occurrence = resolve(ctx, node)
        if item.kind == "CalendarItem" and cancellations != "SendToNone" and meetings.attendees(item):
            if occurrence is None:  # cancelling the whole meeting is a new version of it
                put(item.fields, "AppointmentSequenceNumber", str(meetings.sequence(item) + 1))
            meetings.send_cancellations(ctx.store, item, occurrence, save_copy=cancellations.endswith("SaveCopy"))
        if occurrence is not None:
            item.deleted_occurrences.add(occurrence.index)
            item.change += 1
        elif delete_type == "HardDelete":
            del ctx.store.items[item.item_id]
        else:
            item.folder = "deleteditems"
        return []

    return _respond_each(ctx, "DeleteItemResponseMessage", list(ctx.body.find(m("ItemIds"))), one)


def move_item(ctx: Context) -> etree._Element:
    target = ctx.folder(ctx.body.find(m("ToFolderId"))[0])

    def one(node: etree._Element) -> list[etree._Element]:
        item = ctx.item(node)
        if item.mailbox != target.mailbox:
            raise EwsError("ErrorInvalidOperation", "Moving items between mailboxes is not supported")
        del ctx.store.items[item.item_id]
        item.item_id = ctx.store.new_id("I")  # Exchange gives a moved item a new id
        item.folder = target.name
        ctx.store.items[item.item_id] = item
        return [_items(_id_only(item))]

    return _respond_each(ctx, "MoveItemResponseMessage", list(ctx.body.find(m("ItemIds"))), one)


OPERATIONS = {
    "CreateItem": create_item,
    "GetItem": get_item,
    "UpdateItem": update_item,
    "DeleteItem": delete_item,
    "MoveItem": move_item,
}
