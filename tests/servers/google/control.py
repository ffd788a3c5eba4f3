"""The tests' side door into the fake Workspace: service accounts and their delegation, users,
incoming mail, busy time, an attendee's answer; and reading what was booked, sent and delivered."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.google.calendar import respond
from tests.servers.google.iam import Iam
from tests.servers.google.oauth import OAuth
from tests.servers.google.recurrence import instances
from tests.servers.google.store import CALENDAR_EVENTS, FREEBUSY, GMAIL_MODIFY, Event, Mail, Outbound, ServiceAccount, Store

LEAST = (CALENDAR_EVENTS, FREEBUSY, GMAIL_MODIFY)


class Control:
    def __init__(self, store: Store, oauth: OAuth, iam: Iam) -> None:
        self.store, self.oauth, self.iam = store, oauth, iam

    # -- directory --------------------------------------------------------------------------
    def add_service_account(self, email: str, key_file: Path, token_uri: str, *, delegated: Iterable[str] = LEAST,
                            apis: Iterable[str] = ("calendar", "gmail")) -> ServiceAccount:
        """A service account with a fresh RSA key, its JSON key file written as the Cloud console
        hands it out (``token_uri`` pointing here), delegated ``delegated`` scopes domain-wide."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        client_id = str(100000000000000000000 + len(self.store.accounts))
        key_id = f"{abs(hash(email)):040x}"[:40]
        key_file.write_text(json.dumps({
            "type": "service_account", "project_id": "rm-test", "private_key_id": key_id, "private_key": pem.decode(),
            "client_email": email, "client_id": client_id, "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri, "universe_domain": "googleapis.com"}))
        key_file.chmod(0o600)  # as docs/google.md asks; check --online names a key others can read
        account = ServiceAccount(email, client_id, key_id, key.public_key(), set(delegated), set(apis))
        with self.store.lock:
            self.store.accounts[email] = account
        return account

    def add_keyless_account(self, email: str, *, delegated: Iterable[str] = LEAST) -> ServiceAccount:
        """A service account with no key file: only its Google-managed key, which signs through ``signBlob``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = f"{abs(hash('managed ' + email)):040x}"[:40]
        account = ServiceAccount(email, str(200000000000000000000 + len(self.store.accounts)), key_id, key.public_key(),
                                 set(delegated))
        with self.store.lock:
            self.store.accounts[email] = account
            self.iam.keys[email] = (key_id, key)
        return account

    def federate(self, audience: str, subject_token: str, principal: str) -> None:
        """A workload identity pool provider (``audience``) that trusts ``subject_token`` as ``principal``."""
        with self.store.lock:
            self.iam.providers.setdefault(audience, {})[subject_token] = principal

    def grant_token_creator(self, account: str, principal: str) -> None:
        """roles/iam.serviceAccountTokenCreator for ``principal`` on the service account."""
        with self.store.lock:
            self.iam.creators.setdefault(account, set()).add(principal)

    def add_user(self, address: str, name: str = "") -> None:
        with self.store.lock:
            self.store.users.setdefault(address.casefold(), name or address.split("@")[0].title())

    # -- incoming and scripted state --------------------------------------------------------
    def deliver(self, user: str, raw: bytes) -> str:
        """Raw RFC 5322 bytes into a user's inbox, as from outside; returns the Gmail message id."""
        from email.parser import BytesHeaderParser

        with self.store.lock:
            message_id = str(BytesHeaderParser().parsebytes(raw).get("Message-ID", "")).strip()
            return self.store.file(user.casefold(), raw, {"INBOX", "UNREAD"}, message_id).id

    def script_busy(self, address: str, start: datetime, end: datetime) -> None:
        with self.store.lock:
            self.store.busy.setdefault(address.casefold(), []).append((start, end))

    def respond(self, attendee: str, uid: str, answer: str, original: datetime | None = None, comment: str = "") -> None:
        """``answer``: accepted | declined | tentative, for the series or the occurrence planned at ``original``."""
        with self.store.lock:
            respond(self.store, attendee, uid, answer, original, comment)

    def expire_tokens(self) -> None:
        with self.store.lock:
            self.oauth.expire_all()

    def meet_links_later(self) -> None:
        """Google makes a Meet link asynchronously: from now on an insert answers with its
        createRequest ``pending`` and no entry points; reads afterwards see the link."""
        with self.store.lock:
            self.store.meet_pending = True

    def forget_history(self) -> None:
        """Gmail keeps history for about a week: older startHistoryIds now answer 404."""
        with self.store.lock:
            self.store.history_floor = self.store.next_id()

    def expire_sync_tokens(self) -> None:
        """Google invalidated every calendar syncToken: they now answer 410 fullSyncRequired."""
        with self.store.lock:
            self.store.sync_floor = self.store.bump()

    # -- reading ----------------------------------------------------------------------------
    def mails(self, user: str, label: str = "INBOX") -> list[Mail]:
        with self.store.lock:
            found = [m for m in self.store.mails.values() if m.owner == user.casefold() and label in m.labels]
            return sorted(found, key=lambda m: m.internal_date)

    def received(self, address: str) -> list[bytes]:
        return [m.raw for m in self.mails(address)]

    def label_names(self, mail: Mail) -> set[str]:
        with self.store.lock:
            names = self.store.labels_of(mail.owner)
            return {names.get(label, label) for label in mail.labels}

    def events(self, calendar: str, *, deleted: bool = False) -> list[Event]:
        with self.store.lock:
            return [e for e in self.store.events.values()
                    if e.calendar == calendar.casefold() and (deleted or e.fields.get("status") != "cancelled")]

    def sent(self, sender: str | None = None) -> list[Outbound]:
        with self.store.lock:
            return [o for o in self.store.outbound if sender is None or o.sender == sender.casefold()]

    @staticmethod
    def instances(event: Event) -> list[dict[str, Any]]:
        return [i.resource for i in instances(event)]
