"""``run --dry-run``: reads what the real backend has, records what would change, changes nothing.

It can read what the real backend can read (free/busy with its working hours, who is going to a
session), so a dry run plans as a run would; writing an agenda into a calendar it leaves out."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy

from rmdaemon.backends.base import Backend, Capability, FreeBusy
from rmdaemon.phrases import local_time
from rmdaemon.model import Incoming, Meeting, Outgoing, Person

READS = frozenset({Capability.FREE_BUSY, Capability.WORKING_HOURS, Capability.OCCURRENCE_ANSWERS})


class DryRunBackend(Backend):
    name = "dry-run"
    capabilities = READS  # what it could pass through; each instance keeps what its real backend has

    def __init__(self, real: Backend) -> None:
        self.real = real
        self.capabilities = real.capabilities & READS  # type: ignore[misc]
        self.lines: list[str] = []

    def send(self, message: Outgoing) -> None:
        subject = message_from_bytes(message.raw, policy=policy.default).get("Subject", "")
        self.lines.append(f"would send {message.kind} to {', '.join(message.to)}: {subject}")

    def publish(self, meeting: Meeting) -> None:
        verb = "cancel" if meeting.cancelled else ("book" if meeting.sequence == 0 else "update")
        first = local_time(meeting.plan.first_start, meeting.plan.tzid)
        people = " and ".join(p.email for p in meeting.attendees)
        self.lines.append(f"would {verb} series {meeting.uid} (sequence {meeting.sequence}) for {people}: "
                          f"from {first}, {meeting.plan.rrule}")

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        self.lines.append(f"would cancel the session of {local_time(start, meeting.plan.tzid)} in {meeting.uid}")

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> FreeBusy:
        return self.real.free_busy(people, start, end)

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """Read-only like free/busy: a dry run asks the calendar who is going, as a run would,
        so it does not preview a nudge the run would not send."""
        return self.real.occurrence_answers(meeting, start)

    def fetch_new(self) -> list[Incoming]:
        return self.real.fetch_new()

    def mark_processed(self, ref: str) -> None:
        self.lines.append(f"would mark inbox message {ref} processed")

    def check_online(self) -> list[str]:
        return self.real.check_online()

    def report(self) -> list[str]:
        return self.lines or ["nothing would be sent or booked"]

    def count(self) -> int:
        return len(self.lines)
