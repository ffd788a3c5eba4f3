"""Slot choice across real zones, the RRULE text and its occurrences (no mocks: real tz data)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from rmdaemon.errors import UserError
from rmdaemon.model import BusyTime, Pair, Person, SeriesPlan, Slot, WorkingHours
from rmdaemon.config.parse import parse_slot
from rmdaemon.planning import day_hour_counts, describe_spread, occurrences, occurrences_between, plan_series

UTC = timezone.utc
LONDON, NYC, KOLKATA = ZoneInfo("Europe/London"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")
WEEKDAYS = (0, 1, 2, 3, 4)


def person(name: str, zone: str, hours: str = "09:00-17:00", days: tuple[int, ...] = WEEKDAYS) -> Person:
    start, end = (time.fromisoformat(t) for t in hours.split("-"))
    return Person(name, f"{name}@example.com", zone, WorkingHours(start, end, days))


def pair(mentor: Person, mentee: Person, *, cadence: str = "weekly", minutes: int = 60,
         preferred: Slot | None = None, pair_id: str = "P1") -> Pair:
    return Pair(pair_id, mentor, mentee, "goal", "track", cadence, minutes, preferred, "active", row=3)


def plan(p: Pair, start: date = date(2027, 1, 4), sessions: int | None = 4, end: date | None = None,
         not_before: datetime = datetime(2027, 1, 1, tzinfo=UTC), **kw):
    return plan_series(p, start_date=start, sessions=sessions, end_date=end, not_before=not_before, **kw)


def slot_of(start: datetime) -> Slot:
    return Slot(start.weekday(), start.time())


def inside(who: Person, start: datetime, minutes: int) -> bool:
    """Independent check: the session's local start and end lie in who's hours on one of who's days."""
    zone, hours = ZoneInfo(who.timezone), who.working_hours
    local = start.astimezone(zone)
    local_end = (start + timedelta(minutes=minutes)).astimezone(zone)
    return (local.weekday() in hours.days and local.date() == local_end.date()
            and hours.start <= local.time() and local_end.time() <= hours.end)


# --- slot choice across zones -------------------------------------------------------------------

def test_london_new_york_fits_every_week_across_the_march_dst_gap() -> None:
    # London afternoons = New York 08:00-12:00 in winter but 09:00-13:00 while only the US has moved
    # (14-28 March 2027): 08:00 New York fits the first weeks only, so it must not be chosen.
    p = pair(person("ann", "Europe/London", "13:00-17:00"), person("bob", "America/New_York", "08:00-17:00"))
    series = plan(p, start=date(2027, 3, 1), sessions=8, not_before=datetime(2027, 2, 1, tzinfo=UTC))
    starts = occurrences(series)
    assert series.tzid == "America/New_York" and series.first_start.tzinfo == NYC
    assert slot_of(series.first_start) == Slot(0, time(9, 0))
    assert len(starts) == 8 and all(inside(x, s, 60) for s in starts for x in p.people)
    assert {s.time() for s in starts} == {time(9, 0)}  # the mentee's wall clock never moves
    london = [s.astimezone(LONDON).time() for s in starts]
    assert london[0] == time(14, 0) and london[2] == time(13, 0) and london[4] == time(14, 0)


def test_london_kolkata_pair_lands_in_the_morning_overlap() -> None:
    p = pair(person("ann", "Europe/London"), person("raj", "Asia/Kolkata"))
    series = plan(p, start=date(2027, 3, 15), sessions=4)  # crosses the UK change on 28 March
    assert slot_of(series.first_start) == Slot(0, time(14, 30))  # = 09:00 GMT, the earliest fit
    starts = occurrences(series)
    assert [s.astimezone(LONDON).time() for s in starts] == [time(9), time(9), time(10), time(10)]
    assert all(inside(x, s, 60) for s in starts for x in p.people)


def test_new_york_kolkata_with_wide_hours_uses_the_new_york_morning() -> None:
    p = pair(person("nia", "America/New_York", "07:00-21:00"), person("raj", "Asia/Kolkata", "06:00-23:00"))
    series = plan(p)
    assert slot_of(series.first_start) == Slot(0, time(17, 30))
    assert series.first_start.astimezone(NYC) == datetime(2027, 1, 4, 7, 0, tzinfo=NYC)


def test_working_days_count_in_each_persons_own_zone() -> None:
    # Kolkata Monday 06:00-08:00 is Sunday evening in New York.
    mentee = person("raj", "Asia/Kolkata", "06:00-08:00", days=(0,))
    with pytest.raises(UserError):
        plan(pair(person("nia", "America/New_York", "07:00-22:00"), mentee))
    weekend_mentor = person("nia", "America/New_York", "07:00-22:00", days=(6,))
    series = plan(pair(weekend_mentor, mentee))
    assert series.first_start.astimezone(NYC).weekday() == 6


def test_no_overlap_raises_user_error_naming_pair_zones_hours_and_fix() -> None:
    p = pair(person("ann", "Europe/London"), person("ken", "Asia/Tokyo"), pair_id="P42")
    with pytest.raises(UserError) as caught:
        plan(p)
    text = str(caught.value)
    for expected in ("P42", "roster row 3", "Europe/London", "Asia/Tokyo", "09:00-17:00", "widen"):
        assert expected in text


def test_preferred_slot_wins_a_tie() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"), preferred=Slot(2, time(14, 0)))
    assert slot_of(plan(p).first_start) == Slot(2, time(14, 0))


def test_preferred_slot_off_the_grid_is_still_honoured() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"), preferred=Slot(3, time(10, 10)))
    assert slot_of(plan(p).first_start) == Slot(3, time(10, 10))


def test_preferred_slot_outside_hours_is_ignored() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"), preferred=Slot(2, time(20, 0)))
    assert slot_of(plan(p).first_start) == Slot(0, time(9, 0))


def test_preferred_slot_does_not_beat_a_slot_that_fits_more_weeks() -> None:
    p = pair(person("ann", "Europe/London", "13:00-17:00"), person("bob", "America/New_York", "08:00-17:00"),
             preferred=Slot(0, time(8, 0)))
    series = plan(p, start=date(2027, 3, 1), sessions=8, not_before=datetime(2027, 2, 1, tzinfo=UTC))
    assert slot_of(series.first_start) == Slot(0, time(9, 0))


def test_taken_slots_spread_identical_pairs_to_another_day_and_hour() -> None:
    mentor, mentee = person("ann", "Europe/London"), person("cat", "Europe/London")
    first = plan(pair(mentor, mentee, pair_id="P1"))
    taken = {(first.first_start.weekday(), first.first_start.time()): 1}
    second = plan(pair(mentor, mentee, pair_id="P2"), taken=taken)
    assert slot_of(first.first_start) == Slot(0, time(9, 0))
    assert slot_of(second.first_start) == Slot(1, time(10, 0))


def test_forty_pairs_without_a_wish_spread_over_the_week_and_the_day() -> None:
    """The issue's measure: 40 pairs, same zones, no preferred slot, on at least four weekdays and
    no more than a quarter on any one; and no hour of the day takes more than its share either."""
    taken: Counter = Counter()
    for n in range(40):
        p = pair(person(f"m{n}", "Asia/Kolkata", "10:00-18:00"), person(f"e{n}", "Europe/Berlin"), pair_id=f"P{n}")
        series = plan(p, taken=taken)
        assert all(inside(x, s, 60) for s in occurrences(series) for x in p.people)
        taken[(series.first_start.weekday(), series.first_start.time())] += 1
    days, hours = day_hour_counts(taken)
    assert len(days) >= 4 and max(days.values()) <= 40 // 4, days
    assert max(hours.values()) - min(hours.values()) <= 1, hours  # 09:00-13:00 Berlin is what both share
    assert describe_spread(taken).startswith("40 series by weekday: Mon 8, Tue 8, Wed 8, Thu 8, Fri 8; by hour")


def test_busy_time_moves_the_slot_and_touching_is_not_a_clash() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"))
    mondays = [datetime(2027, 1, 4, 9, tzinfo=LONDON) + timedelta(weeks=w) for w in range(4)]
    busy = {"ANN@Example.com": [BusyTime(m, m + timedelta(hours=1)) for m in mondays]}
    assert slot_of(plan(p, busy=busy).first_start) == Slot(0, time(10, 0))


def test_one_busy_week_is_enough_to_prefer_a_free_slot() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"))
    third_monday = datetime(2027, 1, 18, 9, 30, tzinfo=LONDON).astimezone(UTC)
    busy = {"cat@example.com": [BusyTime(third_monday, third_monday + timedelta(minutes=15))]}
    assert slot_of(plan(p, busy=busy).first_start) == Slot(0, time(9, 45))


def test_a_long_busy_block_counts_even_with_short_ones_inside_it() -> None:
    p = pair(person("ann", "Europe/London"), person("cat", "Europe/London"))
    mondays = [datetime(2027, 1, 4, 8, tzinfo=LONDON) + timedelta(weeks=w) for w in range(4)]
    blocks = [BusyTime(m, m + timedelta(hours=4)) for m in mondays]
    inner = [BusyTime(m + timedelta(minutes=30), m + timedelta(minutes=45)) for m in mondays]
    assert slot_of(plan(p, busy={"ann@example.com": blocks + inner}).first_start) == Slot(0, time(12, 0))


# --- first occurrence -----------------------------------------------------------------------------

def london_pair(cadence: str = "weekly", preferred: Slot = Slot(1, time(15, 0))) -> Pair:
    return pair(person("ann", "Europe/London"), person("cat", "Europe/London"), cadence=cadence,
                preferred=preferred)


def test_first_occurrence_is_strictly_after_not_before() -> None:
    at_start = datetime(2027, 1, 5, 15, tzinfo=LONDON)
    assert plan(london_pair(), not_before=at_start).first_start == at_start + timedelta(weeks=1)
    just_before = at_start - timedelta(minutes=1)
    assert plan(london_pair(), not_before=just_before).first_start == at_start


def test_first_occurrence_follows_a_late_not_before_over_an_early_start_date() -> None:
    series = plan(london_pair(), start=date(2027, 1, 4), not_before=datetime(2027, 2, 10, tzinfo=UTC))
    assert series.first_start == datetime(2027, 2, 16, 15, tzinfo=LONDON)


# --- RRULE text and occurrences -------------------------------------------------------------------

def test_weekly_rrule_and_wall_clock_across_uk_dst() -> None:
    series = plan(london_pair(), start=date(2027, 3, 15), sessions=4)
    assert series.rrule == "FREQ=WEEKLY;BYDAY=TU;COUNT=4" and series.count == 4 and series.until is None
    starts = occurrences(series)
    assert [s.date() for s in starts] == [date(2027, 3, d) for d in (16, 23, 30)] + [date(2027, 4, 6)]
    assert {s.time() for s in starts} == {time(15, 0)}
    assert [s.utcoffset() for s in starts] == [timedelta(0)] * 2 + [timedelta(hours=1)] * 2


def test_biweekly_rrule() -> None:
    series = plan(london_pair("biweekly"), sessions=3)
    assert series.rrule == "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3"
    assert [s.date() for s in occurrences(series)] == [date(2027, 1, 5), date(2027, 1, 19), date(2027, 2, 2)]


def test_monthly_rrule_keeps_the_second_tuesday() -> None:
    series = plan(london_pair("monthly"), start=date(2027, 1, 11), sessions=4)
    assert series.rrule == "FREQ=MONTHLY;BYDAY=2TU;COUNT=4"
    starts = occurrences(series)
    assert [s.date() for s in starts] == [date(2027, 1, 12), date(2027, 2, 9), date(2027, 3, 9), date(2027, 4, 13)]
    assert {s.time() for s in starts} == {time(15, 0)}


def test_monthly_rrule_from_a_fifth_weekday_means_the_last_one() -> None:
    series = plan(london_pair("monthly"), start=date(2027, 3, 29), sessions=4)
    assert series.rrule == "FREQ=MONTHLY;BYDAY=-1TU;COUNT=4"
    assert [s.date() for s in occurrences(series)] == [
        date(2027, 3, 30), date(2027, 4, 27), date(2027, 5, 25), date(2027, 6, 29)]


def test_until_is_utc_end_of_the_local_end_date() -> None:
    p = pair(person("ann", "America/New_York"), person("bob", "America/New_York"), preferred=Slot(1, time(15)))
    series = plan(p, sessions=None, end=date(2027, 1, 19))
    assert series.rrule == "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270120T045959Z"
    assert series.count is None and series.until == datetime(2027, 1, 20, 4, 59, 59, tzinfo=UTC)
    assert occurrences(series)[-1] == datetime(2027, 1, 19, 15, tzinfo=NYC)


def test_until_in_a_zone_ahead_of_utc_still_includes_a_late_session_on_the_end_date() -> None:
    p = pair(person("raj", "Asia/Kolkata", "06:00-23:00"), person("ravi", "Asia/Kolkata", "06:00-23:00"),
             preferred=Slot(1, time(22, 0)))
    series = plan(p, sessions=None, end=date(2027, 1, 19))
    assert series.rrule.endswith("UNTIL=20270119T182959Z")
    assert occurrences(series)[-1] == datetime(2027, 1, 19, 22, tzinfo=KOLKATA)


def test_end_date_before_any_session_is_a_user_error() -> None:
    with pytest.raises(UserError, match="end_date"):
        plan(london_pair(), sessions=None, end=date(2026, 12, 1))


def test_exactly_one_of_sessions_or_end_date() -> None:
    with pytest.raises(ValueError):
        plan(london_pair(), sessions=3, end=date(2027, 3, 1))


def test_exdates_are_removed_whatever_zone_they_are_given_in() -> None:
    series = plan(london_pair(), sessions=4)
    all_starts = occurrences(series)
    skipped = all_starts[1].astimezone(UTC)
    assert occurrences(series, [skipped]) == [all_starts[0], *all_starts[2:]]


def test_occurrences_between_is_half_open_and_drops_exdates_in_any_zone() -> None:
    series = plan(london_pair(), sessions=4)
    first, second, third, fourth = occurrences(series)
    assert occurrences_between(series, first - timedelta(seconds=1), second) == [first]
    assert occurrences_between(series, first, fourth, exdates=[second.astimezone(NYC)]) == [first, third]
    assert occurrences_between(series, fourth + timedelta(seconds=1), fourth + timedelta(days=90)) == []
    assert occurrences_between(series, second, fourth) == [second, third]
    assert occurrences_between(series, second, fourth, exdates=[third]) == [second]


def test_occurrences_are_aware_in_the_plan_zone() -> None:
    series = plan(pair(person("ann", "Europe/London"), person("raj", "Asia/Kolkata")))
    assert {s.tzinfo for s in occurrences(series)} == {KOLKATA}


# --- cross-check against an independent RRULE engine ---------------------------------------------

def ics_roundtrip_starts(series) -> list[datetime]:
    """Write the plan as a real VEVENT, re-read the bytes, and expand it with recurring_ical_events."""
    event = icalendar.Event()
    event.add("uid", "p1@example.com")
    event.add("dtstart", series.first_start)
    event.add("dtend", series.first_start + timedelta(minutes=series.duration_minutes))
    event.add("rrule", icalendar.vRecur.from_ical(series.rrule))
    cal = icalendar.Calendar()
    cal.add("prodid", "-//rmdaemon test//EN")
    cal.add("version", "2.0")
    cal.add_component(event)
    cal.add_missing_timezones()
    parsed = icalendar.Calendar.from_ical(cal.to_ical())
    found = recurring_ical_events.of(parsed).between(date(2026, 1, 1), date(2029, 1, 1))
    return sorted(e["DTSTART"].dt for e in found)


@pytest.mark.parametrize("cadence, start, sessions, end", [
    ("weekly", date(2027, 3, 1), 8, None),
    ("biweekly", date(2027, 2, 1), None, date(2027, 11, 30)),
    ("monthly", date(2027, 3, 29), 10, None),
    ("monthly", date(2027, 1, 11), None, date(2027, 12, 14)),
])
def test_occurrences_match_recurring_ical_events(cadence: str, start: date, sessions: int | None,
                                                 end: date | None) -> None:
    p = pair(person("ann", "Europe/London", "13:00-17:00"), person("bob", "America/New_York", "08:00-17:00"),
             cadence=cadence)
    series = plan(p, start=start, sessions=sessions, end=end, not_before=datetime(2027, 1, 1, tzinfo=UTC))
    ours = occurrences(series)
    assert len(ours) > 3
    assert [s.astimezone(UTC) for s in ours] == [s.astimezone(UTC) for s in ics_roundtrip_starts(series)]


# --- parse_slot -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Tue 15:00", Slot(1, time(15, 0))),
    ("tuesday 9:05", Slot(1, time(9, 5))),
    ("  SUN   23:30 ", Slot(6, time(23, 30))),
])
def test_parse_slot(text: str, expected: Slot) -> None:
    assert parse_slot(text) == expected


@pytest.mark.parametrize("text", ["", "Tue", "Tu 15:00", "15:00 Tue", "Tue 25:00", "Tue 3pm", "Tuesd 15:00"])
def test_parse_slot_rejects_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_slot(text)


def test_series_starting_at_the_same_instant_in_two_zones_keep_their_own_wall_clocks():
    """14:00 London and 09:00 New York are the same instant in January; in the weeks between the
    US and the EU clock changes they are an hour apart. (Parsed rules are shared between plans:
    the zone must be part of what makes two plans alike.)"""
    london = SeriesPlan("A", "Europe/London", datetime(2027, 1, 4, 14, tzinfo=ZoneInfo("Europe/London")), 45, "weekly",
                        "FREQ=WEEKLY;BYDAY=MO;COUNT=12", 12)
    new_york = SeriesPlan("B", "America/New_York", datetime(2027, 1, 4, 9, tzinfo=ZoneInfo("America/New_York")), 45,
                          "weekly", "FREQ=WEEKLY;BYDAY=MO;COUNT=12", 12)
    assert london.first_start == new_york.first_start
    assert {s.time() for s in occurrences(london)} == {time(14)}
    assert {s.time() for s in occurrences(new_york)} == {time(9)}
    apart = [a for a, b in zip(occurrences(london), occurrences(new_york)) if a != b]
    assert [a.date() for a in apart] == [date(2027, 3, 15), date(2027, 3, 22)]
