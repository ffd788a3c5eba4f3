"""iTIP in and out, checked by parsers that are not ours.

Outbound invitations are read back by icalendar, by recurring_ical_events and by ICAL.js (the
engine inside Thunderbird, run with node). ICAL.js has no zone database of its own, so it is the
reader that proves our VTIMEZONE: the Python readers resolve "Europe/London" through zoneinfo
whatever we wrote. Inbound parsing runs on our own fixtures (one client quirk per file) and on
the shared corpus of real calendar files when it is present.
"""

from __future__ import annotations

import csv
import email
import json
import random
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar, Event, vCalAddress

from rmdaemon.itip import (
    PARTSTATS,
    ItipResponse,
    build_cancel,
    build_declinecounter,
    build_request,
    read_responses,
    vtimezone,
)
from rmdaemon.model import Meeting, Person, SeriesPlan, WorkingHours
from prerequisites import ICAL_JS, SHARED_CORPORA, missing

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "itip"
JS_DIR = HERE / "js"
CORPORA = Path(__file__).parents[2] / "shared" / "corpora"
STAMP = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
OFFICE_HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))

# --------------------------------------------------------------------------------------------
# Helpers


def read_ics(ics: bytes) -> list:
    """A bare .ics file as the daemon meets it: the calendar part of an email (no METHOD on the part)."""
    return read_responses(b"Content-Type: text/calendar; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + ics)


def local(tzid: str, text: str) -> datetime:
    """``local("Europe/London", "2026-03-17 10:00")`` → aware datetime in that zone."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tzid))


def utc(text: str) -> datetime:
    """``utc("2026-03-17T10:00")`` → aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def make_meeting(
    tzid: str,
    first: str,
    rrule: str,
    *,
    exdates: tuple[str, ...] = (),
    moved: tuple[tuple[str, str], ...] = (),
    description: str = "Goal: see our product through the eyes of a new graduate.",
    sequence: int = 0,
    duration: int = 45,
) -> Meeting:
    """A pair's series as jobs hand it over; times are local wall-clock strings in ``tzid``."""
    plan = SeriesPlan("pair-1", tzid, local(tzid, first), duration, "weekly", rrule)
    return Meeting(
        uid="rm-pair-1-7c3e@rmdaemon.example.com",
        sequence=sequence,
        organizer_email="programme@example.com",
        organizer_name="Mentoring Programme",
        attendees=(
            Person("Ana Junior", "ana.junior@example.com", tzid, OFFICE_HOURS),
            Person("Bob Senior, VP", "Bob.Senior@example.com", "America/New_York", OFFICE_HOURS),
        ),
        summary="Reverse mentoring: Ana / Bob",
        description=description,
        plan=plan,
        exdates=tuple(local(tzid, d) for d in exdates),
        moved=tuple((local(tzid, a), local(tzid, b)) for a, b in moved),
    )


def wall_clock_series(tzid: str, first: str, step: timedelta, count: int) -> list[datetime]:
    """Expected UTC starts of a series that keeps its local time, computed without any RRULE."""
    start = datetime.fromisoformat(first)
    zone = ZoneInfo(tzid)
    return [(start + step * k).replace(tzinfo=zone).astimezone(timezone.utc) for k in range(count)]


def ical_js(ics: bytes) -> list[dict[str, datetime]]:
    """Occurrences as ICAL.js (Thunderbird) expands them: recurrence_id, start, end in UTC."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "ical.js").is_dir():
        missing(ICAL_JS)
    done = subprocess.run(
        [node, str(JS_DIR / "expand.mjs")], input=ics, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    return [
        {key: datetime.fromisoformat(value) for key, value in occurrence.items()}
        for occurrence in json.loads(done.stdout)
    ]


def ical_js_starts(ics: bytes) -> list[datetime]:
    return [occurrence["start"] for occurrence in ical_js(ics)]


def recurring_starts(ics: bytes) -> list[datetime]:
    """Occurrences as recurring_ical_events (icalendar + dateutil) expands them, in UTC."""
    cal = Calendar.from_ical(ics)
    events = recurring_ical_events.of(cal).between(datetime(2000, 1, 1), datetime(2100, 1, 1))
    return sorted(event.decoded("DTSTART").astimezone(timezone.utc) for event in events)


def vevents(ics: bytes) -> list[Event]:
    return Calendar.from_ical(ics).walk("VEVENT")


def master_of(ics: bytes) -> Event:
    (master,) = [e for e in vevents(ics) if "RECURRENCE-ID" not in e]
    return master


def unfolded_lines(ics: bytes) -> list[str]:
    return ics.decode().replace("\r\n ", "").split("\r\n")


# --------------------------------------------------------------------------------------------
# Occurrences as other clients compute them

SERIES = {
    "london_weekly_count_across_march_dst": (
        make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=4"),
        [utc("2026-03-17T10:00"), utc("2026-03-24T10:00"), utc("2026-03-31T09:00"),
         utc("2026-04-07T09:00")],
    ),
    "new_york_biweekly_until_across_november_dst": (
        make_meeting(
            "America/New_York",
            "2026-10-13 09:30",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20261124T235959Z",
        ),
        [utc("2026-10-13T13:30"), utc("2026-10-27T13:30"), utc("2026-11-10T14:30"),
         utc("2026-11-24T14:30")],
    ),
    "kolkata_monthly_second_wednesday_no_dst": (
        make_meeting("Asia/Kolkata", "2026-01-14 15:00", "FREQ=MONTHLY;BYDAY=2WE;COUNT=4"),
        [utc("2026-01-14T09:30"), utc("2026-02-11T09:30"), utc("2026-03-11T09:30"),
         utc("2026-04-08T09:30")],
    ),
    "london_monthly_first_thursday_across_october_dst": (
        make_meeting("Europe/London", "2026-09-03 14:00", "FREQ=MONTHLY;BYDAY=1TH;COUNT=3"),
        [utc("2026-09-03T13:00"), utc("2026-10-01T13:00"), utc("2026-11-05T14:00")],
    ),
    # Sixteen months and three DST changes: where a multi-value RDATE VTIMEZONE goes wrong.
    "london_biweekly_until_over_sixteen_months": (
        make_meeting(
            "Europe/London",
            "2026-03-03 10:00",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20270630T225959Z",
        ),
        wall_clock_series("Europe/London", "2026-03-03 10:00", timedelta(weeks=2), 35),
    ),
    "new_york_weekly_count_over_two_years": (
        make_meeting("America/New_York", "2026-09-01 16:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=104"),
        wall_clock_series("America/New_York", "2026-09-01 16:00", timedelta(weeks=1), 104),
    ),
}


@pytest.mark.parametrize("name", SERIES)
def test_thunderbird_sees_every_occurrence_at_the_planned_instant(name: str) -> None:
    meeting, expected = SERIES[name]
    assert ical_js_starts(build_request(meeting, STAMP)) == expected


@pytest.mark.parametrize("name", SERIES)
def test_recurring_ical_events_sees_every_occurrence_at_the_planned_instant(name: str) -> None:
    meeting, expected = SERIES[name]
    assert recurring_starts(build_request(meeting, STAMP)) == expected


DST_ZOO = [
    "Europe/Dublin",  # negative DST in tzdata: winter is the "daylight" period
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Auckland",  # southern hemisphere
    "America/Santiago",  # rules changed in the span
    "Asia/Tehran",  # DST abolished in 2022
    "Africa/Casablanca",  # DST suspended every Ramadan: no yearly rule
    "Asia/Gaza",  # a different rule nearly every year
    "Pacific/Apia",  # +13/+14, DST abolished in 2021
]


@pytest.mark.parametrize("tzid", DST_ZOO)
def test_thunderbird_keeps_the_local_time_in_zones_with_odd_rules(tzid: str) -> None:
    meeting = make_meeting(tzid, "2021-01-05 10:00", "FREQ=WEEKLY;COUNT=156")
    expected = wall_clock_series(tzid, "2021-01-05 10:00", timedelta(weeks=1), 156)
    assert ical_js_starts(build_request(meeting, STAMP)) == expected


def test_skipped_and_moved_occurrences_show_in_both_readers() -> None:
    meeting = make_meeting(
        "Europe/London",
        "2026-03-17 10:00",
        "FREQ=WEEKLY;BYDAY=TU;COUNT=5",
        exdates=("2026-03-24 10:00",),
        moved=(("2026-03-31 10:00", "2026-04-01 15:30"),),
    )
    ics = build_request(meeting, STAMP)
    expected = [utc("2026-03-17T10:00"), utc("2026-04-01T14:30"), utc("2026-04-07T09:00"),
                utc("2026-04-14T09:00")]
    assert ical_js_starts(ics) == expected
    assert recurring_starts(ics) == expected
    moved = next(o for o in ical_js(ics) if o["start"] == utc("2026-04-01T14:30"))
    assert moved["recurrence_id"] == utc("2026-03-31T09:00")
    assert moved["end"] == utc("2026-04-01T15:15")


def test_a_skipped_occurrence_that_was_also_moved_stays_skipped() -> None:
    meeting = make_meeting(
        "Europe/London",
        "2026-03-17 10:00",
        "FREQ=WEEKLY;BYDAY=TU;COUNT=3",
        exdates=("2026-03-24 10:00",),
        moved=(("2026-03-24 10:00", "2026-03-25 10:00"),),
    )
    ics = build_request(meeting, STAMP)
    assert len(vevents(ics)) == 1
    assert ical_js_starts(ics) == [utc("2026-03-17T10:00"), utc("2026-03-31T09:00")]


@pytest.mark.parametrize(
    ("rrule", "until_line", "last"),
    [
        ("FREQ=WEEKLY;UNTIL=20260331T100000", "UNTIL=20260331T090000Z", "2026-03-31T09:00"),
        ("FREQ=WEEKLY;UNTIL=20260331", "UNTIL=20260331T225959Z", "2026-03-31T09:00"),
        ("RRULE:FREQ=WEEKLY;UNTIL=20260331T090000Z", "UNTIL=20260331T090000Z", "2026-03-31T09:00"),
    ],
)
def test_until_is_written_in_utc_and_keeps_the_last_day(
    rrule: str, until_line: str, last: str
) -> None:
    """Outlook ends a series on the wrong day (or refuses it) when UNTIL is not UTC."""
    ics = build_request(make_meeting("Europe/London", "2026-03-17 10:00", rrule), STAMP)
    lines = unfolded_lines(ics)
    event_lines = lines[lines.index("BEGIN:VEVENT"):]
    (rrule_line,) = [line for line in event_lines if line.startswith("RRULE:")]
    assert until_line in rrule_line
    assert ical_js_starts(ics)[-1] == utc(last)


# --------------------------------------------------------------------------------------------
# VTIMEZONE


def test_zone_without_dst_gets_a_single_standard() -> None:
    tz = vtimezone("Asia/Kolkata", local("Asia/Kolkata", "2026-01-14 15:00"),
                   local("Asia/Kolkata", "2026-12-30 15:45"))
    (standard,) = tz.subcomponents
    assert standard.name == "STANDARD"
    ist = timedelta(hours=5, minutes=30)
    assert standard["TZOFFSETFROM"].td == standard["TZOFFSETTO"].td == ist


def test_dst_zone_is_written_as_yearly_rules_like_outlook_and_google() -> None:
    tz = vtimezone("Europe/London", utc("2026-03-03T10:00"), utc("2027-06-29T09:45"))
    text = tz.to_ical().decode()
    assert "RDATE" not in text
    rules = {sub.name: sub["RRULE"] for sub in tz.subcomponents}
    assert rules["DAYLIGHT"]["BYMONTH"] == [3] and rules["DAYLIGHT"]["BYDAY"] == ["-1SU"]
    assert rules["STANDARD"]["BYMONTH"] == [10] and rules["STANDARD"]["BYDAY"] == ["-1SU"]
    assert "DTSTART:20250330T010000" in text  # onset in local time before the change (GMT)


@pytest.mark.parametrize("tzid", ["Europe/London", "America/New_York", *DST_ZOO])
def test_vtimezone_offsets_match_zoneinfo_across_the_span(tzid: str) -> None:
    """Read back by icalendar from the component alone (not by name), every five hours.

    Five is coprime with 24, so the samples walk through every hour of the day.
    """
    start, end = utc("2021-01-05T00:00"), utc("2023-12-20T00:00")
    component = Calendar.from_ical(vtimezone(tzid, start, end).to_ical())
    ours, truth = component.to_tz(lookup_tzid=False), ZoneInfo(tzid)
    samples = int((end - start) / timedelta(hours=5))
    wrong = [
        moment
        for moment in (start + timedelta(hours=5 * k) for k in range(samples))
        if moment.astimezone(ours).utcoffset() != moment.astimezone(truth).utcoffset()
    ]
    assert wrong == []


# --------------------------------------------------------------------------------------------
# Shape of what we send


def test_request_carries_every_property_the_issue_lists() -> None:
    meeting = make_meeting(
        "Europe/London",
        "2026-03-03 10:00",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20270630T225959Z",
        exdates=("2026-03-17 10:00",),
        sequence=3,
    )
    ics = build_request(meeting, STAMP)
    cal = Calendar.from_ical(ics)
    assert (str(cal["METHOD"]), str(cal["VERSION"])) == ("REQUEST", "2.0")
    assert str(cal["PRODID"]).startswith("-//rmdaemon//")
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    event = master_of(ics)
    assert str(event["UID"]) == meeting.uid
    assert int(event["SEQUENCE"]) == 3
    assert event["DTSTART"].params["TZID"] == event["DTEND"].params["TZID"] == "Europe/London"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
    assert str(event["SUMMARY"]) == "Reverse mentoring: Ana / Bob"
    assert str(event["DESCRIPTION"]) == meeting.description
    assert (str(event["TRANSP"]), str(event["CLASS"]), str(event["STATUS"])) == (
        "OPAQUE", "PRIVATE", "CONFIRMED")
    assert event.categories == ["Reverse mentoring"]
    assert str(event["X-MICROSOFT-CDO-BUSYSTATUS"]) == "BUSY"
    assert str(event["X-MICROSOFT-CDO-INTENDEDSTATUS"]) == "BUSY"
    lines = unfolded_lines(ics)
    assert "DTSTAMP:20260201T120000Z" in lines
    assert "EXDATE;TZID=Europe/London:20260317T100000" in lines
    assert "RRULE:FREQ=WEEKLY;UNTIL=20270630T225959Z;INTERVAL=2;BYDAY=TU" in lines


def test_organizer_is_a_bare_mailto_and_every_attendee_is_asked_to_answer() -> None:
    event = master_of(build_request(make_meeting(
        "Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=2"), STAMP))
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:programme@example.com"
    assert organizer.params["CN"] == "Mentoring Programme"
    assert "SENT-BY" not in organizer.params
    attendees = {str(a): dict(a.params) for a in event["ATTENDEE"]}
    assert attendees == {
        "mailto:ana.junior@example.com": {
            "CN": "Ana Junior", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
            "RSVP": "TRUE", "CUTYPE": "INDIVIDUAL"},
        "mailto:Bob.Senior@example.com": {
            "CN": "Bob Senior, VP", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
            "RSVP": "TRUE", "CUTYPE": "INDIVIDUAL"},
    }


def test_every_event_we_send_has_a_fifteen_minute_display_reminder() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=3",
                           moved=(("2026-03-24 10:00", "2026-03-25 11:00"),))
    for event in vevents(build_request(meeting, STAMP)):
        (alarm,) = event.walk("VALARM")
        assert str(alarm["ACTION"]) == "DISPLAY"
        assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)
        assert str(alarm["DESCRIPTION"]) == "Reverse mentoring: Ana / Bob"


def test_moved_occurrence_is_an_override_of_the_same_series() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=3",
                           moved=(("2026-03-31 10:00", "2026-04-01 15:30"),), sequence=2)
    ics = build_request(meeting, STAMP)
    (override,) = [e for e in vevents(ics) if "RECURRENCE-ID" in e]
    assert str(override["UID"]) == meeting.uid and int(override["SEQUENCE"]) == 2
    assert "RRULE" not in override
    lines = unfolded_lines(ics)
    assert "RECURRENCE-ID;TZID=Europe/London:20260331T100000" in lines
    assert "DTSTART;TZID=Europe/London:20260401T153000" in lines


def test_bytes_are_crlf_folded_and_no_property_is_empty() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=3",
                           description="  ", moved=(("2026-03-24 10:00", "2026-03-25 11:00"),))
    for ics in (build_request(meeting, STAMP), build_cancel(meeting, STAMP),
                build_cancel(meeting, STAMP, local("Europe/London", "2026-03-24 10:00"))):
        assert ics.endswith(b"\r\n") and b"\n" not in ics.replace(b"\r\n", b"")
        assert max(len(line) for line in ics.split(b"\r\n")) <= 75
        empty = [line for line in unfolded_lines(ics) if re.fullmatch(r"[A-Z-]+(;[^:]*)?:", line)]
        assert empty == []
        assert all("DESCRIPTION" not in event for event in vevents(ics))


def sent_fixtures() -> dict[str, bytes]:
    """What each builder writes for one series, skipped and moved across a DST change."""
    meeting = make_meeting("Europe/London", "2027-03-15 09:00", "FREQ=WEEKLY;BYDAY=MO;COUNT=6", sequence=2,
                           exdates=("2027-03-22 09:00",), moved=(("2027-03-29 09:00", "2027-03-31 14:30"),))
    stamp = utc("2027-01-04T08:00")
    return {"request_london_skipped_and_moved_across_dst.ics": build_request(meeting, stamp),
            "cancel_series_london.ics": build_cancel(meeting, stamp),
            "cancel_moved_occurrence_london.ics": build_cancel(meeting, stamp, local("Europe/London", "2027-03-29 09:00")),
            "declinecounter_occurrence_london.ics": build_declinecounter(
                meeting, stamp, meeting.attendees[1], local("Europe/London", "2027-04-05 09:00"),
                "That time falls outside the working hours the series was planned in.")}


@pytest.mark.parametrize("name", sorted(sent_fixtures()))
def test_what_we_send_stays_byte_for_byte_what_the_readers_were_checked_with(name: str) -> None:
    """tests/fixtures/sent holds the bytes Outlook, Gmail and Thunderbird were checked with; a
    change to how they are written (the VTIMEZONE, say, which comes written already) must not move a byte."""
    assert sent_fixtures()[name] == (HERE / "fixtures" / "sent" / name).read_bytes()


def test_lines_are_folded_exactly_as_icalendar_folds_them() -> None:
    """itip folds ASCII lines itself (icalendar's folding steps through every character): random
    lines, thick with the escapes a fold must not split, and whole events with any text, come
    out byte for byte as icalendar writes them."""
    from icalendar.parser import Contentline

    from rmdaemon.itip import _component_lines, _fold_ascii

    rng = random.Random(1501)
    for _ in range(20_000):
        line = "".join(rng.choice("\\^;,:\" ab") for _ in range(rng.randrange(0, 300)))
        assert _fold_ascii(line) == Contentline(line).to_ical().decode()
    for _ in range(300):
        text = "".join(rng.choice(["a", " ", "\\", "^", ";", ",", "\n", "é", "日本", "😀"]) for _ in range(rng.randrange(0, 200)))
        event = Event()
        event.add("SUMMARY", text)
        event.add("DESCRIPTION", text * 2)
        event.add("ATTENDEE", vCalAddress("mailto:a@example.com"), parameters={"CN": text[:40] or "x"})
        assert _component_lines(event) == event.to_ical()


def test_cancelling_the_series_keeps_the_uid_and_marks_it_cancelled() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=6", sequence=4)
    ics = build_cancel(meeting, utc("2026-04-02T08:00"))
    cal = Calendar.from_ical(ics)
    assert str(cal["METHOD"]) == "CANCEL"
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == meeting.uid
    assert int(event["SEQUENCE"]) == 4
    assert str(event["STATUS"]) == "CANCELLED"
    assert "RECURRENCE-ID" not in event and "RRULE" in event
    assert event.decoded("DTSTAMP") == utc("2026-04-02T08:00")
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]


def test_cancelling_one_occurrence_names_it_by_recurrence_id() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=6", sequence=5)
    ics = build_cancel(meeting, STAMP, local("Europe/London", "2026-03-31 10:00"))
    (event,) = vevents(ics)
    assert str(event["UID"]) == meeting.uid and int(event["SEQUENCE"]) == 5
    assert str(event["STATUS"]) == "CANCELLED"
    assert "RRULE" not in event
    assert event.decoded("RECURRENCE-ID").astimezone(timezone.utc) == utc("2026-03-31T09:00")
    assert "RECURRENCE-ID;TZID=Europe/London:20260331T100000" in unfolded_lines(ics)


def test_cancelling_a_moved_occurrence_by_either_time_keeps_its_original_id() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=6",
                           moved=(("2026-03-31 10:00", "2026-04-02 16:00"),))
    for given in ("2026-03-31 10:00", "2026-04-02 16:00"):
        ics = build_cancel(meeting, STAMP, local("Europe/London", given))
        lines = unfolded_lines(ics)
        assert "RECURRENCE-ID;TZID=Europe/London:20260331T100000" in lines
        assert "DTSTART;TZID=Europe/London:20260402T160000" in lines


def test_mistakes_of_the_caller_are_refused_not_sent() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=6")
    with pytest.raises(ValueError, match="not an occurrence"):
        build_cancel(meeting, STAMP, local("Europe/London", "2026-03-18 10:00"))
    with pytest.raises(ValueError, match="no time zone"):
        build_request(meeting, datetime(2026, 2, 1, 12))
    with pytest.raises(ValueError, match="build_cancel"):
        build_request(replace(meeting, cancelled=True), STAMP)


# --------------------------------------------------------------------------------------------
# Inbound: our fixtures, one client quirk per file

UID_7 = "rm-pair-7-3f9c2a@rmdaemon.example.com"
EXCHANGE_DECLINE = ItipResponse(
    uid=UID_7,
    attendee="joerg.mueller@example.de",
    partstat="DECLINED",
    recurrence_id=utc("2026-07-07T08:00"),  # 10:00 in Berlin summer time
    sequence=None,
    comment="Diese Woche bin ich auf Dienstreise, nächste Woche gerne.",
    method="REPLY",
)
INBOUND = {
    "exchange_reply_declined_occurrence_windows_tzid_no_organizer_dtstamp_sequence.ics":
        [EXCHANGE_DECLINE],
    "exchange_reply_windows_tzid_without_vtimezone.ics": [EXCHANGE_DECLINE],
    "exchange_reply_accepted_customized_time_zone_name.ics": [ItipResponse(
        "rm-pair-12-a81d@rmdaemon.example.com", "dana.whitfield@example.com", "ACCEPTED",
        utc("2026-11-03T14:30"), 3, "", "REPLY")],
    "google_reply_calendar_part_and_ics_attachment_same_answer.eml": [ItipResponse(
        "rm-pair-3-c0ffee@rmdaemon.example.com", "bob.senior@example.com", "ACCEPTED",
        None, 1, "See you Tuesday!", "REPLY")],
    "thunderbird_accept_single_occurrence_without_master.eml": [ItipResponse(
        "rm-pair-21-5eed@rmdaemon.example.com", "priya.raman@example.in", "ACCEPTED",
        utc("2026-02-11T09:30"), 0, "", "REPLY")],
    "apple_reply_tentative_octet_stream_ics_attachment.eml": [ItipResponse(
        "rm-pair-30-b0b0@rmdaemon.example.com", "carla.gomez@example.es", "TENTATIVE",
        None, 4, "", "REPLY")],
    "not_icalendar_garbage.ics": [],
}


@pytest.mark.parametrize("name", INBOUND)
def test_reply_fixture_is_understood(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    read = read_responses if name.endswith(".eml") else read_ics
    assert read(raw) == INBOUND[name]


def test_every_fixture_is_tested() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(INBOUND)


def test_google_answer_is_found_in_either_part_alone() -> None:
    """Some clients keep only the text/calendar part, others only the attachment."""
    name = "google_reply_calendar_part_and_ics_attachment_same_answer.eml"
    raw = (FIXTURES / name).read_bytes()
    without_attachment = email.message_from_bytes(raw, policy=policy.default)
    removed = without_attachment.get_payload().pop()
    assert removed.get_content_type() == "application/ics"
    without_inline = email.message_from_bytes(raw, policy=policy.default)
    removed = without_inline.get_payload()[0].get_payload().pop()
    assert removed.get_content_type() == "text/calendar"
    for message in (without_attachment, without_inline):
        assert read_responses(message.as_bytes()) == INBOUND[name]


def test_exchange_reply_inside_an_email_with_windows_1252_bytes() -> None:
    ics = (FIXTURES / "exchange_reply_windows_tzid_without_vtimezone.ics").read_bytes()
    ics = ics.decode().encode("cp1252")
    message = EmailMessage()
    message["Subject"] = "Abgelehnt: Reverse mentoring"
    message.set_content("Abgelehnt.")
    message.add_attachment(ics, maintype="text", subtype="calendar",
                           params={"method": "REPLY"})
    assert read_responses(message.as_bytes()) == [EXCHANGE_DECLINE]


def test_a_mail_without_a_calendar_has_no_answers() -> None:
    raw = b"From: a@example.com\r\nSubject: Accepted: Reverse mentoring\r\n\r\nSure!\r\n"
    assert read_responses(raw) == []
    assert read_responses(b"\x00\xff not a message at all") == []


def test_a_bounce_of_our_invitation_is_not_an_answer() -> None:
    """The DSN carries our REQUEST as message/rfc822; reading it would reset real answers."""
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=2")
    invitation = EmailMessage()
    invitation["To"] = "ana.junior@example.com"
    invitation.set_content("You are invited.")
    invitation.add_attachment(build_request(meeting, STAMP), maintype="text",
                              subtype="calendar", params={"method": "REQUEST"})
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@example.com"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce.set_content("Your message could not be delivered.")
    bounce.add_attachment(invitation)
    assert read_responses(invitation.as_bytes()) != []
    assert read_responses(bounce.as_bytes()) == []


def test_our_own_request_read_back_lists_the_invited_as_not_yet_answered() -> None:
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=2",
                           sequence=1)
    read = read_ics(build_request(meeting, STAMP))
    assert {(r.attendee, r.partstat, r.method, r.sequence) for r in read} == {
        ("ana.junior@example.com", "NEEDS-ACTION", "REQUEST", 1),
        ("bob.senior@example.com", "NEEDS-ACTION", "REQUEST", 1),
    }


# --------------------------------------------------------------------------------------------
# Inbound: real files from other projects' suites (../shared/corpora beside the checkout)


def corpus_rows() -> list[tuple[Path, dict[str, str]]]:
    root = CORPORA / "ics"
    if not root.is_dir():
        missing(SHARED_CORPORA)
    rows = []
    for index in sorted(root.glob("*/ics_index.tsv")):
        with index.open(encoding="utf-8", errors="replace", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                rows.append((index.parent / row["file"], row))
    return rows


def test_corpus_replies_with_an_event_yield_an_answer() -> None:
    replies = [(path, row) for path, row in corpus_rows()
               if row["METHOD"].upper() == "REPLY" and int(row["n_VEVENT"] or 0) > 0]
    assert replies, "the corpus index lists no REPLY with a VEVENT"
    for path, _ in replies:
        read = read_ics(path.read_bytes())
        assert read, path
        assert all(r.partstat in PARTSTATS and r.uid and "@" in r.attendee for r in read), path


def test_corpus_freebusy_replies_are_not_taken_for_answers() -> None:
    """A VFREEBUSY REPLY says when someone is busy, not whether they come."""
    freebusy = [path for path, row in corpus_rows()
                if row["METHOD"].upper() == "REPLY" and int(row["n_VEVENT"] or 0) == 0]
    for path in freebusy:
        assert read_ics(path.read_bytes()) == [], path


def test_corpus_exchange_reply_keeps_the_note_and_ignores_the_unanswered_attendee() -> None:
    path = CORPORA / "ics" / "jazzband-icalevents" / "test_data" / "multi_attendee_response.ics"
    if not path.is_file():
        missing(SHARED_CORPORA)
    (answer,) = read_ics(path.read_bytes())
    assert (answer.attendee, answer.partstat, answer.comment) == (
        "calendar@gmail.com", "DECLINED", "test-message-from-the-calendar")


@pytest.mark.filterwarnings("ignore::icalendar.GloballyUniqueTZIDGuessed")
def test_no_corpus_file_makes_the_readers_raise() -> None:
    rows = corpus_rows()
    emails = sorted(p for p in (CORPORA / "eml").rglob("*") if p.suffix in {".eml", ""}
                    and p.is_file())
    for path, _ in rows:
        read_ics(path.read_bytes())
    for path in emails:
        read_responses(path.read_bytes())


# -- the series as the store keeps it, to the invitation every client reads --------------------


def stored_series(tmp_path: Path):
    """A pair's stored series (``programme/series.py``'s records) and a Mailer with the shipped templates."""
    from programme import Programme
    from rmdaemon import compose, roster
    from rmdaemon.config import load_settings
    from rmdaemon.programme.messages import Mailer
    from rmdaemon.programme.series import plan_to_doc

    prog = Programme.create(tmp_path)
    settings = load_settings(prog.config)
    pair = roster.load_roster(settings.roster_path, settings.program)[0]
    zone = ZoneInfo("Europe/London")
    plan = SeriesPlan(pair.pair_id, "Europe/London", datetime(2027, 1, 5, 10, 0, tzinfo=zone), 45, "biweekly",
                      "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", count=6)
    series = {"uid": "rm-abc-0@example.com", "generation": 0, "sequence": 0, "published": None, "cancelled": False,
              "cancel_occurrences": [], "plan": plan_to_doc(plan), "exdates": [], "moved": [], "repairs": {}}
    mail = Mailer(settings.program, compose.load_templates(settings.templates_dir), datetime(2027, 1, 4, tzinfo=timezone.utc), bytes(32))
    return mail, pair, series, plan


def test_a_skip_and_a_move_keep_the_uid_raise_the_sequence_and_reach_the_invitation(tmp_path):
    from rmdaemon.programme.series import meeting_for, plan_from_doc, repair_token, with_move, with_skip

    mail, pair, series, plan = stored_series(tmp_path)
    assert plan_from_doc(pair.pair_id, series["plan"]) == plan
    first = meeting_for(mail, pair, {"series": series})
    assert (first.uid, first.sequence, first.exdates, first.moved, first.cancelled) == ("rm-abc-0@example.com", 0, (), (),
                                                                                       False)
    assert not first.subject.startswith(("Updated", "Cancelled"))
    second, third = plan.first_start + timedelta(weeks=2), plan.first_start + timedelta(weeks=4)
    changed = with_move(with_skip(series, second), third, third + timedelta(days=1))
    assert changed["sequence"] == 2 and changed["cancel_occurrences"] == [second.astimezone(timezone.utc).isoformat()]
    updated = meeting_for(mail, pair, {"series": changed, "goal": "A goal set by reply"})
    assert (updated.uid, updated.sequence) == ("rm-abc-0@example.com", 2)
    assert updated.exdates == (second,) and updated.moved == ((third, third + timedelta(days=1)),)
    assert updated.subject.startswith("Updated: ") and "A goal set by reply" in updated.description
    cal = Calendar.from_ical(build_request(updated, datetime(2027, 1, 4, tzinfo=timezone.utc)))
    events = cal.walk("VEVENT")
    assert {str(e["UID"]) for e in events} == {"rm-abc-0@example.com"} and {int(e["SEQUENCE"]) for e in events} == {2}
    assert [e["EXDATE"].dts[0].dt for e in events if "EXDATE" in e] == [second]
    assert [e["RECURRENCE-ID"].dt for e in events if "RECURRENCE-ID" in e] == [third]
    cancelled = meeting_for(mail, pair, {"series": dict(changed, cancelled=True, sequence=3)})
    assert cancelled.cancelled and cancelled.sequence == 3 and cancelled.subject.startswith("Cancelled: ")
    assert repair_token(series, second) == repair_token(series, second.astimezone(timezone.utc))
    assert repair_token(series, second) != repair_token(series, third)
    assert re.fullmatch(r"RM-[A-Z2-7]{6}", repair_token(series, second))


def test_a_series_without_a_count_keeps_its_until_through_the_store(tmp_path):
    from rmdaemon.programme.series import plan_from_doc, plan_to_doc

    _, pair, _, plan = stored_series(tmp_path)
    until = replace(plan, count=None, until=datetime(2027, 6, 1, 9, 0, tzinfo=timezone.utc),
                    rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20270601T090000Z")
    assert plan_from_doc(pair.pair_id, plan_to_doc(until)) == until


def answer_mail(*vevents: str, method: str = "REPLY", mime_method: str | None = None) -> bytes:
    """A calendar answer as a mail client sends it: the VEVENTs inside a VCALENDAR in a text/calendar part."""
    ics = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Client//EN", f"METHOD:{method}", *vevents,
                       "END:VCALENDAR", ""])
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "richard.hale@example.com", "mentoring@example.com", "Accepted"
    msg.set_content(ics, subtype="calendar", params={"method": mime_method} if mime_method else {})
    return msg.as_bytes()


def vevent(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", *lines, "END:VEVENT"])


@pytest.mark.parametrize(("recurrence_id", "expected"), [
    ("RECURRENCE-ID;TZID=Europe/London:20270705T100000", datetime(2027, 7, 5, 9, 0, tzinfo=timezone.utc)),
    ("RECURRENCE-ID;TZID=W. Europe Standard Time:20270705T100000", datetime(2027, 7, 5, 8, 0, tzinfo=timezone.utc)),
    ("RECURRENCE-ID:20270705T100000Z", datetime(2027, 7, 5, 10, 0, tzinfo=timezone.utc)),
    ("RECURRENCE-ID:20270705T100000", datetime(2027, 7, 5, 10, 0, tzinfo=timezone.utc)),  # floating: read as UTC
    ("RECURRENCE-ID;VALUE=DATE:20270705", datetime(2027, 7, 5, 0, 0, tzinfo=timezone.utc)),
    ("SUMMARY:the whole series", None),
])
def test_an_answer_names_the_occurrence_it_is_for_as_a_utc_instant(recurrence_id, expected):
    (found,) = read_responses(answer_mail(vevent("UID:rm-1@example.com", "SEQUENCE:3", recurrence_id,
                                                 "ATTENDEE;PARTSTAT=declined:MAILTO:Richard.Hale@example.com")))
    assert (found.uid, found.attendee, found.partstat, found.recurrence_id, found.sequence, found.method) == (
        "rm-1@example.com", "richard.hale@example.com", "DECLINED", expected, 3, "REPLY")
    assert found.recurrence_id is None or found.recurrence_id.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("sequence", "expected"), [("SEQUENCE:0", 0), ("SEQUENCE: 7", 7), ("SEQUENCE:two", None),
                                                    ("COMMENT:no sequence", None)])
def test_an_answers_sequence_is_read_or_left_unknown(sequence, expected):
    (found,) = read_responses(answer_mail(vevent("UID:rm-1@example.com", sequence,
                                                 "ATTENDEE;PARTSTAT=ACCEPTED:mailto:richard.hale@example.com")))
    assert found.sequence == expected


def test_only_attendees_who_answered_count_and_an_event_without_uid_or_attendee_is_no_answer():
    answered = vevent("UID:rm-1@example.com", "COMMENT:Running late", "COMMENT:sorry",
                      "ATTENDEE;PARTSTAT=TENTATIVE:mailto:richard.hale@example.com",
                      "ATTENDEE;CN=Aisha:mailto:aisha.khan@example.com")
    nobody_said = vevent("UID:rm-2@example.com", "ATTENDEE:mailto:aisha.khan@example.com",
                         "ATTENDEE:mailto:richard.hale@example.com")
    no_uid = vevent("ATTENDEE;PARTSTAT=ACCEPTED:mailto:richard.hale@example.com")
    no_attendee = vevent("UID:rm-3@example.com")
    found = read_responses(answer_mail(answered, nobody_said, no_uid, no_attendee, method="COUNTER",
                                       mime_method="reply"))
    assert [(r.uid, r.attendee, r.partstat, r.comment, r.method) for r in found] == [
        ("rm-1@example.com", "richard.hale@example.com", "TENTATIVE", "Running late\nsorry", "REPLY"),
        ("rm-2@example.com", "aisha.khan@example.com", "NEEDS-ACTION", "", "REPLY"),
        ("rm-2@example.com", "richard.hale@example.com", "NEEDS-ACTION", "", "REPLY"),
    ]
    (alone,) = read_responses(answer_mail(answered, method="REPLY"))
    assert alone.method == "REPLY"


def test_a_counter_proposes_its_own_start_and_end_and_a_reply_proposes_nothing():
    """"Propose New Time" (RFC 5546 COUNTER): the proposal is the COUNTER's DTSTART and DTEND, read
    as instants (a Windows zone name included); in a REPLY the same properties are no proposal."""
    counter = vevent("UID:rm-1@example.com", "SEQUENCE:2", "RECURRENCE-ID;TZID=Europe/London:20270705T100000",
                     "DTSTART;TZID=W. Europe Standard Time:20270706T140000",
                     "DTEND;TZID=W. Europe Standard Time:20270706T144500",
                     "ATTENDEE;PARTSTAT=TENTATIVE:mailto:richard.hale@example.com")
    (found,) = read_responses(answer_mail(counter, method="COUNTER"))
    assert (found.method, found.recurrence_id, found.proposed_start, found.proposed_end) == (
        "COUNTER", utc("2027-07-05T09:00"), utc("2027-07-06T12:00"), utc("2027-07-06T12:45"))
    (reply,) = read_responses(answer_mail(counter, method="REPLY"))
    assert (reply.proposed_start, reply.proposed_end) == (None, None)
    # Exchange names a zone it made up and defines it in the file: the proposal is read in that zone
    custom = "\r\n".join(["BEGIN:VTIMEZONE", "TZID:Customized Time Zone", "BEGIN:STANDARD", "DTSTART:16010101T000000",
                           "TZOFFSETFROM:-0500", "TZOFFSETTO:-0500", "END:STANDARD", "END:VTIMEZONE"])
    counter = vevent("UID:rm-1@example.com", "DTSTART;TZID=Customized Time Zone:20270706T090000",
                     "DTEND;TZID=Customized Time Zone:20270706T094500",
                     "ATTENDEE;PARTSTAT=TENTATIVE:mailto:richard.hale@example.com")
    (found,) = read_responses(answer_mail(custom, counter, method="COUNTER"))
    assert (found.proposed_start, found.proposed_end) == (utc("2027-07-06T14:00"), utc("2027-07-06T14:45"))


def test_a_delegated_answer_names_whom_it_was_delegated_to():
    delegated = vevent("UID:rm-1@example.com",
                       'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:Pat.Doe@example.com":'
                       "mailto:richard.hale@example.com")
    (found,) = read_responses(answer_mail(delegated))
    assert (found.attendee, found.partstat, found.delegated_to) == (
        "richard.hale@example.com", "DELEGATED", ("pat.doe@example.com",))


def test_only_vevents_with_an_addressed_attendee_are_answers():
    """A free/busy reply (RFC 5546 VFREEBUSY) names an attendee and a UID but answers no
    invitation; an attendee line without an address (a room, written by a careless client) is nobody's answer."""
    freebusy = "\r\n".join(["BEGIN:VFREEBUSY", "UID:rm-1@example.com", "DTSTAMP:20270701T080000Z",
                            "ORGANIZER:mailto:mentoring@example.com",
                            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:richard.hale@example.com",
                            "FREEBUSY:20270705T090000Z/20270705T100000Z", "END:VFREEBUSY"])
    assert read_responses(answer_mail(freebusy)) == []
    nameless = vevent("UID:rm-1@example.com", "ATTENDEE;PARTSTAT=ACCEPTED;CN=Meeting room 4:")
    assert read_responses(answer_mail(nameless)) == []
    urn = vevent("UID:rm-1@example.com", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:richard.hale@example.com",
                 "ATTENDEE;PARTSTAT=ACCEPTED;CN=Room 4:urn:uuid:4b1c3a52-6a0e-4f53-9f8a-0c8f2a1d7e11")
    assert [r.attendee for r in read_responses(answer_mail(urn))] == ["richard.hale@example.com"]


def test_the_place_to_meet_and_a_moved_sessions_confirmation_reach_every_vevent():
    meeting = replace(make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=3",
                                   moved=(("2026-03-31 10:00", "2026-04-01 15:30"),), sequence=2),
                      location="Room 4.12, Example House")
    events = vevents(build_request(meeting, STAMP))
    assert [(str(e["LOCATION"]), str(e["STATUS"])) for e in events] == [("Room 4.12, Example House", "CONFIRMED")] * 2
    (cancel,) = vevents(build_cancel(meeting, STAMP, local("Europe/London", "2026-03-31 10:00")))
    assert str(cancel["LOCATION"]) == "Room 4.12, Example House"


def test_cancelling_one_occurrence_says_cancel_in_its_method():
    meeting = make_meeting("Europe/London", "2026-03-17 10:00", "FREQ=WEEKLY;COUNT=6", sequence=5)
    cal = Calendar.from_ical(build_cancel(meeting, STAMP, local("Europe/London", "2026-03-31 10:00")))
    assert str(cal["METHOD"]) == "CANCEL"


def test_repair_tokens_are_keyed_by_the_series_and_a_series_from_before_the_secret_keeps_plain_ones(tmp_path):
    """An outsider who knows a series' UID cannot compute the token that picks a new time for it."""
    from rmdaemon import compose
    from rmdaemon.programme.series import repair_token

    _, _, series, plan = stored_series(tmp_path)
    second = plan.first_start + timedelta(weeks=2)
    ours, theirs = (dict(series, token_key=key * 32) for key in ("ab", "cd"))
    assert repair_token(ours, second) != repair_token(theirs, second)
    assert repair_token(ours, second) == compose.token(f"repair|{series['uid']}|{second.astimezone(timezone.utc).isoformat()}",
                                                       "ab" * 32)
    assert repair_token(series, second) == compose.token(
        f"repair|{series['uid']}|{second.astimezone(timezone.utc).isoformat()}", None)


def test_a_stored_plan_comes_back_in_its_own_zone(tmp_path):
    from rmdaemon.programme.series import plan_from_doc, plan_to_doc

    _, pair, _, plan = stored_series(tmp_path)
    back = plan_from_doc(pair.pair_id, plan_to_doc(plan))
    assert (back.first_start.tzinfo, back.first_start.hour) == (ZoneInfo("Europe/London"), 10)


# Aisha in Berlin reads German, Richard in New York English; one blackout day was added back at the end
# of the six planned sessions, so the pair gets five.
BILINGUAL = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,"
             "mentor_language,mentee_language\n"
             "P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Understand TikTok,"
             "Europe/Berlin,America/New_York,de,en\n")


def bilingual_series(tmp_path: Path, roster_text: str = BILINGUAL, until: bool = False, **config: str):
    """``until``: the programme runs to an end date, so the series has no count."""
    from programme import Programme
    from rmdaemon import compose, roster
    from rmdaemon.config import load_settings
    from rmdaemon.programme.messages import Mailer
    from rmdaemon.programme.series import plan_to_doc

    prog = Programme.create(tmp_path, roster=roster_text, **config)
    if until:
        prog.config.write_text(prog.config.read_text().replace("\nsessions = 6", "\n# sessions = 6")
                               .replace("# end_date = 2027-06-30", "end_date = 2027-06-30"))
    settings = load_settings(prog.config)
    pair = roster.load_roster(settings.roster_path, settings.program)[0]
    plan = SeriesPlan(pair.pair_id, "Europe/Berlin", datetime(2027, 1, 5, 16, 0, tzinfo=ZoneInfo("Europe/Berlin")), 45,
                      "biweekly", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;" + ("UNTIL=20270630T220000Z" if until else "COUNT=6"),
                      count=None if until else 6,
                      until=datetime(2027, 6, 30, 22, 0, tzinfo=timezone.utc) if until else None)
    # as the booking job stores it, without the keys a series only gets when something happens to it
    series = {"uid": "rm-abc-0@example.com", "sequence": 0, "plan": plan_to_doc(plan), "token_key": "ab" * 32,
              "join_url": "https://meet.example.com/j/42", "blackouts": ["2027-02-02T15:00:00+00:00"]}
    mail = Mailer(settings.program, compose.load_templates(settings.templates_dir), datetime(2027, 1, 4, tzinfo=timezone.utc),
                  bytes(32))
    return mail, pair, series, plan


def test_each_person_reads_the_invitation_in_their_language_with_their_own_time_first(tmp_path):
    from rmdaemon.programme.series import meeting_for

    mail, pair, series, plan = bilingual_series(tmp_path)
    meeting = meeting_for(mail, pair, {"series": series})
    assert (meeting.plan, meeting.organizer_email, meeting.token_key, meeting.cancelled, meeting.exdates,
            meeting.moved) == (plan, "mentoring@example.com", "ab" * 32, False, (), ())
    own = {address: (text, html) for address, _, text, html in meeting.bodies}
    aisha, aisha_html = own["aisha.khan@example.com"]
    assert aisha.startswith("Hallo Aisha,\n") and "Hallo Aisha," in aisha_html and "Hello" not in aisha
    assert "Reverse Mentoring mit Richard:\nDi., 5. Jan. 2027, 16:00 CET (Di., 5. Jan. 2027, 10:00 EST für Richard)," in aisha
    assert "alle zwei Wochen, 5 Termine à 45 Minuten." in aisha and "Online teilnehmen: https://meet.example.com/j/42" in aisha
    richard, richard_html = own["richard.hale@example.com"]
    assert richard.startswith("Hello Richard,\n") and "Hello Richard," in richard_html and "Hallo" not in richard
    assert "sessions with Aisha:\nTue 05 Jan 2027, 10:00 EST (Tue 05 Jan 2027, 16:00 CET for Aisha)," in richard
    assert "every two weeks, 5 sessions of 45 minutes." in richard and "Join online: https://meet.example.com/j/42" in richard
    # the one body both read (a backend that cannot send each their own): both languages, each time in its reader's
    english, german = meeting.body_text.split("\n---\n\n")
    assert english.startswith("Hello Aisha and Richard,\n") and german.startswith("Hallo Aisha und Richard,\n")
    assert "Tue 05 Jan 2027, 10:00 EST for Richard (Di., 5. Jan. 2027, 16:00 CET for Aisha)," in english
    assert "Hello Aisha and Richard," in meeting.body_html and "Hallo Aisha und Richard," in meeting.body_html
    described = meeting.description.split("\n---\n")
    assert [d.splitlines()[0] for d in described] == [
        "Reverse-mentoring session: Aisha Khan (mentor) and Richard Hale (mentee).",
        "Reverse-Mentoring-Termin von Aisha Khan und Richard Hale."]
    assert all("https://meet.example.com/j/42" in d for d in described)


def test_a_cancellation_says_why_and_a_series_from_before_the_secret_keeps_no_key(tmp_path):
    from rmdaemon.programme.series import meeting_for

    mail, pair, series, _ = bilingual_series(tmp_path)
    paused = meeting_for(mail, pair, {"series": dict(series, cancelled=True, cancel_reason="pause", sequence=2)})
    assert paused.cancelled and paused.subject.startswith("Cancelled: ")
    assert "are cancelled because one of you replied PAUSE." in paused.body_text
    assert "Join online" not in paused.body_text
    removed = meeting_for(mail, pair, {"series": dict(series, cancelled=True, sequence=3)})
    assert "are cancelled because your pair was taken off the programme's list of pairs." in removed.body_text
    old = {k: v for k, v in series.items() if k not in ("token_key", "join_url")}
    before = meeting_for(mail, pair, {"series": old})
    assert before.token_key == "" and "Join online" not in before.body_text


def test_a_reader_whose_language_has_no_templates_gets_the_programmes_with_dates_in_their_own(tmp_path):
    """The programme writes German; Richard's language, Italian, has no templates: he reads the German
    invitation, his dates as an Italian reader writes them. The place is the programme's."""
    from rmdaemon import phrases
    from rmdaemon.programme.series import meeting_for

    mail, pair, series, plan = bilingual_series(tmp_path, BILINGUAL.replace("Europe/Berlin,America/New_York,de,en",
                                                                            "Europe/Berlin,America/New_York,de,it"),
                                                language='"de"', location='"Raum 4.12"')
    meeting = meeting_for(mail, pair, {"series": series})
    italian = phrases.local_time(plan.first_start, "America/New_York", "it")
    assert meeting.location == "Raum 4.12" and italian != phrases.local_time(plan.first_start, "America/New_York", "en")
    own = {address: text for address, _, text, _ in meeting.bodies}
    assert own["richard.hale@example.com"].startswith("Hallo Richard,\n") and italian in own["richard.hale@example.com"]
    assert "Ort: Raum 4.12" in own["richard.hale@example.com"]
    assert meeting.body_text.startswith("Hallo Aisha und Richard,\n") and "\n---\n" not in meeting.body_text
    assert f"{italian} für Richard" in meeting.body_text
    assert meeting.description.startswith("Reverse-Mentoring-Termin von") and "\n---\n" not in meeting.description


def test_a_series_that_runs_to_the_programmes_end_date_says_so(tmp_path):
    from rmdaemon.programme.series import meeting_for

    mail, pair, series, _ = bilingual_series(tmp_path, until=True)
    meeting = meeting_for(mail, pair, {"series": series})
    own = {address: text for address, _, text, _ in meeting.bodies}
    assert "every two weeks, sessions until 30 June 2027 of 45 minutes." in own["richard.hale@example.com"]
    assert "alle zwei Wochen, Termine bis zum 30. Juni 2027 à 45 Minuten." in own["aisha.khan@example.com"]
