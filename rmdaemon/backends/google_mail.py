"""Mail through the Gmail API: our own RFC 5322 bytes out, the inbox in.

Sending. ``users.messages.send`` with the raw bytes keeps our Message-ID and threading headers.
The journal records the key before the send and after Google accepted it; a key left unfinished
(a crash, a 5xx, a lost connection) is looked for in Sent by its Message-ID (``rfc822msgid:``)
before anything is sent again. A send is never repeated blindly, and ``SendPace`` keeps every
minute under ``messages_per_minute`` (Gmail's per-user quota counts 100 units a send).

Reading. The first read lists the inbox (``in:inbox -label:<processed>``) after noting the
mailbox's ``historyId``; later reads ask ``users.history.list`` for what arrived since, and fall
back to the full list when Gmail no longer has that history (404). Messages fetched but not yet
marked stay pending in the journal; their raw bytes come with ``format=raw``, 50 per batch.
Marking adds the processed label (made on first use) and removes UNREAD.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import quote

from rmdaemon.backends.google_calendar import query
from rmdaemon.backends.google_http import GoogleHttp, Reply
from rmdaemon.backends.google_state import GoogleState
from rmdaemon.backends.http_common import Call, SendPace
from rmdaemon.errors import BackendError
from rmdaemon.model import Incoming, Outgoing

PAGE = "500"


def root(user: str) -> str:
    return f"/gmail/v1/users/{quote(user, safe='@')}"


def search_name(label: str) -> str:
    """How Gmail's search names a label: spaces and slashes become hyphens."""
    return label.replace("/", "-").replace(" ", "-").lower()


class Outbox:
    def __init__(self, http: GoogleHttp, state: GoogleState, user: str, pace: SendPace,
                 clock: Callable[[], datetime]) -> None:
        self.http, self.state, self.pace, self.clock, self.base = http, state, pace, clock, root(user)

    def send(self, message: Outgoing) -> None:
        what = f"sending {message.kind or 'mail'} {message.key}"
        if self.state.was_sent(message.key):
            return
        message_id = str(BytesHeaderParser().parsebytes(message.raw).get("Message-ID", "")).strip()
        if self.state.sending(message.key) is not None and message_id and self._in_sent(message_id, what):
            self.state.finish_send(message.key, self.clock().date())  # an earlier attempt went out
            return
        self.pace.take()  # before the journal: a send left for the next tick needs no lookup in Sent
        self.state.start_send(message.key)
        body = {"raw": base64.urlsafe_b64encode(message.raw).decode()}
        reply = self.http.call(Call("POST", f"{self.base}/messages/send", body, safe_to_repeat=False), what)
        if not reply.ok:
            raise reply.error(what)
        self.state.finish_send(message.key, self.clock().date())

    def _in_sent(self, message_id: str, what: str) -> bool:
        look = query(q=f"in:sent rfc822msgid:{message_id.strip('<>')}", maxResults="1")
        reply = self.http.call(Call("GET", f"{self.base}/messages{look}"), what)
        if not reply.ok:
            raise reply.error(f"{what}: looking for an earlier attempt")
        return bool(reply.body.get("messages"))


class Inbox:
    def __init__(self, http: GoogleHttp, state: GoogleState, user: str, label: str) -> None:
        self.http, self.state, self.label, self.base = http, state, label, root(user)
        self._marked: set[str] = set()

    def fetch_new(self) -> list[Incoming]:
        self._read_changes()
        pending = list(self.state.pending)
        calls = [Call("GET", f"{self.base}/messages/{ref}" + query(format="raw")) for ref in pending]
        replies = self.http.batch(calls, "reading inbox messages") if calls else []
        fetched, gone = [], []
        for ref, reply in zip(pending, replies):
            if reply.status == 404 or (reply.ok and self.state.label in (reply.body.get("labelIds") or [])):
                gone.append(ref)  # deleted by a person, or handled already
            elif not reply.ok:
                raise reply.error(f"reading inbox message {ref}")
            else:
                fetched.append((int(reply.body.get("internalDate") or 0), ref, _raw(reply)))
        if gone:
            self.state.inbox_seen(self.state.delta_link, {}, gone)
        return [Incoming(ref=ref, raw=raw) for _, ref, raw in sorted(fetched)]

    def _read_changes(self) -> None:
        cursor = self.state.delta_link
        found = self._history(cursor) if cursor else None
        if found is None:  # first read, or Gmail forgot that history: list the inbox
            found = self._full()
        latest, refs = found
        self.state.inbox_seen(latest, {ref: {} for ref in refs}, [])

    def _history(self, cursor: str) -> tuple[str, list[str]] | None:
        refs: list[str] = []
        token, latest = "", cursor
        while True:
            params = {"startHistoryId": cursor, "labelId": "INBOX", "historyTypes": "messageAdded", "maxResults": PAGE}
            reply = self.http.call(Call("GET", f"{self.base}/history" + query(**params, **({"pageToken": token} if token else {}))),
                                   "reading the inbox's history")
            if reply.status == 404:
                return None
            if not reply.ok:
                raise reply.error("reading the inbox's history")
            for record in reply.body.get("history") or []:
                refs += [str(m["message"]["id"]) for m in record.get("messagesAdded") or []
                         if "INBOX" in (m["message"].get("labelIds") or ["INBOX"])]
            latest = str(reply.body.get("historyId") or latest)
            token = reply.body.get("nextPageToken") or ""
            if not token:
                return latest, refs

    def _full(self) -> tuple[str, list[str]]:
        profile = self.http.call(Call("GET", f"{self.base}/profile"), "reading the mailbox's profile")
        if not profile.ok:
            raise profile.error("reading the mailbox's profile")
        refs: list[str] = []
        token = ""
        while True:
            params = {"q": f"in:inbox -label:{search_name(self.label)}", "maxResults": PAGE, **({"pageToken": token} if token else {})}
            reply = self.http.call(Call("GET", f"{self.base}/messages" + query(**params)), "listing the inbox")
            if not reply.ok:
                raise reply.error("listing the inbox")
            refs += [str(m["id"]) for m in reply.body.get("messages") or []]
            token = reply.body.get("nextPageToken") or ""
            if not token:
                return str(profile.body.get("historyId")), refs

    def mark_processed(self, ref: str) -> None:
        if ref in self._marked:
            return
        body = {"addLabelIds": [self._label_id()], "removeLabelIds": ["UNREAD"]}
        reply = self.http.call(Call("POST", f"{self.base}/messages/{ref}/modify", body), f"marking inbox message {ref}")
        if not reply.ok and reply.status != 404:
            raise reply.error(f"marking inbox message {ref}")
        self.state.inbox_done(ref)
        self._marked.add(ref)

    def _label_id(self) -> str:
        """The processed label's id: from the journal, else found by name, else made."""
        if self.state.label:
            return self.state.label
        reply = self.http.call(Call("GET", f"{self.base}/labels"), "reading labels")
        if not reply.ok:
            raise reply.error("reading labels")
        found = [x["id"] for x in reply.body.get("labels") or [] if str(x.get("name", "")).casefold() == self.label.casefold()]
        if not found:
            made = self.http.call(Call("POST", f"{self.base}/labels", {"name": self.label, "labelListVisibility": "labelShow",
                                                                      "messageListVisibility": "show"}), "making the label")
            if not made.ok:
                raise made.error(f"making the label {self.label!r}")
            found = [str(made.body["id"])]
        self.state.set_label(found[0])
        return found[0]


def _raw(reply: Reply) -> bytes:
    data: Any = reply.body.get("raw") if isinstance(reply.body, dict) else None
    if not isinstance(data, str):
        raise BackendError("Gmail returned a message without its raw bytes", permanent=True)
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
