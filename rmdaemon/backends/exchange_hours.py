"""The working hours a person keeps in their Exchange mailbox (Outlook's "work time"), as the
``WorkingHours`` planning uses, in the zone the roster gives that person — or why not.

Exchange states a mailbox's hours in the mailbox's own zone: over EWS as a bias with yearly clock
changes (``t:TimeZone``), over Graph as a zone name. The roster gives each person an IANA zone,
and sessions are planned, mailed and shown in that one. The hours are taken over as they are when
both zones keep the same clock on every day of the coming year (same offsets, summer and winter,
changing on the same days). When the clocks differ, one of the two is stale — a mailbox nobody set
up reports a default zone and 08:00–17:00 — and converting would shift someone's day by hours on
a guess, so the hours are not used. Neither are hours planning cannot hold: different times on
different days, or a day that runs through midnight. Either way the backend logs why, and the
config's hours stand. Shared by the EWS and Graph backends (both read the same mailbox setting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from rmdaemon.model import Person, WorkingHours

log = logging.getLogger("rmdaemon.backends")

UTC = timezone.utc
EWS_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
COMPARED_DAYS = 366  # a whole year from the free/busy window: both clock changes fall in it
Period = tuple[tuple[int, ...], time, time]  # days (0 = Monday), start, end — one WorkingPeriod


class Unusable(ValueError):
    """Why a mailbox's working hours cannot stand in for the person's (a sentence for the log)."""


@dataclass(frozen=True)
class Change:
    """A yearly clock change: the ``occurrence``-th ``weekday`` of ``month`` (5: the last one)
    at the local time ``at`` — the way Windows and Exchange write a zone's rule."""

    month: int
    weekday: int  # 0 = Monday
    occurrence: int
    at: time

    def instant(self, year: int, offset: timedelta) -> datetime:
        """When the change happens in ``year``, in UTC, given the UTC offset in force before it."""
        first = date(year, self.month, 1)
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (min(self.occurrence, 5) - 1))
        while day.month != self.month:  # no 5th such weekday this month: the last one
            day -= timedelta(days=7)
        return datetime.combine(day, self.at, UTC) - offset


@dataclass(frozen=True)
class ZoneRule:
    """A zone as Exchange describes a mailbox's: a standard UTC offset and, with daylight saving,
    the summer offset and the two yearly changes."""

    standard: timedelta
    daylight: timedelta | None = None
    to_daylight: Change | None = None
    to_standard: Change | None = None

    def offset(self, moment: datetime) -> timedelta:
        if self.daylight is None or self.to_daylight is None or self.to_standard is None:
            return self.standard
        year = moment.astimezone(UTC).year
        begin, end = self.to_daylight.instant(year, self.standard), self.to_standard.instant(year, self.daylight)
        summer = begin <= moment < end if begin < end else not end <= moment < begin  # south: summer spans New Year
        return self.daylight if summer else self.standard

    def __str__(self) -> str:
        text = _utc(self.standard)
        return text if self.daylight is None else f"{text} ({_utc(self.daylight)} in summer)"


Clock = ZoneRule | ZoneInfo


def in_persons_zone(periods: Iterable[Period], clock: Clock, person: Person, around: datetime) -> WorkingHours:
    """The mailbox's hours as the person's ``WorkingHours``; raises Unusable saying why not."""
    hours = one_window(list(periods))
    if not same_clock(clock, person.timezone, around.astimezone(UTC).date()):
        raise Unusable(f"they are kept in {clock}, whose clock is not that of {person.timezone} (the person's zone "
                       "in the roster)")
    return hours


def one_window(periods: list[Period]) -> WorkingHours:
    """Planning's model: one start and one end, the same on every working day, within one day."""
    if not periods or not any(days for days, _, _ in periods):
        raise Unusable("no working days are set")
    windows = sorted({(start, end) for _, start, end in periods})
    if len(windows) > 1:
        shown = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in windows)
        raise Unusable(f"they differ from day to day ({shown}), and planning takes one window for every day")
    ((start, end),) = windows
    if start >= end:
        raise Unusable(f"{start:%H:%M}-{end:%H:%M} does not end later the same day")
    return WorkingHours(start, end, tuple(sorted({d for days, _, _ in periods for d in days})))


@lru_cache(maxsize=256)
def same_clock(clock: Clock, zone: str, first: date) -> bool:
    """Whether ``clock`` and the IANA ``zone`` show the same time at noon UTC on each of the
    COMPARED_DAYS days from ``first`` (remembered: a programme has a handful of zones)."""
    there = ZoneInfo(zone)
    for n in range(COMPARED_DAYS):
        moment = datetime.combine(first + timedelta(days=n), time(12), UTC)
        ours = clock.offset(moment) if isinstance(clock, ZoneRule) else moment.astimezone(clock).utcoffset()
        if ours != moment.astimezone(there).utcoffset():
            return False
    return True


def ews_hours(view, person: Person, around: datetime) -> WorkingHours | None:  # type: ignore[no-untyped-def]
    """The hours in one exchangelib ``FreeBusyView`` (``working_hours``: WorkingPeriods with
    1-based weekdays; ``working_hours_timezone``: the availability ``TimeZone``), or None when the
    answer carries none. Raises Unusable."""
    if not view.working_hours or view.working_hours_timezone is None:
        return None
    periods = [(tuple(d - 1 for d in p.weekdays or ()), p.start, p.end) for p in view.working_hours]
    return in_persons_zone(periods, ews_clock(view.working_hours_timezone), person, around)


def ews_clock(tz) -> ZoneRule:  # type: ignore[no-untyped-def]
    """``t:TimeZone``: UTC = local + Bias (+ the period's own Bias), changes at local times."""
    standard_bias = tz.standard_time.bias if tz.standard_time else 0
    standard = -timedelta(minutes=tz.bias + standard_bias)
    summer = tz.daylight_time
    if summer is None or tz.standard_time is None or summer.bias == standard_bias:
        return ZoneRule(standard)
    return ZoneRule(standard, -timedelta(minutes=tz.bias + summer.bias), _ews_change(summer), _ews_change(tz.standard_time))


def _ews_change(part) -> Change:  # type: ignore[no-untyped-def]
    weekday = part.weekday if isinstance(part.weekday, int) else EWS_DAYS.index(part.weekday) + 1
    return Change(part.iso_month, weekday - 1, part.occurrence, part.time)


@dataclass
class Collected:
    """The working hours read in one free/busy call: the usable ones by address, the others by why."""

    source: str  # where they were read, for the log: "Exchange"
    found: dict[str, WorkingHours] = field(default_factory=dict)
    passed_over: dict[str, list[str]] = field(default_factory=dict)  # reason → addresses
    seen: set[str] = field(default_factory=set)

    def add(self, person: Person, read: Callable[[], WorkingHours | None]) -> None:
        """Keep what ``read`` (raising Unusable) finds for ``person``; None means no hours given.
        Only a person's first answer is read: every free/busy window carries the same hours."""
        if person.address in self.seen:
            return
        self.seen.add(person.address)
        try:
            hours = read()
        except Unusable as why:
            if person.hours_defaulted:  # otherwise the roster's hours win anyway: nothing to say
                self.passed_over.setdefault(str(why), []).append(person.address)
            return
        if hours is not None:
            self.found[person.address] = hours

    def report(self) -> None:
        """One warning per reason, naming the first few people: a programme whose mailboxes nobody
        set up would otherwise log a line per person on every tick that plans."""
        for why, addresses in self.passed_over.items():
            shown = ", ".join(addresses[:5]) + (f" and {len(addresses) - 5} more" if len(addresses) > 5 else "")
            log.warning("working hours from %s not used for %s, [program] working_hours stand: %s", self.source, shown, why)


def _utc(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
