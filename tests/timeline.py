"""A programme lived along a timeline: people's replies are written at set moments and reach the
inbox then, the daemon runs at whatever moments a schedule says, and the outbox is emptied after
every run the way a mail relay picks up what the local backend writes. The local backend would
refuse a key it still has on disk; once the mail is gone only the state file stands between a
message and its second sending, which is what these tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from programme import Programme


@dataclass(frozen=True)
class Reply:
    """``who`` writes ``text`` at ``at`` in answer to the first mail of ``kind`` they got."""

    at: datetime
    who: str  # a substring of the address
    text: str
    kind: str = "kickoff"
    name: str = ""  # makes the Message-ID (so a copy can be delivered again)


@dataclass
class Timeline:
    prog: Programme
    replies: list[Reply]
    delivered: list[Path] = field(default_factory=list)
    dropped: dict[str, bytes] = field(default_factory=dict)  # Message-ID → the bytes that reached the inbox

    @property
    def relay(self) -> Path:
        return self.prog.root / "delivered"

    def mail(self, kind: str = "", to: str = "") -> list[EmailMessage]:
        """Every message the relay took, oldest first, filtered like ``Programme.outbox``."""
        found = []
        for path in self.delivered:
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            if msg["Message-ID"].startswith(f"<rm.{kind}") and to in str(msg["To"]):
                found.append(msg)
        return found

    def keys(self) -> list[str]:
        return [message_from_bytes(p.read_bytes(), policy=policy.default)["X-RM-Key"].strip() for p in self.delivered]

    def run(self, now: datetime) -> None:
        """Replies written by ``now`` reach the inbox, the daemon runs, the relay takes the mail."""
        for reply in [r for r in self.replies if r.at <= now]:
            self.replies.remove(reply)
            self._write(reply)
        assert self.prog.run(now) == 0
        self.relay.mkdir(exist_ok=True)
        for path in self.prog.outbox_files():
            target = self.relay / f"{len(self.delivered):05d}-{path.name}"
            path.rename(target)
            self.delivered.append(target)

    def live(self, moments: Iterable[datetime], after: Callable[[datetime], None] | None = None) -> None:
        for now in moments:
            self.run(now)
            if after is not None:
                after(now)

    def redeliver(self, name: str) -> None:
        """The mail server delivers a copy of a message that reached the inbox before."""
        self.prog.drop(self.dropped[name], f"copy-{name}.eml")

    def _write(self, reply: Reply) -> None:
        answered = self.mail(reply.kind, to=reply.who)
        assert answered, f"{reply.who} got no {reply.kind} to answer by {reply.at}"
        to = answered[0]
        answer = EmailMessage()
        answer["From"] = to["To"]
        answer["To"] = to["From"]
        answer["Subject"] = f"Re: {to['Subject']}"
        answer["Date"] = format_datetime(reply.at)
        name = reply.name or f"{reply.who}-{reply.at:%Y%m%dT%H%M}"
        answer["Message-ID"] = f"<{name}@client.example>"
        answer["In-Reply-To"] = to["Message-ID"]
        answer.set_content(f"{reply.text}\n")
        self.dropped[name] = answer.as_bytes()
        self.prog.drop(self.dropped[name], f"{name}.eml")
