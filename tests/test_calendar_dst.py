"""Series across DST changes, both directions, for every cadence, as planning books them.

Europe/Berlin (last Sundays of March and October) paired with America/New_York (second Sunday
of March, first Sunday of November), so each series crosses both zones' changes and the weeks
between them when the two are an hour closer; and Kolkata (no DST) with London. Each series is
planned by ``planning.plan_series``, written by ``itip.build_request`` and expanded by
recurring_ical_events and by ICAL.js: every occurrence keeps the wall-clock time of DTSTART in
its zone and lies inside both people's working hours, each in their own zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from rmdaemon import itip, planning
from rmdaemon.model import Meeting, Pair, Person, WorkingHours
from test_calendar_readers import agreed_starts, ical_js_events, icalendar_read, inside, master

STAMP = datetime(2027, 1, 1, tzinfo=timezone.utc)

# (mentee zone, mentee hours, mentor zone, mentor hours, first day, the DST change it must cross)
CROSSINGS = {
    "berlin_spring_forward": ("Europe/Berlin", "09:00-17:00", "America/New_York", "09:00-17:00", date(2027, 3, 1), "Europe/Berlin"),
    "berlin_fall_back": ("Europe/Berlin", "09:00-17:00", "America/New_York", "09:00-17:00", date(2027, 10, 4), "Europe/Berlin"),
    "new_york_spring_forward": ("America/New_York", "09:00-17:00", "Europe/Berlin", "09:00-17:00", date(2027, 3, 1), "America/New_York"),
    "new_york_fall_back": ("America/New_York", "09:00-17:00", "Europe/Berlin", "09:00-17:00", date(2027, 10, 18), "America/New_York"),
    "london_mentee_kolkata_mentor_spring": ("Europe/London", "09:00-17:00", "Asia/Kolkata", "09:00-17:00", date(2027, 3, 8), "Europe/London"),
    "london_mentee_kolkata_mentor_autumn": ("Europe/London", "09:00-17:00", "Asia/Kolkata", "09:00-17:00", date(2027, 10, 11), "Europe/London"),
    "kolkata_mentee_london_mentor_spring": ("Asia/Kolkata", "10:00-18:00", "Europe/London", "09:00-17:00", date(2027, 3, 8), "Europe/London"),
}
SESSIONS = {"weekly": 8, "biweekly": 6, "monthly": 4}


def person(name: str, zone: str, hours: str) -> Person:
    first, last = hours.split("-")
    return Person(name, f"{name.lower()}@example.com", zone, WorkingHours(time.fromisoformat(first), time.fromisoformat(last), (0, 1, 2, 3, 4)))


def series(case: str, cadence: str) -> tuple[Pair, bytes]:
    mentee_zone, mentee_hours, mentor_zone, mentor_hours, first_day, _ = CROSSINGS[case]
    pair = Pair("P1", person("Mentor", mentor_zone, mentor_hours), person("Mentee", mentee_zone, mentee_hours),
                "goal", "general", cadence, 45, None, "active")
    not_before = datetime.combine(first_day, time(0), ZoneInfo(mentee_zone)) - timedelta(seconds=1)
    plan = planning.plan_series(pair, start_date=first_day, sessions=SESSIONS[cadence], end_date=None, not_before=not_before)
    meeting = Meeting(uid=f"rm-{case}-{cadence}@example.com", sequence=0, organizer_email="mentoring@example.com",
                      organizer_name="Mentoring", attendees=pair.people, summary="Reverse mentoring",
                      description="Goal: goal", plan=plan)
    return pair, itip.build_request(meeting, STAMP)


@pytest.mark.parametrize("cadence", SESSIONS)
@pytest.mark.parametrize("case", CROSSINGS)
def test_every_occurrence_keeps_its_local_time_and_both_peoples_hours_across_dst(case: str, cadence: str) -> None:
    pair, ics = series(case, cadence)
    event = master(icalendar_read(ics))
    zone = ZoneInfo(str(event["DTSTART"].params["TZID"]))
    assert str(zone) == pair.mentee.timezone
    starts = agreed_starts(ics)  # recurring_ical_events and ICAL.js, to the second
    assert len(starts) == SESSIONS[cadence]
    assert {s.astimezone(zone).time() for s in starts} == {event.decoded("DTSTART").time()}
    for who in pair.people:
        first, last = f"{who.working_hours.start:%H:%M}", f"{who.working_hours.end:%H:%M}"
        assert all(inside(s, 45, who.timezone, first, last) for s in starts), (who.timezone, starts)
    crossing = ZoneInfo(CROSSINGS[case][5])
    assert len({s.astimezone(crossing).utcoffset() for s in starts}) == 2  # the series really crosses the change


@pytest.mark.parametrize("case", ["berlin_spring_forward", "new_york_fall_back"])
def test_thunderbird_sees_the_tzid_and_the_same_instants(case: str) -> None:
    """ICAL.js has no zone database: the instants it reports come from our VTIMEZONE alone."""
    _, ics = series(case, "weekly")
    (event,) = ical_js_events(ics)
    assert event["start"] == f"{agreed_starts(ics)[0]:%Y-%m-%dT%H:%M:%SZ}"
    assert f"TZID={CROSSINGS[case][0]}" in ics.decode().replace("\r\n ", "")


def test_new_york_and_berlin_change_clocks_on_different_days_and_the_series_still_fits() -> None:
    """Between 14 and 28 March 2027 New York is five hours behind Berlin instead of six: a
    Berlin-afternoon slot must fit New York's morning in both stretches."""
    pair, ics = series("berlin_spring_forward", "weekly")
    starts = agreed_starts(ics)
    gaps = {(s.astimezone(ZoneInfo("Europe/Berlin")).utcoffset() - s.astimezone(ZoneInfo("America/New_York")).utcoffset())
            for s in starts}
    assert gaps == {timedelta(hours=5), timedelta(hours=6)}
