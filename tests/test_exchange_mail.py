"""Mail through Exchange in bulk: kickoffs and agendas go out as a few CreateItems of up to 100
Messages each, not one round trip per email, and the guarantees of sending one by one still hold
— nobody gets a message twice after a crash or throttling, and one refused message fails alone.

The real daemon jobs run through the CLI against the EWS test server; what is asserted is what
people find in their mailboxes, what ``status`` shows, and the requests the server counted.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta

import pytest
from lxml import etree

from rmdaemon.backends.exchange import ExchangeBackend
from rmdaemon.errors import BackendError
from rmdaemon.records import OUTBOX
from rmdaemon.model import Outgoing
from rmdaemon.store import Store
from programme import status
from test_exchange_backend import settings
from test_exchange_programme import (ACTIVE, T0, ExchangeProgramme, exchange_programme, many_pairs, operations,
                                     requests_creating)
from tests.servers.ews import meetings
from tests.servers.ews.fixtures import PROGRAMME, SERVICE_USER
from tests.servers.ews.server import EwsServer

BENCH = pytest.param(1000, marks=pytest.mark.skipif(not os.environ.get("RMDAEMON_BENCH"),
                                                    reason="1,000 pairs take a while: set RMDAEMON_BENCH=1"))


def tally(server: EwsServer, since: int = 0) -> Counter[str]:
    """Requests the server received from the ``since``-th on, by operation and what it was about:
    CreateItem:Message, FindItem:sentitems, GetItem:sentitems (the folder of the items it read)..."""
    found: Counter[str] = Counter()
    for body, (op, carried) in zip(server.log[since:], operations(server)[since:]):
        if op == "GetItem":
            carried = folder_read(server, body)
        found[f"{op}:{carried}" if carried else op] += 1
    return found


def folder_read(server: EwsServer, body: bytes) -> str:
    """The folder of the first item a GetItem asks for (an occurrence's: its series')."""
    ids = etree.fromstring(body).find(".//{*}ItemIds")
    first = ids[0].get("Id") or ids[0].get("RecurringMasterId", "")
    item = server.store.items.get(first.rpartition(".")[0] if "." in first else first)
    return item.folder if item is not None else "?"


def first_session(prog: ExchangeProgramme) -> datetime:
    return min(datetime.fromisoformat(doc["series"]["plan"]["first_start"]) for doc in prog.docs().values())


def kinds(prog: ExchangeProgramme, address: str) -> list[str]:
    """What kind of programme email (kickoff, agenda, ...) each message in a person's inbox is."""
    return [(item.mime or b"").split(b"Message-ID: <rm.", 1)[1].split(b".", 1)[0].decode()
            for item in prog.inbox(address, "Message")]


MAIL = ("CreateItem:Message", "FindItem:sentitems", "GetItem:sentitems")  # sending, and reading the keys sent
NOTES = ("FindItem:calendar", "GetItem:calendar", "UpdateItem")  # the agendas written into the calendar


@pytest.mark.parametrize("pairs", [100, BENCH])
def test_kickoffs_and_agendas_through_the_jobs_cost_few_requests_per_100_pairs(tmp_path, ews_server, monkeypatch, pairs):
    """What the bench reports as Exchange round trips for mail: the first tick's kickoffs (welcome
    mails: no opt-in asked) and the agenda tick, two agendas per pair, counted by the server."""
    prog = exchange_programme(tmp_path, ews_server, monkeypatch, roster=many_pairs(pairs), require_opt_in="false",
                              cadence='"weekly"', agenda_lead_hours="336")
    assert prog.run(T0) == 0
    first = tally(ews_server)
    assert len(prog.outbox("kickoff")) == 2 * pairs
    mark = len(ews_server.log)
    assert prog.run(first_session(prog) - timedelta(hours=1)) == 0  # two weeks' lead: every pair's session is due
    agenda = tally(ews_server, mark)
    people = [f"{role}{i}@example.com" for i in range(pairs) for role in ("mentor", "mentee")]
    for address in (people if pairs <= 100 else people[::50]):  # each has exactly one of each in their inbox
        assert sorted(kinds(prog, address)) == ["agenda", "kickoff"], address
    pair_ids = [f"Q{i:04d}" for i in range(pairs)]
    for pair_id in (pair_ids if pairs <= 100 else pair_ids[::50]):  # the mentee's agenda in every view of the session
        assert all(f"Goal: Learn thing {int(pair_id[1:])}" in text for text in session_bodies(prog, pair_id)), pair_id
    notes = sum(agenda[op] for op in NOTES)
    assert notes * 100 / pairs <= 4, agenda  # per 100 sessions: the series (FindItem + GetItem), bodies, UpdateItem
    kickoff_mail = sum(first[op] for op in MAIL)
    agenda_mail = sum(agenda[op] for op in MAIL)
    assert first["CreateItem:Message"] == -(-2 * pairs // 100)  # 100 Messages a request
    assert agenda["CreateItem:Message"] == -(-2 * pairs // 100)  # no digest: no session has taken place yet
    print(f"\n{pairs} pairs, kickoff mails: {kickoff_mail * 100 / pairs:.1f} requests per 100 pairs "
          f"({dict((op, first[op]) for op in MAIL)})")
    print(f"{pairs} pairs, agenda tick: {sum(agenda.values()) * 100 / pairs:.1f} requests per 100 pairs, "
          f"mail {agenda_mail * 100 / pairs:.1f} of them, calendar notes {notes * 100 / pairs:.1f}; {dict(agenda)}")


def session_bodies(prog: ExchangeProgramme, pair_id: str) -> list[str]:
    """The text of a pair's first session as the organiser's calendar and each attendee's own show it."""
    series = prog.docs()[pair_id]["series"]
    start = datetime.fromisoformat(series["plan"]["first_start"])
    organiser = prog.series()[pair_id]
    views = [organiser] + [prog.ews.store.by_uid(a, series["uid"]) for a in meetings.attendees(organiser)]
    texts = []
    for item in views:
        index = next(o.index for o in prog.ews.control.occurrences(item) if o.start == start)
        texts.append(prog.ews.control.body(item, index))
    return texts


# -- the backend's send_many, over HTTP -------------------------------------------------------
def mail(n: int, to: str = "") -> Outgoing:
    to = to or f"person{n:04d}@outside.example"
    raw = (f"From: Reverse Mentoring <{PROGRAMME}>\r\nTo: {to}\r\nSubject: Agenda {n}\r\n"
           f"Message-ID: <rm.agenda.{n:04d}@corp.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}\r\n")
    return Outgoing(key=f"agenda:{n:04d}", to=(to,), raw=raw.encode(), kind="agenda", pair_id=f"Q{n:04d}")


def exchange_backend(server: EwsServer) -> ExchangeBackend:
    return ExchangeBackend(settings(server), secret=SERVICE_USER[1])


def recipients(server: EwsServer) -> Counter[str]:
    """How many messages each address was sent by the programme mailbox."""
    return Counter(address for sent in server.control.sent(PROGRAMME) for address in sent.recipients)


@pytest.mark.parametrize("code", ["ErrorMailRecipientNotFound", "ErrorInvalidRecipients"])
def test_250_emails_go_out_100_a_request_and_a_refusal_stays_with_its_message(ews_server, code):
    """exchangelib returns the first refusal as that item's value but raises the second, losing the
    other outcomes of that request: those are then read from Sent Items, and only the refused
    message is tried again alone. Either way, nobody gets anything twice."""
    ews_server.control.refuse_mail_to("blocked@outside.example", code)
    messages = [mail(n, "blocked@outside.example" if n == 150 else "") for n in range(250)]
    results = exchange_backend(ews_server).send_many(messages)
    refused = results.pop("agenda:0150")
    assert isinstance(refused, BackendError) and refused.permanent and code in str(refused)
    assert set(results.values()) == {None} and len(results) == 249
    assert recipients(ews_server) == Counter(m.to[0] for m in messages if m.key != "agenda:0150")
    keys = [ews_server.control.extended(i, "rmdaemon-key")[0] for i in ews_server.control.items(PROGRAMME, "sentitems")]
    assert sorted(keys) == sorted(results)
    raised = code == "ErrorInvalidRecipients"  # then one more Sent Items read and the refused one alone
    assert ews_server.counts["CreateItem"] == 3 + raised and ews_server.counts["FindItem"] == 1 + raised


@pytest.mark.parametrize("fault", ["busy", "http503", "lost"])
def test_a_request_failing_whole_fails_the_rest_for_now_and_the_retry_sends_each_once(ews_server, fault):
    """Throttled beyond the retry budget, an outage, or the answer lost after Exchange sent them,
    on the second of three requests: the first hundred went, the other 150 count as not sent — the
    third request is not even tried: Exchange asked us to wait — and the next call (the daemon's
    next tick, same backend) reads Sent Items again and sends each of the rest exactly once."""
    be = exchange_backend(ews_server)
    ews_server.add_fault(fault, "CreateItem", back_off_ms=60_000, contains=b"agenda:0100")
    messages = [mail(n) for n in range(250)]
    first = be.send_many(messages)
    assert [k for k, e in first.items() if e is None] == [m.key for m in messages[:100]]
    assert all(isinstance(e, BackendError) and not e.permanent for k, e in first.items() if e is not None)
    carried_out = fault == "lost"
    assert ews_server.faults.fired == [(fault, "CreateItem")] and ews_server.counts["CreateItem"] == 1 + carried_out
    assert be.send_many(messages) == {m.key: None for m in messages}
    assert recipients(ews_server) == Counter(m.to[0] for m in messages)  # each exactly once
    assert ews_server.counts["CreateItem"] == 3 and ews_server.counts["FindItem"] == 2  # Sent Items read again
    assert len(ews_server.control.items(PROGRAMME, "sentitems")) == 250


# -- the real jobs: crashes, refusals, throttling ----------------------------------------------
def agenda_ready(tmp_path, server: EwsServer, monkeypatch, pairs: int | None = None) -> tuple[ExchangeProgramme, datetime]:
    """A programme booked on the first tick (no opt-in asked), and a moment its agendas are all due."""
    roster = many_pairs(pairs) if pairs else None
    prog = exchange_programme(tmp_path, server, monkeypatch, roster=roster, require_opt_in="false",
                              cadence='"weekly"', agenda_lead_hours="336")
    assert prog.run(T0) == 0
    return prog, first_session(prog) - timedelta(hours=1)


def outbox_rows(prog: ExchangeProgramme, kind: str) -> dict[str, dict]:
    with Store.open(prog.state, writer=False) as store:
        return {d["key"]: dict(d) for d in store.table(OUTBOX).all() if d["kind"] == kind}


def test_killed_between_exchange_sending_and_the_store_recording_the_rerun_sends_nothing_twice(tmp_path, ews_server,
                                                                                              monkeypatch):
    """60 pairs, 120 agendas: Exchange sends the first hundred, then the daemon dies before hearing
    back, so the store still says "pending" for all. The rerun finds those hundred in Sent Items and
    sends only the twenty that never left."""
    prog, when = agenda_ready(tmp_path, ews_server, monkeypatch, 60)
    prog.run_killed_after("CreateItem", b"agenda:", when)
    assert len(prog.outbox("agenda.")) == 100
    assert {row["status"] for row in outbox_rows(prog, "agenda").values()} == {"pending"}
    assert prog.run(when + timedelta(minutes=5)) == 0
    assert len(prog.outbox("agenda.")) == 120
    for i in range(60):
        for address in (f"mentor{i}@example.com", f"mentee{i}@example.com"):
            assert kinds(prog, address).count("agenda") == 1, address
    rows = outbox_rows(prog, "agenda")
    assert len(rows) == 120 and {row["status"] for row in rows.values()} == {"sent"}


def test_an_agenda_exchange_refuses_fails_alone_and_shows_against_its_pair(tmp_path, ews_server, monkeypatch, capsys):
    prog, when = agenda_ready(tmp_path, ews_server, monkeypatch)
    prog.ews.control.refuse_mail_to("richard.hale@example.com")  # ErrorInvalidRecipients, which exchangelib raises
    assert prog.run(when) == 0
    assert "agenda" not in kinds(prog, "richard.hale@example.com")
    assert kinds(prog, "aisha.khan@example.com").count("agenda") == 1  # his mentor in P01 has hers
    assert len(prog.outbox("agenda.")) == 2 * len(ACTIVE) - 1
    (problem,) = status(prog, when, capsys)["P01"]["problems"]
    assert "agenda to richard.hale@example.com refused" in problem and "ErrorInvalidRecipients" in problem
    refused = [row for row in outbox_rows(prog, "agenda").values() if row["to"] == ["richard.hale@example.com"]]
    assert [row["status"] for row in refused] == ["failed"]
    creates = requests_creating(prog.ews, "Message")
    assert prog.run(when + timedelta(minutes=30)) == 0  # refused for good: not offered again
    assert requests_creating(prog.ews, "Message") == creates
    assert "agenda" not in kinds(prog, "richard.hale@example.com")


@pytest.mark.parametrize("fault", ["busy", "http503"])
def test_throttled_agendas_wait_for_the_next_tick_nothing_lost_or_doubled(tmp_path, ews_server, monkeypatch, fault):
    """Exchange throttles the first of two agenda requests beyond the retry budget (or is down): the
    second is not tried, nothing is recorded as sent, and the next tick sends all 120, once each."""
    prog, when = agenda_ready(tmp_path, ews_server, monkeypatch, 60)
    prog.ews.add_fault(fault, "CreateItem", back_off_ms=60_000, contains=b"agenda:")
    creates = requests_creating(prog.ews, "Message")
    assert prog.run(when) == 0
    assert prog.ews.faults.fired == [(fault, "CreateItem")]
    assert not prog.outbox("agenda.") and requests_creating(prog.ews, "Message") == creates  # no digest: no session yet
    assert {row["status"] for row in outbox_rows(prog, "agenda").values()} == {"pending"}
    assert prog.run(when + timedelta(minutes=10)) == 0
    assert len(prog.outbox("agenda.")) == 120
    assert all(kinds(prog, f"{role}{i}@example.com").count("agenda") == 1 for i in range(60) for role in ("mentor", "mentee"))
    assert {row["status"] for row in outbox_rows(prog, "agenda").values()} == {"sent"}
