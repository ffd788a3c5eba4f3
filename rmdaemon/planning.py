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

import itertools
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from rmdaemon.errors import UserError
from rmdaemon.model import WEEKDAYS, BusyTime, Pair, Person, SeriesPlan, Slot
from rmdaemon.phrases import PhraseError, phrase
from rmdaemon.phrases import day as a_day

GRID_MINUTES = 15
RFC_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
UTC = timezone.utc
Intervals = list[tuple[datetime, datetime]]  # sorted by start, UTC


def plan_series(pair: Pair, *, start_date: date, sessions: int | None, end_date: date | None,
                not_before: datetime, busy: dict[str, list[BusyTime]] | None = None,
                taken: Mapping[tuple[int, time], int] | None = None,
                cache: dict | None = None) -> SeriesPlan:
    """The series for ``pair``: the slot that fits the most occurrences in both people's hours.

    Then, in order: fewest clashes with ``busy`` (address → intervals), the pair's preferred slot,
    the least used weekday, then hour, then exact slot among other pairs' series (``taken``, keyed
    by mentee-zone weekday and time; see ``spread_load``), so pairs without a wish spread over the
    week and the day, then the earliest in the week. Exactly one of ``sessions`` / ``end_date``.
    ``cache`` (a dict the caller keeps for one run) shares the expensive part — every candidate
    slot's occurrences checked against both people's hours — between pairs of the same shape
    (same zones, hours, length, cadence and dates), which is most pairs of a large programme.
    """
    if (sessions is None) == (end_date is None):
        raise ValueError("plan_series needs exactly one of sessions or end_date")
    busy_by_person = _busy_intervals(pair, busy or {})
    shape = (tuple((p.timezone, p.working_hours) for p in pair.people), pair.duration_minutes, pair.cadence,
             pair.preferred_slot, start_date, sessions, end_date, not_before)
    fitted = cache.get(shape) if cache is not None else None
    if fitted is None:
        fitted = _fitted_slots(pair, start_date, sessions, end_date, not_before)
        if cache is not None:
            cache[shape] = fitted
    if not fitted:
        raise UserError(f"pair {pair.pair_id}: end_date {end_date} is before the first possible session",
                        [f"set [program] end_date after start_date {start_date} and after {not_before:%Y-%m-%d}"])
    load = spread_load(taken or {})
    checking, preferred = any(busy_by_person), pair.preferred_slot

    def key(candidate: tuple[Slot, SeriesPlan, list[datetime], int]) -> tuple:
        """Lowest wins; computed for every candidate slot (a hundred and more) of every pair planned."""
        slot, _, starts, fits = candidate
        clashes = sum(_clashes(busy_by_person, s, pair.duration_minutes) for s in starts) if checking else 0
        return (-fits, clashes, preferred is None or slot != preferred, *load(slot), slot.weekday, slot.start)

    _, plan, _, fits = min(fitted, key=key)
    if fits == 0:
        raise _no_overlap(pair)
    return replace(plan, pair_id=pair.pair_id)


def spread_load(taken: Mapping[tuple[int, time], int]) -> Callable[[Slot], tuple[int, int, int]]:
    """How busy a slot already is: (series on its weekday, series in its hour, series on the slot).

    Comparing the weekday first spreads pairs without a preferred slot over every shared working
    day before any day gets a second series; the hour next staggers them across the day (Monday
    09:00, Tuesday 10:00, ...), so no morning fills up while the afternoons stay empty.
    """
    days, hours = day_hour_counts(taken)
    return lambda slot: (days[slot.weekday], hours[slot.start.hour], taken.get((slot.weekday, slot.start), 0))


def day_hour_counts(taken: Mapping[tuple[int, time], int]) -> tuple[Counter[int], Counter[int]]:
    """Series per weekday (0 = Monday) and per hour of the day, from series per (weekday, time)."""
    days: Counter[int] = Counter()
    hours: Counter[int] = Counter()
    for (weekday, at), n in taken.items():
        days[weekday] += n
        hours[at.hour] += n
    return days, hours


def describe_spread(taken: Mapping[tuple[int, time], int]) -> str:
    """The series per weekday and per hour (each in its series' zone), as ``check`` and ``status`` show it."""
    if not taken:
        return "no series planned yet"
    days, hours = day_hour_counts(taken)
    by_day = ", ".join(f"{WEEKDAYS[d]} {days[d]}" for d in sorted(days))
    by_hour = ", ".join(f"{h:02d}h {hours[h]}" for h in sorted(hours))
    return f"{sum(days.values())} series by weekday: {by_day}; by hour (series' local time): {by_hour}"


def _fitted_slots(pair: Pair, start_date: date, sessions: int | None, end_date: date | None,
                  not_before: datetime) -> list[tuple[Slot, SeriesPlan, list[datetime], int]]:
    """Every candidate slot with its plan, its occurrences and how many fit both people's hours."""
    fitted = []
    for slot in _candidates(pair):
        plan = _plan_for(pair, slot, start_date, sessions, end_date, not_before)
        starts = occurrences(plan)
        if starts:
            fits = sum(all(_inside_hours(p, s, pair.duration_minutes) for p in pair.people) for s in starts)
            fitted.append((slot, plan, starts, fits))
    return fitted


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


def _starts(plan: SeriesPlan) -> tuple[datetime, ...]:
    """Every planned start, in order (plans always carry COUNT or UNTIL)."""
    if plan.count is None and plan.until is None:
        raise ValueError(f"series {plan.pair_id} has neither COUNT nor UNTIL: it never ends")
    # The zone is part of the key: 09:00 London and 10:00 Berlin are equal datetimes, but their
    # series keep different wall clocks across the clock changes.
    return _all_starts(plan.rrule, plan.first_start, str(plan.first_start.tzinfo))


@lru_cache(maxsize=4096)
def _all_starts(text: str, first_start: datetime, zone: str) -> tuple[datetime, ...]:
    """Parsing and expanding an RRULE was a fifth of an agenda tick at 10,000 pairs (every job
    asks about every series); series planned alike share the answer."""
    return tuple(rrulestr(text, dtstart=first_start))


def _without(starts: Iterable[datetime], exdates: Iterable[datetime]) -> list[datetime]:
    """Drop skipped occurrences, compared as instants so any zone or UTC exdate matches."""
    skipped = {e.astimezone(UTC) for e in exdates}
    return [s for s in starts if s.astimezone(UTC) not in skipped]


def occurrences(plan: SeriesPlan, exdates: Iterable[datetime] = ()) -> list[datetime]:
    """Every start of the series, aware in the plan's zone (plans always carry COUNT or UNTIL)."""
    return _without(_starts(plan), exdates)


def occurrences_between(plan: SeriesPlan, start: datetime, end: datetime,
                        exdates: Iterable[datetime] = ()) -> list[datetime]:
    """Starts with ``start <= s < end`` (half-open, so adjacent windows never share one)."""
    starts = _starts(plan)
    return _without(itertools.takewhile(lambda s: s < end, starts[bisect_left(starts, start):]), exdates)


# --------------------------------------------------------------------------------------------
# One session at a time: blackout days, moves, alternatives when someone declines.

DateRanges = tuple[tuple[date, date], ...]
# A moved session stays in the week (Mon–Sun, series zone) of its planned start, so the two are
# always less than this apart; that bounds every search for "the next session".
MAX_MOVE = timedelta(days=7)
MAX_EXTRA_SESSIONS = 100


def inside_both(pair: Pair, start: datetime) -> bool:
    """Whether a session of the pair at ``start`` lies inside both people's working hours."""
    return all(_inside_hours(p, start, pair.duration_minutes) for p in pair.people)


def outside_whose_hours(pair: Pair, start: datetime) -> list[Person]:
    """The people for whom a session at ``start`` is outside working hours (none: it fits)."""
    return [p for p in pair.people if not _inside_hours(p, start, pair.duration_minutes)]


def outside_hours(pair: Pair, plan: SeriesPlan) -> list[datetime]:
    """The planned starts that fall outside someone's working hours (DST gaps between zones)."""
    return [s for s in occurrences(plan) if not inside_both(pair, s)]


def blocked_reason(pair: Pair, start: datetime, blackout: DateRanges = ()) -> dict | None:
    """Why nobody should meet on the day of ``start`` (a phrase): a programme blackout day or
    someone out of office, each judged on the date in that person's own zone. None when the day is free."""
    for person in pair.people:
        day = start.astimezone(ZoneInfo(person.timezone)).date()
        if _within(day, blackout):
            return phrase("refused.blackout", day=a_day(day))
        if _within(day, person.out_of_office):
            return phrase("refused.away", name=person.name, day=a_day(day))
    return None


def _within(day: date, ranges: DateRanges) -> bool:
    return any(first <= day <= last for first, last in ranges)


def skip_blocked(plan: SeriesPlan, pair: Pair, blackout: DateRanges = ()) -> tuple[SeriesPlan, tuple[datetime, ...]]:
    """The plan without sessions on blocked days, and the EXDATEs that skip them.

    Leading blocked sessions move DTSTART to the first free one (no EXDATE on DTSTART, which
    some clients still show); with COUNT, each later skipped session adds one at the end, so
    the pair still gets its number of sessions. With UNTIL the programme's last day stands.
    """
    starts = occurrences(plan)
    first = next((s for s in starts if blocked_reason(pair, s, blackout) is None), None)
    if first is None:
        raise UserError(f"pair {pair.pair_id}: every planned session falls on a blackout or out-of-office day",
                        ["shorten [program] blackout_dates or the out-of-office ranges in the roster"])
    plan = replace(plan, first_start=first)
    wanted = plan.count
    for _ in range(MAX_EXTRA_SESSIONS):
        skipped = tuple(s for s in occurrences(plan) if blocked_reason(pair, s, blackout) is not None)
        if wanted is None or plan.count == wanted + len(skipped):
            return plan, skipped
        plan = _with_count(plan, wanted + len(skipped))
    raise UserError(f"pair {pair.pair_id}: blackout and out-of-office days skip more than {MAX_EXTRA_SESSIONS} sessions",
                    ["shorten [program] blackout_dates or the out-of-office ranges in the roster"])


def _with_count(plan: SeriesPlan, count: int) -> SeriesPlan:
    """Same rule, another COUNT (the BYDAY of a monthly rule must not be recomputed)."""
    return replace(plan, count=count, rrule=re.sub(r"COUNT=\d+", f"COUNT={count}", plan.rrule))


def in_same_week(planned: datetime, tzid: str, weekday: int | None, at: time | None) -> datetime:
    """``weekday`` at ``at`` in the week (Monday to Sunday, in ``tzid``) of ``planned``; a part
    left out keeps the planned one ("RESCHEDULE 15:00" = same day, later)."""
    zone = ZoneInfo(tzid)
    local = planned.astimezone(zone)
    day = local.date() + timedelta(days=(local.weekday() if weekday is None else weekday) - local.weekday())
    return datetime.combine(day, local.time() if at is None else at, zone)


def next_actual(plan: SeriesPlan, after: datetime, exdates: Iterable[datetime] = (),
                moved: Iterable[tuple[datetime, datetime]] = ()) -> tuple[datetime, datetime] | None:
    """The session that happens first strictly after ``after``: (planned start, actual start).

    The planned start names the session (its token, its RECURRENCE-ID); the actual start is
    when it happens, which differs for a moved session and may even reorder two sessions.
    """
    moves = {old.astimezone(UTC): new for old, new in moved}
    skipped = {e.astimezone(UTC) for e in exdates}
    zone = ZoneInfo(plan.tzid)
    best: tuple[datetime, datetime] | None = None
    starts = _starts(plan)
    for planned in starts[bisect_right(starts, after - MAX_MOVE):]:
        if best is not None and planned - MAX_MOVE > best[1]:
            break
        if planned.astimezone(UTC) in skipped:
            continue
        actual = moves.get(planned.astimezone(UTC), planned).astimezone(zone)
        if actual > after and (best is None or actual < best[1]):
            best = (planned, actual)
    return best


def alternative_starts(pair: Pair, around: datetime, *, not_before: datetime,
                       busy: Mapping[str, list[BusyTime]] | None = None, avoid: Iterable[datetime] = (),
                       blackout: DateRanges = (), limit: int = 3) -> list[datetime]:
    """Up to ``limit`` other starts in the week of ``around`` (mentee's zone) for a declined session.

    Each lies inside both people's working hours, after ``not_before``, on no blocked day, clear
    of ``busy`` and of every session in ``avoid`` (the declined one included). Nearest to the
    original time of day first, one per day while days last; returned in time order.
    """
    zone = ZoneInfo(pair.mentee.timezone)
    local = around.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    length = timedelta(minutes=pair.duration_minutes)
    busy_by_person = _busy_intervals(pair, busy or {})
    booked = _merged(BusyTime(a, a + length) for a in [around, *avoid])
    ranked = []
    for slot in _candidates(pair):
        start = datetime.combine(monday + timedelta(days=slot.weekday), slot.start, zone)
        if (start <= not_before or not inside_both(pair, start) or _clashes([booked], start, pair.duration_minutes)
                or _clashes(busy_by_person, start, pair.duration_minutes) or blocked_reason(pair, start, blackout)):
            continue
        gap = abs((slot.start.hour - local.hour) * 60 + slot.start.minute - local.minute)
        ranked.append((gap, abs(slot.weekday - local.weekday()), start))
    ranked.sort()
    chosen: list[datetime] = []
    for _, _, start in ranked:  # one per day first ...
        if len(chosen) < limit and all(start.date() != c.date() for c in chosen):
            chosen.append(start)
    for _, _, start in ranked:  # ... then fill up
        if len(chosen) < limit and start not in chosen:
            chosen.append(start)
    return sorted(chosen)


# Weekday words people write after RESCHEDULE, in the languages the templates use. Full names
# and English abbreviations win over the short forms, which are also ordinary words ("so", "do").
_DAY_NAMES = (
    "monday mon montag lundi lunes maandag segunda 月曜日 月曜",
    "tuesday tue tues dienstag mardi martes dinsdag terça terca 火曜日 火曜",
    "wednesday wed mittwoch mercredi miércoles miercoles woensdag quarta 水曜日 水曜",
    "thursday thu thur thurs donnerstag jeudi jueves donderdag quinta 木曜日 木曜",
    "friday fri freitag vendredi viernes vrijdag sexta 金曜日 金曜",
    "saturday sat samstag samedi sábado sabado zaterdag 土曜日 土曜",
    "sunday sun sonntag dimanche domingo zondag 日曜日 日曜",
)
_DAY_SHORT = ("mo lun ma seg", "di mar ter", "mi mer mié mie wo qua", "do jeu jue qui",
              "fr ven vie vr", "sa sam sáb sab za", "so dim dom zo")
_DAY_WORDS = [{w: n for n, words in enumerate(tier) for w in words.split()} for tier in (_DAY_NAMES, _DAY_SHORT)]
_CLOCK = re.compile(r"(?<![\d:.])(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?\s*(a\.?\s?m\.?|p\.?\s?m\.?|h\b|uhr\b)?", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def parse_day_time(text: str) -> tuple[int | None, time | None]:
    """``"Thu 14:00"``, ``"Thursday at 2:30pm"``, ``"jeudi 14h"``, ``"15.30"`` → (weekday, time).

    Either part may be missing (None) but not both. A bare number is not a time ("Thu 3"
    could be a date or 3 in the morning): it is refused with a hint rather than guessed.
    Raises PhraseError (a ValueError) with a sentence that can go back to the person, in their language.
    """
    words = [w.casefold() for w in _WORD.findall(text)]
    day = next((tier[w] for tier in _DAY_WORDS for w in words if w in tier), None)
    clocks = list(_CLOCK.finditer(text))
    at = next((t for t in map(_clock, clocks) if t is not None), None)
    if at is None and clocks:
        raise PhraseError(phrase("refused.unclear_time", text=clocks[0][0].strip()))
    if day is None and at is None:
        raise PhraseError(phrase("refused.unreadable", text=text.strip()))
    return day, at


def _clock(match: re.Match[str]) -> time | None:
    hour, minute, suffix = int(match[1]), int(match[2] or 0), (match[3] or "").lower().replace(".", "").replace(" ", "")
    if match[2] is None and not suffix:
        return None
    if suffix in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)
