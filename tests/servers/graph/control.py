"""The tests' side door into the fake tenant: tenants, apps and their rights, mailboxes, incoming
mail, busy time, an attendee's answer; and reading what was booked, sent and delivered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tests.servers.graph import meetings
from tests.servers.graph.identity import Identity
from tests.servers.graph.recurrence import occurrences
from tests.servers.graph.store import App, Busy, Event, Hours, Message, Outbound, Store

ALL_ROLES = ("Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send")


class Control:
    def __init__(self, store: Store, identity: Identity) -> None:
        self.store, self.identity = store, identity

    # -- directory --------------------------------------------------------------------------
    def add_app(self, client_id: str, tenant_id: str, *, secret: str | None = None, certificate: Any = None,
                roles: Iterable[str] = (), rbac: dict[str, Iterable[str]] | None = None) -> App:
        """An app registration; ``rbac`` maps roles to the mailboxes of their management scope."""
        with self.store.lock:
            self.store.tenants.add(tenant_id)
            app = App(client_id, tenant_id, {secret} if secret else set(), [certificate] if certificate is not None else [],
                      set(roles), {r: {m.casefold() for m in boxes} for r, boxes in (rbac or {}).items()})
            self.store.apps[client_id] = app
            return app

    def scope(self, client_id: str, mailboxes: Iterable[str], roles: Iterable[str] = ALL_ROLES) -> None:
        """New-ManagementRoleAssignment -App … -CustomResourceScope …: these roles, these mailboxes."""
        with self.store.lock:
            app = self.store.apps[client_id]
            app.rbac = {role: {m.casefold() for m in mailboxes} for role in roles}

    def add_mailbox(self, address: str, name: str = "") -> None:
        with self.store.lock:
            self.store.mailboxes.setdefault(address.casefold(), name or address.split("@")[0].title())

    # -- incoming and scripted state --------------------------------------------------------
    def deliver(self, mailbox: str, raw: bytes) -> str:
        """Raw RFC 5322 bytes into a mailbox's inbox, as from outside; returns the message id."""
        with self.store.lock:
            return meetings.file_message(self.store, mailbox.casefold(), "inbox", raw).id

    def script_busy(self, address: str, start: datetime, end: datetime, status: str = "busy") -> None:
        with self.store.lock:
            self.store.busy.setdefault(address.casefold(), []).append(Busy(start, end, status))

    def set_working_hours(self, address: str, hours: Hours) -> None:
        """What the person set as their work time in Outlook (getSchedule reports it)."""
        with self.store.lock:
            self.store.working_hours[address.casefold()] = hours

    def respond(self, attendee: str, uid: str, answer: str, occurrence_start: datetime | None = None) -> None:
        with self.store.lock:
            meetings.respond(self.store, attendee.casefold(), uid, answer, occurrence_start)

    def delete_message(self, message_id: str) -> None:
        """A person deletes a message (it leaves its folder: delta reports it removed)."""
        with self.store.lock:
            self.store.move(self.store.messages[message_id], "deleteditems")

    def expire_tokens(self) -> None:
        with self.store.lock:
            self.identity.expire_all()

    def expire_delta_links(self) -> None:
        """Exchange forgot every sync state: old delta links now answer 410 SyncStateNotFound."""
        with self.store.lock:
            self.store.delta_epoch += 1

    # -- reading ----------------------------------------------------------------------------
    def messages(self, mailbox: str, folder: str = "inbox") -> list[Message]:
        with self.store.lock:
            return self.store.in_folder(mailbox.casefold(), folder)

    def received(self, address: str) -> list[bytes]:
        return [m.mime for m in self.messages(address, "inbox")]

    def events(self, mailbox: str) -> list[Event]:
        with self.store.lock:
            return sorted(self.store.calendar(mailbox.casefold()), key=lambda e: (e.created, e.id))

    def sent(self, sender: str | None = None) -> list[Outbound]:
        with self.store.lock:
            return [o for o in self.store.outbound if sender is None or o.sender == sender.casefold()]

    @staticmethod
    def live_starts(event: Event) -> list[datetime]:
        return [o.start for o in occurrences(event)]

    @staticmethod
    def extended(item: Event | Message, name: str) -> str | None:
        """A named extended property's value, whatever its property set."""
        for prop_id, value in item.extended.values():
            if prop_id.split()[-1] == name:
                return value
        return None
