"""The tests' side door into the fake Exchange: set up people, inject mail, script busy time,
answer invitations as an attendee would, and read what was created and sent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lxml import etree

from tests.servers.ews import meetings, mime
from tests.servers.ews.recurrence import Occurrence, item_occurrences
from tests.servers.ews.shape import put
from tests.servers.ews.soap import sub, t
from tests.servers.ews.store import Account, Busy, Hours, Item, Sent, Store


class Control:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- people -----------------------------------------------------------------------------
    def add_account(
        self, username: str, password: str, mailbox: str, *, impersonation: bool = False, delegate_for: Iterable[str] = ()
    ) -> None:
        """A login. ``impersonation`` is the ApplicationImpersonation role; ``delegate_for`` full access."""
        with self.store.lock:
            account = Account(username, password, mailbox.casefold(), impersonation, frozenset(a.casefold() for a in delegate_for))
            self.store.add_account(account)

    def allow_send_as(self, username: str, allowed: bool) -> None:
        """Add-ADPermission -ExtendedRights "Send As" (or its removal) for the mailboxes the account has
        full access to: without it, reading them works but every message sent as them is refused."""
        with self.store.lock:
            self.store.accounts[username].send_as = allowed

    def add_mailbox(self, address: str, name: str = "", hours: Hours | None = None) -> None:
        with self.store.lock:
            self.store.add_mailbox(address, name)
            if hours is not None:
                self.store.working_hours[address.casefold()] = hours

    def set_working_hours(self, address: str, hours: Hours) -> None:
        """What the person set as their work time in Outlook (GetUserAvailability reports it)."""
        with self.store.lock:
            self.store.working_hours[address.casefold()] = hours

    # -- incoming and scripted state --------------------------------------------------------
    def inject_message(self, mailbox: str, raw: bytes, folder: str = "inbox") -> str:
        """Deliver raw RFC 5322 bytes into a mailbox as if from outside; returns the item id."""
        headers = mime.read(raw)
        fields = etree.Element(t("Message"))
        sub(fields, t("Subject"), headers.subject)
        sender = sub(sub(fields, t("From")), t("Mailbox"))
        sub(sender, t("EmailAddress"), headers.sender)
        sub(fields, t("InternetMessageId"), headers.message_id)
        sub(fields, t("IsRead"), "false")
        with self.store.lock:
            return self.store.add_item(mailbox.casefold(), folder, fields, mime=raw).item_id

    def script_busy(self, address: str, start: datetime, end: datetime, busy_type: str = "Busy") -> None:
        """Busy time that no calendar item explains (another system's meetings, a scheduled OOF)."""
        with self.store.lock:
            self.store.busy.setdefault(address.casefold(), []).append(Busy(start, end, busy_type))

    def refuse_mail_to(self, address: str, code: str = "ErrorInvalidRecipients",
                       text: str = "At least one recipient isn't valid.") -> None:
        """Exchange refuses to send any message to ``address`` (an address it cannot accept, a
        recipient a policy blocks): that message's response message carries ``code``, the other
        messages of the same CreateItem go out as usual."""
        with self.store.lock:
            self.store.refusals[address.casefold()] = (code, text)

    def respond(self, attendee: str, uid: str, response: str, occurrence_start: datetime | None = None) -> None:
        """The attendee clicks Accept / Decline / Tentative (for the series, or one occurrence)."""
        with self.store.lock:
            occurrence = None
            if occurrence_start is not None:
                own = self.store.by_uid(attendee.casefold(), uid)
                occurrence = meetings.occurrence_at(own, occurrence_start) if own else None
                if occurrence is None:
                    raise KeyError(f"{attendee} has no occurrence of {uid} at {occurrence_start}")
            meetings.respond(self.store, attendee.casefold(), uid, response, occurrence)

    # -- reading ----------------------------------------------------------------------------
    def items(self, mailbox: str, folder: str, kind: str | None = None) -> list[Item]:
        with self.store.lock:
            found = list(self.store.in_folder(mailbox.casefold(), folder))
        return [i for i in found if kind is None or i.kind == kind]

    def calendar(self, mailbox: str) -> list[Item]:
        return self.items(mailbox, "calendar", "CalendarItem")

    def sent(self, sender: str | None = None) -> list[Sent]:
        """Everything that left any mailbox (or one sender's), including mail to outside addresses."""
        with self.store.lock:
            return [s for s in self.store.outbound if sender is None or s.sender == sender.casefold()]

    def live_starts(self, item: Item) -> list[datetime]:
        """Starts of the occurrences still on the calendar (deleted ones left out, moved ones at their new time)."""
        return sorted(o.start for o in item_occurrences(item) if o.index not in item.deleted_occurrences)

    @staticmethod
    def occurrences(item: Item) -> list[Occurrence]:
        """Every occurrence as it is now (moved ones at their new time, deleted ones included)."""
        return item_occurrences(item)

    @staticmethod
    def body(item: Item, index: int | None = None) -> str:
        """The text a person sees opening the item, or one of its occurrences (its own body, if given one)."""
        node = item.occurrence_bodies.get(index) if index is not None else None
        node = node if node is not None else item.get("Body")
        return "" if node is None else node.text or ""

    @staticmethod
    def extended(item: Item, name: str) -> list[str]:
        """The value(s) of a named extended property (any property set), as stored."""
        for prop in item.fields.iterfind(t("ExtendedProperty")):
            uri = prop.find(t("ExtendedFieldURI"))
            if uri is not None and uri.get("PropertyName") == name:
                return [v.text or "" for v in prop.iter(t("Value"))]
        return []

    @staticmethod
    def categories(item: Item) -> list[str]:
        return [s.text or "" for s in item.fields.iterfind(f"{t('Categories')}/{t('String')}")]

    @staticmethod
    def mark_read(item: Item) -> None:
        put(item.fields, "IsRead", "true")
