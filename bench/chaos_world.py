"""The world around the daemon in the chaos harness: a programme folder, the mail system the
people use (a Maildir, or the EWS test server), and scripted people who read what the daemon
sent and answer like people do — consent, session logs, PAUSE, SKIP, STOP, RESCHEDULE, HELP,
calendar answers, survey answers — plus strangers, auto-replies and garbage.

Everything random is drawn from one seeded ``random.Random``, so a run can be repeated.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from rmdaemon.jobs.inbox import message_key

REPO = Path(__file__).resolve().parents[1]
ORGANIZER = "mentoring@example.com"
CHAMPION = "champion@example.com"
SERVICE_USER = "svc-chaos"
PASSWORD_ENV = "RMDAEMON_CHAOS_EWS_PASSWORD"
MAX_MESSAGE_BYTES = 100_000  # small, so that the harness's oversized messages are cheap
ZONES = [("Europe/London", "Europe/London"), ("Europe/Berlin", "Europe/London"),
         ("Europe/London", "Europe/Berlin"), ("America/New_York", "Europe/London")]


# --------------------------------------------------------------------------------------------
# The programme folder


def roster_csv(pairs: int) -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,track"]
    for n in range(pairs):
        mentor_tz, mentee_tz = ZONES[n % len(ZONES)]
        rows.append(f"P{n:03d},Mentor {n},mentor{n}@example.com,Mentee {n},mentee{n}@example.com,"
                    f"Goal of pair {n},{mentor_tz},{mentee_tz},technology")
    return "\n".join(rows) + "\n"


def config_toml(backend: str, ews_url: str = "") -> str:
    """The shipped example with weekly sessions, run on the chosen backend."""
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^cadence = .*$', 'cadence = "weekly"', text)
    text = re.sub(r'(?m)^path = "examples/roster.csv".*$', 'path = "roster.csv"', text)
    text = re.sub(r'(?m)^max_message_bytes = .*$', f"max_message_bytes = {MAX_MESSAGE_BYTES}", text)
    if backend == "exchange":
        text = re.sub(r'(?m)^kind = "local".*$', 'kind = "exchange"', text)
        text += (f'\n[backend.exchange]\nservice_endpoint = "{ews_url}"\nauth = "basic"\nusername = "{SERVICE_USER}"\n'
                 f'password_env = "{PASSWORD_ENV}"\naccess = "delegate"\nretry_budget_seconds = 1\n')
    return text


def people_of(pairs: int) -> dict[str, tuple[str, str]]:
    return {f"P{n:03d}": (f"mentor{n}@example.com", f"mentee{n}@example.com") for n in range(pairs)}


# --------------------------------------------------------------------------------------------
# Mail as the people see it


@dataclass(frozen=True)
class Mail:
    """One message the programme sent, as a recipient got it."""

    ident: str  # unique per sent copy (file name or position in the server's log)
    to: str
    raw: bytes

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


class LocalMail:
    """The local backend's Maildirs: read the outbox, write into the inbox."""

    def __init__(self, root: Path) -> None:
        self.outbox, self.inbox = root / "var" / "outbox", root / "var" / "inbox"
        self._seen: dict[str, Mail] = {}
        self._count = 0

    def sent(self) -> list[Mail]:
        folder = self.outbox / "new"
        for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
            if path.name not in self._seen:
                raw = path.read_bytes()
                to = message_from_bytes(raw, policy=policy.default)["To"].addresses[0].addr_spec.casefold()
                self._seen[path.name] = Mail(path.name, to, raw)
        return list(self._seen.values())

    def deliver(self, raw: bytes) -> None:
        self._count += 1
        target = self.inbox / "new" / f"chaos-{self._count:06d}.eml"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.inbox / "tmp" / target.name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(raw)
        tmp.replace(target)  # a Maildir delivery: whole or not at all

    def rsvp(self, attendee: str, uid: str, partstat: str, now: datetime, occurrence: datetime | None,
             sequence: int) -> bytes:
        raw = itip_reply(attendee, uid, partstat, now, occurrence, sequence)
        self.deliver(raw)
        return raw

    def unprocessed(self) -> list[bytes]:
        folder = self.inbox / "new"
        return [p.read_bytes() for p in folder.iterdir()] if folder.is_dir() else []

    def processed(self) -> list[bytes]:
        folder = self.inbox / "cur"
        return [p.read_bytes() for p in folder.iterdir()] if folder.is_dir() else []


def itip_reply(attendee: str, uid: str, partstat: str, now: datetime, occurrence: datetime | None,
               sequence: int) -> bytes:
    """What a calendar client sends when someone clicks Accept or Decline (iTIP REPLY over iMIP)."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "PRODID:-//chaos harness//EN", "VERSION:2.0", "METHOD:REPLY", "BEGIN:VEVENT",
             f"UID:{uid}", f"DTSTAMP:{stamp}", f"SEQUENCE:{sequence}",
             f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}", f"ORGANIZER:mailto:{ORGANIZER}"]
    if occurrence is not None:
        lines.append(f"RECURRENCE-ID:{occurrence.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    msg = EmailMessage()
    msg["From"], msg["To"] = attendee, ORGANIZER
    msg["Subject"] = f"{partstat.title()}: reverse mentoring"
    msg["Date"] = format_datetime(now)
    ident = hashlib.sha256(f"{uid}|{attendee}|{partstat}|{stamp}|{occurrence}".encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<rsvp-{ident}@client.example>"
    msg.set_content(f"{attendee} has answered: {partstat}")
    msg.add_alternative("\r\n".join(lines) + "\r\n", subtype="calendar", params={"method": "REPLY"})
    return msg.as_bytes()


class ExchangeMail:
    """The EWS test server: people read the programme mailbox's outgoing traffic and answer into its inbox."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.server = server

    def sent(self) -> list[Mail]:
        return [Mail(f"{n:06d}", s.recipients[0], s.mime) for n, s in enumerate(self.server.control.sent(ORGANIZER))]

    def deliver(self, raw: bytes) -> None:
        self.server.control.inject_message(ORGANIZER, raw)

    def rsvp(self, attendee: str, uid: str, partstat: str, now: datetime, occurrence: datetime | None,
             sequence: int) -> bytes | None:
        response = {"ACCEPTED": "Accept", "DECLINED": "Decline"}[partstat]
        try:
            self.server.control.respond(attendee, uid, response, occurrence)
        except KeyError:
            return None  # the occurrence or copy is gone meanwhile: a person would see nothing to answer
        return self.server.control.sent(attendee)[-1].mime

    def _inbox(self) -> list:  # type: ignore[type-arg]
        return self.server.control.items(ORGANIZER, "inbox")

    def unprocessed(self) -> list[bytes]:
        return [i.mime for i in self._inbox() if "rmdaemon: processed" not in self.server.control.categories(i)]

    def processed(self) -> list[bytes]:
        return [i.mime for i in self._inbox() if "rmdaemon: processed" in self.server.control.categories(i)]


# --------------------------------------------------------------------------------------------
# The people


def kind_of(msg: EmailMessage) -> str:
    """``agenda``, ``kickoff``, ... from our Message-ID; ``itip`` for anything with a calendar part."""
    if any(p.get_content_type() == "text/calendar" for p in msg.walk()):
        return "itip"
    mid = str(msg.get("Message-ID", ""))
    return mid.split(".")[1] if mid.startswith("<rm.") else "other"


def token_of(msg: EmailMessage) -> str:
    found = re.search(r"\[(RM-[A-Z0-9]{6})\]", str(msg.get("Subject", "")))
    return found[1] if found else ""


def calendar_of(msg: EmailMessage) -> dict[str, str]:
    """METHOD, and UID and SEQUENCE of the first VEVENT, from the first calendar part; RECURRENCE-ID
    only when every VEVENT has one (a single-occurrence message, not a series with a moved session)."""
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    text = part.get_payload(decode=True).decode("utf-8", "replace").replace("\r\n ", "").replace("\n ", "")
    found: dict[str, str] = {}
    events: list[dict[str, str]] = []
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.split(";")[0].upper()
        if line.strip() == "BEGIN:VEVENT":
            events.append({})
        elif name == "METHOD":
            found.setdefault("METHOD", value.strip())
        elif events and name in ("UID", "SEQUENCE", "RECURRENCE-ID"):
            events[-1].setdefault(name, value.strip())
    found.update({k: v for k, v in events[0].items() if k != "RECURRENCE-ID"} if events else {})
    if events and all("RECURRENCE-ID" in e for e in events):
        found["RECURRENCE-ID"] = events[0]["RECURRENCE-ID"]
    return found


@dataclass
class Persona:
    """What one pair does; drawn once per pair from the seed."""

    pair_id: str
    index: int
    consents: bool = True
    mentee_says_no: bool = False
    pause_at: int = 0  # session number whose agenda the mentor answers with PAUSE
    skip_at: int = 0  # session number the mentee SKIPs as soon as the agenda arrives
    stop_at: int = 0
    reschedule_at: int = 0
    decline_second: bool = False  # the mentee declines session 2 in the calendar, then picks a time
    silent: tuple[int, ...] = ()  # sessions the mentor never logs (fizzle)
    double_delivery: bool = False  # the mail system delivers each log twice (same Message-ID)
    auto_reply: bool = False  # the mentor's out-of-office answers the first agenda


def personas(pairs: int, rng: random.Random) -> dict[str, Persona]:
    """Every behaviour appears at least once when there are 10 pairs or more, and early in the
    series, so that a short run (three weeks: two or three sessions) sees them all."""
    out = {}
    for n in range(pairs):
        pid = f"P{n:03d}"
        role = n % 10
        out[pid] = Persona(
            pid, n, consents=n != 0, mentee_says_no=n == 1, pause_at=2 if role == 2 else 0,
            skip_at=1 if role == 3 else 0, decline_second=role == 4, double_delivery=role == 5 or rng.random() < 0.1,
            silent=(1, 2) if role == 6 else (), stop_at=2 if role == 7 else 0, reschedule_at=1 if role == 8 else 0,
            auto_reply=role == 9)
    return out


@dataclass
class People:
    """Read new mail after each step and answer it; remember every message put in the inbox."""

    mail: LocalMail | ExchangeMail
    rng: random.Random
    pairs: int
    cast: dict[str, Persona] = field(init=False)
    answered: set[str] = field(default_factory=set)
    dropped: Counter = field(default_factory=Counter)  # message key → deliveries
    accepted: set[tuple[str, str]] = field(default_factory=set)
    _strangers: int = 0

    def __post_init__(self) -> None:
        self.cast = personas(self.pairs, self.rng)
        self.by_address = {addr: (pid, role) for pid, people in people_of(self.pairs).items()
                           for role, addr in zip(("mentor", "mentee"), people)}

    def act(self, now: datetime, sessions: dict[str, dict], series: dict[str, dict]) -> None:
        for mail in self.mail.sent():
            if mail.ident in self.answered:
                continue
            if self._answer(mail, mail.parsed(), now, sessions, series):
                self.answered.add(mail.ident)
        self._noise(now)

    def _answer(self, mail: Mail, msg: EmailMessage, now: datetime, sessions: dict, series: dict) -> bool:
        """True when this mail needs nothing more from its reader."""
        kind = kind_of(msg)
        if mail.to == CHAMPION.casefold():
            pid = re.search(r"pair (P\d+)", str(msg["Subject"]))
            if kind == "alert" and pid and ("nudged", pid[1]) not in self.accepted:
                self.accepted.add(("nudged", pid[1]))  # the champion nudges a pair once, not at every alert
                self.reply(msg, now, f"NUDGE {pid[1]}", CHAMPION)
            return True
        if mail.to not in self.by_address:
            return True
        pid, role = self.by_address[mail.to]
        who = self.cast[pid]
        if kind == "itip":
            self._calendar(mail.to, msg, now, who, series)
            return True
        if kind == "kickoff":
            return self._kickoff(msg, now, who, role)
        if kind == "agenda":
            return self._agenda(msg, now, who, role, sessions)
        if kind == "survey":
            self.reply(msg, now, "1. 4\n2. 5\n3. 4\n4. more async work")
        elif kind == "checkin":
            flag = f"FLAG: we keep getting interrupted ({token_of(msg)})"  # each check-in its own words
            self.reply(msg, now, flag if who.silent else "OK")
        elif kind == "repair" and role == "mentee":
            self.reply(msg, now, "1")
        return True

    def _kickoff(self, msg: EmailMessage, now: datetime, who: Persona, role: str) -> bool:
        if not who.consents:
            return True
        if who.mentee_says_no and role == "mentee":
            self.reply(msg, now, "NO, sorry: no time this quarter")
        else:
            self.reply(msg, now, "Yes, I'm in." + ("\n\nSHARE NOTES" if who.index % 3 == 0 else ""))
        return True

    def _agenda(self, msg: EmailMessage, now: datetime, who: Persona, role: str, sessions: dict) -> bool:
        session = sessions.get(token_of(msg))
        if session is None:
            return False  # not recorded yet (the run that sent it was killed): look again next step
        number = session.get("number") or 0
        if role == "mentee":
            if number == who.skip_at:
                self.reply(msg, now, "SKIP")
            return True
        if number == who.reschedule_at:
            self.reply(msg, now, "RESCHEDULE Thu 14:00")
            return True
        if who.auto_reply and number == 1 and ("auto", msg["Message-ID"]) not in self.accepted:
            self.accepted.add(("auto", msg["Message-ID"]))
            self.reply(msg, now, "I am out of the office until Monday.", auto=True)
        if now < datetime.fromisoformat(session["start"]) + timedelta(hours=1):
            return False  # answered once the session is over
        self._log(msg, now, who, number)
        return True

    def _log(self, msg: EmailMessage, now: datetime, who: Persona, number: int) -> None:
        if number in who.silent:
            return
        if number == who.pause_at:
            self.reply(msg, now, "PAUSE")
        elif number == who.stop_at:
            self.reply(msg, now, "STOP")
        else:
            text = (f"Attended: yes\nTopics: topic {number} of {who.pair_id}\nLearned: note {number}\n"
                    f"Next steps: step {number} of {who.pair_id}\nRating: {1 + (who.index + number) % 5}")
            if who.silent and number == 3:
                text += "\n\nHELP"
            self.reply(msg, now, text, twice=who.double_delivery)

    def _calendar(self, to: str, msg: EmailMessage, now: datetime, who: Persona, series: dict) -> None:
        """Accept every series once; the decliner also declines session 2 while it is ahead."""
        cal = calendar_of(msg)
        if cal.get("METHOD") != "REQUEST" or "RECURRENCE-ID" in cal:
            return
        uid, sequence = cal["UID"], int(cal.get("SEQUENCE", "0") or 0)
        if (to, uid) in self.accepted:
            return
        self.accepted.add((to, uid))
        self._rsvp(to, uid, "ACCEPTED", now, None, sequence)
        second = (series.get(uid) or {}).get("second")
        if who.decline_second and to.startswith("mentee") and second and second > now + timedelta(hours=6):
            self._rsvp(to, uid, "DECLINED", now, second, sequence)

    def _rsvp(self, to: str, uid: str, partstat: str, now: datetime, occurrence: datetime | None, sequence: int) -> None:
        raw = self.mail.rsvp(to, uid, partstat, now, occurrence, sequence)
        if raw is not None:
            self.dropped[message_key(raw)] += 1

    def _noise(self, now: datetime) -> None:
        """Mail no pair sent: a stranger, and now and then bytes that are not an email at all."""
        if self.rng.random() < 0.15:
            self._strangers += 1
            msg = EmailMessage()
            msg["From"], msg["To"] = f"stranger{self._strangers}@elsewhere.example", ORGANIZER
            msg["Subject"], msg["Date"] = "Quick question", format_datetime(now)
            msg["Message-ID"] = f"<stranger-{self._strangers}@elsewhere.example>"
            msg.set_content("Can I join the programme? Also: PAUSE")
            self.put(msg.as_bytes())
        if self.rng.random() < 0.05 and isinstance(self.mail, LocalMail):
            self.put(self.rng.randbytes(self.rng.randrange(50, 3000)))
        if self.rng.random() < 0.04:
            self._strangers += 1
            msg = EmailMessage()
            msg["From"], msg["To"] = f"sender{self._strangers}@elsewhere.example", ORGANIZER
            msg["Subject"], msg["Message-ID"] = "Big file", f"<big-{self._strangers}@elsewhere.example>"
            msg.set_content("x" * (MAX_MESSAGE_BYTES + 1000))
            self.put(msg.as_bytes())

    def reply(self, to: EmailMessage, now: datetime, text: str, sender: str | None = None, *,
              twice: bool = False, auto: bool = False) -> None:
        answer = EmailMessage()
        answer["From"] = sender or to["To"]
        answer["To"] = ORGANIZER
        answer["Subject"] = f"Re: {to['Subject']}"
        answer["Date"] = format_datetime(now)
        answer["Message-ID"] = f"<reply-{self.rng.getrandbits(64):016x}@client.example>"
        answer["In-Reply-To"] = to["Message-ID"]
        if auto:
            answer["Auto-Submitted"] = "auto-replied"
        quoted = "\n".join(f"> {line}" for line in to.get_body(("plain",)).get_content().splitlines())
        answer.set_content(f"{text}\n\nOn {to['Date']}, {to['From']} wrote:\n{quoted}\n")
        raw = answer.as_bytes()
        for _ in range(2 if twice else 1):
            self.put(raw)

    def put(self, raw: bytes) -> None:
        self.mail.deliver(raw)
        self.dropped[message_key(raw)] += 1


def steps(start: datetime, weeks: int, hours: float) -> Iterator[datetime]:
    now = start
    while now < start + timedelta(weeks=weeks):
        yield now
        now += timedelta(hours=hours)
