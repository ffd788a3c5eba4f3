"""An attacker with nothing but an e-mail account: one active pair on the local backend, raw
``.eml`` bytes dropped into its inbox Maildir, and a check that nothing changed for anyone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

from programme import Programme
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
MENTOR, MENTEE = "aisha.khan@example.com", "richard.hale@example.com"
MENTOR2, MENTEE2 = "ben.okafor@example.com", "sanjay.rao@example.com"
CHAMPION = "champion@example.com"
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
          f"P01,Aisha Khan,{MENTOR},Richard Hale,{MENTEE},Understand TikTok\n"
          f"P02,Ben Okafor,{MENTOR2},Sanjay Rao,{MENTEE2},Learn Figma\n")
# What may change when a quarantined message is processed: its own inbox row, nothing else.
UNTOUCHED = ("pairs", "logs", "commands", "sessions", "surveys", "flags", "requests", "outbox")


def armed(tmp_path: Path, **config: str) -> tuple[Programme, datetime]:
    """Two pairs, opted in and booked, at the moment P01's mentor has an agenda; settled, so a
    second run at that moment does nothing unless a message arrives."""
    prog = Programme.create(tmp_path, roster=ROSTER, cadence='"weekly"', champion=f'"{CHAMPION}"', **config)
    assert prog.run(T0) == 0
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    now = T0 + timedelta(hours=1)
    assert prog.run(now) == 0
    while not prog.outbox("agenda.", to=MENTOR):
        now += timedelta(hours=12)
        assert prog.run(now) == 0
    assert prog.run(now) == 0
    return prog, now


def tables(prog: Programme) -> dict[str, list[dict]]:
    with Store.open(prog.state, writer=False) as store:
        return {name: [dict(d) for d in store.table(name).all()] for name in (*UNTOUCHED, "inbox")}


def snapshot(prog: Programme) -> str:
    state = tables(prog)
    return json.dumps({name: state[name] for name in UNTOUCHED}, sort_keys=True) + "\n".join(
        p.name for p in prog.outbox_files())


def series_uid(prog: Programme, pair_id: str = "P01") -> str:
    return next(p["series"]["uid"] for p in tables(prog)["pairs"] if p["pair_id"] == pair_id)


def token_of(prog: Programme, to: str) -> str:
    """The session token in the subject of the latest agenda sent to ``to`` (what a forwarded or
    leaked agenda shows an attacker)."""
    agenda = prog.outbox("agenda.", to=to)[-1]
    return str(agenda["Subject"]).rsplit("[", 1)[1].rstrip("]")


def drop(prog: Programme, raw: bytes, name: str = "attack.eml") -> Path:
    return prog.drop(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), name)


def attack(prog: Programme, now: datetime, raw: bytes, reason: str) -> dict:
    """Drop ``raw``, run, and assert the message was quarantined with ``reason`` in its reason and
    that no pair, session, log, command or outgoing e-mail changed."""
    before = snapshot(prog)
    drop(prog, raw)
    assert prog.run(now) == 0
    row = tables(prog)["inbox"][-1]
    assert row["outcome"] == "quarantine", row
    assert reason in row["reason"], row["reason"]
    assert snapshot(prog) == before
    return row


def reply_ics(uid: str, attendee: str, partstat: str, recurrence_id: str | None = None, method: str = "REPLY") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//attacker//EN", f"METHOD:{method}", "BEGIN:VEVENT",
             f"UID:{uid}", *([f"RECURRENCE-ID:{recurrence_id}"] if recurrence_id else []),
             "DTSTAMP:20270101T000000Z", f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}",
             "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def calendar_reply(sender: str, ics: str, extra: str = "", message_id: str = "<forged-1@evil.example>") -> bytes:
    return (f"From: {sender}\n{extra}To: mentoring@example.com\nSubject: Declined: Reverse mentoring\n"
            f"Date: Mon, 11 Jan 2027 09:00:00 +0000\nMessage-ID: {message_id}\nMIME-Version: 1.0\n"
            "Content-Type: text/calendar; method=REPLY; charset=UTF-8\n\n").encode() + ics.encode()


def text_mail(from_header: str, subject: str, body: str, extra: str = "",
              message_id: str = "<forged-2@evil.example>") -> bytes:
    return (f"From: {from_header}\n{extra}To: mentoring@example.com\nSubject: {subject}\n"
            f"Date: Mon, 11 Jan 2027 09:00:00 +0000\nMessage-ID: {message_id}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n").encode()


def first_occurrence(prog: Programme) -> str:
    """The first session's start as an RFC 5545 UTC RECURRENCE-ID."""
    sessions = sorted(s["start"] for s in tables(prog)["sessions"] if s.get("kind") == "session" and s["pair_id"] == "P01")
    return datetime.fromisoformat(sessions[0]).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sent_to(prog: Programme, address: str) -> list:
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in prog.outbox_files()
            if address in str(message_from_bytes(p.read_bytes(), policy=policy.default)["To"])]
