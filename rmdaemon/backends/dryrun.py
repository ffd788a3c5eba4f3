"""``run --dry-run``: reads what the real backend has, records what would change, changes nothing."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy

from rmdaemon.backends.base import Backend
from rmdaemon.compose import local_time
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person, WorkingHours


class DryRunBackend:
    name = "dry-run"

    def __init__(self, real: Backend) -> None:
        self.real = real
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

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> dict[str, list[BusyTime]] | None:
        return self.real.free_busy(people, start, end)

    def working_hours(self) -> dict[str, WorkingHours]:
        """The hours the real backend read with that free/busy, so a dry run plans as a run would."""
        reader = getattr(self.real, "working_hours", None)
        return reader() if reader is not None else {}

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """Read-only like free/busy: a dry run asks the calendar who is going, as a run would,
        so it does not preview a nudge the run would not send."""
        reader = getattr(self.real, "occurrence_answers", None)
        return reader(meeting, start) if reader is not None else None

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

    def close(self) -> None:
        pass
