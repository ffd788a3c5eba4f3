"""Working hours from Exchange: a person whose roster row leaves the hours empty is planned inside
the hours they keep in Outlook (GetUserAvailability carries them with the busy times), unless the
roster gives hours of its own or the mailbox keeps them in a zone whose clock is not the person's.

The real daemon jobs run through the CLI against the EWS test server; what is asserted is where the
sessions land in the attendees' own calendars and what the run and the log say.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rmdaemon.backends.exchange import ExchangeBackend
from rmdaemon.config import ExchangeBackendSettings
from rmdaemon.model import Person, WorkingHours
from programme import status
from test_exchange_programme import SECRET_ENV, T0, T1, ExchangeProgramme, exchange_programme, opt_in_all
from tests.servers.ews.fixtures import PROGRAMME, SERVICE_USER
from tests.servers.ews.server import EwsServer
from tests.servers.ews.store import Hours

LONDON = ZoneInfo("Europe/London")
MENTOR, MENTEE = "ann.mentor@example.com", "ben.mentee@example.com"
HEADER = "pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_working_hours,mentee_working_hours"
WEEK = (0, 1, 2, 3, 4)


def roster(mentor_hours: str = "", mentee_hours: str = "") -> str:
    """One pair, both in [program] timezone (Europe/London); the config says 09:00-17:00 Mon-Fri."""
    return f"{HEADER}\nP01,Ann Mentor,{MENTOR},Ben Mentee,{MENTEE},Learn the new tools,{mentor_hours},{mentee_hours}\n"


def hours(start: int, end: int, days: tuple[int, ...] = WEEK, zone: str = "Europe/London") -> Hours:
    return Hours(zone, start * 60, end * 60, days)


def book(prog: ExchangeProgramme, capsys: pytest.CaptureFixture[str]) -> str:
    """Consent from both, then the booking tick; returns what ``run`` printed for it."""
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    capsys.readouterr()
    assert prog.run(T1) == 0
    return capsys.readouterr().out


def sessions_seen_by(prog: ExchangeProgramme, address: str) -> list[tuple[datetime, datetime]]:
    """(start, end) in London time of every session in that attendee's own calendar."""
    (item,) = prog.ews.control.calendar(address)
    return [(o.start.astimezone(LONDON), o.end.astimezone(LONDON))
            for o in prog.ews.control.occurrences(item) if o.index not in item.deleted_occurrences]


def all_within(sessions: list[tuple[datetime, datetime]], first: time, last: time, days: tuple[int, ...] = WEEK) -> bool:
    return bool(sessions) and all(s.weekday() in days and first <= s.time() and e.time() <= last for s, e in sessions)


def test_a_person_is_booked_inside_the_hours_they_keep_in_outlook(tmp_path, ews_server, monkeypatch, capsys):
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster())
    prog.ews.control.set_working_hours(MENTOR, hours(7, 10, days=(1, 2, 3)))  # early starts, Tuesday to Thursday
    prog.ews.control.set_working_hours(MENTEE, hours(7, 11))
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    capsys.readouterr()
    assert prog.run(T1, "--dry-run") == 0  # the preview plans as the run will
    assert "would book series" in (preview := capsys.readouterr().out) and " 07:" in preview.split("would book series")[1]
    assert prog.run(T1) == 0
    out = capsys.readouterr().out
    for address in (MENTOR, MENTEE):  # though the config says 09:00-17:00
        assert all_within(sessions_seen_by(prog, address), time(7), time(10), days=(1, 2, 3)), sessions_seen_by(prog, address)
    assert f"working hours from Exchange: {MENTOR} 07:00-10:00 Tue,Wed,Thu; {MENTEE} 07:00-11:00 Mon,Tue,Wed,Thu,Fri" in out
    assert prog.ews.counts["GetUserAvailabilityRequest"] == 2  # the preview's and the run's: none for the hours


def test_hours_given_in_the_roster_win_over_exchange(tmp_path, ews_server, monkeypatch, capsys):
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster(mentee_hours="13:00-16:00"))
    prog.ews.control.set_working_hours(MENTOR, hours(12, 17))
    prog.ews.control.set_working_hours(MENTEE, hours(7, 11))  # would leave no overlap with the mentor's afternoons
    out = book(prog, capsys)
    assert all_within(sessions_seen_by(prog, MENTEE), time(13), time(16))
    assert f"working hours from Exchange: {MENTOR} 12:00-17:00" in out and MENTEE not in out.split("Exchange:")[1]


def test_hours_kept_in_a_zone_with_another_clock_are_not_used_and_the_log_says_whose(tmp_path, ews_server, monkeypatch,
                                                                                      capsys, caplog):
    """The mentor's mailbox keeps 07:00-09:00 New York time but the roster puts her in London: not
    used as they are (she would meet at 07:00 London), nor converted (12:00 London, on a guess)."""
    caplog.set_level(logging.WARNING)
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster())
    prog.ews.control.set_working_hours(MENTOR, hours(7, 9, zone="America/New_York"))
    prog.ews.control.set_working_hours(MENTEE, hours(7, 17))
    book(prog, capsys)
    sessions = sessions_seen_by(prog, MENTOR)
    assert all_within(sessions, time(9), time(17)) and sessions[0][0].time() < time(12), sessions
    (warning,) = [r.getMessage() for r in caplog.records if "working hours from Exchange" in r.getMessage()]
    assert MENTOR in warning and MENTEE not in warning and "Europe/London" in warning, warning


def test_hours_that_differ_from_day_to_day_fall_back_to_the_config(tmp_path, ews_server, monkeypatch, capsys, caplog):
    caplog.set_level(logging.WARNING)
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster())
    prog.ews.control.set_working_hours(MENTOR, Hours("Europe/London", periods=(((0, 1, 2, 3), 7 * 60, 9 * 60),
                                                                              ((4,), 7 * 60, 8 * 60))))
    prog.ews.control.set_working_hours(MENTEE, hours(7, 17))
    book(prog, capsys)
    assert all_within(sessions_seen_by(prog, MENTEE), time(9), time(17))
    assert any(MENTOR in r.getMessage() and "differ from day to day" in r.getMessage() for r in caplog.records)


def test_other_times_offered_for_a_declined_session_lie_inside_the_exchange_hours(tmp_path, ews_server, monkeypatch, capsys):
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster())
    for address in (MENTOR, MENTEE):
        prog.ews.control.set_working_hours(address, hours(7, 9))  # [program] working_hours start at 09:00
    book(prog, capsys)
    first = sessions_seen_by(prog, MENTEE)[1][0]
    prog.ews.control.respond(MENTOR, prog.docs()["P01"]["series"]["uid"], "Decline", occurrence_start=first)
    assert prog.run(T1 + timedelta(hours=1)) == 0
    (offer,) = prog.outbox("repair")
    text = offer.get_body(("plain",)).get_content()
    offered = [line.split(". ", 1)[1] for line in text.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert offered, text
    for option in offered:  # e.g. "Tue 12 Jan 2027 07:45 GMT"
        clock = time.fromisoformat(next(w for w in option.split() if ":" in w))
        assert time(7) <= clock and (datetime.combine(first.date(), clock) + timedelta(minutes=45)).time() <= time(9), option


# -- the backend on its own: whose hours, in which zone ---------------------------------------------------------

NINE_TO_FIVE = WorkingHours(time(9), time(17), WEEK)


@pytest.mark.parametrize(("mailbox_zone", "person_zone", "used"), [
    ("Europe/London", "Europe/London", True),
    ("Europe/Dublin", "Europe/London", True),  # another name, the same clock all year
    ("America/New_York", "America/New_York", True),  # changes on the 2nd and 1st Sundays
    ("Australia/Sydney", "Australia/Sydney", True),  # summer across New Year
    ("Asia/Kolkata", "Asia/Kolkata", True),  # half an hour, no daylight saving
    ("UTC", "Europe/London", False),  # the same in winter only
    ("Europe/London", "Europe/Berlin", False),
    ("America/New_York", "Europe/London", False),
])
def test_exchange_hours_are_given_in_the_persons_zone_only_when_both_keep_the_same_clock(
        ews_server: EwsServer, mailbox_zone: str, person_zone: str, used: bool) -> None:
    ews_server.control.add_mailbox("pat@corp.example", hours=Hours(mailbox_zone, 7 * 60 + 30, 15 * 60, (1, 2, 3)))
    settings = ExchangeBackendSettings(service_endpoint=ews_server.url, mailbox=PROGRAMME, auth="basic", username=SERVICE_USER[0],
                                password_env=SECRET_ENV, retry_budget_seconds=2)
    backend = ExchangeBackend(settings, secret=SERVICE_USER[1])
    person = Person("Pat", "Pat@corp.example", person_zone, NINE_TO_FIVE, hours_defaulted=True)
    start = datetime(2027, 1, 4, tzinfo=ZoneInfo(person_zone))
    found = backend.free_busy([person], start, start + timedelta(days=84))  # two windows, one set of hours
    expected = {"pat@corp.example": WorkingHours(time(7, 30), time(15), (1, 2, 3))} if used else {}
    assert found.hours == expected
    assert ews_server.counts["GetUserAvailabilityRequest"] == 2


def test_reschedule_is_checked_against_the_hours_the_series_was_planned_in(tmp_path, ews_server, monkeypatch, capsys):
    """Booked at 07:00 in Outlook hours, a RESCHEDULE to another early morning is accepted (the
    config's 09:00-17:00 would refuse it) and one outside those hours is still refused."""
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=roster())
    prog.ews.control.set_working_hours(MENTOR, hours(7, 10))
    prog.ews.control.set_working_hours(MENTEE, hours(7, 10))
    book(prog, capsys)
    start = datetime.fromisoformat(status(prog, T1, capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=23))
    (agenda,) = prog.outbox("agenda.", to="ben.mentee")
    london = start.astimezone(LONDON)
    day = london + timedelta(days=1 if london.weekday() < 4 else -1)  # another weekday of the same week
    prog.reply(agenda, f"RESCHEDULE {day:%a} 07:30", start - timedelta(hours=22))
    assert prog.run(start - timedelta(hours=21)) == 0
    moved = datetime.combine(day.date(), time(7, 30), LONDON)
    assert datetime.fromisoformat(status(prog, start - timedelta(hours=21), capsys)["P01"]["next_session"]) == moved
    assert moved in prog.ews.control.live_starts(prog.series()["P01"])
    prog.reply(agenda, f"RESCHEDULE {day:%a} 15:00", start - timedelta(hours=20))
    assert prog.run(start - timedelta(hours=19)) == 0
    (refusal,) = [m for m in prog.outbox("notice", to="ben.mentee")]
    assert "outside working hours" in refusal.get_body(("plain",)).get_content()
    assert "07:00-10:00" in refusal.get_body(("plain",)).get_content()
