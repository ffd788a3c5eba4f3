"""The Gmail API on the fake Workspace: send (raw RFC 5322, our Message-ID kept), list with the
few search operators a client needs (``in:``, ``label:``, ``-label:``, ``rfc822msgid:``), get in
``raw``/``minimal`` format, modify labels, history since a ``historyId`` (404 once it is too old),
labels and the profile."""

from __future__ import annotations

import base64
import binascii
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from tests.servers.google.store import ApiError, Mail, Outbound, Store

PAGE = 100


class Gmail:
    def __init__(self, store: Store, user: str, query: dict[str, str]) -> None:
        self.store, self.user, self.query = store, user, query

    def mailbox(self, ident: str) -> str:
        address = self.user if ident == "me" else ident.casefold()
        if address != self.user:
            raise ApiError(403, "forbidden", "Delegation denied for " + self.user)
        return address

    def send(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        user = self.mailbox(user)
        try:
            raw = base64.urlsafe_b64decode(str(body.get("raw", "")) + "==")
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalidArgument", "Invalid value for ByteString") from None
        headers = BytesHeaderParser().parsebytes(raw)
        recipients = [a.casefold() for _, a in getaddresses(headers.get_all("To", []) + headers.get_all("Cc", []) +
                                                            headers.get_all("Bcc", [])) if a]
        if not recipients:
            raise ApiError(400, "invalidArgument", "Recipient address required")
        message_id = str(headers.get("Message-ID", "")).strip()
        sent = self.store.file(user, raw, {"SENT"}, message_id)
        self.store.outbound.append(Outbound(user, tuple(recipients), "message", raw))
        for address in recipients:
            if address in self.store.users:
                self.store.file(address, raw, {"INBOX", "UNREAD"}, message_id)
        return {"id": sent.id, "threadId": sent.id, "labelIds": sorted(sent.labels)}

    def list(self, user: str) -> dict[str, Any]:
        user = self.mailbox(user)
        found = [m for m in self.store.mails.values() if m.owner == user and self._matches(m, self.query.get("q", ""))]
        wanted = self.query.get("labelIds")
        if wanted:
            found = [m for m in found if wanted in m.labels]
        found.sort(key=lambda m: (-m.internal_date, m.id))  # newest first, as Gmail lists
        start = int(self.query.get("pageToken") or 0)
        size = min(int(self.query.get("maxResults") or PAGE), 500)
        page = found[start : start + size]
        answer: dict[str, Any] = {"messages": [{"id": m.id, "threadId": m.id} for m in page], "resultSizeEstimate": len(found)}
        if start + size < len(found):
            answer["nextPageToken"] = str(start + size)
        if not page:
            del answer["messages"]
        return answer

    def _matches(self, mail: Mail, q: str) -> bool:
        names = self.store.labels_of(mail.owner)
        for term in q.split():
            negate, term = term.startswith("-"), term.lstrip("-")
            kind, _, value = term.partition(":")
            if kind == "in":
                hit = value.upper() in mail.labels
            elif kind == "label":
                hit = any(names.get(label, "").replace("/", "-").replace(" ", "-").lower() == value.lower() for label in mail.labels)
            elif kind == "rfc822msgid":
                hit = mail.message_id.strip("<>") == value.strip("<>")
            else:
                raise ApiError(400, "invalidArgument", f"rmdaemon's fake Gmail does not search {kind}:")
            if hit == negate:
                return False
        return True

    def get(self, user: str, ident: str) -> dict[str, Any]:
        mail = self._mail(user, ident)
        answer = {"id": mail.id, "threadId": mail.id, "labelIds": sorted(mail.labels), "historyId": str(mail.history_id),
                  "internalDate": str(mail.internal_date), "sizeEstimate": len(mail.raw)}
        if self.query.get("format", "full") == "raw":
            answer["raw"] = base64.urlsafe_b64encode(mail.raw).decode()
        return answer

    def modify(self, user: str, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        mail = self._mail(user, ident)
        known = self.store.labels_of(mail.owner)
        for label in body.get("addLabelIds") or []:
            if label not in known:
                raise ApiError(400, "invalidArgument", f"Invalid label: {label}")
            mail.labels.add(label)
        mail.labels -= set(body.get("removeLabelIds") or [])
        mail.history_id = self.store.next_id()
        self.store.history.append((mail.history_id, mail.owner, "labelsChanged", mail.id))
        return {"id": mail.id, "threadId": mail.id, "labelIds": sorted(mail.labels)}

    def _mail(self, user: str, ident: str) -> Mail:
        user = self.mailbox(user)
        mail = self.store.mails.get(ident)
        if mail is None or mail.owner != user:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return mail

    def history(self, user: str) -> dict[str, Any]:
        user = self.mailbox(user)
        start = int(self.query.get("startHistoryId") or 0)
        if start < self.store.history_floor:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        label = self.query.get("labelId")
        records = []
        for history_id, owner, kind, ident in self.store.history:
            mail = self.store.mails[ident]
            if owner != user or history_id <= start or kind != "messageAdded" or (label and label not in mail.labels):
                continue
            records.append({"id": str(history_id), "messages": [{"id": ident, "threadId": ident}],
                            "messagesAdded": [{"message": {"id": ident, "threadId": ident, "labelIds": sorted(mail.labels)}}]})
        return {"history": records, "historyId": str(self._latest(user))} if records else {"historyId": str(self._latest(user))}

    def _latest(self, user: str) -> int:
        return max([h for h, owner, _, _ in self.store.history if owner == user] + [self.store.history_floor])

    def profile(self, user: str) -> dict[str, Any]:
        user = self.mailbox(user)
        return {"emailAddress": user, "messagesTotal": sum(1 for m in self.store.mails.values() if m.owner == user),
                "historyId": str(self._latest(user))}

    def labels(self, user: str) -> dict[str, Any]:
        user = self.mailbox(user)
        return {"labels": [{"id": i, "name": n, "type": "system" if i == n else "user"} for i, n in self.store.labels_of(user).items()]}

    def create_label(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        user = self.mailbox(user)
        names = self.store.labels_of(user)
        name = str(body.get("name", ""))
        if any(n.casefold() == name.casefold() for n in names.values()):
            raise ApiError(409, "alreadyExists", "Label name exists or conflicts")
        ident = f"Label_{self.store.next_id()}"
        names[ident] = name
        return {"id": ident, "name": name, "type": "user"}
