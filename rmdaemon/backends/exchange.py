"""The Exchange backend (EWS through exchangelib), for on-premises Exchange Server.

Every item we create carries our own extended property — the series uid or the email's
idempotency key — and we look for it before creating anything, so a crash between "Exchange
did it" and "the store recorded it" never books or sends twice. A second property holds the
sequence last applied, which makes ``publish`` idempotent on (uid, sequence).

The interface stays free of EWS types (see ``base.Backend``) so a Microsoft Graph backend can sit
beside this one: EWS in Exchange Online is blocked by default from 1 Oct 2026 and switched off on
1 Apr 2027; Exchange Server keeps it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from exchangelib import Attendee, Body, CalendarItem, EWSDateTime, EWSTimeZone, HTMLBody, Mailbox, Message, Q
from exchangelib import errors as ews_errors
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE

from rmdaemon.backends.exchange_connect import forget, online_problem, open_account, translate
from rmdaemon.backends.exchange_recurrence import instance_index, to_recurrence
from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person

PROPERTY_SET = "6f0b1f8e-3c56-4a3e-9d3a-7a2c5e1b9d40"  # rmdaemon's own named-property namespace
MAX_MAILBOXES = 100  # EWS GetUserAvailability limit
MAX_WINDOW = timedelta(days=42)  # EWS free/busy window limit
LOOKUP_CHUNK = 100  # uids per FindItem restriction (one OR of IsEqualTo)
WATERMARK_MARGIN = timedelta(hours=1)  # re-scan a little before the watermark: late deliveries


class RmKey(ExtendedProperty):
    """The pair/series uid on calendar items, the idempotency key on messages."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-key"
    property_type = "String"


class RmSequence(ExtendedProperty):
    """The Meeting.sequence last applied to a calendar item."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-sequence"
    property_type = "Integer"


def register_properties() -> None:
    """Teach exchangelib our two properties (class-level registry, so done once, on first use)."""
    for cls in (CalendarItem, Message):
        for name, prop in (("rm_key", RmKey), ("rm_sequence", RmSequence)):
            if name not in {f.name for f in cls.FIELDS}:
                cls.register(name, prop)


@dataclass(frozen=True)
class ExchangeSettings:
    service_endpoint: str  # https://mail.example.com/EWS/Exchange.asmx
    mailbox: str  # the programme mailbox that organises meetings and sends mail ([program] organizer)
    auth: str = "ntlm"  # basic | ntlm | oauth2 (client credentials)
    username: str = ""  # DOMAIN\user or UPN for basic/ntlm
    password_env: str = ""  # env var holding the password (basic/ntlm)
    client_secret_env: str = ""  # env var holding the client secret (oauth2)
    tenant_id: str = ""
    client_id: str = ""
    access: str = "delegate"  # delegate (Full Access to the mailbox) | impersonation
    version: str = "Exchange2016"  # Exchange2013 | Exchange2013_SP1 | Exchange2016 | Exchange2019
    max_connections: int = 4
    retry_budget_seconds: int = 300  # longest single back-off we wait for before giving up until next tick
    timezone: str = "UTC"  # zone for free/busy requests ([program] timezone)
    processed_category: str = "rmdaemon: processed"
    state_path: Path | None = None  # small JSON file for the inbox watermark; None keeps it in memory


class ExchangeBackend:
    name = "exchange"

    def __init__(self, settings: ExchangeSettings, *, secret: str) -> None:
        register_properties()
        self.settings = settings
        self._secret = secret
        self.account = open_account(settings, secret)
        self._sent_keys: set[str] | None = None
        self._fetched: dict[str, tuple[str, list[str]]] = {}  # ref → (changekey, categories), for mark_processed

    # -- mail -------------------------------------------------------------------------------
    def send(self, message: Outgoing) -> None:
        if message.key in self._keys_in_sent_items():
            return
        item = Message(account=self.account, folder=self.account.sent, mime_content=message.raw, rm_key=message.key)
        try:
            item.send_and_save()
        except Exception as exc:  # exchangelib raises many types; all become BackendError
            raise translate(exc, f"sending {message.kind or 'mail'} {message.key}") from exc
        self._sent_keys.add(message.key)  # type: ignore[union-attr]

    def _keys_in_sent_items(self) -> set[str]:
        """Keys of everything we sent, read once (paged) — one FindItem per send would be quadratic."""
        if self._sent_keys is None:
            try:
                query = self.account.sent.filter(rm_key__exists=True).values_list("rm_key", flat=True)
                query.page_size = 1000
                self._sent_keys = set(query)
            except Exception as exc:
                raise translate(exc, "reading Sent Items") from exc
        return self._sent_keys

    # -- calendar ---------------------------------------------------------------------------
    def publish(self, meeting: Meeting) -> None:
        error = self.publish_many([meeting])[meeting.uid]
        if error is not None:
            raise error

    def publish_many(self, meetings: list[Meeting]) -> dict[str, Exception | None]:
        """Book, update or cancel many series in few requests; one failure stays with its uid."""
        results: dict[str, Exception | None] = {m.uid: None for m in meetings}
        try:
            existing = self._find_series([m.uid for m in meetings])
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        new = [m for m in meetings if m.uid not in existing and not m.cancelled]
        changed = [m for m in meetings if m.uid in existing and not m.cancelled and _sequence(existing[m.uid]) < m.sequence]
        gone = [m for m in meetings if m.uid in existing and m.cancelled]
        results.update(self._create(new))
        results.update(self._update(changed, existing))
        results.update(self._cancel(gone, existing))
        return results

    def _find_series(self, uids: Iterable[str]) -> dict[str, CalendarItem]:
        found: dict[str, CalendarItem] = {}
        wanted = list(dict.fromkeys(uids))
        try:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                query = self.account.calendar.filter(rm_key__in=chunk).only("rm_key", "rm_sequence", "subject")
                found.update({item.rm_key: item for item in query})
        except Exception as exc:
            raise translate(exc, "looking up booked series") from exc
        return found

    def _create(self, meetings: list[Meeting]) -> dict[str, Exception | None]:
        if not meetings:
            return {}
        results: dict[str, Exception | None] = {}
        items = []
        for meeting in meetings:
            try:
                items.append((meeting, self._calendar_item(meeting)))
            except BackendError as exc:
                results[meeting.uid] = exc
        try:
            created = self.account.bulk_create(
                folder=self.account.calendar, items=[i for _, i in items], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY
            )
        except Exception as exc:
            error = translate(exc, "booking series")
            return results | {m.uid: error for m, _ in items}
        for (meeting, _), outcome in zip(items, created):
            results[meeting.uid] = translate(outcome, f"booking {meeting.uid}") if isinstance(outcome, Exception) else None
        ok = [(m, o) for (m, _), o in zip(items, created) if not isinstance(o, Exception)]
        for meeting, outcome in ok:
            if meeting.exdates:
                results[meeting.uid] = self._delete_occurrences(meeting, outcome.id, meeting.exdates)
        return results

    def _calendar_item(self, meeting: Meeting, **ids: str) -> CalendarItem:
        plan = meeting.plan
        start = _ews(plan.first_start, plan.tzid)
        return CalendarItem(
            account=self.account,
            folder=self.account.calendar,
            subject=meeting.summary,
            body=_body(meeting),
            start=start,
            end=start + timedelta(minutes=plan.duration_minutes),
            required_attendees=[
                Attendee(mailbox=Mailbox(email_address=p.email, name=p.name), response_type="Unknown") for p in meeting.attendees
            ],
            recurrence=to_recurrence(plan),
            legacy_free_busy_status="Busy",
            sensitivity="Private",
            categories=list(meeting.categories),
            reminder_is_set=True,
            reminder_minutes_before_start=15,
            uid=meeting.uid,
            rm_key=meeting.uid,
            rm_sequence=meeting.sequence,
            **ids,
        )

    def _update(self, meetings: list[Meeting], existing: dict[str, CalendarItem]) -> dict[str, Exception | None]:
        if not meetings:
            return {}
        fields = ["subject", "body", "start", "end", "required_attendees", "recurrence", "categories", "rm_sequence"]
        changes = []
        results: dict[str, Exception | None] = {}
        for meeting in meetings:
            old = existing[meeting.uid]
            try:
                changes.append((meeting, self._calendar_item(meeting, id=old.id, changekey=old.changekey)))
            except BackendError as exc:
                results[meeting.uid] = exc
        try:
            updated = list(self.account.bulk_update(
                items=[(item, fields) for _, item in changes],
                send_meeting_invitations_or_cancellations=SEND_TO_ALL_AND_SAVE_COPY,
            ))  # fmt: skip
        except Exception as exc:
            error = translate(exc, "updating series")
            return results | {m.uid: error for m, _ in changes}
        for (meeting, item), outcome in zip(changes, updated):
            if isinstance(outcome, Exception):
                results[meeting.uid] = translate(outcome, f"updating {meeting.uid}")
            else:
                results[meeting.uid] = self._delete_occurrences(meeting, item.id, meeting.exdates) if meeting.exdates else None
        return results

    def _cancel(self, meetings: list[Meeting], existing: dict[str, CalendarItem]) -> dict[str, Exception | None]:
        if not meetings:
            return {}
        items = [existing[m.uid] for m in meetings]
        try:
            outcomes = self.account.bulk_delete(
                ids=items, send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY, delete_type="MoveToDeletedItems"
            )
        except Exception as exc:
            error = translate(exc, "cancelling series")
            return {m.uid: error for m in meetings}
        return {
            m.uid: translate(o, f"cancelling {m.uid}") if isinstance(o, Exception) else None for m, o in zip(meetings, outcomes)
        }

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        master = self._find_series([meeting.uid]).get(meeting.uid)
        if master is None:
            return  # never booked, or the whole series is gone: nothing to cancel
        error = self._delete_occurrences(meeting, master.id, (start,))
        if error is not None:
            raise error

    def _delete_occurrences(self, meeting: Meeting, master_id: str, starts: Iterable[datetime]) -> BackendError | None:
        """Delete planned occurrences with cancellations; one already gone counts as done."""
        master = CalendarItem(account=self.account, folder=self.account.calendar, id=master_id)
        indexes = [i for i in (instance_index(meeting.plan, s) for s in starts) if i is not None]
        if not indexes:
            return None
        try:
            outcomes = self.account.bulk_delete(
                ids=[master.occurrence(i) for i in indexes], send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY
            )
        except _ALREADY_GONE:
            return None  # exchangelib raises this one even in bulk: the occurrence is already off
        except Exception as exc:
            return translate(exc, f"cancelling occurrences of {meeting.uid}")
        failed = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, _ALREADY_GONE)]
        return translate(failed[0], f"cancelling an occurrence of {meeting.uid}") if failed else None

    # -- free/busy --------------------------------------------------------------------------
    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> dict[str, list[BusyTime]] | None:
        """Busy times from Exchange, ≤100 mailboxes and ≤42 days per request. An address Exchange
        cannot resolve raises a permanent BackendError naming it (callers ask per pair)."""
        addresses = list(dict.fromkeys(p.address for p in people))
        busy: dict[str, list[BusyTime]] = {a: [] for a in addresses}
        problems: list[str] = []
        for window_start, window_end in _windows(start, end):
            for index in range(0, len(addresses), MAX_MAILBOXES):
                chunk = addresses[index : index + MAX_MAILBOXES]
                for address, view in zip(chunk, self._availability(chunk, window_start, window_end)):
                    if isinstance(view, Exception):
                        problems.append(f"{address}: {type(view).__name__}: {view}")
                        continue
                    busy[address].extend(_busy_times(view))
        if problems:
            raise BackendError("free/busy: " + "; ".join(dict.fromkeys(problems)), permanent=True)
        return busy

    def _availability(self, addresses: list[str], start: datetime, end: datetime) -> list:  # type: ignore[type-arg]
        tz = self.settings.timezone
        try:
            return list(self.account.protocol.get_free_busy_info(
                accounts=[(a, "Required", False) for a in addresses],
                start=_ews(start, tz),
                end=_ews(end, tz),
                requested_view="Detailed",
            ))  # fmt: skip
        except Exception as exc:
            raise translate(exc, "reading free/busy") from exc

    # -- inbox ------------------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        """Unprocessed inbox messages (no processed category yet) received after the watermark,
        oldest first, each as its raw MIME."""
        since = self._watermark()
        query = self.account.inbox.filter(~Q(categories__contains=[self.settings.processed_category]))
        if since is not None:
            query = query.filter(datetime_received__gte=_ews(since - WATERMARK_MARGIN, "UTC"))
        try:
            items = list(query.order_by("datetime_received").only("mime_content", "datetime_received", "categories"))
        except Exception as exc:
            raise translate(exc, "reading the inbox") from exc
        done = self.settings.processed_category
        fresh = [i for i in items if i.mime_content and done not in (i.categories or [])]
        self._fetched.update({i.id: (i.changekey, list(i.categories or [])) for i in fresh})
        if fresh:
            self._save_watermark(_plain(min(i.datetime_received for i in fresh)))
        return [Incoming(ref=i.id, raw=bytes(i.mime_content)) for i in fresh]

    def mark_processed(self, ref: str) -> None:
        """Mark read and add our category (keeping the ones a person gave it): one UpdateItem."""
        try:
            changekey, categories = self._fetched.get(ref) or self._current(ref)
            done = self.settings.processed_category
            wanted = categories if done in categories else [*categories, done]
            item = Message(account=self.account, folder=self.account.inbox, id=ref, changekey=changekey,
                           is_read=True, categories=wanted)  # fmt: skip
            item.save(update_fields=["is_read", "categories"])
        except ews_errors.ErrorItemNotFound:
            return  # moved or deleted by a person meanwhile: nothing left to mark
        except Exception as exc:
            raise translate(exc, f"marking inbox item {ref}") from exc
        self._fetched[ref] = (item.changekey, wanted)

    def _current(self, ref: str) -> tuple[str, list[str]]:
        """Changekey and categories of an item this instance did not fetch (after a restart)."""
        (item,) = self.account.fetch(ids=[(ref, None)], only_fields=["categories"])
        if isinstance(item, Exception):
            raise item
        return item.changekey, list(item.categories or [])

    def _watermark(self) -> datetime | None:
        path = self.settings.state_path
        if path is None or not path.exists():
            return getattr(self, "_memory_watermark", None)
        data = json.loads(path.read_text(encoding="utf-8"))
        return datetime.fromisoformat(data["received_since"])

    def _save_watermark(self, moment: datetime) -> None:
        """Everything older than the oldest unprocessed message is processed: start there next time."""
        self._memory_watermark = moment
        path = self.settings.state_path
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"received_since": moment.astimezone(timezone.utc).isoformat()}), encoding="utf-8")
        os.replace(tmp, path)

    # -- health -----------------------------------------------------------------------------
    def check_online(self) -> list[str]:
        """One cheap authenticated request (GetFolder of the mailbox root), failing fast."""
        account = open_account(self.settings, self._secret, fail_fast=True)
        try:
            account.root  # noqa: B018 — reading the property is the request
        except Exception as exc:  # every failure becomes a sentence, never a traceback
            return [online_problem(exc, self.settings)]
        finally:
            forget(account)
        return []

    def close(self) -> None:
        self.account.protocol.close()


_ALREADY_GONE = (ews_errors.ErrorCalendarOccurrenceIsDeletedFromRecurrence, ews_errors.ErrorItemNotFound)


def _ews(moment: datetime, zone: str) -> EWSDateTime:
    """An aware datetime as exchangelib's own type, in ``zone`` (it rejects plain datetimes)."""
    return EWSDateTime.from_datetime(_plain(moment)).astimezone(EWSTimeZone(zone))


def _body(meeting: Meeting) -> HTMLBody | Body:
    """The item body a person sees when opening the meeting: the rendered note, else the description."""
    if meeting.body_html:
        return HTMLBody(meeting.body_html)
    return Body(meeting.body_text or meeting.description)


def _plain(moment: datetime) -> datetime:
    """exchangelib's EWSDateTime → a plain aware UTC datetime for the rest of the code."""
    return datetime.fromtimestamp(moment.timestamp(), timezone.utc)


def _sequence(item: CalendarItem) -> int:
    return int(item.rm_sequence or 0)


def _windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    windows = []
    while start < end:
        windows.append((start, min(end, start + MAX_WINDOW)))
        start += MAX_WINDOW
    return windows


def _busy_times(view) -> list[BusyTime]:  # type: ignore[no-untyped-def]
    return [
        BusyTime(_plain(e.start), _plain(e.end))
        for e in view.calendar_events or []
        if e.busy_type in ("Busy", "Tentative", "OOF")
    ]
