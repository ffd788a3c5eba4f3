"""The records the rest of the code passes around.

Frozen dataclasses, no behaviour beyond small derived values: the roster produces ``Pair``s,
planning turns a pair into a ``SeriesPlan``, jobs wrap that into a ``Meeting`` for a backend to
book, and every message leaves as an ``Outgoing`` and arrives as an ``Incoming``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

from rmdaemon.names import address_name

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CADENCES = ("weekly", "biweekly", "monthly")


class RosterStatus(StrEnum):
    """The roster's ``status`` column: the admin's own switch on a pair. Not the pair's state in
    the programme (``records.PairState``), which the replies move."""

    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


PAIR_STATUSES = tuple(RosterStatus)


@dataclass(frozen=True)
class WorkingHours:
    start: time
    end: time
    days: tuple[int, ...]  # 0 = Monday, as datetime.weekday()

    def __str__(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in self.days)
        return f"{self.start:%H:%M}-{self.end:%H:%M} {days}"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    timezone: str  # IANA name, validated by the roster
    working_hours: WorkingHours
    # Inclusive (first, last) days, in the person's own zone, on which no session is booked.
    out_of_office: tuple[tuple[date, date], ...] = ()
    # True when the roster left the hours empty and [program] working_hours stands in, so the
    # working hours a person keeps in their calendar (Exchange's) may take their place in planning.
    hours_defaulted: bool = field(default=False, compare=False)
    preferred_name: str = field(default="", compare=False)  # the roster's <role>_preferred_name: how they like to be greeted
    language: str = field(default="", compare=False)  # BCP 47 tag of their e-mails; empty: [program] language

    @property
    def first_name(self) -> str:
        """How an e-mail greets them (rmdaemon/names.py): the preferred name, or one derived from the name."""
        return address_name(self.name, self.preferred_name, self.language)

    @property
    def address(self) -> str:
        """The comparable form of the email: replies are matched case-insensitively."""
        return self.email.casefold()


@dataclass(frozen=True)
class Slot:
    """A weekday and a local start time, in the zone of the person it belongs to."""

    weekday: int
    start: time

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.start:%H:%M}"


@dataclass(frozen=True)
class Pair:
    pair_id: str
    mentor: Person
    mentee: Person
    goal: str
    track: str
    cadence: str
    duration_minutes: int
    preferred_slot: Slot | None  # in the mentee's zone
    status: str
    row: int = 0  # roster row (1 = header), for messages
    cohort: str = ""  # the roster's optional cohort (an intake, a site): reports filter and compare by it
    location: str = ""  # the roster's location column (a room or URL, maybe a template); "" → [program] location

    @property
    def people(self) -> tuple[Person, Person]:
        return (self.mentor, self.mentee)

    def member(self, address: str) -> Person | None:
        """The participant with this address, or None: only the pair may log or command for it."""
        wanted = address.casefold()
        return next((p for p in self.people if p.address == wanted), None)


@dataclass(frozen=True)
class SeriesPlan:
    """When a pair meets: the first start and the recurrence, as booked.

    ``first_start`` is aware and expressed in ``tzid`` (the mentee's zone), so the wall-clock time
    stays fixed across DST changes; ``rrule`` is the RFC 5545 RRULE value that produces every
    occurrence from it (``UNTIL`` in UTC when present).
    """

    pair_id: str
    tzid: str
    first_start: datetime
    duration_minutes: int
    cadence: str
    rrule: str
    count: int | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Meeting:
    """A series as a backend books it. Same ``uid`` for its whole life; ``sequence`` rises on change."""

    uid: str
    sequence: int
    organizer_email: str
    organizer_name: str
    attendees: tuple[Person, ...]
    summary: str
    description: str
    plan: SeriesPlan
    exdates: tuple[datetime, ...] = ()  # aware, skipped occurrences
    moved: tuple[tuple[datetime, datetime], ...] = ()  # (planned start, new start), both aware
    categories: tuple[str, ...] = ("Reverse mentoring",)
    cancelled: bool = False
    location: str = ""  # a room or a URL ([program] location or the roster's column); "" writes no LOCATION
    # The covering note of the invitation email (mail backends) or the item body (calendar
    # backends), rendered by the jobs from templates so backends never touch Jinja.
    subject: str = ""
    body_text: str = ""
    body_html: str = ""
    # The series' token key (hex): the iTIP emails' Message-IDs are keyed by it; "" for a series
    # booked before the installation had a secret, whose Message-IDs stay as they were.
    token_key: str = ""
    # The same note written for each attendee (address, subject, text, html): their own time
    # first, in their language. Mail backends send each person theirs; a calendar server, which
    # keeps one body for everyone, gets the shared one above.
    bodies: tuple[tuple[str, str, str, str], ...] = ()


class Outgoing:
    """One email, ready to go. ``key`` is its idempotency key: a backend never sends a key twice.

    Its bytes are kept zlib-packed (level 1, about a third of the size): a job builds all its
    messages before it records the intent to send them (a pair whose mail fails to build leaves
    no trace), and every e-mail carries the HTML layout's style sheet, so at 10,000 pairs the
    first tick holds 20,000 kickoffs and the agenda tick 20,000 agendas, ~110 MB of bytes each
    (docs/performance.md). A backend reads ``raw`` once, to send it; unpacking costs ~1 % of building.
    """

    __slots__ = ("key", "to", "kind", "pair_id", "_packed")

    def __init__(self, key: str, to: tuple[str, ...], raw: bytes, kind: str = "", pair_id: str = "") -> None:
        self.key, self.to, self.kind, self.pair_id = key, to, kind, pair_id
        self._packed = zlib.compress(raw, 1)

    @property
    def raw(self) -> bytes:
        """RFC 5322 bytes, CRLF line ends."""
        return zlib.decompress(self._packed)

    def __repr__(self) -> str:
        return f"Outgoing(key={self.key!r}, to={self.to!r}, kind={self.kind!r}, pair_id={self.pair_id!r})"


@dataclass(frozen=True)
class Incoming:
    """One message as the backend fetched it. ``ref`` is how the backend finds it again to mark it."""

    ref: str
    raw: bytes
    refused: str = ""  # why the backend did not read it (not a regular file): quarantined with this reason


@dataclass(frozen=True)
class BusyTime:
    start: datetime  # aware
    end: datetime


@dataclass
class JobResult:
    """What a job did, for the run summary and ``status``."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # pairs this run could not handle, for status
    waiting: list[str] = field(default_factory=list)  # work kept until the admin fixes the installation, for status

    def add(self, what: str, line: str = "", n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n
        if line:
            self.lines.append(line)
