"""The Exchange backend over real HTTP against the EWS test server, with real exchangelib.

Nothing is patched: the backend talks SOAP to ``tests/servers/ews``, which checks every request
against Microsoft's schema and keeps mailboxes the way Exchange would.
"""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from email import policy
from zoneinfo import ZoneInfo

import pytest

from contract import annotate, publish, send
from rmdaemon.backends.base import DEFAULT_MAX_BYTES
from rmdaemon.backends.exchange import ExchangeBackend
from rmdaemon.config import ExchangeBackendSettings
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting, Outgoing, Person, SeriesPlan, WorkingHours
from tests.servers.ews.fixtures import PROGRAMME, SERVICE_USER, ews_schema, ews_server  # noqa: F401  (fixtures)
from tests.servers.ews.server import EwsServer

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))


def person(name: str) -> Person:
    return Person(name.title(), f"{name}@corp.example", "Europe/Berlin", HOURS)


def settings(server: EwsServer, **changes: object) -> ExchangeBackendSettings:
    base = ExchangeBackendSettings(
        service_endpoint=server.url,
        mailbox=PROGRAMME,
        auth="basic",
        username=SERVICE_USER[0],
        password_env="RMDAEMON_EWS_PASSWORD",
        access="delegate",
        retry_budget_seconds=2,
        timezone="Europe/Berlin",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def backend(server: EwsServer, max_bytes: int = DEFAULT_MAX_BYTES, **changes: object) -> ExchangeBackend:
    return ExchangeBackend(settings(server, **changes), secret=SERVICE_USER[1], max_bytes=max_bytes)


def meeting(n: int, sequence: int = 0, rrule: str = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", **changes: object) -> Meeting:
    first = datetime(2027, 1, 5, 9 + n % 8, 0, tzinfo=BERLIN)
    plan = SeriesPlan(f"p{n}", "Europe/Berlin", first, 45, "biweekly", rrule)
    base = Meeting(
        uid=f"rm-p{n}@corp.example",
        sequence=sequence,
        organizer_email=PROGRAMME,
        organizer_name="Reverse Mentoring",
        attendees=(person(f"mentor{n}"), person(f"mentee{n}")),
        summary=f"Reverse mentoring: pair {n}",
        description="Agenda follows by mail.",
        plan=plan,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def ews(ews_server: EwsServer) -> EwsServer:
    for n in range(12):
        ews_server.control.add_mailbox(f"mentor{n}@corp.example")
        ews_server.control.add_mailbox(f"mentee{n}@corp.example")
    return ews_server


def test_several_pairs_are_booked_in_one_create_with_invitations_delivered(ews: EwsServer) -> None:
    be = backend(ews)
    results = be.publish_many([meeting(n) for n in range(3)])
    assert results == {f"rm-p{n}@corp.example": None for n in range(3)}
    assert ews.counts["CreateItem"] == 1
    booked = ews.control.calendar(PROGRAMME)
    assert sorted(ews.control.extended(i, "rmdaemon-key")[0] for i in booked) == [f"rm-p{n}@corp.example" for n in range(3)]
    first = next(i for i in booked if i.text("UID") == "rm-p0@corp.example")
    assert first.text("Sensitivity") == "Private" and first.text("LegacyFreeBusyStatus") == "Busy"
    assert [a.text for a in first.fields.iter("{*}ResponseType")] == ["Unknown", "Unknown"]
    assert len(ews.control.live_starts(first)) == 6
    inbox = ews.control.items("mentee0@corp.example", "inbox", "MeetingRequest")
    assert [i.text("Subject") for i in inbox] == ["Reverse mentoring: pair 0"]
    assert b"METHOD:REQUEST" in inbox[0].mime


def test_booking_100_pairs_costs_at_most_five_requests(ews: EwsServer) -> None:
    for n in range(12, 100):
        ews.control.add_mailbox(f"mentor{n}@corp.example")
        ews.control.add_mailbox(f"mentee{n}@corp.example")
    be = backend(ews)
    results = be.publish_many([meeting(n) for n in range(100)])
    assert all(error is None for error in results.values())
    assert len(ews.control.calendar(PROGRAMME)) == 100
    assert sum(ews.counts.values()) <= 5, dict(ews.counts)


def test_rerun_after_crash_between_create_and_record_books_nothing_twice(ews: EwsServer) -> None:
    publish(backend(ews), meeting(1))  # Exchange booked it; the store never heard (crash)
    ews.counts.clear()
    fresh = backend(ews)  # the restarted daemon
    publish(fresh, meeting(1))
    assert len(ews.control.calendar(PROGRAMME)) == 1
    assert ews.counts["CreateItem"] == 0
    assert len(ews.control.items("mentor1@corp.example", "inbox", "MeetingRequest")) == 1


def test_higher_sequence_updates_the_series_and_reinvites(ews: EwsServer) -> None:
    be = backend(ews)
    publish(be, meeting(2))
    moved = meeting(2, sequence=1)
    moved = replace(moved, plan=replace(moved.plan, first_start=datetime(2027, 1, 7, 14, 0, tzinfo=BERLIN),
                                         rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;COUNT=6"))  # fmt: skip
    publish(be, moved)
    publish(be, moved)  # same (uid, sequence) again: no second update
    (item,) = ews.control.calendar(PROGRAMME)
    assert ews.control.live_starts(item)[0] == datetime(2027, 1, 7, 13, 0, tzinfo=timezone.utc)
    assert ews.counts["UpdateItem"] == 1
    requests = ews.control.items("mentee2@corp.example", "inbox", "MeetingRequest")
    assert [r.text("MeetingRequestType") for r in requests] == ["NewMeetingRequest", "FullUpdate"]


def test_skipped_occurrence_is_cancelled_for_attendees(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(3)
    publish(be, m)
    skipped = datetime(2027, 1, 19, 12, 0, tzinfo=BERLIN)
    be.cancel_occurrence(m, skipped)
    be.cancel_occurrence(m, skipped)  # again after a crash: harmless
    (item,) = ews.control.calendar(PROGRAMME)
    assert skipped not in ews.control.live_starts(item) and len(ews.control.live_starts(item)) == 5
    (cancel,) = ews.control.items("mentor3@corp.example", "inbox", "MeetingCancellation")
    assert b"METHOD:CANCEL" in cancel.mime and b"RECURRENCE-ID:20270119T110000Z" in cancel.mime


def test_pause_cancels_the_series_and_attendees_are_told(ews: EwsServer) -> None:
    be = backend(ews)
    publish(be, meeting(4))
    publish(be, meeting(4, sequence=1, cancelled=True))
    publish(be, meeting(4, sequence=1, cancelled=True))
    assert ews.control.calendar(PROGRAMME) == []
    assert len(ews.control.items("mentee4@corp.example", "inbox", "MeetingCancellation")) == 1
    assert ews.control.calendar("mentee4@corp.example") == []


def test_monthly_relative_series_with_end_date(ews: EwsServer) -> None:
    m = meeting(5, rrule="FREQ=MONTHLY;BYDAY=2TU;UNTIL=20270615T000000Z")
    m = replace(m, plan=replace(m.plan, first_start=datetime(2027, 1, 12, 10, 0, tzinfo=BERLIN), cadence="monthly"))
    publish(backend(ews), m)
    (item,) = ews.control.calendar(PROGRAMME)
    starts = ews.control.live_starts(item)
    assert [s.astimezone(BERLIN).date().isoformat() for s in starts] == [
        "2027-01-12", "2027-02-09", "2027-03-09", "2027-04-13", "2027-05-11", "2027-06-08"]  # fmt: skip
    assert {s.astimezone(BERLIN).time() for s in starts} == {time(10)}  # wall clock kept across DST


def test_attendee_answers_flow_back_as_raw_mime_replies(ews: EwsServer) -> None:
    be = backend(ews)
    publish(be, meeting(6))
    ews.control.respond("mentor6@corp.example", "rm-p6@corp.example", "Accept")
    ews.control.respond("mentee6@corp.example", "rm-p6@corp.example", "Decline")
    fetched = be.fetch_new()
    parts = [_calendar_part(m.raw) for m in fetched]
    assert len(parts) == 2 and all("METHOD:REPLY" in p for p in parts)
    assert "PARTSTAT=ACCEPTED:mailto:mentor6@corp.example" in parts[0]
    assert "PARTSTAT=DECLINED:mailto:mentee6@corp.example" in parts[1]
    for message in fetched:
        be.mark_processed(message.ref)
        be.mark_processed(message.ref)
    assert be.fetch_new() == []
    assert backend(ews).fetch_new() == []  # a restarted daemon sees them as processed too
    responses = ews.control.items(PROGRAMME, "inbox")
    assert all(r.is_read and "rmdaemon: processed" in ews.control.categories(r) for r in responses)


def test_inbox_reply_is_fetched_byte_for_byte_and_watermark_persists(ews: EwsServer, tmp_path) -> None:
    raw = (b"From: Alex <mentor7@corp.example>\r\nTo: mentoring@corp.example\r\nSubject: Re: Agenda\r\n"
           b"Message-ID: <r1@corp.example>\r\nIn-Reply-To: <agenda-1@corp.example>\r\n\r\nWe met. Rating: 5\r\n")  # fmt: skip
    ews.control.inject_message(PROGRAMME, raw)
    state = tmp_path / "exchange-state.json"
    be = backend(ews, state_path=state)
    (message,) = be.fetch_new()
    assert message.raw == raw
    assert state.exists()
    be.mark_processed(message.ref)
    assert backend(ews, state_path=state).fetch_new() == []


def test_a_message_over_the_size_limit_is_never_downloaded_and_goes_on_with_what_exchange_said(ews: EwsServer) -> None:
    """The item's Size comes with the FindItem: over ``max_message_bytes`` its MIME is never asked
    for; the inbox gets it refused with the reason and a head of its From, Subject and Message-ID,
    and once marked it is not read again. The messages around it come whole."""
    def mail(n: int, body: bytes) -> bytes:
        return (f"From: Alex <mentor{n}@corp.example>\r\nTo: mentoring@corp.example\r\nSubject: Re: Agenda {n}\r\n"
                f"Message-ID: <big-{n}@corp.example>\r\n\r\n").encode() + body
    small, huge = mail(1, b"Rating: 5\r\n"), mail(2, (b"x" * 76 + b"\r\n") * 40_000)
    ids = [ews.control.inject_message(PROGRAMME, raw) for raw in (small, huge, mail(3, b"Rating: 4\r\n"))]
    be = backend(ews, max_bytes=1_000_000)
    first, big, last = be.fetch_new()
    assert first.raw == small and last.raw.endswith(b"Rating: 4\r\n") and not first.refused
    assert big.refused.startswith(f"{len(huge):,} bytes is over [security] max_message_bytes (1,000,000); not downloaded")
    head = email.message_from_bytes(big.raw, policy=policy.default)
    assert (head["Message-ID"], head["Subject"], head["From"].addresses[0].addr_spec) == (
        "<big-2@corp.example>", "Re: Agenda 2", "mentor2@corp.example")
    assert not [r for r in ews.log if b"item:MimeContent" in r and ids[1].encode() in r]
    for message in (first, big, last):
        be.mark_processed(message.ref)
    assert backend(ews, max_bytes=1_000_000).fetch_new() == []


def test_agenda_mail_goes_out_once_with_our_message_id(ews: EwsServer) -> None:
    raw = (b"From: Reverse Mentoring <mentoring@corp.example>\r\nTo: mentee8@corp.example\r\n"
           b"Subject: Agenda for Tuesday\r\nMessage-ID: <agenda-8-1@rmdaemon.corp.example>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nToken RM-7F3K2Q\r\n")  # fmt: skip
    out = Outgoing(key="agenda:p8:1", to=("mentee8@corp.example",), raw=raw, kind="agenda", pair_id="p8")
    send(backend(ews), out)
    send(backend(ews), out)  # restarted after a crash before the store recorded it
    (delivered,) = ews.control.items("mentee8@corp.example", "inbox", "Message")
    assert delivered.mime == raw
    assert delivered.text("InternetMessageId") == "<agenda-8-1@rmdaemon.corp.example>"
    assert len(ews.control.sent(PROGRAMME)) == 1
    (copy,) = ews.control.items(PROGRAMME, "sentitems")
    assert ews.control.extended(copy, "rmdaemon-key") == ["agenda:p8:1"]


def test_free_busy_sees_calendars_and_scripted_busy_across_windows(ews: EwsServer) -> None:
    be = backend(ews)
    publish(be, meeting(9))
    busy_start = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)
    ews.control.script_busy("mentor10@corp.example", busy_start, busy_start + timedelta(hours=2))
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    found = be.free_busy([person("mentor9"), person("mentor10")], start, start + timedelta(days=84)).busy
    assert len(found["mentor9@corp.example"]) == 6  # the booked series, tentatively held
    assert found["mentor10@corp.example"][0].start == busy_start
    assert ews.counts["GetUserAvailabilityRequest"] == 2  # 84 days → two 42-day windows


def test_free_busy_unknown_person_is_reported_by_address(ews: EwsServer) -> None:
    start = datetime(2027, 1, 4, tzinfo=BERLIN)
    found = backend(ews).free_busy([person("mentor1"), person("nobody")], start, start + timedelta(days=7))
    assert list(found.problems) == ["nobody@corp.example"] and list(found.busy) == ["mentor1@corp.example"]


def test_throttling_is_waited_out_within_the_budget(ews: EwsServer) -> None:
    ews.add_fault("busy", "CreateItem", times=2, back_off_ms=50)
    assert backend(ews).publish_many([meeting(10)]) == {"rm-p10@corp.example": None}
    assert ews.faults.fired == [("busy", "CreateItem"), ("busy", "CreateItem")]
    assert len(ews.control.calendar(PROGRAMME)) == 1


def test_outage_beyond_the_budget_records_nothing_and_a_later_run_succeeds(ews: EwsServer) -> None:
    be = backend(ews)
    be.account.calendar  # noqa: B018 — folders resolved before the outage
    ews.add_fault("http503", "CreateItem")
    result = be.publish_many([meeting(11)])
    assert isinstance(result["rm-p11@corp.example"], BackendError)
    assert not result["rm-p11@corp.example"].permanent
    assert ews.control.calendar(PROGRAMME) == []
    assert be.publish_many([meeting(11)]) == {"rm-p11@corp.example": None}


def test_one_bad_pair_does_not_stop_the_others(ews: EwsServer) -> None:
    bad = meeting(1, rrule="FREQ=YEARLY;BYMONTH=3")
    results = backend(ews).publish_many([bad, meeting(2)])
    assert isinstance(results["rm-p1@corp.example"], BackendError) and results["rm-p1@corp.example"].permanent
    assert results["rm-p2@corp.example"] is None


def test_check_online_reports_each_kind_of_failure(ews: EwsServer) -> None:
    assert backend(ews).check_online() == []
    (wrong,) = ExchangeBackend(settings(ews), secret="wrong").check_online()
    assert wrong.startswith("bad credentials")
    ews.control.add_account("svc-noimp", "pw", "svc-noimp@corp.example")
    (denied,) = ExchangeBackend(settings(ews, username="svc-noimp", access="impersonation"), secret="pw").check_online()
    assert denied.startswith("missing impersonation right")
    (tls,) = backend(ews, service_endpoint=ews.url.replace("http://", "https://")).check_online()
    assert tls.startswith("TLS error")
    closed = _closed_port_url()
    (unreachable,) = backend(ews, service_endpoint=closed).check_online()
    assert unreachable.startswith("unreachable host")


def _closed_port_url() -> str:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/EWS/Exchange.asmx"


def _calendar_part(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_content()
    return ""


def _requests(ews: EwsServer, address: str) -> list[tuple[str, bytes]]:
    """(MeetingRequestType or item kind, MIME) of every meeting message in a mailbox, oldest first."""
    items = ews.control.items(address, "inbox")
    return [(i.text("MeetingRequestType") or i.kind, i.mime or b"") for i in items if i.kind.startswith("Meeting")]


def test_moved_session_becomes_an_exception_and_only_it_is_sent(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(3)
    publish(be, m)
    planned = datetime(2027, 2, 2, 12, 0, tzinfo=BERLIN)  # the third session
    new = datetime(2027, 2, 4, 15, 30, tzinfo=BERLIN)
    moved = replace(m, sequence=1, moved=((planned, new),))
    publish(be, moved)
    publish(be, moved)  # again (a rerun): nothing more is sent
    (item,) = ews.control.calendar(PROGRAMME)
    starts = ews.control.live_starts(item)
    assert new in starts and planned not in starts and len(starts) == 6
    kinds = [kind for kind, _ in _requests(ews, "mentee3@corp.example")]
    assert kinds == ["NewMeetingRequest", "FullUpdate"]  # the series, then the one session: no re-sent series
    update = _requests(ews, "mentee3@corp.example")[-1][1]
    assert b"RECURRENCE-ID:20270202T110000Z" in update and b"DTSTART:20270204T143000Z" in update
    (copy,) = ews.control.calendar("mentee3@corp.example")
    assert new in ews.control.live_starts(copy)  # their calendar (and so their free/busy) shows the new time
    publish(be, replace(m, sequence=2))  # moved back where the pattern has it
    (item,) = ews.control.calendar(PROGRAMME)
    assert planned in ews.control.live_starts(item) and new not in ews.control.live_starts(item)


def test_skip_by_publish_cancels_only_that_session(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(4)
    publish(be, m)
    skipped = datetime(2027, 1, 19, 13, 0, tzinfo=BERLIN)
    publish(be, replace(m, sequence=1, exdates=(skipped,)))
    be.cancel_occurrence(replace(m, sequence=1, exdates=(skipped,)), skipped)  # the job also asks for it: harmless
    (item,) = ews.control.calendar(PROGRAMME)
    assert skipped not in ews.control.live_starts(item)
    assert [kind for kind, _ in _requests(ews, "mentor4@corp.example")] == ["NewMeetingRequest", "MeetingCancellation"]


def test_replanned_series_drops_old_exceptions_and_applies_the_new_ones(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(5)
    publish(be, replace(m, sequence=1, exdates=(datetime(2027, 1, 19, 14, 0, tzinfo=BERLIN),)))
    thursday = datetime(2027, 1, 7, 14, 0, tzinfo=BERLIN)
    replanned = replace(m, sequence=2, plan=replace(m.plan, first_start=thursday, rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;COUNT=6"),
                        exdates=(thursday + timedelta(weeks=4),))  # fmt: skip
    publish(be, replanned)
    (item,) = ews.control.calendar(PROGRAMME)
    starts = ews.control.live_starts(item)
    assert len(starts) == 5 and thursday + timedelta(weeks=4) not in starts and starts[0] == thursday


def test_crash_before_exceptions_are_recorded_is_finished_by_the_rerun(ews: EwsServer) -> None:
    be = backend(ews)
    be.account.calendar  # noqa: B018 — folders resolved before the outage
    skipped = datetime(2027, 1, 19, 15, 0, tzinfo=BERLIN)
    m = meeting(6, exdates=(skipped,))  # a blackout day: skipped from the start
    ews.add_fault("http503", "DeleteItem")
    outcome = be.publish_many([m])["rm-p6@corp.example"]
    assert isinstance(outcome, BackendError) and not outcome.permanent  # booked, but not finished: not confirmed
    assert backend(ews).publish_many([m]) == {"rm-p6@corp.example": None}
    (item,) = ews.control.calendar(PROGRAMME)
    assert skipped not in ews.control.live_starts(item)
    assert ews.counts["CreateItem"] == 1
    assert [kind for kind, _ in _requests(ews, "mentor6@corp.example")] == ["NewMeetingRequest", "MeetingCancellation"]


def test_occurrence_answers_read_the_calendar_not_the_mail(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(7)
    publish(be, m)
    first, second, third = (datetime(2027, 1, 5, 16, 0, tzinfo=BERLIN) + timedelta(weeks=2 * i) for i in range(3))
    assert be.occurrence_answers(m, first) == {"mentor7@corp.example": "NEEDS-ACTION", "mentee7@corp.example": "NEEDS-ACTION"}
    ews.control.respond("mentor7@corp.example", m.uid, "Accept")
    ews.control.respond("mentee7@corp.example", m.uid, "Accept")
    ews.control.respond("mentee7@corp.example", m.uid, "Decline", occurrence_start=second)  # only that one
    assert be.occurrence_answers(m, first) == {"mentor7@corp.example": "ACCEPTED", "mentee7@corp.example": "ACCEPTED"}
    assert be.occurrence_answers(m, second) == {"mentor7@corp.example": "ACCEPTED", "mentee7@corp.example": "DECLINED"}
    be.cancel_occurrence(m, third)
    assert set(be.occurrence_answers(m, third).values()) == {"DECLINED"}  # deleted: nobody is going
    assert be.occurrence_answers(replace(m, uid="rm-never@corp.example"), first) is None


def test_agenda_written_into_one_session_reaches_the_attendees_calendars(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(8)
    publish(be, m)
    second = datetime(2027, 1, 19, 9, 0, tzinfo=BERLIN)
    annotate(be, m, second, "Goal: TikTok\nConversation starter: what surprised you this week?")
    (copy,) = ews.control.calendar("mentee8@corp.example")
    occurrence = next(o for o in ews.control.occurrences(copy) if o.start == second)
    assert "Conversation starter" in ews.control.body(copy, occurrence.index)
    assert ews.control.body(copy, occurrence.index - 1) == "Agenda follows by mail."  # the others keep the series text
    assert ews.control.live_starts(copy)[1] == second  # the time does not move


def test_a_moved_session_that_is_then_skipped_is_deleted_not_moved_back(ews: EwsServer) -> None:
    be = backend(ews)
    m = meeting(9)
    planned, new = datetime(2027, 1, 19, 10, 0, tzinfo=BERLIN), datetime(2027, 1, 20, 11, 0, tzinfo=BERLIN)
    publish(be, m)
    publish(be, replace(m, sequence=1, moved=((planned, new),)))
    publish(be, replace(m, sequence=2, moved=((planned, new),), exdates=(planned,)))
    (item,) = ews.control.calendar(PROGRAMME)
    assert new not in ews.control.live_starts(item) and planned not in ews.control.live_starts(item)
    kinds = [kind for kind, _ in _requests(ews, "mentor9@corp.example")]
    assert kinds == ["NewMeetingRequest", "FullUpdate", "MeetingCancellation"]
