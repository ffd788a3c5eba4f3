"""Mail endpoints: drafts from MIME, PATCH (categories, isRead, extended properties), send, ``$value``,
folder listings with extended-property filters, and the inbox message delta."""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.servers.graph.api import Answer, Context, address, iso, link, page
from tests.servers.graph.meetings import deliver, file_message
from tests.servers.graph.odata import expand_ids, extended_props, item_filter, shape, token, untoken
from tests.servers.graph.store import FOLDERS, GraphFault, Message

PATCHABLE = {"categories", "isRead", "singleValueExtendedProperties", "flag", "importance", "inferenceClassification"}
ODATA_TYPE = {"message": "#microsoft.graph.message", "eventMessageRequest": "#microsoft.graph.eventMessageRequest",
              "eventMessageResponse": "#microsoft.graph.eventMessageResponse", "eventMessage": "#microsoft.graph.eventMessage"}


class SendPace:
    """Exchange Online's message rate limit: 30 messages a minute per mailbox, then 429."""

    def __init__(self, clock: Callable[[], float], limit: int = 30) -> None:
        self.clock, self.limit = clock, limit
        self.sent: dict[str, deque[float]] = {}

    def admit(self, mailbox: str) -> None:
        now = self.clock()
        recent = self.sent.setdefault(mailbox, deque())
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if len(recent) >= self.limit:
            wait = max(1, int(recent[0] + 60 - now + 0.999))
            raise GraphFault(429, "ApplicationThrottled", "Application is over its message rate limit.", {"Retry-After": str(wait)})
        recent.append(now)


def folder_name(ctx: Context, name: str) -> str:
    key = name.casefold()
    if key in FOLDERS:
        return key
    for folder in FOLDERS:
        if folder_id(ctx.mailbox, folder) == name:
            return folder
    raise GraphFault(404, "ErrorInvalidIdMalformed", f"Id is malformed: '{name}'.")


def folder_id(mailbox: str, folder: str) -> str:
    return "AAMkADfolder" + base64.urlsafe_b64encode(f"{mailbox}/{folder}".encode()).decode().rstrip("=")


# -- folders ------------------------------------------------------------------------------
def get_folder(ctx: Context, name: str) -> Answer:
    folder = folder_name(ctx, name)
    inside = ctx.store.in_folder(ctx.mailbox, folder)
    item = {"id": folder_id(ctx.mailbox, folder), "displayName": folder.title(), "parentFolderId": folder_id(ctx.mailbox, "root"),
            "childFolderCount": 0, "unreadItemCount": sum(not m.is_read for m in inside), "totalItemCount": len(inside)}
    return Answer(200, shape(item, ctx.request.query.get("$select"), {}, None))


def list_folder(ctx: Context, name: str) -> Answer:
    folder, query = folder_name(ctx, name), ctx.request.query
    keep, expand = item_filter(query.get("$filter")), expand_ids(query.get("$expand"))
    found = [m for m in ctx.store.in_folder(ctx.mailbox, folder) if keep(m)]
    found.reverse()  # newest first, as Outlook lists a folder
    items = [shape(message_json(ctx, m), query.get("$select"), m.extended, expand) for m in found]
    return page(ctx, items, 10, f"users('{ctx.mailbox}')/mailFolders('{name}')/messages")


def delta(ctx: Context, name: str) -> Answer:
    """Created/updated messages since the token's version, then the ones that left, paged."""
    folder, query = folder_name(ctx, name), ctx.request.query
    if "$deltatoken" in query or "$skiptoken" in query:
        state = untoken(query.get("$deltatoken") or query["$skiptoken"])
        if state.get("e") != ctx.store.delta_epoch:
            raise GraphFault(410, "SyncStateNotFound", "The sync state generation is not found or is invalid.")
    else:
        state = {"t": -1, "s": ctx.store.version, "o": 0, "e": ctx.store.delta_epoch}
    since, snapshot, offset = int(state["t"]), int(state.get("s", ctx.store.version)), int(state.get("o", 0))
    changed = [m for m in ctx.store.in_folder(ctx.mailbox, folder) if since < m.version <= snapshot]
    items = [shape(message_json(ctx, m), query.get("$select"), m.extended, None) for m in changed]
    if since >= 0:
        gone = {mid for mid, v in ctx.store.left.get((ctx.mailbox, folder), []) if since < v <= snapshot}
        gone -= {m.id for m in changed}
        items += [{"@odata.type": "#microsoft.graph.message", "id": mid, "@removed": {"reason": "deleted"}} for mid in sorted(gone)]
    size = int(ctx.request.prefer.get("odata.maxpagesize", "10") or 10)
    body: dict[str, Any] = {"@odata.context": f"{ctx.request.root}/$metadata#Collection(message)", "value": items[offset : offset + size]}
    keep = {k: v for k, v in query.items() if k not in ("$deltatoken", "$skiptoken")}
    if offset + size < len(items):
        body["@odata.nextLink"] = link(ctx.request, {**keep, "$skiptoken": token({**state, "t": since, "s": snapshot, "o": offset + size})})
    else:
        body["@odata.deltaLink"] = link(ctx.request, {**keep, "$deltatoken": token({"t": snapshot, "e": ctx.store.delta_epoch})})
    return Answer(200, body)


# -- messages -----------------------------------------------------------------------------
def create_message(ctx: Context) -> Answer:
    """``Content-Type: text/plain`` and base64 MIME: a draft, exactly those bytes."""
    if not ctx.request.headers.get("content-type", "").startswith("text/plain"):
        raise GraphFault(400, "ErrorInvalidRequest", "This test server creates messages from MIME (text/plain, base64) only.")
    try:
        raw = base64.b64decode(ctx.request.body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise GraphFault(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.") from None
    if b"\n" not in raw or b":" not in raw.split(b"\n", 1)[0]:
        raise GraphFault(400, "ErrorMimeContentInvalid", "The MIME content is not valid.")
    message = file_message(ctx.store, ctx.mailbox, "drafts", raw, is_draft=True, is_read=True)
    message.bcc = _header_addresses(raw, "Bcc")
    return Answer(201, message_json(ctx, message))


def get_message(ctx: Context, message_id: str) -> Answer:
    message, query = ctx.store.message(ctx.mailbox, message_id), ctx.request.query
    computed = {"integer 0x0e08": ("Integer 0x0E08", str(len(message.mime)))}  # PR_MESSAGE_SIZE, as Exchange keeps it
    return Answer(200, shape(message_json(ctx, message), query.get("$select"), {**message.extended, **computed},
                             expand_ids(query.get("$expand"))))


def message_value(ctx: Context, message_id: str) -> Answer:
    return Answer(200, ctx.store.message(ctx.mailbox, message_id).mime, content_type="text/plain")


def patch_message(ctx: Context, message_id: str) -> Answer:
    message, body = ctx.store.message(ctx.mailbox, message_id), ctx.request.json()
    if not isinstance(body, dict):
        raise GraphFault(400, "BadRequest", "Empty Payload. JSON content expected.")
    unknown = sorted(set(body) - PATCHABLE)
    if unknown:
        raise GraphFault(400, "RequestBodyRead", f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.message'.")
    if "categories" in body:
        if not isinstance(body["categories"], list) or not all(isinstance(c, str) for c in body["categories"]):
            raise GraphFault(400, "ErrorInvalidRequest", "categories must be a list of strings.")
        message.categories = list(body["categories"])
    if "isRead" in body:
        message.is_read = bool(body["isRead"])
    message.extended.update(extended_props(body.get("singleValueExtendedProperties")))
    message.version = ctx.store.bump()
    return Answer(200, message_json(ctx, message))


def send_message(ctx: Context, message_id: str, pace: SendPace) -> Answer:
    message = ctx.store.message(ctx.mailbox, message_id)
    if not message.is_draft:
        raise GraphFault(400, "ErrorInvalidOperation", "Only a draft can be sent.")
    pace.admit(ctx.mailbox)
    for recipient in dict.fromkeys([*message.to, *message.cc, *message.bcc]):
        deliver(ctx.store, ctx.mailbox, recipient, message.mime, "message")
    message.is_draft = False
    ctx.store.move(message, "sentitems", new_id=True)  # a sent draft's copy in Sent Items has a new id
    return Answer(202)


def message_json(ctx: Context, m: Message) -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPE.get(m.kind, "#microsoft.graph.message"), "@odata.etag": f'W/"CQAAABYAAAA{m.version:08d}"',
        "id": m.id, "createdDateTime": iso(m.received), "lastModifiedDateTime": iso(m.received),
        "receivedDateTime": iso(m.received), "sentDateTime": iso(m.received), "hasAttachments": False,
        "internetMessageId": m.message_id, "subject": m.subject, "bodyPreview": "", "importance": "normal",
        "parentFolderId": folder_id(m.mailbox, m.folder), "conversationId": "AAQkAD" + m.id[-16:], "isRead": m.is_read,
        "isDraft": m.is_draft, "categories": list(m.categories), "inferenceClassification": "focused",
        "from": address(m.sender) if m.sender else None, "sender": address(m.sender) if m.sender else None,
        "toRecipients": [address(a) for a in m.to], "ccRecipients": [address(a) for a in m.cc],
        "bccRecipients": [address(a) for a in m.bcc],
    }


def _header_addresses(raw: bytes, name: str) -> tuple[str, ...]:
    from email import policy
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    msg = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    return tuple(a.casefold() for _, a in getaddresses([str(v) for v in msg.get_all(name, [])]) if a)
