"""What the fake Microsoft 365 tenant remembers: apps, mailboxes, messages, events, delta versions.

Every change to a message bumps a tenant-wide version; a mailbox folder keeps a log of what left it.
That is all a message delta needs: a delta token is the version it was issued at.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FOLDERS = ("inbox", "drafts", "sentitems", "deleteditems", "outbox", "archive", "junkemail")


class GraphFault(Exception):
    """A Graph error response: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class App:
    """An app registration, and what Exchange lets it do.

    ``roles`` are Entra application permissions an admin consented to (tenant-wide);
    ``rbac`` are Exchange RBAC for Applications assignments: role → mailboxes in its scope.
    """

    client_id: str
    tenant_id: str
    secrets: set[str] = field(default_factory=set)
    certificates: list[Any] = field(default_factory=list)  # cryptography x509 certificates
    roles: set[str] = field(default_factory=set)
    rbac: dict[str, set[str]] = field(default_factory=dict)

    def may(self, role: str, mailbox: str) -> bool:
        if role in self.roles:
            return True
        return any(mailbox in scope for name, scope in self.rbac.items() if _covers(name, role))

    @property
    def has_any_permission(self) -> bool:
        return bool(self.roles) or any(self.rbac.values())


def _covers(held: str, wanted: str) -> bool:
    """Calendars.ReadWrite covers Calendars.Read; Mail.ReadWrite covers Mail.Read."""
    return held == wanted or (held.endswith(".ReadWrite") and wanted == held.replace(".ReadWrite", ".Read"))


@dataclass
class Message:
    id: str
    mailbox: str
    folder: str
    mime: bytes
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    message_id: str
    received: datetime
    version: int
    is_draft: bool = False
    is_read: bool = False
    categories: list[str] = field(default_factory=list)
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)  # casefolded id → (id, value)
    kind: str = "message"  # message | eventMessageRequest | eventMessageResponse | eventMessage (cancel)


@dataclass
class Event:
    id: str
    mailbox: str
    fields: dict[str, Any]  # what the client set (subject, start, end, recurrence, attendees ...)
    uid: str  # the iCalendar UID attendees see
    ical_uid: str  # Graph's iCalUId: the GOID in hex
    organizer: str
    is_organizer: bool
    created: datetime
    sequence: int = 0
    folder: str = "calendar"
    transaction_id: str | None = None
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)  # original starts (UTC) of cancelled occurrences
    moved: dict[datetime, tuple[datetime, datetime]] = field(default_factory=dict)  # original → (start, end)
    responses: dict[str, str] = field(default_factory=dict)  # attendee → accepted | declined | tentativelyAccepted
    my_response: str = "none"  # attendee copies: their own answer
    change: int = 1


@dataclass(frozen=True)
class Busy:
    start: datetime
    end: datetime
    status: str = "busy"


@dataclass(frozen=True)
class Hours:
    """A mailbox's working hours as getSchedule reports them: one window on the listed days, in a
    zone named the way the mailbox's settings name it (Windows names, as Outlook writes them)."""

    zone: str = "UTC"
    start: str = "08:00:00.0000000"
    end: str = "17:00:00.0000000"
    days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")

    def json(self) -> dict[str, Any]:
        return {"daysOfWeek": list(self.days), "startTime": self.start, "endTime": self.end, "timeZone": {"name": self.zone}}


@dataclass(frozen=True)
class Outbound:
    """One message that left a mailbox (also to addresses the tenant does not host)."""

    sender: str
    recipients: tuple[str, ...]
    kind: str
    subject: str
    mime: bytes


class Store:
    """All tenant state behind one lock; handlers run one at a time, like a single mailbox server."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.apps: dict[str, App] = {}
        self.tenants: set[str] = set()
        self.mailboxes: dict[str, str] = {}  # address → display name
        self.messages: dict[str, Message] = {}
        self.events: dict[str, Event] = {}
        self.busy: dict[str, list[Busy]] = {}
        self.working_hours: dict[str, Hours] = {}  # unset: Hours() (08:00-17:00 UTC, Monday to Friday)
        self.outbound: list[Outbound] = []
        self.left: dict[tuple[str, str], list[tuple[str, int]]] = {}  # (mailbox, folder) → [(id, version)]
        self.version = 0
        self.delta_epoch = 0
        self._ids = itertools.count(1)

    def new_id(self, prefix: str = "AAkALgAAAAAAHYQDEapmEc2byACqAC") -> str:
        return f"{prefix}-{next(self._ids):010d}AAA="

    def bump(self) -> int:
        self.version += 1
        return self.version

    def mailbox(self, address: str) -> str:
        key = address.casefold()
        if key not in self.mailboxes:
            raise GraphFault(404, "ErrorInvalidUser", f"The requested user '{address}' is invalid.")
        return key

    # -- messages ---------------------------------------------------------------------------
    def add_message(self, message: Message) -> Message:
        self.messages[message.id] = message
        return message

    def message(self, mailbox: str, message_id: str) -> Message:
        found = self.messages.get(message_id)
        if found is None or found.mailbox != mailbox or found.folder == "gone":
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def in_folder(self, mailbox: str, folder: str) -> list[Message]:
        return sorted((m for m in self.messages.values() if m.mailbox == mailbox and m.folder == folder),
                      key=lambda m: (m.received, m.id))

    def move(self, message: Message, folder: str, *, new_id: bool = False) -> Message:
        """Out of its folder (logged for delta) into another; sending gives the copy a new id."""
        self.left.setdefault((message.mailbox, message.folder), []).append((message.id, self.bump()))
        if new_id:
            del self.messages[message.id]
            message.id = self.new_id()
            self.messages[message.id] = message
        message.folder, message.version = folder, self.bump()
        return message

    # -- events -----------------------------------------------------------------------------
    def event(self, mailbox: str, event_id: str) -> Event:
        found = self.events.get(event_id)
        if found is None or found.mailbox != mailbox or found.folder != "calendar":
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def calendar(self, mailbox: str) -> Iterator[Event]:
        return (e for e in list(self.events.values()) if e.mailbox == mailbox and e.folder == "calendar")

    def by_uid(self, mailbox: str, uid: str) -> Event | None:
        return next((e for e in self.calendar(mailbox) if e.uid == uid), None)
