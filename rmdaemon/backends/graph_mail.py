"""Mail through Graph: sending our own MIME (threading headers intact), and reading the inbox.

Sending. JSON ``sendMail`` cannot set Message-ID, In-Reply-To or References, so every message
goes out as its own MIME: a draft made from the bytes, tagged with our key property, then sent.
The journal records the key and its draft before the send; a key left unfinished by a crash, a
5xx or a timeout is looked for in Sent Items (and its tagged draft in Drafts) before anything is
sent again. A send is never repeated blindly, and ``SendPace`` keeps every minute under Exchange
Online's 30 messages.

Reading. The inbox is read with a message delta: the delta link is kept in the journal, so a
restart continues where the last read stopped; messages fetched but not yet marked stay pending
there until they are. Raw MIME comes from ``$value``, 20 messages per ``$batch``. Marking adds
the processed category (keeping a person's own categories) and sets isRead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from email.utils import formataddr
from typing import Any
from urllib.parse import quote

from rmdaemon.backends.base import DEFAULT_MAX_BYTES, summary_head, too_large
from rmdaemon.backends.graph_calendar import query
from rmdaemon.backends.graph_events import KEY, key_filter
from rmdaemon.backends.graph_http import PREFER, Call, GraphHttp, Reply
from rmdaemon.backends.http_common import SendPace
from rmdaemon.backends.graph_state import GraphState
from rmdaemon.errors import BackendError
from rmdaemon.model import Incoming, Outgoing

PAGE = 100  # messages per delta page (Prefer: odata.maxpagesize)
RESYNC = ("SyncStateNotFound", "SyncStateInvalid", "resyncRequired")
SIZE = "Integer 0x0E08"  # PR_MESSAGE_SIZE: Graph's message resource has no size of its own
HEAD_QUERY = query(**{"$select": "id,subject,from,internetMessageId,receivedDateTime",
                      "$expand": f"singleValueExtendedProperties($filter=id eq '{SIZE}')"})


class Outbox:
    def __init__(self, http: GraphHttp, state: GraphState, mailbox: str, pace: SendPace,
                 clock: Callable[[], datetime]) -> None:
        self.http, self.state, self.pace, self.clock = http, state, pace, clock
        self.base = f"/users/{quote(mailbox, safe='@')}"

    def send(self, message: Outgoing) -> None:
        what = f"sending {message.kind or 'mail'} {message.key}"
        if self.state.was_sent(message.key):
            return
        draft = None
        if self.state.sending(message.key) is not None:  # an earlier attempt did not finish
            sent, draft = self._earlier_attempt(message.key, what)
            if sent:
                self.state.finish_send(message.key, self.clock().date())
                return
        if draft is None:  # a crash before the next line leaves at most an unsent draft behind
            draft = self._draft(message, what)
        self.state.start_send(message.key, draft)
        self.pace.take()
        reply = self.http.call(Call("POST", f"{self.base}/messages/{draft}/send", safe_to_repeat=False), what)
        if not reply.ok:
            raise reply.error(what)
        self.state.finish_send(message.key, self.clock().date())

    def _draft(self, message: Outgoing, what: str) -> str:
        """A draft from our MIME bytes (base64, as Graph wants it), then tagged with our key."""
        body = base64.b64encode(message.raw).decode()
        made = self.http.call(Call("POST", f"{self.base}/messages", body, {"Content-Type": "text/plain"}), what)
        if not made.ok:
            raise made.error(what)
        draft = str(made.body["id"])
        tag = {"singleValueExtendedProperties": [{"id": KEY, "value": message.key}]}
        tagged = self.http.call(Call("PATCH", f"{self.base}/messages/{draft}", tag), what)
        if not tagged.ok:
            raise tagged.error(what)
        return draft

    def _earlier_attempt(self, key: str, what: str) -> tuple[bool, str | None]:
        """(already sent?, a tagged draft to send instead of making a new one) — one round trip."""
        look = query(**{"$filter": key_filter(key), "$select": "id,isDraft", "$top": "1"})
        sent, drafts = self.http.batch([Call("GET", f"{self.base}/mailFolders/sentitems/messages{look}"),
                                        Call("GET", f"{self.base}/mailFolders/drafts/messages{look}")], what)
        for reply in (sent, drafts):
            if not reply.ok:
                raise reply.error(f"{what}: looking for an earlier attempt")
        if sent.body.get("value"):
            return True, None
        found = drafts.body.get("value") or []
        return False, (str(found[0]["id"]) if found else None)


class Inbox:
    def __init__(self, http: GraphHttp, state: GraphState, mailbox: str, processed: str,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.http, self.state, self.processed, self.max_bytes = http, state, processed, max_bytes
        self.base = f"/users/{quote(mailbox, safe='@')}"
        self._marked: set[str] = set()

    @property
    def start_link(self) -> str:
        return f"{self.base}/mailFolders/inbox/messages/delta" + query(**{"$select": "id,categories,isRead,receivedDateTime"})

    def fetch_new(self) -> list[Incoming]:
        """The pending messages, oldest first: first each one's size (PR_MESSAGE_SIZE) and headers
        as Graph reports them, then the MIME of those within ``max_message_bytes``; a larger one is
        never downloaded and goes on refused with the reason and those headers."""
        self._read_changes()
        pending = [ref for ref, _ in sorted(self.state.pending.items(),
                                            key=lambda kv: (kv[1].get("received", ""), kv[0]))]
        gone: list[str] = []
        heads = self._read(pending, HEAD_QUERY, gone)
        big = {ref for ref, reply in heads.items() if _size(reply.body) > self.max_bytes}
        bodies = self._read([ref for ref in pending if ref in heads and ref not in big], "/$value", gone)
        if gone:
            self.state.inbox_seen(self.state.delta_link, {}, gone)
        return [self._too_large(ref, heads[ref].body) if ref in big else Incoming(ref=ref, raw=_raw(bodies[ref]))
                for ref in pending if ref in big or ref in bodies]

    def _read(self, refs: list[str], suffix: str, gone: list[str]) -> dict[str, Reply]:
        """``GET messages/{ref}{suffix}`` for each, in $batch; one moved or deleted by a person since
        goes to ``gone`` (no longer ours to read)."""
        replies = self.http.batch([Call("GET", f"{self.base}/messages/{ref}{suffix}") for ref in refs],
                                  "reading inbox messages") if refs else []
        found = {}
        for ref, reply in zip(refs, replies):
            if reply.status == 404:
                gone.append(ref)
            elif not reply.ok:
                raise reply.error(f"reading inbox message {ref}")
            else:
                found[ref] = reply
        return found

    def _too_large(self, ref: str, message: dict[str, Any]) -> Incoming:
        sender = (message.get("from") or {}).get("emailAddress") or {}
        head = summary_head(From=formataddr((sender.get("name") or "", sender.get("address") or "")) if sender else "",
                            Subject=message.get("subject"), Message_ID=message.get("internetMessageId"),
                            Date=message.get("receivedDateTime"))
        return too_large(ref, _size(message), self.max_bytes, head)

    def _read_changes(self) -> None:
        """Follow the delta from the saved link to the next one; a link Graph forgot restarts it."""
        link, fresh, done = self.state.delta_link or self.start_link, {}, []
        restarted = False
        while True:
            reply = self.http.get_url(link, "reading the inbox", {"Prefer": f"{PREFER}, odata.maxpagesize={PAGE}"})
            if reply.status in (400, 404, 410) and reply.code in RESYNC and not restarted:
                link, fresh, done, restarted = self.start_link, {}, [], True
                continue
            if not reply.ok:
                raise reply.error("reading the inbox")
            for item in reply.body.get("value", []):
                self._sort(item, fresh, done)
            if reply.body.get("@odata.nextLink"):
                link = reply.body["@odata.nextLink"]
                continue
            self.state.inbox_seen(reply.body.get("@odata.deltaLink"), fresh, done)
            return

    def _sort(self, item: dict[str, Any], fresh: dict[str, dict[str, Any]], done: list[str]) -> None:
        ref = str(item["id"])
        if "@removed" in item or self.processed in (item.get("categories") or []):
            fresh.pop(ref, None)
            done.append(ref)
        else:
            fresh[ref] = {"received": item.get("receivedDateTime", ""), "categories": list(item.get("categories") or [])}

    def mark_processed(self, ref: str) -> None:
        if ref in self._marked:
            return
        meta = self.state.pending.get(ref)
        categories = meta["categories"] if meta else self._categories(ref)
        if categories is not None and self.processed not in categories:
            body = {"categories": [*categories, self.processed], "isRead": True}
            reply = self.http.call(Call("PATCH", f"{self.base}/messages/{ref}", body), f"marking inbox message {ref}")
            if not reply.ok and reply.status != 404:
                raise reply.error(f"marking inbox message {ref}")
        self.state.inbox_done(ref)
        self._marked.add(ref)

    def _categories(self, ref: str) -> list[str] | None:
        """Categories of a message this run did not fetch; None when it is gone."""
        reply = self.http.call(Call("GET", f"{self.base}/messages/{ref}" + query(**{"$select": "categories"})),
                               f"reading inbox message {ref}")
        if reply.status == 404:
            return None
        if not reply.ok:
            raise reply.error(f"reading inbox message {ref}")
        return list(reply.body.get("categories") or [])


def _size(message: dict[str, Any]) -> int:
    """PR_MESSAGE_SIZE as Graph returned it; 0 (read it) when it did not."""
    found = [p.get("value") for p in message.get("singleValueExtendedProperties") or []
             if str(p.get("id")).casefold() == SIZE.casefold()]
    return int(found[0]) if found and str(found[0]).isdigit() else 0


def _raw(reply: Reply) -> bytes:
    if isinstance(reply.body, bytes):
        return reply.body
    raise BackendError(f"Graph returned {type(reply.body).__name__} instead of MIME bytes", permanent=True)
