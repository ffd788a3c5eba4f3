"""Agendas written into the sessions' calendar entries in bulk (``annotate_many``): a few requests
per 100 sessions instead of four per session, each note's outcome its own, nothing written twice.

Through the backend over HTTP, and through the real agendas job via the CLI; what is asserted is
what the organiser's and the attendees' calendars show, what the run reports, and the requests the
EWS test server counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from rmdaemon.errors import BackendError
from test_exchange_backend import backend, meeting
from test_exchange_mail import NOTES, agenda_ready, kinds, session_bodies, tally
from test_exchange_programme import ACTIVE
from tests.servers.ews import meetings
from tests.servers.ews.fixtures import PROGRAMME
from tests.servers.ews.server import EwsServer

AGENDA = "Goal: {n}\nConversation starter: what surprised you this week?"


def second_session(n: int):  # type: ignore[no-untyped-def]
    return meeting(n).plan.first_start + timedelta(weeks=2)


def body_of(ews: EwsServer, mailbox: str, uid: str, start) -> str:  # type: ignore[no-untyped-def]
    item = ews.store.by_uid(mailbox, uid)
    index = next(o.index for o in ews.control.occurrences(item) if o.start == start)
    return ews.control.body(item, index)


def updates_sent(ews: EwsServer) -> Counter[str]:
    """Meeting updates for one session (FullUpdate requests) each attendee was sent."""
    return Counter(to for s in ews.control.sent(PROGRAMME) if s.kind == "MeetingRequest"
                   and b"RECURRENCE-ID" in s.mime for to in s.recipients)


def test_250_notes_cost_four_requests_per_100_and_one_that_cannot_be_written_fails_alone(ews_server: EwsServer) -> None:
    """Of 250 sessions, one was deleted from the calendar (left alone: nobody is going) and one
    belongs to a series not on the calendar (fails, permanently, alone); the other 248 show their
    agenda in the organiser's and both attendees' calendars. Asked again (a rerun after a crash),
    nothing is sent to anyone twice."""
    ews = ews_server
    series = [meeting(n) for n in range(250)]
    for m in series:
        for p in m.attendees:
            ews.control.add_mailbox(p.email)
    be = backend(ews)
    assert set(be.publish_many(series).values()) == {None}
    be.cancel_occurrence(series[7], second_session(7))
    missing = meeting(999)  # never booked (or deleted there by a person)
    notes = [(m, second_session(n), AGENDA.format(n=n)) for n, m in enumerate([*series, missing])]
    notes[-1] = (missing, second_session(999), "Goal: lost")
    before = dict(ews.counts)
    outcomes = be.annotate_many(notes)
    failed = outcomes.pop((missing.uid, second_session(999)))
    assert isinstance(failed, BackendError) and failed.permanent and missing.uid in str(failed)
    assert set(outcomes.values()) == {None} and len(outcomes) == 250
    spent = {op: ews.counts[op] - before.get(op, 0) for op in ("FindItem", "GetItem", "UpdateItem")}
    assert spent == {"FindItem": 3, "GetItem": 6, "UpdateItem": 3}, spent  # per 100: series, their properties, bodies; updates
    for n, m in enumerate(series):
        views = [PROGRAMME, *(p.email for p in m.attendees)]
        texts = [body_of(ews, mailbox, m.uid, second_session(n)) for mailbox in views]
        wanted = "Agenda follows by mail." if n == 7 else AGENDA.format(n=n)
        assert texts == [wanted] * 3, n
    sent = updates_sent(ews)
    assert len(sent) == 2 * 249 and set(sent.values()) == {1}  # not the deleted session's people
    assert be.annotate_many(notes[:-1]) == {(m.uid, start): None for m, start, _ in notes[:-1]}
    assert updates_sent(ews) == sent  # written already: no attendee gets the update again


def test_an_agenda_tick_writes_every_session_but_the_one_whose_series_is_gone(tmp_path, ews_server, monkeypatch,
                                                                             capsys, caplog):
    """Through the jobs: a person deleted P02's series from the programme calendar in Outlook. P02's
    people still get their agendas by mail; its note fails, is logged and reported by the run; every
    other pair's session shows the agenda to the organiser and both attendees, in one UpdateItem."""
    prog, when = agenda_ready(tmp_path, ews_server, monkeypatch)
    gone = prog.series()["P02"]
    people = meetings.attendees(gone)
    with ews_server.store.lock:
        gone.folder = "deleteditems"
    mark = len(ews_server.log)
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="rmdaemon.jobs"):
        assert prog.run(when) == 0
    out = capsys.readouterr().out
    assert "calendar notes failed" in out and "1 agendas in calendars" not in out
    assert any("P02" in r.getMessage() and "not written into the calendar" in r.getMessage() for r in caplog.records)
    assert all(kinds(prog, address).count("agenda") == 1 for address in people)  # the emails stand
    assert len(prog.outbox("agenda.")) == 2 * len(ACTIVE)
    for pair_id in ACTIVE:
        if pair_id != "P02":
            bodies = session_bodies(prog, pair_id)
            assert len(bodies) == 3 and all("Conversation starter:" in text for text in bodies), pair_id
    spent = tally(ews_server, mark)
    assert {op: spent[op] for op in NOTES} == {"FindItem:calendar": 1, "GetItem:calendar": 2, "UpdateItem": 1}, spent
