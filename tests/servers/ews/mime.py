"""MIME in and out: read the headers of a message a client uploads, and write the MIME that Exchange
produces for items it generates itself (meeting requests, responses, cancellations).

Meeting MIME looks like Exchange's: a text/calendar part with the iTIP METHOD, UTC times, the
attendee's PARTSTAT on a REPLY, and no ORGANIZER on replies (Exchange often leaves it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid

PARTSTAT = {"Accept": "ACCEPTED", "Decline": "DECLINED", "Tentative": "TENTATIVE"}


@dataclass(frozen=True)
class Headers:
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    message_id: str
    in_reply_to: str
    text: str


def read(raw: bytes) -> Headers:
    """The fields an item needs from uploaded MIME."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)

    def addresses(name: str) -> tuple[str, ...]:
        return tuple(a.casefold() for _, a in getaddresses([str(v) for v in msg.get_all(name, [])]) if a)

    body = msg.get_body(("plain",)) if msg.is_multipart() else msg
    text = body.get_content() if body is not None and body.get_content_maintype() == "text" else ""
    return Headers(
        subject=str(msg.get("Subject", "")),
        sender=(addresses("From") or ("",))[0],
        to=addresses("To"),
        cc=addresses("Cc"),
        message_id=str(msg.get("Message-ID", "")).strip(),
        in_reply_to=str(msg.get("In-Reply-To", "")).strip(),
        text=text,
    )


@dataclass(frozen=True)
class Invite:
    method: str  # REQUEST | REPLY | CANCEL
    uid: str
    sequence: int
    summary: str
    start: datetime
    end: datetime
    organizer: str
    attendee: str = ""  # for REPLY: who answers
    response: str = ""  # Accept | Decline | Tentative
    recurrence_id: datetime | None = None
    rrule: str = ""
    body: str = ""  # the item's (or that occurrence's) body, which Exchange puts in the text part
    location: str = ""  # LOCATION, written only when set (Exchange writes no empty one)


def meeting_mime(invite: Invite, sender: str, to: str, subject: str, now: datetime, domain: str) -> bytes:
    """A whole RFC 5322 message carrying the iTIP part, the way Exchange sends one."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(f"{invite.body or subject}\n")
    msg.add_alternative(ical(invite, now), subtype="calendar", params={"method": invite.method})
    return msg.as_bytes()


def ical(invite: Invite, now: datetime) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    now = now.astimezone(timezone.utc)
    lines = ["BEGIN:VCALENDAR", f"METHOD:{invite.method}", "PRODID:Microsoft Exchange Server 2016", "VERSION:2.0",
             "BEGIN:VEVENT"]  # fmt: skip
    if invite.method == "REPLY":
        lines.append(f"ATTENDEE;PARTSTAT={PARTSTAT[invite.response]}:mailto:{invite.attendee}")
    else:
        lines.append(f"ORGANIZER:mailto:{invite.organizer}")
    lines += [f"UID:{invite.uid}", f"SUMMARY:{invite.summary}", f"DTSTART:{invite.start.astimezone(timezone.utc):{stamp}}",
              f"DTEND:{invite.end.astimezone(timezone.utc):{stamp}}", f"DTSTAMP:{now:{stamp}}", f"SEQUENCE:{invite.sequence}"]  # fmt: skip
    if invite.recurrence_id is not None:
        lines.append(f"RECURRENCE-ID:{invite.recurrence_id.astimezone(timezone.utc):{stamp}}")
    if invite.rrule and invite.recurrence_id is None:
        lines.append(f"RRULE:{invite.rrule}")
    if invite.location and invite.method != "REPLY":
        lines.append(f"LOCATION:{invite.location}")
    if invite.method == "CANCEL":
        lines.append("STATUS:CANCELLED")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)
