"""The narrow interface every backend implements, free of any backend's own types.

Local (Maildir), SMTP/IMAP, Exchange (EWS) and Graph backends all sit behind this, so the jobs
never know which one they talk to, and ``tests/contract`` runs the same tests against each.

Idempotency is part of the contract: ``send`` never delivers the same ``Outgoing.key`` twice and
``publish`` never books the same (uid, sequence) twice, even when called again after a crash
between the backend doing the work and the store recording it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person


def windows(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into pieces no longer than ``span``: every calendar service limits how far
    one free/busy request may reach (EWS 42 days, Graph 62)."""
    found = []
    while start < end:
        found.append((start, min(end, start + span)))
        start += span
    return found


class FreeBusyGaps(BackendError):
    """Some mailboxes could not be read (an unknown address, say). What was read is in
    ``partial`` and the reason per address in ``problems``, so the booking job still plans the
    pairs it could see and names the others (part of the interface: any backend may raise it)."""

    def __init__(self, partial: dict[str, list[BusyTime]], problems: dict[str, str]) -> None:
        super().__init__("free/busy: " + "; ".join(f"{a}: {why}" for a, why in problems.items()), permanent=True)
        self.partial = partial
        self.problems = problems


def busy_or_gaps(busy: dict[str, list[BusyTime]], problems: dict[str, str]) -> dict[str, list[BusyTime]]:
    """``busy`` when every mailbox could be read; otherwise FreeBusyGaps with what could."""
    if problems:
        raise FreeBusyGaps({a: b for a, b in busy.items() if a not in problems}, problems)
    return busy


class Backend(Protocol):
    name: str

    def send(self, message: Outgoing) -> None:
        """Deliver one email unless its key was already delivered. Raises BackendError."""

    def publish(self, meeting: Meeting) -> None:
        """Book, update (same uid, higher sequence) or cancel (``meeting.cancelled``) a series,
        inviting every attendee. Idempotent on (uid, sequence)."""

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        """Cancel one occurrence of a booked series (``start`` aware, as planned)."""

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> dict[str, list[BusyTime]] | None:
        """Busy times by lower-cased address, or None when this backend cannot see calendars."""

    def fetch_new(self) -> list[Incoming]:
        """Messages in the inbox not yet marked processed, oldest first."""

    def mark_processed(self, ref: str) -> None:
        """Move a fetched message out of the way; idempotent (marking twice is harmless)."""

    def check_online(self) -> list[str]:
        """One cheap real request; returns problems (empty when fine) instead of raising."""

    def close(self) -> None: ...

    # Optional: ``flush()`` makes everything sent so far durable in one step; jobs call it after
    # a batch of sends when the backend has it (the local Maildir fsyncs its directory once).
    # Optional: ``send_many(messages) -> dict[str, Exception | None]`` sends many emails at once
    # (Exchange: 100 per request), the outcome by key: None when sent or found sent already, else
    # a BackendError (temporary or permanent, as ``send`` would raise). Same idempotency as ``send``.
    # Optional, calendar backends: ``publish_many(meetings)`` books many series at once (Exchange,
    # Graph); ``occurrence_answers(meeting, start)`` says who is going to one session and
    # ``annotate_occurrence(meeting, start, text)`` writes the agenda into it (Exchange), and
    # ``annotate_many([(meeting, start, text), ...]) -> dict[(uid, start), Exception | None]``
    # many at once (Exchange: a few requests per 100), each outcome None or a BackendError;
    # ``working_hours() -> dict[str, WorkingHours]`` gives the hours people keep in their own
    # calendars, by lower-cased address and in each person's own zone, as the last ``free_busy``
    # answers carried them (no request of its own; people whose hours could not be used are left
    # out). Booking lets them stand in for hours the roster left to ``[program] working_hours``.
