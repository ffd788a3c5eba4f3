"""Calendar answers and a place to meet on Microsoft 365 (the Graph test server over HTTPS): an
Outlook "Propose New Time" arrives in the programme mailbox as Exchange Online files it, the
daemon reads both calendars' free/busy before taking it, and Teams meetings carry their join link
into every agenda. One pair, weekly, both in London with 09:00-17:00 hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy

import pytest

from programme import status
from rmdaemon.phrases import english
from test_calendar_answers import AISHA, RICHARD, outlook_counter, text_of
from test_graph_programme import T0, T1, graph_programme, opt_in_all
from tests.servers.graph.fixtures import PROGRAMME, graph_server  # noqa: F401

ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,cadence\n"
          f"P01,Aisha Khan,{AISHA},Richard Hale,{RICHARD},Understand TikTok,weekly\n")


@pytest.fixture
def prog(tmp_path, graph_server, monkeypatch):  # noqa: F811
    prog = graph_programme(tmp_path, graph_server, monkeypatch, roster=ROSTER, sessions="4")
    prog.config.write_text(prog.config.read_text() + "online_meetings = true\n")
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    assert prog.run(T1) == 0
    return prog


def sessions(prog, capsys) -> list[datetime]:
    rows = status(prog, T1, capsys)["P01"]["sessions"]
    return [datetime.fromisoformat(s["start"]) for s in rows]


def sent_with(prog, method: str, to: str) -> list:
    """Mail the programme mailbox sent (not meeting traffic) carrying a calendar part of ``method``."""
    found = []
    for sent in prog.graph.control.sent(PROGRAMME):
        msg = message_from_bytes(sent.mime, policy=policy.default)
        parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar" and p.get_param("method") == method]
        if parts and to in str(msg["To"]):
            found.append(msg)
    return found


def test_a_teams_meeting_is_booked_and_its_join_link_is_in_the_invitation_and_every_agenda(prog, capsys):
    (event,) = prog.graph.control.events(PROGRAMME)
    assert event.fields["isOnlineMeeting"] is True and event.fields["onlineMeetingProvider"] == "teamsForBusiness"
    join = event.fields["onlineMeeting"]["joinUrl"]
    assert prog.docs()["P01"]["series"]["join_url"] == join
    for address in (AISHA, RICHARD):
        (invitation,) = prog.calendar_mail(address, "REQUEST")
        assert "LOCATION:Microsoft Teams Meeting" in invitation and "LOCATION:\r\n" not in invitation
    first = sessions(prog, capsys)[0]
    assert prog.run(first - timedelta(hours=23)) == 0
    agendas = prog.outbox("agenda.", to="richard.hale") + prog.outbox("agenda.", to="aisha.khan")
    assert len(agendas) == 2 and all(f"Join online: {join}" in text_of(a) for a in agendas)


def test_a_proposal_into_free_time_moves_that_session_in_every_calendar(prog, capsys):
    planned = sessions(prog, capsys)[1]
    tuesday = planned + timedelta(days=1, hours=5)  # Tue 14:00 London
    uid = prog.docs()["P01"]["series"]["uid"]
    prog.drop(outlook_counter(uid, AISHA, tuesday, occurrence=planned, note="Tuesday suits me better"), "counter.eml")
    assert prog.run(T1 + timedelta(hours=1)) == 0
    assert prog.docs()["P01"]["series"]["counters"][0]["state"] == "accepted"
    (event,) = prog.graph.control.events(PROGRAMME)
    starts = prog.graph.control.live_starts(event)
    assert tuesday in starts and planned not in starts
    (told,) = prog.outbox("notice", to="richard.hale")
    assert "Tuesday suits me better" in text_of(told) and "it is taken" in text_of(told)


def test_a_proposal_into_busy_time_is_refused_with_a_declinecounter_and_other_times(prog, capsys):
    planned = sessions(prog, capsys)[1]
    tuesday = planned + timedelta(days=1, hours=5)
    prog.graph.control.script_busy(RICHARD, tuesday - timedelta(minutes=30), tuesday + timedelta(hours=1))
    uid = prog.docs()["P01"]["series"]["uid"]
    prog.drop(outlook_counter(uid, AISHA, tuesday, occurrence=planned), "counter.eml")
    assert prog.run(T1 + timedelta(hours=1)) == 0
    counter = prog.docs()["P01"]["series"]["counters"][0]
    assert counter["state"] == "refused" and "Richard Hale's calendar is busy" in english(counter["reason"])
    (refusal,) = sent_with(prog, "DECLINECOUNTER", AISHA)
    assert "Richard Hale's calendar is busy" in text_of(refusal)
    offers = prog.outbox("repair", to="richard.hale")
    assert len({m["Message-ID"] for m in offers}) == 1  # one message to the pair (Graph lists it per recipient)
    assert "Aisha Khan proposed" in text_of(offers[0]) and "both calendars show them free" in text_of(offers[0])
    (event,) = prog.graph.control.events(PROGRAMME)
    assert planned in prog.graph.control.live_starts(event)
