"""Every email the programme writes, built one way: a template pair rendered for some people,
from the programme mailbox, with an idempotency key and a Message-ID derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rmdaemon import compose
from rmdaemon.compose import Templates
from rmdaemon.config import ProgramSettings
from rmdaemon.model import Outgoing, Person


@dataclass(frozen=True)
class Mailer:
    """What building an email needs and nothing more (no store, no backend), so ``preview`` builds
    exactly what a job sends without a tick's context."""

    program: ProgramSettings
    templates: Templates
    now: datetime  # aware UTC: the Date header
    secret: bytes  # the installation's: Message-IDs nobody else can compute

    def email(self, template: str, *, key: str, to: Person | tuple[Person, ...], context: dict, kind: str,
              pair_id: str = "", token: str = "", in_reply_to: str = "",
              files: tuple[compose.Attachment, ...] = (), calendar: tuple[str, bytes] | None = None) -> Outgoing:
        """One email from ``template``.txt/.html. Several people share one message (a repair offer
        goes to both, so either can answer and each sees the other's reply). ``calendar`` is an iTIP part
        (method, bytes) it carries: a DECLINECOUNTER, or the invitation again after a REFRESH."""
        people = to if isinstance(to, tuple) else (to,)
        program = self.program
        envelope = compose.Envelope(
            key=key, sender=program.organizer, sender_name=program.organizer_name, to=people, date=self.now,
            message_id=compose.message_id(kind, key, compose.domain_of(program.organizer), token, self.secret),
            in_reply_to=in_reply_to)
        # One recipient is ``person`` unless the job says otherwise: every e-mail can greet its reader.
        alone = {"person": people[0]} if len(people) == 1 else {}
        content = compose.render(self.templates, template, {"program": program, "token": token, **alone, **context},
                                 self.languages(people), program.language)
        return Outgoing(key=key, to=tuple(p.email for p in people),
                        raw=compose.build_email(envelope, content, calendar, files=files),
                        kind=kind, pair_id=pair_id)

    def languages(self, people: tuple[Person, ...]) -> tuple[str, ...]:
        """The languages a message is written in: each reader's, the first reader's first."""
        return tuple(dict.fromkeys(p.language or self.program.language for p in people))

    def champion(self) -> Person:
        """The champion as a recipient (digests, alerts, forwarded flags)."""
        program = self.program
        return Person(program.champion_name or "Programme champion", program.champion, program.timezone,
                      program.working_hours, preferred_name="" if program.champion_name else "programme champion",
                      language=program.language)

    def admin(self, address: str) -> Person:
        return Person("Programme admin", address, self.program.timezone, self.program.working_hours)
