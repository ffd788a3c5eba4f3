"""BackendContract: the tests every backend passes (vdirsyncer's StorageTests, for us).

A backend's test module subclasses ``BackendContract`` and provides one fixture, ``harness``,
returning an object with:

- ``backend``: the backend under test, ready to use;
- ``deliver(raw: bytes) -> None``: put one message into the programme mailbox's inbox;
- ``received(address: str) -> list[bytes]``: every message the backend delivered to ``address``
  so far (RFC 5322 bytes; for calendar servers, the meeting messages in that mailbox as MIME).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from email import message_from_bytes, policy

import icalendar
import pytest

from rmdaemon.compose import Envelope, Rendered, build_email
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


class BackendContract:
    @pytest.fixture
    def harness(self):  # pragma: no cover - each backend's module provides it
        raise NotImplementedError

    def test_send_delivers_to_the_recipient(self, harness):
        send(harness.backend, outgoing("k1", subject="First"))
        got = [message_from_bytes(r, policy=policy.default)["Subject"] for r in harness.received(ALEX.email)]
        assert got == ["First"]

    def test_send_is_idempotent_by_key_also_in_a_new_backend_instance(self, harness):
        send(harness.backend, outgoing("k1"))
        send(harness.backend, outgoing("k1"))
        fresh = harness.reopen()
        send(fresh, outgoing("k1"))
        assert len(harness.received(ALEX.email)) == 1

    def test_publish_invites_each_attendee_once_per_sequence(self, harness):
        publish(harness.backend, meeting())
        publish(harness.backend, meeting())
        publish(harness.reopen(), meeting())
        for person in (ALEX, SAM):
            assert events(harness, person.email) == [("REQUEST", "rm-contract-0@example.com", 0)]

    def test_update_keeps_uid_and_raises_sequence_and_cancel_is_cancel(self, harness):
        publish(harness.backend, meeting())
        publish(harness.backend, meeting(sequence=1))
        publish(harness.backend, meeting(sequence=2, cancelled=True))
        got = events(harness, SAM.email)
        assert [(m, s) for m, _, s in got] == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
        assert {uid for _, uid, _ in got} == {"rm-contract-0@example.com"}

    def test_cancel_occurrence_names_the_occurrence(self, harness):
        m = meeting()
        publish(harness.backend, m)
        start = m.plan.first_start + timedelta(weeks=2)
        harness.backend.cancel_occurrence(meeting(sequence=1), start)
        cancels = [calendar_of(r) for r in harness.received(ALEX.email)]
        rid = [ev["RECURRENCE-ID"].dt for cal in cancels if cal and cal["METHOD"] == "CANCEL" for ev in cal.walk("VEVENT")]
        assert [r.astimezone(timezone.utc) for r in rid] == [start.astimezone(timezone.utc)]

    def test_fetch_returns_new_messages_until_marked(self, harness):
        harness.deliver(b"From: alex@example.com\r\nTo: mentoring@example.com\r\nSubject: Re: hi\r\n"
                        b"Message-ID: <c1@example.com>\r\n\r\nAttended: yes\r\n")
        fetched = harness.backend.fetch_new()
        assert len(fetched) == 1 and b"Attended: yes" in fetched[0].raw
        harness.backend.mark_processed(fetched[0].ref)
        harness.backend.mark_processed(fetched[0].ref)  # twice is harmless
        assert harness.backend.fetch_new() == []

    def test_check_online_passes_when_healthy(self, harness):
        assert harness.backend.check_online() == []
