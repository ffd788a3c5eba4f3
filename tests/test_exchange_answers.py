"""Calendar answers and a place to meet on Exchange (the EWS test server): an Outlook "Propose New
Time" and a forward notification arrive in the programme mailbox as Exchange files them, free/busy
is read before a proposal is taken, and the room from the config is on the meeting every attendee
receives. One pair, weekly, both in London with 09:00-17:00 hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from lxml import etree

import pytest

from programme import status
from rmdaemon.phrases import english
from test_calendar_answers import AISHA, RICHARD, attendee, calendar_mail, event, outlook_counter, text_of
from test_exchange_programme import T0, T1, exchange_programme, ical, opt_in_all
from tests.servers.ews.fixtures import ews_server  # noqa: F401

ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,cadence\n"
          f"P01,Aisha Khan,{AISHA},Richard Hale,{RICHARD},Understand TikTok,weekly\n")


@pytest.fixture
def prog(tmp_path, ews_server, monkeypatch):  # noqa: F811
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=ROSTER, sessions="4",
                              location='"Room 4.12, London office"')
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    assert prog.run(T1) == 0
    return prog


def sessions(prog, capsys) -> list[datetime]:
    return [datetime.fromisoformat(s["start"]) for s in status(prog, T1, capsys)["P01"]["sessions"]]


def test_the_programmes_room_is_on_the_meeting_every_attendee_receives(prog):
    for address in (AISHA, RICHARD):
        (request,) = prog.inbox(address, "MeetingRequest")
        assert b"LOCATION:Room 4.12, London office" in ical(request)


def test_a_proposal_into_busy_time_is_refused_and_one_into_free_time_moves_the_session(prog, capsys):
    first, second = sessions(prog, capsys)[:2]
    uid = prog.docs()["P01"]["series"]["uid"]
    busy = second + timedelta(days=1, hours=5)  # Tue 14:00 London
    prog.ews.control.script_busy(RICHARD, busy - timedelta(minutes=30), busy + timedelta(hours=1))
    prog.drop(outlook_counter(uid, AISHA, busy, occurrence=second), "busy.eml")
    assert prog.run(T1 + timedelta(hours=1)) == 0
    (refused,) = prog.docs()["P01"]["series"]["counters"]
    assert refused["state"] == "refused" and "Richard Hale's calendar is busy" in english(refused["reason"])
    assert [m for m in prog.outbox("notice", to="aisha.khan")
            if any(p.get_param("method") == "DECLINECOUNTER" for p in m.walk())]
    free = second + timedelta(days=2, hours=1)  # Wed 10:00 London
    prog.drop(outlook_counter(uid, AISHA, free, occurrence=second, n=1, note="Wednesday then?"), "free.eml")
    assert prog.run(T1 + timedelta(hours=2)) == 0
    assert [c["state"] for c in prog.docs()["P01"]["series"]["counters"]] == ["refused", "accepted"]
    assert datetime.fromisoformat(sessions(prog, capsys)[1].isoformat()) == free
    told = prog.outbox("notice", to="richard.hale")
    assert any("Wednesday then?" in text_of(m) and "it is taken" in text_of(m) for m in told)


def test_a_forward_notification_tells_the_pair_and_adds_nobody(prog, capsys):
    forwarded = attendee("colleague@example.com", PARTSTAT="NEEDS-ACTION")
    prog.drop(calendar_mail(AISHA, "REPLY", event(prog.docs()["P01"]["series"]["uid"], forwarded),
                            subject="Meeting Forward Notification: Reverse Mentoring Pilot"), "forward.eml")
    assert prog.run(T1 + timedelta(hours=1)) == 0
    assert prog.docs()["P01"]["series"]["outsiders"][0]["address"] == "colleague@example.com"
    assert any("colleague@example.com" in text_of(m) for m in prog.outbox("notice", to="richard.hale"))
    item = prog.series()["P01"]
    assert b"colleague@example.com" not in ical(prog.inbox(RICHARD, "MeetingRequest")[-1])
    assert b"colleague" not in etree.tostring(item.fields)  # the organizer's item keeps its two attendees
