"""The Exchange backend (EWS through exchangelib), for on-premises Exchange Server.

Every item we create carries our own extended property — the series uid or the email's
idempotency key — and we look for it before creating anything, so a crash between "Exchange
did it" and "the store recorded it" never books or sends twice. The calendar side (series, their
skipped and moved sessions) lives in ``exchange_calendar``; mail, inbox and free/busy here.

The interface stays free of EWS types (see ``base.Backend``) so a Microsoft Graph backend can sit
beside this one: EWS in Exchange Online is blocked by default from 1 Oct 2026 and switched off on
1 Apr 2027; Exchange Server keeps it.
"""

from __future__ import annotations

import json
from email.utils import format_datetime, formataddr
from functools import partial
from datetime import datetime, timedelta, timezone

from exchangelib import EWSDateTime, Message, Q
from exchangelib import errors as ews_errors
from exchangelib.items import SEND_AND_SAVE_COPY
from exchangelib.properties import FreeBusyViewOptions, MailboxData, TimeWindow, TimeZone
from exchangelib.services import GetUserAvailability

from rmdaemon.atomic import atomic_write
from rmdaemon.backends.base import (DEFAULT_MAX_BYTES, Backend, Capability, FreeBusy, Note, NoteOutcomes, Outcomes,
                                    summary_head, too_large, windows)
from rmdaemon.backends.exchange_calendar import SeriesCalendar, ews_time, plain, register_properties
from rmdaemon.backends.exchange_connect import forget, online_problem, open_account, translate
from rmdaemon.backends.exchange_hours import Collected, ews_hours
from rmdaemon.config import ExchangeBackendSettings
from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person

MAX_MAILBOXES = 100  # EWS GetUserAvailability limit
MAX_WINDOW = timedelta(days=42)  # EWS free/busy window limit
SEND_CHUNK = 100  # Messages per CreateItem: exchangelib's default chunk, and what the series use
WATERMARK_MARGIN = timedelta(hours=1)  # re-scan a little before the watermark: late deliveries
# What FindItem reads of each inbox item before any body (plain fields: a Mailbox such as From would cost a GetItem).
LIST_FIELDS = ("size", "datetime_received", "categories")
HEAD_FIELDS = ("subject", "author", "message_id")  # what an oversized message's quarantine entry shows


class ExchangeBackend(Backend):
    name = "exchange"
    capabilities = frozenset({Capability.FREE_BUSY, Capability.WORKING_HOURS, Capability.OCCURRENCE_ANSWERS,
                              Capability.ANNOTATE})

    def __init__(self, settings: ExchangeBackendSettings, *, secret: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        register_properties()
        self.settings, self.max_bytes = settings, max_bytes
        self._secret = secret
        self.account = open_account(settings, secret)
        self.calendar = SeriesCalendar(self.account)
        self._sent_keys: set[str] | None = None  # keys in Sent Items, read once, then kept current
        self._unsure: set[str] = set()  # keys of requests that failed whole: maybe sent, look before resending
        self._fetched: dict[str, tuple[str, list[str]]] = {}  # ref → (changekey, categories), for mark_processed
        self._zone = None  # the server's definition of [program] timezone, fetched on first free/busy

    # -- mail -------------------------------------------------------------------------------
    def send_many(self, messages: list[Outgoing]) -> Outcomes:
        """Many emails in one CreateItem per 100 (SendAndSaveCopy: each leaves its copy, tagged with
        its key, in Sent Items); keys already there are not sent again. A refusal stays with its
        message. A request that fails as a whole (throttled beyond the retry budget, an outage)
        fails its messages and all later ones temporarily, and no further request is sent: Exchange
        asked us to wait. It may have sent some of that request before failing, so those are looked
        up in Sent Items before they are sent again."""
        if not messages:
            return {}
        try:
            done = self._keys_in_sent_items() | self._gone_of_unsure(messages)
        except BackendError as exc:
            return {m.key: exc for m in messages}
        results: Outcomes = {m.key: None for m in messages}
        todo = list({m.key: m for m in messages if m.key not in done}.values())
        for start in range(0, len(todo), SEND_CHUNK):
            try:
                results.update(self._send_chunk(todo[start : start + SEND_CHUNK]))
            except BackendError as exc:
                self._unsure |= {m.key for m in todo[start : start + SEND_CHUNK]}
                results.update({m.key: exc for m in todo[start:]})
                break
        return results

    def _gone_of_unsure(self, messages: list[Outgoing]) -> set[str]:
        """Which of these messages, offered again after their request failed as a whole, Exchange
        had sent all the same (one FindItem per 100; nothing when no request failed)."""
        unsure = [m.key for m in messages if m.key in self._unsure]
        gone: set[str] = set()
        for start in range(0, len(unsure), SEND_CHUNK):
            gone |= self._sent_among(unsure[start : start + SEND_CHUNK])
        self._unsure -= set(unsure)
        self._sent_keys |= gone  # type: ignore[operator]
        return gone

    def _send_chunk(self, chunk: list[Outgoing]) -> dict[str, Exception | None]:
        """One CreateItem. Raises (temporary BackendError) only when the request failed as a whole.
        One request per call, not exchangelib's own chunking: when it raises, the outcomes of the
        requests it already made would be lost with it."""
        items = [Message(account=self.account, folder=self.account.sent, mime_content=m.raw, rm_key=m.key) for m in chunk]
        try:
            outcomes = self.account.bulk_create(folder=self.account.sent, items=items, chunk_size=SEND_CHUNK,
                                                message_disposition=SEND_AND_SAVE_COPY)  # fmt: skip
        except Exception as exc:  # exchangelib raises many types; all become BackendError
            error = translate(exc, f"sending {len(chunk)} emails")
            if not error.permanent:
                raise error from exc
            return self._settle(chunk, exc)
        if len(outcomes) != len(chunk):
            raise BackendError(f"sending {len(chunk)} emails: Exchange answered for {len(outcomes)}", permanent=False)
        results = {m.key: _refusal(m, outcome) for m, outcome in zip(chunk, outcomes)}
        self._sent_keys |= {key for key, error in results.items() if error is None}  # type: ignore[operator]
        return results

    def _settle(self, chunk: list[Outgoing], exc: Exception) -> dict[str, Exception | None]:
        """exchangelib raised a failure of one message it does not return as a value (an invalid
        recipient, say), losing the others' outcomes: Exchange may well have sent them. Those in
        Sent Items now went; the rest are sent one by one, so the refusal stays with its message."""
        if len(chunk) == 1:
            return {chunk[0].key: translate(exc, _what(chunk[0]))}
        gone = self._sent_among([m.key for m in chunk])
        self._sent_keys |= gone  # type: ignore[operator]
        results: dict[str, Exception | None] = {m.key: None for m in chunk if m.key in gone}
        for message in chunk:
            if message.key not in gone:
                results.update(self._send_chunk([message]))
        return results

    def _sent_among(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` (≤ 100) are in Sent Items. Unreadable: which went is unknown, so all wait."""
        try:
            return set(self.account.sent.filter(rm_key__in=keys).values_list("rm_key", flat=True))
        except Exception as exc:
            raise _unread(exc) from exc

    def _keys_in_sent_items(self) -> set[str]:
        """Keys of everything we sent, read once (paged) — one FindItem per send would be quadratic."""
        if self._sent_keys is None:
            try:
                query = self.account.sent.filter(rm_key__exists=True).values_list("rm_key", flat=True)
                query.page_size = 1000
                self._sent_keys = set(query)
            except Exception as exc:  # nothing is sent while what went before is unknown: temporary
                raise _unread(exc) from exc
        return self._sent_keys

    # -- calendar ---------------------------------------------------------------------------
    def publish_many(self, meetings: list[Meeting]) -> Outcomes:
        """Book, update or cancel many series in few requests; one failure stays with its uid."""
        return self.calendar.publish_many(meetings)

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        self.calendar.cancel_occurrence(meeting, start)

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """Who said they are going to the session planned at ``start``, by address, from the calendar."""
        return self.calendar.occurrence_answers(meeting, start)

    def annotate_many(self, notes: list[Note]) -> NoteOutcomes:
        """Agendas, for people who only open the calendar, written into their sessions' calendar
        entries in batches: four requests per 100 notes, not one per note. The outcome by
        (uid, planned start): None, or a BackendError for that note alone."""
        return self.calendar.annotate_many(notes)

    # -- free/busy --------------------------------------------------------------------------
    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> FreeBusy:
        """Busy times from Exchange, ≤100 mailboxes and ≤42 days per request, and the working hours
        people keep in their mailboxes, in each person's own zone (left out: hours kept in another
        zone or of a shape planning cannot hold, see ``exchange_hours``). Addresses Exchange cannot
        resolve are named in ``problems``."""
        by_address = {p.address: p for p in people}
        addresses = list(by_address)
        busy: dict[str, list[BusyTime]] = {a: [] for a in addresses}
        problems: dict[str, str] = {}
        hours = Collected("Exchange")
        for window_start, window_end in windows(start, end, MAX_WINDOW):
            for index in range(0, len(addresses), MAX_MAILBOXES):
                chunk = addresses[index : index + MAX_MAILBOXES]
                for address, view in zip(chunk, self._availability(chunk, window_start, window_end)):
                    if isinstance(view, Exception):
                        problems.setdefault(address, f"{type(view).__name__}: {view}")
                        continue
                    busy[address].extend(_busy_times(view))
                    hours.add(by_address[address], partial(ews_hours, view, by_address[address], start))
        hours.report()
        return FreeBusy.read(busy, hours.found, problems)

    def _availability(self, addresses: list[str], start: datetime, end: datetime) -> list:  # type: ignore[type-arg]
        """One GetUserAvailability. exchangelib's ``get_free_busy_info`` also asks the server for the
        zone's definition on every call (a GetServerTimeZones each); we ask once per backend."""
        window_start, window_end = ews_time(start, self.settings.timezone), ews_time(end, self.settings.timezone)
        try:
            return list(GetUserAvailability(self.account.protocol).call(
                tzinfo=window_start.tzinfo,
                mailbox_data=[MailboxData(email=a, attendee_type="Required", exclude_conflicts=False) for a in addresses],
                timezone=TimeZone.from_server_timezone(tz_definition=self._zone_definition(window_start), for_year=window_start.year),
                free_busy_view_options=FreeBusyViewOptions(time_window=TimeWindow(start=window_start, end=window_end),
                                                           merged_free_busy_interval=30, requested_view="Detailed"),
            ))  # fmt: skip
        except Exception as exc:
            raise translate(exc, "reading free/busy") from exc

    def _zone_definition(self, moment: EWSDateTime):  # type: ignore[no-untyped-def]
        if self._zone is None:
            self._zone = next(iter(self.account.protocol.get_timezones(timezones=[moment.tzinfo], return_full_timezone_data=True)))
        return self._zone

    # -- inbox ------------------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        """Unprocessed inbox messages (no processed category yet) received after the watermark,
        oldest first, each as its raw MIME. Sizes come first (FindItem): a message over
        ``max_message_bytes`` is never downloaded, only what the server said of it goes on."""
        since = self._watermark()
        query = self.account.inbox.filter(~Q(categories__contains=[self.settings.processed_category]))
        if since is not None:
            query = query.filter(datetime_received__gte=ews_time(since - WATERMARK_MARGIN, "UTC"))
        try:
            items = list(query.order_by("datetime_received").only(*LIST_FIELDS))
            done = self.settings.processed_category
            fresh = [i for i in items if done not in (i.categories or [])]
            big = {i.id for i in fresh if (i.size or 0) > self.max_bytes}
            mime = self._get([i for i in fresh if i.id not in big], ["mime_content"])
            heads = self._get([i for i in fresh if i.id in big], list(HEAD_FIELDS))
        except Exception as exc:
            raise translate(exc, "reading the inbox") from exc
        fresh = [i for i in fresh if (mime.get(i.id) and mime[i.id].mime_content) or i.id in heads]
        self._fetched.update({i.id: (i.changekey, list(i.categories or [])) for i in fresh})
        if fresh:
            self._save_watermark(plain(min(i.datetime_received for i in fresh)))
        return [self._too_large(i, heads[i.id]) if i.id in big
                else Incoming(ref=i.id, raw=bytes(mime[i.id].mime_content)) for i in fresh]

    def _get(self, items: list[Message], fields: list[str]) -> dict[str, Message]:
        """These items with ``fields`` (one GetItem per 100), by id; one gone meanwhile is left out."""
        found = self.account.fetch(ids=[(i.id, i.changekey) for i in items], only_fields=fields) if items else []
        return {i.id: got for i, got in zip(items, found) if not isinstance(got, Exception)}

    def _too_large(self, item: Message, head: Message) -> Incoming:
        """Never downloaded: its From, Subject and Message-ID as Exchange reports them go on."""
        sender = head.author  # message:From
        told = summary_head(From=formataddr((sender.name or "", sender.email_address or "")) if sender else "",
                            Subject=head.subject, Message_ID=head.message_id,
                            Date=format_datetime(item.datetime_received) if item.datetime_received else "")
        return too_large(item.id, item.size, self.max_bytes, told)

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
        atomic_write(path, json.dumps({"received_since": moment.astimezone(timezone.utc).isoformat()}).encode(), mode=None)

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


def _what(message: Outgoing) -> str:
    return f"sending {message.kind or 'mail'} {message.key}"


def _unread(exc: Exception) -> BackendError:
    """Sent Items could not be read: which mail went is unknown, so none is sent now, whatever the
    cause (temporary); a setup failure (a refused login, say) keeps its words for the admin."""
    error = translate(exc, "reading Sent Items")
    return BackendError(str(error)) if error.permanent else error


def _refusal(message: Outgoing, outcome: object) -> BackendError | None:
    """One message's outcome in a bulk CreateItem: True when sent (no item id with SendAndSaveCopy),
    else the error Exchange answered for it. A batch Exchange stopped part way leaves the rest
    untried: temporary, unlike a refusal of the message itself."""
    if not isinstance(outcome, Exception):
        return None
    if isinstance(outcome, ews_errors.ErrorBatchProcessingStopped):
        return BackendError(f"{_what(message)}: not tried, Exchange stopped the batch: {outcome}", permanent=False)
    return translate(outcome, _what(message))


def _busy_times(view) -> list[BusyTime]:  # type: ignore[no-untyped-def]
    return [
        BusyTime(plain(e.start), plain(e.end))
        for e in view.calendar_events or []
        if e.busy_type in ("Busy", "Tentative", "OOF")
    ]
