"""BackendContract: the tests every backend passes (vdirsyncer's StorageTests, for us).

A backend's test module subclasses ``BackendContract`` and provides one fixture, ``harness``,
returning an object with:

- ``backend``: the backend under test, ready to use;
- ``deliver(raw: bytes) -> None``: put one message into the programme mailbox's inbox;
- ``received(address: str) -> list[bytes]``: every message the backend delivered to ``address``
  so far (RFC 5322 bytes; for calendar servers, the meeting messages in that mailbox as MIME);
- ``reopen()``: a new backend instance on the same mailbox and files (a restarted daemon);
- optionally ``read_delivered()``: where delivered mail sits in a folder its reader moves on
  (the local outbox Maildir: a client moves ``new/`` to ``cur/``), that reader taking everything;
- for backends declaring ``Capability.FREE_BUSY``: ``script_busy(address, start, end)``, busy time
  no calendar item explains; with ``WORKING_HOURS``: ``keep_hours(address, hours, zone)``, the
  working hours a person keeps in their own mailbox;
- for backends declaring ``Capability.ONLINE_MEETINGS``: ``reopen(online=True)``, the backend
  configured to make every series an online meeting, and ``forget()``, which loses what the
  backend keeps on disk about booked series (its journal).

The protocol is the batch methods (``send_many``, ``publish_many``, ``annotate_many``): the tests
call those. Tests of an optional capability run where the backend declares it; every backend is
checked to declare exactly what it implements.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from email import message_from_bytes, policy

import icalendar
import pytest

from rmdaemon.backends.base import Backend, Capability, FreeBusy, implements
from rmdaemon.compose import Envelope, Rendered, build_email
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting, Outgoing, Person, SeriesPlan, WorkingHours

HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
ALEX = Person("Alex Young", "alex@example.com", "Europe/London", HOURS)
SAM = Person("Sam Senior", "sam@example.com", "America/New_York", HOURS)
STAMP = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


def outgoing(key: str, to: Person = ALEX, subject: str = "Hello") -> Outgoing:
    env = Envelope(key=key, sender="mentoring@example.com", sender_name="Programme", to=(to,), date=STAMP,
                   message_id=f"<rm.test.{abs(hash(key))}@example.com>")
    raw = build_email(env, Rendered(subject=subject, text="Hello there\n", html="<p>Hello there</p>"))
    return Outgoing(key=key, to=(to.email,), raw=raw, kind="test", pair_id="P1")


def meeting(sequence: int = 0, cancelled: bool = False, uid: str = "rm-contract-0@example.com") -> Meeting:
    from zoneinfo import ZoneInfo

    plan = SeriesPlan(pair_id="P1", tzid="America/New_York",
                      first_start=datetime(2027, 1, 5, 10, 0, tzinfo=ZoneInfo("America/New_York")),
                      duration_minutes=45, cadence="biweekly", rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", count=6)
    return Meeting(uid=uid, sequence=sequence, organizer_email="mentoring@example.com", organizer_name="Programme",
                   attendees=(ALEX, SAM), summary="Pilot: Alex & Sam", description="Goal: learn TikTok",
                   plan=plan, cancelled=cancelled, subject="Pilot: Alex & Sam", body_text="Your sessions\n",
                   body_html="<p>Your sessions</p>")


def send(backend, message: Outgoing) -> None:  # noqa: ANN001
    """One email through the protocol's ``send_many``, raising its error (for tests about one)."""
    error = backend.send_many([message])[message.key]
    if error is not None:
        raise error


def publish(backend, series: Meeting) -> None:  # noqa: ANN001
    """One series through ``publish_many``, raising its error."""
    error = backend.publish_many([series])[series.uid]
    if error is not None:
        raise error


def annotate(backend, series: Meeting, start: datetime, text: str) -> None:  # noqa: ANN001
    """One note through ``annotate_many``, raising its error."""
    error = backend.annotate_many([(series, start, text)])[(series.uid, start)]
    if error is not None:
        raise error


def calendar_of(raw: bytes) -> icalendar.Calendar | None:
    msg = message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


def events(h, address: str) -> list[tuple[str, str, int]]:
    """(METHOD, UID, SEQUENCE) of every calendar message ``address`` received."""
    found = []
    for raw in h.received(address):
        cal = calendar_of(raw)
        if cal is not None:
            ev = next(iter(cal.walk("VEVENT")))
            found.append((str(cal["METHOD"]), str(ev["UID"]), int(ev.get("SEQUENCE", 0))))
    return found


REPLY = (b"From: alex@example.com\r\nTo: mentoring@example.com\r\nSubject: Re: %s\r\n"
         b"Message-ID: <%s@example.com>\r\n\r\nAttended: yes\r\n")
SECOND = meeting(uid="rm-contract-1@example.com")


def reply(n: int) -> bytes:
    return REPLY % (f"hi {n}".encode(), f"c{n}".encode())


def subjects(h, address: str) -> list[str]:  # noqa: ANN001
    return [str(message_from_bytes(r, policy=policy.default)["Subject"]) for r in h.received(address)]


# WORKING_HOURS has no method of its own (``free_busy`` answers carry the hours): a backend with
# free/busy may declare it or not (the google backend does not), so it is checked by its tests only.
DETECTABLE = [c for c in Capability if c is not Capability.WORKING_HOURS]


def needs(harness, capability: Capability) -> None:  # noqa: ANN001
    if capability not in harness.backend.capabilities:
        pytest.skip(f"{harness.backend.name} does not declare {capability.name}")


def session(n: int) -> datetime:
    """The planned start of the n-th session of ``meeting()`` (biweekly)."""
    return meeting().plan.first_start + timedelta(weeks=2 * n)


class BackendContract:
    @pytest.fixture
    def harness(self):  # pragma: no cover - each backend's module provides it
        raise NotImplementedError

    # -- what it is ---------------------------------------------------------------------------
    def test_is_a_backend_with_a_name(self, harness):
        assert isinstance(harness.backend, Backend) and harness.backend.name

    def test_declares_exactly_the_capabilities_it_implements(self, harness):
        cls = type(harness.backend)
        assert {c for c in DETECTABLE if implements(cls, c)} == set(harness.backend.capabilities) & set(DETECTABLE)

    def test_declaring_a_capability_it_lacks_fails_when_the_class_is_made(self, harness):
        cls = type(harness.backend)
        lacking = [c for c in DETECTABLE if c not in cls.capabilities]
        if not lacking:
            pytest.skip(f"{cls.__name__} declares every capability")
        with pytest.raises(TypeError, match=lacking[0].name):
            type("Boastful", (cls,), {"capabilities": cls.capabilities | {lacking[0]}})

    # -- mail ---------------------------------------------------------------------------------
    def test_send_delivers_to_the_recipient(self, harness):
        send(harness.backend, outgoing("k1", subject="First"))
        assert subjects(harness, ALEX.email) == ["First"]

    def test_send_many_gives_one_outcome_per_key_and_delivers_each(self, harness):
        messages = [outgoing("k1", subject="One"), outgoing("k2", to=SAM, subject="Two"), outgoing("k3", subject="Three")]
        assert harness.backend.send_many(messages) == {"k1": None, "k2": None, "k3": None}
        harness.backend.flush()
        assert sorted(subjects(harness, ALEX.email)) == ["One", "Three"]
        assert subjects(harness, SAM.email) == ["Two"]

    def test_send_many_of_nothing_sends_nothing(self, harness):
        assert harness.backend.send_many([]) == {}
        assert harness.received(ALEX.email) == []

    def test_send_is_idempotent_by_key_also_in_a_new_backend_instance(self, harness):
        send(harness.backend, outgoing("k1"))
        send(harness.backend, outgoing("k1"))
        fresh = harness.reopen()
        send(fresh, outgoing("k1"))
        assert len(harness.received(ALEX.email)) == 1

    def test_a_delivered_key_is_refused_even_after_its_message_was_read_and_moved(self, harness):
        """The re-send carries other content, so a backend that overwrote the first copy (same key,
        same file name) instead of refusing it would show "Again" here."""
        assert harness.backend.send_many([outgoing("k1", subject="First")]) == {"k1": None}
        harness.backend.flush()
        if hasattr(harness, "read_delivered"):
            harness.read_delivered()
        again = outgoing("k1", subject="Again")
        assert harness.backend.send_many([again]) == {"k1": None}
        assert harness.reopen().send_many([again]) == {"k1": None}
        assert subjects(harness, ALEX.email) == ["First"]

    def test_the_same_key_twice_in_one_batch_is_delivered_once(self, harness):
        outcomes = harness.backend.send_many([outgoing("k1"), outgoing("k1")])
        assert outcomes == {"k1": None}
        assert len(harness.received(ALEX.email)) == 1

    def test_a_rerun_after_a_crash_sends_only_what_had_not_gone(self, harness):
        """The store never heard of the first batch (killed before it recorded it): the restarted
        daemon offers every message again, with one more; only that one leaves."""
        first = [outgoing("k1", subject="One"), outgoing("k2", subject="Two")]
        harness.backend.send_many(first)
        again = harness.reopen().send_many([*first, outgoing("k3", subject="Three")])
        assert again == {"k1": None, "k2": None, "k3": None}
        assert sorted(subjects(harness, ALEX.email)) == ["One", "Three", "Two"]

    def test_flush_is_harmless_with_nothing_sent_and_twice(self, harness):
        harness.backend.flush()
        send(harness.backend, outgoing("k1"))
        harness.backend.flush()
        harness.backend.flush()
        assert len(harness.received(ALEX.email)) == 1

    # -- calendar -----------------------------------------------------------------------------
    def test_publish_invites_each_attendee_once_per_sequence(self, harness):
        publish(harness.backend, meeting())
        publish(harness.backend, meeting())
        publish(harness.reopen(), meeting())
        for person in (ALEX, SAM):
            assert events(harness, person.email) == [("REQUEST", "rm-contract-0@example.com", 0)]

    def test_publish_many_books_each_series_and_says_so_by_uid(self, harness):
        outcomes = harness.backend.publish_many([meeting(), SECOND])
        assert outcomes == {meeting().uid: None, SECOND.uid: None}
        harness.backend.flush()
        assert sorted(uid for _, uid, _ in events(harness, SAM.email)) == [meeting().uid, SECOND.uid]

    def test_publish_many_of_nothing_books_nothing(self, harness):
        assert harness.backend.publish_many([]) == {}
        assert events(harness, ALEX.email) == []

    def test_publish_many_again_after_a_crash_books_nothing_twice(self, harness):
        harness.backend.publish_many([meeting(), SECOND])
        assert harness.reopen().publish_many([meeting(), SECOND]) == {meeting().uid: None, SECOND.uid: None}
        got = events(harness, ALEX.email)
        assert sorted(got) == sorted({(m, uid, s) for m, uid, s in got}) and len(got) == 2

    def test_update_keeps_uid_and_raises_sequence_and_cancel_is_cancel(self, harness):
        publish(harness.backend, meeting())
        publish(harness.backend, meeting(sequence=1))
        publish(harness.backend, meeting(sequence=2, cancelled=True))
        got = events(harness, SAM.email)
        assert [(m, s) for m, _, s in got] == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
        assert {uid for _, uid, _ in got} == {"rm-contract-0@example.com"}

    def test_a_cancellation_offered_again_is_not_sent_again(self, harness):
        publish(harness.backend, meeting())
        publish(harness.backend, meeting(sequence=1, cancelled=True))
        publish(harness.reopen(), meeting(sequence=1, cancelled=True))
        assert [m for m, _, _ in events(harness, ALEX.email)] == ["REQUEST", "CANCEL"]

    def test_cancel_occurrence_names_the_occurrence(self, harness):
        publish(harness.backend, meeting())
        harness.backend.cancel_occurrence(meeting(sequence=1), session(1))
        harness.backend.flush()
        cancels = [calendar_of(r) for r in harness.received(ALEX.email)]
        rid = [ev["RECURRENCE-ID"].dt for cal in cancels if cal and cal["METHOD"] == "CANCEL" for ev in cal.walk("VEVENT")]
        assert [r.astimezone(timezone.utc) for r in rid] == [session(1).astimezone(timezone.utc)]

    def test_cancel_occurrence_twice_cancels_once(self, harness):
        publish(harness.backend, meeting())
        harness.backend.cancel_occurrence(meeting(sequence=1), session(1))
        harness.reopen().cancel_occurrence(meeting(sequence=1), session(1))
        assert [m for m, _, _ in events(harness, SAM.email)].count("CANCEL") == 1

    # -- inbox --------------------------------------------------------------------------------
    def test_fetch_returns_new_messages_until_marked(self, harness):
        harness.deliver(reply(1))
        fetched = harness.backend.fetch_new()
        assert len(fetched) == 1 and b"Attended: yes" in fetched[0].raw
        harness.backend.mark_processed(fetched[0].ref)
        harness.backend.mark_processed(fetched[0].ref)  # twice is harmless
        assert harness.backend.fetch_new() == []

    def test_fetch_new_gives_the_oldest_first(self, harness):
        for n in range(3):
            harness.deliver(reply(n))
        fetched = harness.backend.fetch_new()
        assert [f"Re: hi {n}".encode() in m.raw for n, m in enumerate(fetched)] == [True, True, True]

    def test_fetching_does_not_consume(self, harness):
        harness.deliver(reply(1))
        first = harness.backend.fetch_new()
        assert [m.raw for m in harness.backend.fetch_new()] == [m.raw for m in first]
        assert [m.raw for m in harness.reopen().fetch_new()] == [m.raw for m in first]

    def test_marked_stays_marked_in_a_new_instance_and_others_stay_new(self, harness):
        harness.deliver(reply(1))
        harness.deliver(reply(2))
        first, second = harness.backend.fetch_new()
        harness.backend.mark_processed(first.ref)
        fresh = harness.reopen()
        fresh.mark_processed(first.ref)  # again, after a restart: harmless
        assert [m.raw for m in fresh.fetch_new()] == [second.raw]

    def test_a_message_arriving_later_is_fetched_after_the_others_were_marked(self, harness):
        harness.deliver(reply(1))
        for message in harness.backend.fetch_new():
            harness.backend.mark_processed(message.ref)
        harness.deliver(reply(2))
        assert [b"Re: hi 2" in m.raw for m in harness.backend.fetch_new()] == [True]

    # -- health -------------------------------------------------------------------------------
    def test_check_online_passes_when_healthy(self, harness):
        assert harness.backend.check_online() == []

    def test_close_then_a_new_instance_carries_on(self, harness):
        send(harness.backend, outgoing("k1"))
        harness.backend.close()
        send(harness.reopen(), outgoing("k2"))
        assert len(harness.received(ALEX.email)) == 2

    # -- optional: online meetings ------------------------------------------------------------
    def test_an_online_series_has_a_join_link_and_a_plain_one_none(self, harness):
        needs(harness, Capability.ONLINE_MEETINGS)
        plain = harness.backend
        publish(plain, SECOND)
        assert plain.join_url(SECOND.uid) is None and plain.join_url("rm-never-booked@example.com") is None
        online = harness.reopen(online=True)
        publish(online, meeting())
        link = online.join_url(meeting().uid)
        assert link and link.startswith("https://")
        assert harness.reopen(online=True).join_url(meeting().uid) == link  # kept across a restart
        harness.forget()  # the journal lost: the series is looked up again, its link with it
        again = harness.reopen(online=True)
        publish(again, replace(meeting(), sequence=1, exdates=(session(1),)))
        assert again.join_url(meeting().uid) == link
        publish(online, replace(meeting(), sequence=1))
        assert online.join_url(meeting().uid) == link  # an update keeps the same meeting and link

    # -- optional: free/busy and working hours ------------------------------------------------
    def test_free_busy_gives_busy_times_by_lower_cased_address(self, harness):
        needs(harness, Capability.FREE_BUSY)
        busy_start = datetime(2027, 1, 12, 15, 0, tzinfo=timezone.utc)
        harness.script_busy(SAM.email, busy_start, busy_start + timedelta(hours=2))
        found = harness.backend.free_busy([replace(ALEX, email="Alex@Example.com"), SAM], STAMP, STAMP + timedelta(days=14))
        assert isinstance(found, FreeBusy) and found.problems == {}
        assert set(found.busy) == {"alex@example.com", "sam@example.com"}
        assert [(b.start, b.end) for b in found.busy["sam@example.com"]] == [(busy_start, busy_start + timedelta(hours=2))]

    def test_free_busy_sees_a_booked_series(self, harness):
        needs(harness, Capability.FREE_BUSY)
        publish(harness.backend, meeting())
        found = harness.backend.free_busy([ALEX], STAMP, STAMP + timedelta(days=14))
        assert [b.start for b in found.busy["alex@example.com"]] == [session(0).astimezone(timezone.utc)]

    def test_free_busy_names_an_unknown_mailbox_and_keeps_the_others(self, harness):
        needs(harness, Capability.FREE_BUSY)
        nobody = replace(ALEX, name="Nobody", email="nobody@example.com")
        found = harness.backend.free_busy([ALEX, nobody], STAMP, STAMP + timedelta(days=7))
        assert list(found.problems) == ["nobody@example.com"] and found.problems["nobody@example.com"]
        assert list(found.busy) == ["alex@example.com"]

    def test_free_busy_over_a_long_window_reads_every_part(self, harness):
        needs(harness, Capability.FREE_BUSY)
        late = STAMP + timedelta(days=80)
        harness.script_busy(SAM.email, late, late + timedelta(hours=1))
        found = harness.backend.free_busy([SAM], STAMP, STAMP + timedelta(days=84))  # beyond any one request's reach
        assert [b.start for b in found.busy["sam@example.com"]] == [late]

    def test_free_busy_carries_the_hours_people_keep_in_their_calendars(self, harness):
        needs(harness, Capability.WORKING_HOURS)
        early = WorkingHours(time(7, 30), time(15), (1, 2))
        harness.keep_hours(ALEX.email, early, ALEX.timezone)
        alex = replace(ALEX, hours_defaulted=True)
        found = harness.backend.free_busy([alex], STAMP, STAMP + timedelta(days=7))
        assert found.hours == {"alex@example.com": early}

    def test_hours_kept_on_another_clock_are_left_out(self, harness):
        needs(harness, Capability.WORKING_HOURS)
        harness.keep_hours(ALEX.email, WorkingHours(time(7, 30), time(15), (1, 2)), "Asia/Tokyo")
        found = harness.backend.free_busy([replace(ALEX, hours_defaulted=True)], STAMP, STAMP + timedelta(days=7))
        assert found.hours == {} and "alex@example.com" in found.busy

    def test_without_working_hours_the_answer_has_none(self, harness):
        needs(harness, Capability.FREE_BUSY)
        if Capability.WORKING_HOURS in harness.backend.capabilities:
            pytest.skip(f"{harness.backend.name} declares WORKING_HOURS")
        assert harness.backend.free_busy([ALEX], STAMP, STAMP + timedelta(days=7)).hours == {}

    # -- optional: who is going to one session -------------------------------------------------
    def test_occurrence_answers_name_every_attendee_of_a_booked_session(self, harness):
        needs(harness, Capability.OCCURRENCE_ANSWERS)
        publish(harness.backend, meeting())
        assert harness.backend.occurrence_answers(meeting(), session(1)) == {
            "alex@example.com": "NEEDS-ACTION", "sam@example.com": "NEEDS-ACTION"}

    def test_occurrence_answers_of_a_series_not_booked_is_none(self, harness):
        needs(harness, Capability.OCCURRENCE_ANSWERS)
        assert harness.backend.occurrence_answers(meeting(), session(1)) is None

    def test_a_cancelled_session_has_nobody_going(self, harness):
        needs(harness, Capability.OCCURRENCE_ANSWERS)
        publish(harness.backend, meeting())
        harness.backend.cancel_occurrence(meeting(sequence=1), session(1))
        assert set(harness.backend.occurrence_answers(meeting(), session(1)).values()) == {"DECLINED"}

    # -- optional: agendas into the calendar --------------------------------------------------
    def test_annotate_many_writes_each_note_once(self, harness):
        needs(harness, Capability.ANNOTATE)
        publish(harness.backend, meeting())
        before = len(harness.received(SAM.email))
        notes = [(meeting(), session(1), "Goal: TikTok\nStarter: one"), (meeting(), session(2), "Goal: TikTok\nStarter: two")]
        assert harness.backend.annotate_many(notes) == {(meeting().uid, session(1)): None, (meeting().uid, session(2)): None}
        after = len(harness.received(SAM.email))
        assert after == before + 2
        assert harness.reopen().annotate_many(notes) == {(meeting().uid, session(1)): None, (meeting().uid, session(2)): None}
        assert len(harness.received(SAM.email)) == after  # a rerun after a crash writes nothing twice

    def test_a_note_for_a_series_not_booked_fails_alone(self, harness):
        needs(harness, Capability.ANNOTATE)
        publish(harness.backend, meeting())
        outcomes = harness.backend.annotate_many([(meeting(), session(1), "Goal: TikTok"), (SECOND, session(1), "Goal: TikTok")])
        assert outcomes[(meeting().uid, session(1))] is None
        assert isinstance(outcomes[(SECOND.uid, session(1))], BackendError)
