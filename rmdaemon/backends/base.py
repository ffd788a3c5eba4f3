"""The narrow interface every backend implements, free of any backend's own types.

Local (Maildir), SMTP/IMAP, Exchange (EWS) and Graph backends all derive from ``Backend``, so the
jobs never know which one they talk to, and ``tests/contract`` runs the same tests against each.

The batch methods are the protocol: jobs call ``send_many``, ``publish_many`` and
``annotate_many`` and get one outcome per item (None when done or found done already, else a
``BackendError``, temporary or permanent). A backend that batches (Exchange: 100 per request)
implements the batch method; one that does not implements the one-item method (``send``,
``publish``, ``annotate``) and inherits the batch method, which loops. Only that direction:
nothing is built the other way round.

What only some backends can do is declared in ``capabilities`` and checked when the class is
defined (a class declaring what it does not implement fails at import, not in a job); jobs test
``Capability.X in backend.capabilities`` and never probe for methods.

Idempotency is part of the contract: ``send_many`` never delivers the same ``Outgoing.key`` twice
and ``publish_many`` never books the same (uid, sequence) twice, even when called again after a
crash between the backend doing the work and the store recording it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import ClassVar, TypeVar

from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person, WorkingHours

DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # [security] max_message_bytes
HEAD_BYTES = 64 * 1024  # what is kept of a message too large to download: enough for its headers
Outcomes = dict[str, BackendError | None]  # by Outgoing.key or Meeting.uid
Note = tuple[Meeting, datetime, str]  # (series, planned start of one session, text)
NoteOutcomes = dict[tuple[str, datetime], BackendError | None]  # by (uid, planned start)


class Capability(Enum):
    """What only some backends can do; the methods each one needs are in ``REQUIRES``."""

    FREE_BUSY = "free/busy"  # ``free_busy``: people's busy times (calendar servers)
    WORKING_HOURS = "working hours"  # ``free_busy`` answers also carry the hours people keep in their calendars
    OCCURRENCE_ANSWERS = "occurrence answers"  # ``occurrence_answers``: who is going to one session
    ANNOTATE = "annotate"  # ``annotate_many``: the agenda written into a session's calendar entry
    ONLINE_MEETINGS = "online meetings"  # ``join_url``: the online meeting's join link the server made for a series


REQUIRES: dict[Capability, tuple[tuple[str, ...], ...]] = {  # each inner tuple: one of these methods
    Capability.FREE_BUSY: (("free_busy",),),
    Capability.WORKING_HOURS: (("free_busy",),),
    Capability.OCCURRENCE_ANSWERS: (("occurrence_answers",),),
    Capability.ANNOTATE: (("annotate", "annotate_many"),),
    Capability.ONLINE_MEETINGS: (("join_url",),),
}
ALWAYS: tuple[tuple[str, ...], ...] = (("send", "send_many"), ("publish", "publish_many"), ("cancel_occurrence",),
                                       ("fetch_new",), ("mark_processed",), ("check_online",))


def windows(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into pieces no longer than ``span``: every calendar service limits how far
    one free/busy request may reach (EWS 42 days, Graph 62)."""
    found = []
    while start < end:
        found.append((start, min(end, start + span)))
        start += span
    return found


@dataclass(frozen=True, slots=True)
class FreeBusy:
    """One free/busy answer. ``busy``: busy times by lower-cased address, for every mailbox that
    could be read; ``hours``: the working hours people keep in their own calendars, in each
    person's zone (only with ``Capability.WORKING_HOURS``; people whose hours could not be used
    are left out); ``problems``: why a mailbox could not be read (an unknown address, say), by
    address — the booking job plans the pairs it could see and names the others."""

    busy: dict[str, list[BusyTime]]
    hours: dict[str, WorkingHours] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, busy: dict[str, list[BusyTime]], hours: dict[str, WorkingHours],
             problems: dict[str, str]) -> FreeBusy:
        """The answer from what a backend gathered: the unreadable mailboxes' (empty) busy lists dropped."""
        return cls({a: b for a, b in busy.items() if a not in problems}, hours, problems)


def implements(cls: type, capability: Capability) -> bool:
    """Whether ``cls`` overrides, for each group the capability needs, one of its methods."""
    return all(_overrides(cls, group) for group in REQUIRES[capability])


def _overrides(cls: type, names: tuple[str, ...]) -> bool:
    return any(getattr(cls, name) is not getattr(Backend, name) for name in names)


class Backend:
    """Base of every backend: the protocol, default loops for backends without batching, and the
    check that what a backend declares it also implements."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # How ``publish`` reaches the attendees: False, as one calendar item whose body everyone reads
    # (``Meeting.body_*``); True, as an e-mail to each attendee carrying their own note
    # (``Meeting.bodies``, iMIP). The jobs render only the notes a backend sends: each is a
    # template render and a CSS inlining per language, a third of booking a series.
    invites_by_mail: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        missing = [" or ".join(group) for group in ALWAYS if not _overrides(cls, group)]
        missing += [f"{c.name} needs {' or '.join(group)}" for c in cls.capabilities
                    for group in REQUIRES[c] if not _overrides(cls, group)]
        if Capability.WORKING_HOURS in cls.capabilities and Capability.FREE_BUSY not in cls.capabilities:
            missing.append("WORKING_HOURS comes with FREE_BUSY")
        if missing:
            raise TypeError(f"backend {cls.__name__} does not implement: {'; '.join(missing)}")

    # -- mail ---------------------------------------------------------------------------------
    def send_many(self, messages: list[Outgoing]) -> Outcomes:
        """Deliver each email unless its key was delivered before; the outcome by key. Default:
        ``send`` one by one, a refusal kept with its message."""
        return {m.key: _attempt(self.send, m) for m in messages}

    def send(self, message: Outgoing) -> None:
        """One email (for backends without batching). Raises BackendError."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make everything sent so far durable in one step; jobs call it after ``send_many`` and
        ``publish_many``, before they record the work as done (the local Maildir syncs once)."""

    # -- calendar -----------------------------------------------------------------------------
    def publish_many(self, meetings: list[Meeting]) -> Outcomes:
        """Book, update (same uid, higher sequence) or cancel (``meeting.cancelled``) each series,
        inviting every attendee; the outcome by uid. Idempotent on (uid, sequence). Default:
        ``publish`` one by one."""
        return {m.uid: _attempt(self.publish, m) for m in meetings}

    def publish(self, meeting: Meeting) -> None:
        """One series (for backends without batching). Raises BackendError."""
        raise NotImplementedError

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        """Cancel one occurrence of a booked series (``start`` aware, as planned)."""
        raise NotImplementedError

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> FreeBusy:
        """``Capability.FREE_BUSY``: busy times (and, with WORKING_HOURS, working hours) of ``people``."""
        raise NotImplementedError

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """``Capability.OCCURRENCE_ANSWERS``: each attendee's answer for the session planned at
        ``start`` (PARTSTAT words, by address), as the calendar has it; None when the series is
        not there."""
        raise NotImplementedError

    def join_url(self, uid: str) -> str | None:
        """``Capability.ONLINE_MEETINGS``: the join link of the online meeting the server made for
        the series (a Teams meeting on Graph, Google Meet on Google), read back from it; None when it has none."""
        raise NotImplementedError

    def annotate_many(self, notes: list[Note]) -> NoteOutcomes:
        """``Capability.ANNOTATE``: write each text (an agenda) into its session's calendar entry,
        once; the outcome by (uid, planned start). Default: ``annotate`` one by one."""
        return {(m.uid, start): _attempt(self.annotate, m, start, text) for m, start, text in notes}

    def annotate(self, meeting: Meeting, start: datetime, text: str) -> None:
        """One note (for backends without batching). Raises BackendError."""
        raise NotImplementedError

    # -- inbox and health ---------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        """Messages in the inbox not yet marked processed, oldest first."""
        raise NotImplementedError

    def mark_processed(self, ref: str) -> None:
        """Move a fetched message out of the way; idempotent (marking twice is harmless)."""
        raise NotImplementedError

    def check_online(self) -> list[str]:
        """One cheap real request; returns problems (empty when fine) instead of raising."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; nothing to do by default."""


T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def settle(call: Callable[[list[T]], Mapping[K, Exception | None]], items: list[T],
           key: Callable[[T], K]) -> dict[K, BackendError | None]:
    """Each item's outcome from one of the batch methods, for the jobs: a failure of the call as a
    whole counts for every item, and an item the backend says nothing about counts as not done
    (temporary) — nothing is recorded as done unless the backend said so."""
    if not items:
        return {}
    try:
        found = call(items)
    except BackendError as e:
        return {key(i): e for i in items}
    return {key(i): _as_error(found, key(i)) for i in items}


def _as_error(found: Mapping[K, Exception | None], key: K) -> BackendError | None:
    if key not in found:
        return BackendError("the backend gave no outcome for this item", permanent=False)
    error = found[key]
    if error is None or isinstance(error, BackendError):
        return error
    return BackendError(f"{type(error).__name__}: {error}", permanent=False)


def _attempt(call: Callable[..., None], *args: object) -> BackendError | None:
    try:
        call(*args)
    except BackendError as e:
        return e
    return None


def too_large(ref: str, size: int, limit: int, head: bytes = b"") -> Incoming:
    """A message the server says is over ``[security] max_message_bytes``, never downloaded: the
    inbox quarantines it with this reason (and ``head``: its first bytes, or what the server told
    of it) and marks it processed like any other, so it is not asked for again."""
    kept = f"; only its first {len(head):,} bytes kept" if head else ""
    return Incoming(ref=ref, raw=head, refused=f"{size:,} bytes is over [security] max_message_bytes ({limit:,}); "
                                               f"not downloaded{kept}, the whole message stays in the mailbox")


def summary_head(**fields: object) -> bytes:
    """A header block of what a server reported of a message it was not asked for (From, Subject,
    Message-ID, Date), one line each, for ``quarantine list`` to show."""
    lines = [f"{name.replace('_', '-')}: {' '.join(str(value).split())}" for name, value in fields.items() if value]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() if lines else b""
