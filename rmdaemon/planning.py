"""When a pair meets: slot choice across two zones, the RRULE, and its occurrences.

Pure functions: dates and ``now`` come in as arguments. A series lives in the mentee's zone, so
its wall-clock time stays fixed across DST (09:00 London is 09:00 in GMT and in BST) and the
mentor's local time moves when the two zones change clocks on different dates. That is why a
slot is scored over *every* planned occurrence, not just the first: London and New York are
one hour closer for the weeks between the US and the UK March changes.

Occurrences come from ``dateutil.rrule.rrulestr`` on the very RRULE written into the
invitation, so what we email agendas for is what calendars show.

Monthly cadence means "the n-th <weekday> of the month", n taken from the first occurrence, e.g.
``FREQ=MONTHLY;BYDAY=2TU``. Keeping the weekday (rather than the day of the month) keeps every
session on a working day and in the chosen slot, and it is what Outlook offers as "second
Tuesday of every month". A first occurrence on a 5th weekday becomes ``-1`` (the last one),
since most months have no 5th Tuesday.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from rmdaemon.errors import UserError
from rmdaemon.model import BusyTime, Pair, Person, SeriesPlan, Slot

GRID_MINUTES = 15
RFC_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
UTC = timezone.utc
Intervals = list[tuple[datetime, datetime]]  # sorted by start, UTC


def plan_series(pair: Pair, *, start_date: date, sessions: int | None, end_date: date | None,
                not_before: datetime, busy: dict[str, list[BusyTime]] | None = None,
                taken: Mapping[tuple[int, time], int] | None = None) -> SeriesPlan:
    """The series for ``pair``: the slot that fits the most occurrences in both people's hours.

    Then, in order: fewest clashes with ``busy`` (address → intervals), the pair's preferred slot,
    the slot fewest other pairs use (``taken``, keyed by mentee-zone weekday and time, so pairs
    spread across the day), the earliest in the week. Exactly one of ``sessions`` / ``end_date``.
    """
    if (sessions is None) == (end_date is None):
        raise ValueError("plan_series needs exactly one of sessions or end_date")
    busy_by_person = _busy_intervals(pair, busy or {})
    scored: list[tuple[tuple[int, int, bool, int, int, time], SeriesPlan]] = []
    for slot in _candidates(pair):
        plan = _plan_for(pair, slot, start_date, sessions, end_date, not_before)
        starts = occurrences(plan)
        if not starts:
            continue
        fits = sum(all(_inside_hours(p, s, pair.duration_minutes) for p in pair.people) for s in starts)
        clashes = sum(_clashes(busy_by_person, s, pair.duration_minutes) for s in starts)
        key = (-fits, clashes, slot != pair.preferred_slot, (taken or {}).get((slot.weekday, slot.start), 0),
               slot.weekday, slot.start)
        scored.append((key, plan))
    if not scored:
        raise UserError(f"pair {pair.pair_id}: end_date {end_date} is before the first possible session",
                        [f"set [program] end_date after start_date {start_date} and after {not_before:%Y-%m-%d}"])
    key, plan = min(scored, key=lambda item: item[0])
    if key[0] == 0:
        raise _no_overlap(pair)
    return plan


def _candidates(pair: Pair) -> list[Slot]:
    """Every mentee-zone weekday/time on the grid where a session fits the mentee's hours."""
    hours = pair.mentee.working_hours
    start, end = hours.start.hour * 60 + hours.start.minute, hours.end.hour * 60 + hours.end.minute
    first = -(-start // GRID_MINUTES) * GRID_MINUTES  # round up onto the grid
    times = [time(m // 60, m % 60) for m in range(first, end - pair.duration_minutes + 1, GRID_MINUTES)]
    slots = [Slot(day, t) for day in sorted(hours.days) for t in times]
    if pair.preferred_slot and pair.preferred_slot not in slots:
        slots.append(pair.preferred_slot)  # off-grid wishes still count; scoring checks the fit
    return slots


def _plan_for(pair: Pair, slot: Slot, start_date: date, sessions: int | None, end_date: date | None,
              not_before: datetime) -> SeriesPlan:
    """The series on ``slot``, starting at its first occurrence strictly after ``not_before``."""
    zone = ZoneInfo(pair.mentee.timezone)
    day = max(start_date, not_before.astimezone(zone).date())
    day += timedelta(days=(slot.weekday - day.weekday()) % 7)
    first = datetime.combine(day, slot.start, zone)
    if first <= not_before:
        first += timedelta(days=7)  # wall-clock arithmetic: same local time next week
    until = datetime.combine(end_date, time(23, 59, 59), zone).astimezone(UTC) if end_date else None
    return SeriesPlan(pair_id=pair.pair_id, tzid=pair.mentee.timezone, first_start=first,
                      duration_minutes=pair.duration_minutes, cadence=pair.cadence,
                      rrule=_rrule_text(pair.cadence, first, sessions, until), count=sessions, until=until)


def _rrule_text(cadence: str, first: datetime, count: int | None, until: datetime | None) -> str:
    day = RFC_DAYS[first.weekday()]
    if cadence == "weekly":
        parts = ["FREQ=WEEKLY", f"BYDAY={day}"]
    elif cadence == "biweekly":
        parts = ["FREQ=WEEKLY", "INTERVAL=2", f"BYDAY={day}"]
    elif cadence == "monthly":
        nth = (first.day - 1) // 7 + 1
        parts = ["FREQ=MONTHLY", f"BYDAY={-1 if nth == 5 else nth}{day}"]
    else:
        raise ValueError(f"unknown cadence {cadence!r}")
    if count is not None:
        parts.append(f"COUNT={count}")
    if until is not None:
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%SZ}")
    return ";".join(parts)


def _inside_hours(person: Person, start: datetime, minutes: int) -> bool:
    """Whether the session lies within one of ``person``'s working days and hours, in their zone."""
    zone, hours = ZoneInfo(person.timezone), person.working_hours
    local_start = start.astimezone(zone)
    local_end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(zone)
    return (local_start.weekday() in hours.days and local_start.date() == local_end.date()
            and hours.start <= local_start.time() and local_end.time() <= hours.end)


def _busy_intervals(pair: Pair, busy: Mapping[str, list[BusyTime]]) -> list[Intervals]:
    """Each person's busy time as disjoint, sorted UTC intervals, so one bisect finds a clash."""
    by_address = {address.casefold(): times for address, times in busy.items()}
    return [_merged(by_address.get(p.address, [])) for p in pair.people]


def _merged(times: Iterable[BusyTime]) -> Intervals:
    merged: Intervals = []
    for start, end in sorted((b.start.astimezone(UTC), b.end.astimezone(UTC)) for b in times):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _clashes(busy_by_person: list[Intervals], start: datetime, minutes: int) -> bool:
    """Whether either person is busy at any moment of the session (touching ends do not clash)."""
    begin = start.astimezone(UTC)
    end = begin + timedelta(minutes=minutes)
    for intervals in busy_by_person:
        last = bisect_left(intervals, (end,)) - 1  # the last interval starting before the session ends
        if last >= 0 and intervals[last][1] > begin:
            return True
    return False


def _no_overlap(pair: Pair) -> UserError:
    where = f" (roster row {pair.row})" if pair.row else ""
    return UserError(
        f"pair {pair.pair_id}{where}: no {pair.duration_minutes}-minute slot lies inside both working hours",
        [f"mentor {pair.mentor.email}: {pair.mentor.working_hours} {pair.mentor.timezone}",
         f"mentee {pair.mentee.email}: {pair.mentee.working_hours} {pair.mentee.timezone}",
         "widen mentor_working_hours or mentee_working_hours for this pair in the roster "
         "(or [program] working_hours) so the two overlap"])


def _rule(plan: SeriesPlan) -> rrule:
    return rrulestr(plan.rrule, dtstart=plan.first_start)


def _without(starts: Iterable[datetime], exdates: Iterable[datetime]) -> list[datetime]:
    """Drop skipped occurrences, compared as instants so any zone or UTC exdate matches."""
    skipped = {e.astimezone(UTC) for e in exdates}
    return [s for s in starts if s.astimezone(UTC) not in skipped]


def occurrences(plan: SeriesPlan, exdates: Iterable[datetime] = ()) -> list[datetime]:
    """Every start of the series, aware in the plan's zone (plans always carry COUNT or UNTIL)."""
    if plan.count is None and plan.until is None:
        raise ValueError(f"series {plan.pair_id} has neither COUNT nor UNTIL: it never ends")
    return _without(_rule(plan), exdates)


def occurrences_between(plan: SeriesPlan, start: datetime, end: datetime,
                        exdates: Iterable[datetime] = ()) -> list[datetime]:
    """Starts with ``start <= s < end`` (half-open, so adjacent windows never share one)."""
    found = _rule(plan).between(start, end, inc=True)
    return _without((s for s in found if s < end), exdates)


def next_occurrence(plan: SeriesPlan, after: datetime, exdates: Iterable[datetime] = ()) -> datetime | None:
    """The first start strictly after ``after`` that is not skipped, or None when the series is over."""
    skipped = {e.astimezone(UTC) for e in exdates}
    return next((s for s in _rule(plan).xafter(after) if s.astimezone(UTC) not in skipped), None)
