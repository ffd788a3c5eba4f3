"""The fake Workspace's data: service accounts and their delegation, users, calendars, Gmail
mailboxes with labels and history, and what left the domain."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

CALENDAR = "https://www.googleapis.com/auth/calendar"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
FREEBUSY = "https://www.googleapis.com/auth/calendar.events.freebusy"
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SYSTEM_LABELS = ("INBOX", "SENT", "UNREAD", "DRAFT", "TRASH", "SPAM", "IMPORTANT")


class ApiError(Exception):
    """Google's error shape: ``{"error": {"code", "message", "errors": [{"domain", "reason"}], "status"}}``."""

    def __init__(self, code: int, reason: str, message: str, status: str = "", domain: str = "global",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain
        self.status = status or {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                                 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 410: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                                 500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status,
                          "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}]}}


@dataclass
class ServiceAccount:
    """A key pair in a GCP project; ``delegated`` are the scopes the Admin console grants its client id."""

    email: str
    client_id: str
    key_id: str
    public_key: Any  # cryptography RSA public key
    delegated: set[str] = field(default_factory=set)
    apis: set[str] = field(default_factory=lambda: {"calendar", "gmail"})  # APIs enabled in its project


@dataclass
class Event:
    """A series or single event on one calendar; ``fields`` is the JSON resource as stored; ``instances``
    holds per-occurrence overrides by original start (UTC), ``{"status": "cancelled"}`` for skipped ones."""

    id: str
    calendar: str
    fields: dict[str, Any]
    instances: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    updated: int = 0  # the store's change counter when last changed (syncToken)


@dataclass
class Mail:
    id: str
    owner: str
    raw: bytes
    labels: set[str]
    internal_date: int  # ms since epoch
    history_id: int
    message_id: str = ""


@dataclass
class Outbound:
    sender: str
    to: tuple[str, ...]
    kind: str  # message | invitation
    raw: bytes


@dataclass
class Store:
    clock: Callable[[], datetime] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # by email
    users: dict[str, str] = field(default_factory=dict)  # address → display name
    events: dict[str, Event] = field(default_factory=dict)  # by id (series and single events)
    busy: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    mails: dict[str, Mail] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # user → label id → name
    history: list[tuple[int, str, str, str]] = field(default_factory=list)  # (history id, user, kind, message id)
    history_floor: int = 0
    meet_pending: bool = False  # inserts answer before their Google Meet link exists (createRequest pending)
    sync_floor: int = 0  # calendar syncTokens older than this answer 410 fullSyncRequired  # history older than this is forgotten: startHistoryId below it answers 404
    outbound: list[Outbound] = field(default_factory=list)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1000))
    change: int = 1

    def now(self) -> datetime:
        return (self.clock or (lambda: datetime.now(timezone.utc)))()

    def next_id(self) -> int:
        return next(self.counter)

    def bump(self) -> int:
        self.change += 1
        return self.change

    def user(self, address: str) -> str:
        address = address.casefold()
        if address not in self.users:
            raise ApiError(404, "notFound", "Not Found")
        return address

    def by_ical_uid(self, calendar: str, uid: str) -> Event | None:
        return next((e for e in self.events.values() if e.calendar == calendar and e.fields.get("iCalUID") == uid), None)

    def labels_of(self, user: str) -> dict[str, str]:
        return self.labels.setdefault(user, {name: name for name in SYSTEM_LABELS})

    def file(self, user: str, raw: bytes, labels: set[str], message_id: str) -> Mail:
        """A message into ``user``'s mailbox, with a history record of its arrival."""
        ident = f"{self.next_id():x}a{len(self.mails):04x}"
        history = self.next_id()
        mail = Mail(ident, user, raw, set(labels), int(self.now().timestamp() * 1000) + len(self.mails), history, message_id)
        self.mails[ident] = mail
        self.history.append((history, user, "messageAdded", ident))
        return mail
