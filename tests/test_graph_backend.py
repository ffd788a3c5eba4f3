"""The Graph backend over HTTPS against the Graph test server, with real msal and requests.

Nothing is patched: tests point authority_host, graph_base and ca_file at ``tests/servers/graph``,
which checks tokens (secrets and signed certificate assertions), permissions per mailbox and
request shapes, and keeps mailboxes the way Exchange Online would. Waits are recorded by a fake
clock, never slept.
"""

from __future__ import annotations

import email
import threading
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import trustme
from cryptography import x509

from contract import publish, send
from rmdaemon.backends.graph_auth import Credential
from rmdaemon.backends.graph_http import Unsure
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting, Outgoing, Person, SeriesPlan, WorkingHours
from tests.servers import FakeTime
from tests.servers.graph.fixtures import (CLIENT_ID, PROGRAMME, TENANT, graph_backend,  # noqa: F401
                                          graph_server)
from tests.servers.graph.server import GraphServer
from tests.servers.graph.store import Hours as GraphHours

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
KEY_PROP = "rmdaemon-key"


def person(name: str) -> Person:
    return Person(name.title(), f"{name}@example.com", "Europe/Berlin", HOURS)


def meeting(n: int, sequence: int = 0, rrule: str = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", **changes: object) -> Meeting:
    first = datetime(2027, 1, 5, 9 + n % 8, 0, tzinfo=BERLIN)
    plan = SeriesPlan(f"p{n}", "Europe/Berlin", first, 45, "biweekly", rrule)
    base = Meeting(uid=f"rm-p{n}@example.com", sequence=sequence, organizer_email=PROGRAMME, organizer_name="Reverse Mentoring",
                   attendees=(person(f"mentor{n}"), person(f"mentee{n}")), summary=f"Reverse mentoring: pair {n}",
                   description="Agenda follows by mail.", plan=plan, body_text="Your sessions, every other Tuesday.\n")
    return replace(base, **changes)  # type: ignore[arg-type]


def mail(key: str, to: str = "mentee8@example.com", subject: str = "Agenda for Tuesday") -> Outgoing:
    raw = (f"From: Reverse Mentoring <{PROGRAMME}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{key.replace(':', '.')}@rmdaemon.example.com>\r\nIn-Reply-To: <kickoff-8@rmdaemon.example.com>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nToken RM-7F3K2Q\r\n").encode()
    return Outgoing(key=key, to=(to,), raw=raw, kind="agenda", pair_id="p8")


@pytest.fixture
def graph(graph_server: GraphServer) -> GraphServer:
    for n in range(12):
        graph_server.control.add_mailbox(f"mentor{n}@example.com")
        graph_server.control.add_mailbox(f"mentee{n}@example.com")
    return graph_server


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "graph-state.json"


def calendar_part(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    return next((p.get_content() for p in msg.walk() if p.get_content_type() == "text/calendar"), "")


def graph_calls(server: GraphServer, method: str, path_part: str, *, parts: bool = True) -> int:
    """How often Graph saw ``method`` on a path containing ``path_part`` (inside $batch too)."""
    entries = server.graph_requests() + (server.graph_requests(parts=True) if parts else [])
    return sum(1 for e in entries if e.method == method and path_part in e.path)


# -- booking --------------------------------------------------------------------------------
def test_several_pairs_are_booked_in_one_batch_with_our_uid_at_every_attendee(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    assert be.publish_many([meeting(n) for n in range(3)]) == {f"rm-p{n}@example.com": None for n in range(3)}
    assert [e.path for e in graph.graph_requests()] == ["/$batch"]
    booked = {graph.control.extended(e, KEY_PROP): e for e in graph.control.events(PROGRAMME)}
    assert sorted(booked) == [f"rm-p{n}@example.com" for n in range(3)]
    first = booked["rm-p0@example.com"]
    assert (first.fields["showAs"], first.fields["sensitivity"], first.fields["categories"]) == ("busy", "private", ["Reverse mentoring"])
    assert first.fields["isReminderOn"] and first.fields["reminderMinutesBeforeStart"] == 15
    assert first.transaction_id and first.fields["start"]["timeZone"] == "W. Europe Standard Time"
    assert len(graph.control.live_starts(first)) == 6
    (invite,) = graph.control.received("mentee0@example.com")
    assert "METHOD:REQUEST" in calendar_part(invite) and "UID:rm-p0@example.com" in calendar_part(invite)
    assert first.ical_uid.startswith("040000008200E00074C5B7101A82E008")  # Graph's iCalUId: the GOID, in hex


def test_booking_100_pairs_costs_five_round_trips(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    results = be.publish_many([meeting(n) for n in range(100)])
    assert all(error is None for error in results.values())
    assert len(graph.control.events(PROGRAMME)) == 100
    assert len(graph.graph_requests()) == 5 and be.requests_sent == 5  # 20 creates per $batch
    assert sum(e.kind == "identity" for e in graph.log) == 2  # OpenID discovery + one token, then cached


def test_rerun_after_crash_between_create_and_record_books_nothing_twice(graph: GraphServer, state: Path) -> None:
    publish(graph_backend(graph, state_path=state), meeting(1))  # Graph booked it; the store never heard (crash)
    graph.log.clear()
    publish(graph_backend(graph, state_path=state), meeting(1))  # the restarted daemon offers it again
    assert len(graph.control.events(PROGRAMME)) == 1
    assert graph.graph_requests() == []  # the journal knew: not even a lookup
    assert len(graph.control.received("mentor1@example.com")) == 1


def test_create_whose_answer_was_lost_is_repeated_safely_thanks_to_the_transaction_id(graph: GraphServer) -> None:
    graph.add_fault("drop", "POST", r"^/\$batch$", after_work=True)  # Graph booked; the connection died
    assert graph_backend(graph).publish_many([meeting(1), meeting(2)]) == {"rm-p1@example.com": None, "rm-p2@example.com": None}
    assert len(graph.control.events(PROGRAMME)) == 2 and len(graph.control.received("mentee2@example.com")) == 1
    assert graph_calls(graph, "POST", "/events") == 4  # sent twice, booked once


def test_create_left_unanswered_by_a_crash_is_looked_up_before_booking_again(graph: GraphServer, state: Path) -> None:
    graph.add_fault("drop", "POST", r"^/\$batch$", after_work=True)
    first = graph_backend(graph, state_path=state, retry_budget_seconds=0).publish_many([meeting(1), meeting(2)])
    assert all(isinstance(e, BackendError) and not e.permanent for e in first.values())  # the daemon gives up (or dies)
    again = graph_backend(graph, state_path=state).publish_many([meeting(1), meeting(2)])
    assert again == {"rm-p1@example.com": None, "rm-p2@example.com": None}
    assert len(graph.control.events(PROGRAMME)) == 2 and len(graph.control.received("mentee2@example.com")) == 1
    assert graph_calls(graph, "GET", "/events") == 2 and graph_calls(graph, "POST", "/events") == 2  # found, not re-created


def test_retried_create_without_the_journal_is_caught_by_the_transaction_id(graph: GraphServer) -> None:
    publish(graph_backend(graph), meeting(3))  # no journal file at all (lost): only transactionId protects
    publish(graph_backend(graph), meeting(3))
    assert len(graph.control.events(PROGRAMME)) == 1
    assert len(graph.control.received("mentee3@example.com")) == 1


def test_higher_sequence_is_one_patch_and_reinvites(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    publish(be, meeting(2))
    moved = meeting(2, sequence=1)
    moved = replace(moved, plan=replace(moved.plan, first_start=datetime(2027, 1, 7, 14, 0, tzinfo=BERLIN),
                                         rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;COUNT=6"))  # fmt: skip
    publish(be, moved)
    publish(graph_backend(graph, state_path=state), moved)  # same (uid, sequence) again after a restart
    (event,) = graph.control.events(PROGRAMME)
    assert graph.control.live_starts(event)[0] == datetime(2027, 1, 7, 13, 0, tzinfo=timezone.utc)
    assert graph_calls(graph, "PATCH", "/events/") == 1
    sequences = [calendar_part(r).split("SEQUENCE:")[1].split()[0] for r in graph.control.received("mentee2@example.com")]
    assert sequences == ["0", "1"]


def test_update_without_a_journal_finds_the_series_by_its_property(graph: GraphServer, tmp_path: Path) -> None:
    publish(graph_backend(graph, state_path=tmp_path / "old.json"), meeting(4))
    publish(graph_backend(graph, state_path=tmp_path / "new.json"), meeting(4, sequence=1, subject="moved"))
    (event,) = graph.control.events(PROGRAMME)
    assert graph.control.extended(event, "rmdaemon-sequence") == "1"


def test_skipped_occurrence_is_cancelled_as_that_instance(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    m = meeting(3)
    publish(be, m)
    skipped = datetime(2027, 1, 19, 12, 0, tzinfo=BERLIN)
    be.cancel_occurrence(m, skipped)
    graph_backend(graph, state_path=state).cancel_occurrence(m, skipped)  # again after a crash: harmless
    (event,) = graph.control.events(PROGRAMME)
    assert skipped not in graph.control.live_starts(event) and len(graph.control.live_starts(event)) == 5
    cancels = [calendar_part(r) for r in graph.control.received("mentor3@example.com") if "METHOD:CANCEL" in calendar_part(r)]
    assert len(cancels) == 1 and "RECURRENCE-ID:20270119T110000Z" in cancels[0] and "UID:rm-p3@example.com" in cancels[0]


def test_pause_cancels_the_series_with_a_comment_and_attendees_are_told_once(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    publish(be, meeting(4))
    stop = meeting(4, sequence=1, cancelled=True, body_text="Paused at the pair's request.\n")
    publish(be, stop)
    publish(graph_backend(graph, state_path=state), stop)
    publish(graph_backend(graph), stop)  # even without the journal: the series is gone, nothing to do
    assert graph.control.events(PROGRAMME) == [] and graph.control.events("mentee4@example.com") == []
    cancels = [r for r in graph.control.received("mentee4@example.com") if "METHOD:CANCEL" in calendar_part(r)]
    assert len(cancels) == 1 and b"Paused at the pair's request." in cancels[0]


def test_blackout_days_and_moved_sessions_reach_the_calendar(graph: GraphServer, state: Path) -> None:
    skipped = datetime(2027, 2, 2, 12, 0, tzinfo=BERLIN)
    planned, new = datetime(2027, 2, 16, 12, 0, tzinfo=BERLIN), datetime(2027, 2, 17, 15, 0, tzinfo=BERLIN)
    m = meeting(3, exdates=(skipped,), moved=((planned, new),))
    be = graph_backend(graph, state_path=state)
    publish(be, m)
    publish(be, replace(m, sequence=0))  # offered again: nothing more happens
    (event,) = graph.control.events(PROGRAMME)
    starts = graph.control.live_starts(event)
    assert skipped not in starts and planned not in starts and new in starts and len(starts) == 5
    requests = [calendar_part(r) for r in graph.control.received("mentee3@example.com") if "METHOD:REQUEST" in calendar_part(r)]
    assert len(requests) == 2 and "RECURRENCE-ID:20270216T110000Z" in requests[1]


def test_a_skip_or_a_move_reaches_attendees_as_that_session_alone(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    publish(be, meeting(5))
    skipped = datetime(2027, 1, 19, 14, 0, tzinfo=BERLIN)  # pair 5 meets at 14:00, every other Tuesday
    planned, new = datetime(2027, 2, 2, 14, 0, tzinfo=BERLIN), datetime(2027, 2, 3, 9, 0, tzinfo=BERLIN)
    publish(be, meeting(5, sequence=1, exdates=(skipped,)))
    publish(be, meeting(5, sequence=2, exdates=(skipped,), moved=((planned, new),)))
    methods = [(calendar_part(r).split("METHOD:")[1].split()[0], "RECURRENCE-ID" in calendar_part(r))
               for r in graph.control.received("mentor5@example.com")]
    assert methods == [("REQUEST", False), ("CANCEL", True), ("REQUEST", True)]  # never the whole series again
    assert graph_calls(graph, "PATCH", "/events/") == 3  # the move, and two sequence stamps
    publish(be, meeting(5, sequence=3, exdates=(skipped,)))  # moved back where it was planned
    (event,) = graph.control.events(PROGRAMME)
    starts = graph.control.live_starts(event)
    assert planned in starts and new not in starts and skipped not in starts
    assert graph.control.extended(event, "rmdaemon-sequence") == "3"


def test_a_series_deleted_by_a_person_is_booked_again_on_the_next_change(graph: GraphServer, state: Path) -> None:
    be = graph_backend(graph, state_path=state)
    publish(be, meeting(7))
    (event,) = graph.control.events(PROGRAMME)
    event.folder = "deleteditems"  # someone deleted it in Outlook
    be.cancel_occurrence(meeting(7), datetime(2027, 1, 19, 16, 0, tzinfo=BERLIN))  # nothing left to cancel: fine
    publish(be, meeting(7, sequence=1, subject="moved"))
    (again,) = graph.control.events(PROGRAMME)
    assert again.id != event.id and graph.control.extended(again, "rmdaemon-sequence") == "1"


def test_monthly_relative_series_with_end_date(graph: GraphServer) -> None:
    m = meeting(5, rrule="FREQ=MONTHLY;BYDAY=2TU;UNTIL=20270615T000000Z")
    m = replace(m, plan=replace(m.plan, first_start=datetime(2027, 1, 12, 10, 0, tzinfo=BERLIN), cadence="monthly"))
    publish(graph_backend(graph), m)
    (event,) = graph.control.events(PROGRAMME)
    starts = graph.control.live_starts(event)
    assert [s.astimezone(BERLIN).date().isoformat() for s in starts] == [
        "2027-01-12", "2027-02-09", "2027-03-09", "2027-04-13", "2027-05-11", "2027-06-08"]  # fmt: skip
    assert {s.astimezone(BERLIN).time() for s in starts} == {time(10)}  # wall clock kept across DST


def test_one_bad_pair_does_not_stop_the_others(graph: GraphServer) -> None:
    results = graph_backend(graph).publish_many([meeting(1, rrule="FREQ=YEARLY;BYMONTH=3"), meeting(2)])
    assert isinstance(results["rm-p1@example.com"], BackendError) and results["rm-p1@example.com"].permanent
    assert results["rm-p2@example.com"] is None


# -- mail -----------------------------------------------------------------------------------
def test_mail_goes_out_as_our_own_mime_once_and_is_tagged_in_sent_items(graph: GraphServer, state: Path) -> None:
    out = mail("agenda:p8:1")
    send(graph_backend(graph, state_path=state), out)
    send(graph_backend(graph, state_path=state), out)  # restarted after a crash before the store recorded it
    (delivered,) = graph.control.received("mentee8@example.com")
    assert delivered == out.raw  # Message-ID and In-Reply-To intact: replies thread
    (copy,) = graph.control.messages(PROGRAMME, "sentitems")
    assert graph.control.extended(copy, KEY_PROP) == "agenda:p8:1" and graph.control.messages(PROGRAMME, "drafts") == []


def test_send_whose_answer_was_lost_is_found_in_sent_items_not_sent_again(graph: GraphServer, state: Path) -> None:
    graph.add_fault("drop", "POST", r"/send$", after_work=True)  # sent, but the client never heard
    with pytest.raises(Unsure):
        graph_backend(graph, state_path=state).send(mail("agenda:p8:2"))
    graph.log.clear()
    graph_backend(graph, state_path=state).send(mail("agenda:p8:2"))
    assert len(graph.control.received("mentee8@example.com")) == 1
    assert [(e.method, e.path) for e in graph.graph_requests()] == [("POST", "/$batch")]  # the look in Sent Items


def test_503_on_send_is_never_retried_blindly_and_the_tagged_draft_goes_out_later(graph: GraphServer, state: Path) -> None:
    graph.add_fault(503, "POST", r"/send$")  # refused before sending
    with pytest.raises(Unsure):
        graph_backend(graph, state_path=state).send(mail("agenda:p8:3"))
    assert graph.control.received("mentee8@example.com") == [] and len(graph.control.messages(PROGRAMME, "drafts")) == 1
    graph_backend(graph, state_path=state).send(mail("agenda:p8:3"))
    assert len(graph.control.received("mentee8@example.com")) == 1
    assert graph.control.messages(PROGRAMME, "drafts") == [] and graph_calls(graph, "POST", "/messages", parts=False) == 3


def test_sending_stays_under_30_messages_a_minute(graph: GraphServer) -> None:
    clock = FakeTime()
    graph.pace.clock = clock.monotonic  # the service counts on the same (fake) minute
    be = graph_backend(graph, sleep=clock.sleep, monotonic=clock.monotonic, retry_budget_seconds=120)
    for n in range(32):
        be.send(mail(f"note:{n}", subject=f"Note {n}"))
    assert len(graph.control.received("mentee8@example.com")) == 32
    assert clock.sleeps == [60]  # the 31st waited for the first one's minute to pass; the service never said 429
    assert all(e.status != 429 for e in graph.graph_requests())


def test_a_pace_wait_beyond_the_budget_leaves_the_mail_for_the_next_tick(graph: GraphServer, state: Path) -> None:
    clock = FakeTime()
    graph.pace.clock = clock.monotonic
    be = graph_backend(graph, state_path=state, sleep=clock.sleep, monotonic=clock.monotonic, retry_budget_seconds=5)
    for n in range(30):
        be.send(mail(f"note:{n}"))
    with pytest.raises(BackendError) as caught:
        be.send(mail("note:30"))
    assert not caught.value.permanent and clock.sleeps == [] and len(graph.control.received("mentee8@example.com")) == 30
    clock.now += 60  # the next tick
    be.send(mail("note:30"))
    assert len(graph.control.received("mentee8@example.com")) == 31 and graph.control.messages(PROGRAMME, "drafts") == []


# -- inbox ----------------------------------------------------------------------------------
def reply(n: int) -> bytes:
    return (f"From: Alex <mentor7@example.com>\r\nTo: {PROGRAMME}\r\nSubject: Re: Agenda {n}\r\n"
            f"Message-ID: <r{n}@example.com>\r\nIn-Reply-To: <agenda-{n}@example.com>\r\n\r\nWe met. Rating: 5\r\n").encode()


def test_inbox_is_read_byte_for_byte_with_delta_across_restarts(graph: GraphServer, state: Path) -> None:
    graph.control.deliver(PROGRAMME, reply(1))
    graph.control.deliver(PROGRAMME, reply(2))
    be = graph_backend(graph, state_path=state)
    fetched = be.fetch_new()
    assert [m.raw for m in fetched] == [reply(1), reply(2)]
    be.mark_processed(fetched[0].ref)  # then the daemon dies before marking the second
    graph.control.deliver(PROGRAMME, reply(3))
    again = graph_backend(graph, state_path=state).fetch_new()
    assert [m.raw for m in again] == [reply(2), reply(3)]
    delta_calls = [e for e in graph.graph_requests() if e.path.endswith("/delta")]
    assert len(delta_calls) == 2  # the second read continued from the saved delta link
    (first,) = [m for m in graph.control.messages(PROGRAMME) if m.message_id == "<r1@example.com>"]
    assert first.is_read and first.categories == ["rmdaemon: processed"]


def test_marking_keeps_a_persons_categories_and_twice_is_harmless(graph: GraphServer) -> None:
    ref = graph.control.deliver(PROGRAMME, reply(4))
    graph.store.messages[ref].categories = ["Red category"]
    be = graph_backend(graph)
    (message,) = be.fetch_new()
    be.mark_processed(message.ref)
    be.mark_processed(message.ref)
    assert graph.store.messages[ref].categories == ["Red category", "rmdaemon: processed"]
    assert be.fetch_new() == [] and graph_backend(graph).fetch_new() == []


def test_forgotten_delta_link_resyncs_without_handing_out_processed_mail(graph: GraphServer, state: Path) -> None:
    graph.control.deliver(PROGRAMME, reply(5))
    be = graph_backend(graph, state_path=state)
    for message in be.fetch_new():
        be.mark_processed(message.ref)
    graph.control.expire_delta_links()
    graph.control.deliver(PROGRAMME, reply(6))
    assert [m.raw for m in graph_backend(graph, state_path=state).fetch_new()] == [reply(6)]


def test_a_message_deleted_by_a_person_before_it_was_read_is_dropped(graph: GraphServer, state: Path) -> None:
    ref = graph.control.deliver(PROGRAMME, reply(7))
    be = graph_backend(graph, state_path=state)
    be.fetch_new()  # fetched, not marked; then someone deletes it in Outlook
    graph.control.delete_message(ref)
    assert graph_backend(graph, state_path=state).fetch_new() == []


def test_many_messages_arrive_in_pages_and_batches(graph: GraphServer) -> None:
    for n in range(45):
        graph.control.deliver(PROGRAMME, reply(100 + n))
    fetched = graph_backend(graph).fetch_new()
    assert [m.raw for m in fetched] == [reply(100 + n) for n in range(45)]
    assert len(graph.graph_requests()) == 1 + 3 + 3  # one delta page (100 per page); sizes, then $value, 20 per $batch


def test_a_message_over_the_size_limit_is_never_downloaded_and_goes_on_with_what_graph_said(graph: GraphServer) -> None:
    """PR_MESSAGE_SIZE is read first: over ``max_message_bytes`` the message's $value is never
    asked for; the inbox gets it refused with the reason and its From, Subject and Message-ID,
    and once marked it is not read again. The messages around it come whole."""
    huge = reply(2).replace(b"\r\n\r\n", b"\r\n\r\n" + (b"x" * 76 + b"\r\n") * 40_000, 1)
    refs = [graph.control.deliver(PROGRAMME, raw) for raw in (reply(1), huge, reply(3))]
    be = graph_backend(graph, max_bytes=1_000_000)
    first, big, last = be.fetch_new()
    assert (first.raw, last.raw) == (reply(1), reply(3)) and not first.refused and not last.refused
    assert big.refused.startswith(f"{len(huge):,} bytes is over [security] max_message_bytes (1,000,000); not downloaded")
    head = email.message_from_bytes(big.raw, policy=policy.default)
    assert head["Message-ID"] == "<r2@example.com>" and head["Subject"] == email.message_from_bytes(huge)["Subject"]
    asked = [e.path for e in (*graph.graph_requests(), *graph.graph_requests(parts=True))]
    assert [p for p in asked if p.endswith(f"{refs[0]}/$value")] and not [p for p in asked if p.endswith(f"{refs[1]}/$value")]
    for message in (first, big, last):
        be.mark_processed(message.ref)
    assert graph_backend(graph, max_bytes=1_000_000).fetch_new() == []


def test_attendee_answers_flow_back_as_itip_replies_with_our_uid(graph: GraphServer) -> None:
    be = graph_backend(graph)
    publish(be, meeting(6))
    graph.control.respond("mentor6@example.com", "rm-p6@example.com", "Accept")
    graph.control.respond("mentee6@example.com", "rm-p6@example.com", "Decline")
    parts = [calendar_part(m.raw) for m in be.fetch_new()]
    assert all("METHOD:REPLY" in p and "UID:rm-p6@example.com" in p for p in parts) and len(parts) == 2
    assert "PARTSTAT=ACCEPTED:mailto:mentor6@example.com" in parts[0]
    assert "PARTSTAT=DECLINED:mailto:mentee6@example.com" in parts[1]


# -- free/busy ------------------------------------------------------------------------------
def test_free_busy_sees_calendars_and_scripted_busy_in_one_round_trip(graph: GraphServer) -> None:
    be = graph_backend(graph)
    publish(be, meeting(9))
    busy_start = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)
    graph.control.script_busy("mentor10@example.com", busy_start, busy_start + timedelta(hours=2), "oof")
    graph.log.clear()
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    people = [person("mentor9"), person("mentor10")] + [person(f"mentee{n}") for n in range(12)] + \
             [person(f"mentor{n}") for n in range(8)]  # 22 people: two getSchedule calls
    found = be.free_busy(people, start, start + timedelta(days=84)).busy  # two windows of < 62 days
    assert len(found["mentor9@example.com"]) == 6  # the booked series, held tentatively
    assert found["mentor10@example.com"][0].start == busy_start
    assert [e.path for e in graph.graph_requests()] == ["/$batch"]
    assert graph_calls(graph, "POST", "/getSchedule") == 4


def test_free_busy_unknown_person_is_reported_by_address_and_the_rest_kept(graph: GraphServer) -> None:
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    graph.control.script_busy("mentor1@example.com", start, start + timedelta(hours=1))
    found = graph_backend(graph).free_busy([person("mentor1"), person("nobody")], start, start + timedelta(days=7))
    assert list(found.problems) == ["nobody@example.com"]
    assert list(found.busy) == ["mentor1@example.com"] and len(found.busy["mentor1@example.com"]) == 1


def test_working_hours_come_with_free_busy_in_the_persons_zone_when_the_clocks_agree(graph: GraphServer) -> None:
    """getSchedule names the mailbox's zone the Windows way (or IANA); Berlin people keep their
    hours, a Berlin person whose mailbox keeps London time or a zone nobody can name falls back."""
    early = {"start": "07:30:00.0000000", "end": "15:00:00.0000000", "days": ("tuesday", "wednesday")}
    graph.control.set_working_hours("mentor1@example.com", GraphHours("W. Europe Standard Time", **early))
    graph.control.set_working_hours("mentor2@example.com", GraphHours("Europe/Paris", **early))  # the same clock
    graph.control.set_working_hours("mentor3@example.com", GraphHours("GMT Standard Time", **early))
    graph.control.set_working_hours("mentor4@example.com", GraphHours("Customized Time Zone", **early))
    graph.log.clear()
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    be = graph_backend(graph)
    people = [replace(person(f"mentor{n}"), hours_defaulted=True) for n in range(1, 5)]
    hours = be.free_busy(people, start, start + timedelta(days=84)).hours
    early_hours = WorkingHours(time(7, 30), time(15), (1, 2))
    assert hours == {"mentor1@example.com": early_hours, "mentor2@example.com": early_hours}
    assert [e.path for e in graph.graph_requests()] == ["/$batch"]  # nothing asked beyond free/busy


# -- throttling and the wire ----------------------------------------------------------------
def test_429_retry_after_is_honoured_and_then_it_works(graph: GraphServer) -> None:
    clock = FakeTime()
    graph.add_fault(429, "POST", r"^/\$batch$", times=2, retry_after=3)
    be = graph_backend(graph, sleep=clock.sleep, monotonic=clock.monotonic, retry_budget_seconds=10)
    assert be.publish_many([meeting(1), meeting(2)]) == {"rm-p1@example.com": None, "rm-p2@example.com": None}
    assert clock.sleeps == [3, 3] and len(graph.control.events(PROGRAMME)) == 2


def test_throttled_parts_of_a_batch_are_retried_alone(graph: GraphServer) -> None:
    clock = FakeTime()
    graph.add_fault(429, "POST", r"/events$", retry_after=2)  # the first create inside the $batch
    be = graph_backend(graph, sleep=clock.sleep, monotonic=clock.monotonic)
    assert all(e is None for e in be.publish_many([meeting(n) for n in range(3)]).values())
    assert clock.sleeps == [2] and len(graph.control.events(PROGRAMME)) == 3
    assert graph_calls(graph, "POST", "/events") == 4  # 3 parts, one of them twice


def test_throttling_beyond_the_budget_records_nothing_and_a_later_run_succeeds(graph: GraphServer, state: Path) -> None:
    graph.add_fault(503, "POST", r"^/\$batch$", retry_after=60)
    be = graph_backend(graph, state_path=state, retry_budget_seconds=30)
    error = next(iter(be.publish_many([meeting(1), meeting(2)]).values()))
    assert isinstance(error, BackendError) and not error.permanent
    assert graph.control.events(PROGRAMME) == []
    assert all(e is None for e in be.publish_many([meeting(1), meeting(2)]).values())


def test_expired_token_is_renewed_once_and_the_call_goes_through(graph: GraphServer) -> None:
    be = graph_backend(graph)
    publish(be, meeting(1))
    graph.control.expire_tokens()
    publish(be, meeting(2))
    assert len(graph.control.events(PROGRAMME)) == 2 and graph.identity.issued == 2


def test_every_request_asks_for_immutable_ids_and_ignores_the_environment(graph: GraphServer, monkeypatch, tmp_path) -> None:
    bogus = tmp_path / "empty.pem"
    bogus.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))  # would break verify=ca_file if the env counted
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    be = graph_backend(graph)
    publish(be, meeting(1))
    be.send(mail("agenda:p1:1", to="mentee1@example.com"))
    logged = graph.graph_requests() + graph.graph_requests(parts=True)
    assert logged and all('IdType="ImmutableId"' in e.prefer for e in logged)


def test_at_most_two_requests_are_in_flight(graph: GraphServer) -> None:
    be = graph_backend(graph)
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    be.free_busy([person("mentor1")], start, start + timedelta(days=1))  # token first
    workers = [threading.Thread(target=be.free_busy, args=([person(f"mentor{n}")], start, start + timedelta(days=1)))
               for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert 1 <= graph.max_in_flight <= 2


# -- check --online -------------------------------------------------------------------------
def test_check_online_is_quiet_when_healthy(graph: GraphServer) -> None:
    assert graph_backend(graph).check_online() == []


def test_check_online_names_a_wrong_secret(graph: GraphServer) -> None:
    (problem,) = graph_backend(graph, secret="wrong").check_online()
    assert problem.startswith("bad client secret") and "AADSTS7000215" in problem


def test_check_online_names_missing_consent_and_a_mailbox_out_of_scope(graph: GraphServer) -> None:
    graph.control.add_app("app-without-rights", TENANT, secret="s3cret")
    (consent,) = graph_backend(graph, "s3cret", client_id="app-without-rights").check_online()
    assert consent.startswith("consent missing") and "RBAC for Applications" in consent
    graph.control.add_mailbox("other@example.com")
    (scope,) = graph_backend(graph, mailbox="other@example.com").check_online()
    assert scope.startswith("mailbox out of scope") and "Test-ServicePrincipalAuthorization" in scope


def test_check_online_names_unknown_tenant_unknown_app_and_tls(graph: GraphServer) -> None:
    (tenant,) = graph_backend(graph, tenant_id="no-such-tenant").check_online()
    assert tenant.startswith("unknown tenant")
    (app,) = graph_backend(graph, client_id="no-such-app").check_online()
    assert app.startswith("unknown app")
    (tls,) = graph_backend(graph, ca_file=None).check_online()  # the system CAs do not know the test CA
    assert tls.startswith("TLS error")


def test_check_online_names_an_unreachable_host(graph: GraphServer) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"https://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    (problem,) = graph_backend(graph, authority_host=closed, graph_base=closed, timeout_seconds=2).check_online()
    assert problem.startswith("unreachable")


# -- certificate credentials ----------------------------------------------------------------
def certificate_file(tmp_path: Path, name: str, **dates: datetime) -> tuple[Path, x509.Certificate]:
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(f"{name}.rmdaemon.example", key_type=trustme.KeyType.RSA,
                                                                 **dates)  # type: ignore[arg-type]
    path = tmp_path / f"{name}.pem"
    path.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    return path, x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())


def test_certificate_credential_signs_an_assertion_the_server_verifies(graph: GraphServer, tmp_path: Path) -> None:
    path, cert = certificate_file(tmp_path, "app")
    graph.store.apps[CLIENT_ID].certificates.append(cert)
    be = graph_backend(graph, credential=Credential(certificate_path=path))
    assert be.check_online() == []
    publish(be, meeting(1))
    assert len(graph.control.events(PROGRAMME)) == 1


def test_unregistered_or_expired_certificate_is_a_bad_certificate(graph: GraphServer, tmp_path: Path) -> None:
    path, _ = certificate_file(tmp_path, "stranger")
    (problem,) = graph_backend(graph, credential=Credential(certificate_path=path)).check_online()
    assert problem.startswith("bad certificate") and "AADSTS700027" in problem
    old, cert = certificate_file(tmp_path, "old", not_before=datetime(2020, 1, 1), not_after=datetime(2021, 1, 1))
    graph.store.apps[CLIENT_ID].certificates.append(cert)
    (expired,) = graph_backend(graph, credential=Credential(certificate_path=old)).check_online()
    assert expired.startswith("bad certificate") and "expired on 2021-01-01" in expired
