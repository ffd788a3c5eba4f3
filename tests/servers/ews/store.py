"""What the fake Exchange remembers: accounts, mailboxes, folders and items.

Items keep their client-settable fields as the very XML element the client sent (``t:CalendarItem``,
``t:Message``...), so whatever exchangelib sets comes back unchanged; the server-managed fields
(ids, times, response state) live beside it on the ``Item``.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lxml import etree

from tests.servers.ews.soap import EwsError, t

FOLDERS = (
    "root", "msgfolderroot", "inbox", "calendar", "sentitems", "deleteditems", "drafts", "outbox",
    "junkemail", "contacts", "tasks", "notes", "journal",
)  # fmt: skip
FOLDER_CLASS = {"calendar": "IPF.Appointment", "contacts": "IPF.Contact", "tasks": "IPF.Task", "notes": "IPF.StickyNote"}


@dataclass
class Account:
    username: str
    password: str
    mailbox: str  # the account's own address, lower-cased
    impersonation: bool = False  # holds the ApplicationImpersonation role
    delegate_for: frozenset[str] = frozenset()  # mailboxes it has full access to
    send_as: bool = True  # may send as those mailboxes (Send As; Full Access alone does not grant it)


@dataclass
class Folder:
    folder_id: str
    mailbox: str
    name: str  # distinguished name

    @property
    def folder_class(self) -> str:
        return FOLDER_CLASS.get(self.name, "IPF.Note")


@dataclass
class Item:
    item_id: str
    mailbox: str
    folder: str  # distinguished folder name
    fields: etree._Element  # t:CalendarItem / t:Message / t:MeetingRequest ...
    created: datetime
    change: int = 1
    mime: bytes | None = None
    deleted_occurrences: set[int] = field(default_factory=set)
    modified_occurrences: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)  # index → new (start, end)
    occurrence_bodies: dict[int, etree._Element] = field(default_factory=dict)  # index → t:Body set on that occurrence
    responses: dict[str, str] = field(default_factory=dict)  # attendee → Accept/Decline/Tentative (organiser side)
    occurrence_responses: dict[int, dict[str, str]] = field(default_factory=dict)  # index → attendee → answer to it alone
    sent: bool = False  # went out through CreateItem/SendItem

    @property
    def is_read(self) -> bool:
        return self.text("IsRead", "false") in ("true", "1")

    @property
    def kind(self) -> str:
        return etree.QName(self.fields).localname

    @property
    def change_key(self) -> str:
        return f"CK{self.change}"

    def get(self, name: str) -> etree._Element | None:
        return self.fields.find(t(name))

    def text(self, name: str, default: str = "") -> str:
        node = self.get(name)
        return default if node is None or node.text is None else node.text

    def set_text(self, name: str, value: str) -> None:
        node = self.get(name)
        if node is None:
            node = etree.SubElement(self.fields, t(name))
        node.text = value


@dataclass(frozen=True)
class Sent:
    """One message that left a mailbox (also to addresses this server does not host)."""

    sender: str
    recipients: tuple[str, ...]
    kind: str  # Message, MeetingRequest, MeetingResponse, MeetingCancellation
    subject: str
    mime: bytes


@dataclass(frozen=True)
class Hours:
    """A mailbox's working hours as Exchange reports them (minutes from local midnight).

    ``periods`` (days, start, end), when given, stands for the one window: Outlook writes several
    WorkingPeriods when the hours differ from day to day."""

    timezone: str = "UTC"  # IANA
    start_minutes: int = 8 * 60
    end_minutes: int = 17 * 60
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    periods: tuple[tuple[tuple[int, ...], int, int], ...] = ()

    def working_periods(self) -> tuple[tuple[tuple[int, ...], int, int], ...]:
        return self.periods or ((self.days, self.start_minutes, self.end_minutes),)


@dataclass
class Busy:
    start: datetime
    end: datetime
    busy_type: str = "Busy"


class Store:
    """All state, behind one lock the HTTP threads share (requests are handled one at a time)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.accounts: dict[str, Account] = {}
        self.mailboxes: dict[str, str] = {}  # address → display name
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self.busy: dict[str, list[Busy]] = {}
        self.refusals: dict[str, tuple[str, str]] = {}  # recipient → (ResponseCode, MessageText) Exchange answers
        self.outbound: list[Sent] = []
        self.working_hours: dict[str, Hours] = {}
        self.default_working_hours = Hours()
        self._ids = itertools.count(1)

    def add_mailbox(self, address: str, name: str = "") -> None:
        address = address.casefold()
        if address in self.mailboxes:
            return
        self.mailboxes[address] = name or address.split("@")[0].title()
        for folder in FOLDERS:
            fid = self.new_id("F")
            self.folders[fid] = Folder(fid, address, folder)

    def add_account(self, account: Account) -> None:
        self.add_mailbox(account.mailbox)
        self.accounts[account.username] = account

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}AAMkAD"

    def folder(self, mailbox: str, name: str) -> Folder:
        for folder in self.folders.values():
            if folder.mailbox == mailbox and folder.name == name:
                return folder
        raise EwsError("ErrorFolderNotFound", f"no folder {name} in {mailbox}")

    def folder_by_id(self, folder_id: str) -> Folder:
        try:
            return self.folders[folder_id]
        except KeyError:
            raise EwsError("ErrorFolderNotFound", f"folder id {folder_id} not found") from None

    def item(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.") from None

    def add_item(self, mailbox: str, folder: str, fields: etree._Element, **extra: object) -> Item:
        item = Item(self.new_id("I"), mailbox, folder, copy.deepcopy(fields), self.clock(), **extra)  # type: ignore[arg-type]
        self.items[item.item_id] = item
        return item

    def by_uid(self, mailbox: str, uid: str) -> Item | None:
        """The calendar item with this UID in a mailbox's calendar (attendee copies are found this way)."""
        for item in self.in_folder(mailbox, "calendar"):
            if item.kind == "CalendarItem" and item.text("UID") == uid:
                return item
        return None

    def in_folder(self, mailbox: str, folder: str) -> Iterator[Item]:
        return (i for i in list(self.items.values()) if i.mailbox == mailbox and i.folder == folder)
