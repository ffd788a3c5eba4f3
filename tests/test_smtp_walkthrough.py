"""The programme end to end through the real CLI on the smtp backend, over real servers: aiosmtpd
(STARTTLS + AUTH) captures what leaves, Dovecot (implicit TLS) holds the programme mailbox, and the
tests play the people by APPENDing their replies — as Google Calendar, Outlook/Exchange and
Thunderbird write them — to the IMAP inbox.

consent → invitations (checked part by part against what Outlook and Gmail require, and by libical's RFC 5546
restriction check where Debian's bindings are installed) → calendar replies → attendance per
(UID, RECURRENCE-ID) → agenda → a free-text reply → session log. Nothing sent twice, nothing
deleted from the mailbox.
"""

from __future__ import annotations

import base64
import json
import quopri
import subprocess
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import icalendar
import pytest

from programme import Programme, outbox_statuses
from prerequisites import LIBICAL, partly_missing
from tests.servers.dovecot import PASSWORD, Dovecot, Mailbox
from tests.servers.fixtures import (ORGANIZER, SMTP_PASSWORD, Certs, dovecot, mail_certs, mailbox,  # noqa: F401
                                    smtp_server)
from tests.servers.smtp import Received, SmtpServer

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
ROSTER = """\
pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,preferred_slot,status
P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Understand how younger customers find products on TikTok,Europe/London,Europe/London,,active
P03,Tom Becker,tom.becker@example.com,Linda Morales,linda.morales@example.com,Learn how the mobile app team ships weekly,Europe/London,America/New_York,Tue 10:00,active
"""
KEYWORD = b"$RmdaemonProcessed"


class World:
    """The programme directory plus the two servers; the people act through ``answer``."""

    def __init__(self, prog: Programme, smtp: SmtpServer, imap: Dovecot, box: Mailbox) -> None:
        self.prog, self.smtp, self.imap, self.box = prog, smtp, imap, box
        self.appended = 0

    def sent(self, kind: str = "", to: str = "") -> list[Received]:
        return [m for m in self.smtp.messages
                if m.message["Message-ID"].startswith(f"<rm.{kind}") and to in ",".join(m.rcpt_tos)]

    def append(self, raw: bytes) -> None:
        self.imap.append(self.box, raw)
        self.appended += 1

    def answer(self, to: Received, text: str, when: datetime) -> None:
        """A person replies in plain words from a mail client, quoting the message."""
        original = to.message
        reply = EmailMessage()
        reply["From"] = to.rcpt_tos[0]
        reply["To"] = original["From"]
        reply["Subject"] = f"Re: {original['Subject']}"
        reply["Date"] = format_datetime(when)
        reply["Message-ID"] = f"<{abs(hash((to.data, text)))}@client.example>"
        reply["In-Reply-To"] = original["Message-ID"]
        quoted = "\n".join(f"> {line}" for line in original.get_body(("plain",)).get_content().splitlines())
        reply.set_content(f"{text}\n\nOn {original['Date']}, {original['From']} wrote:\n{quoted}\n")
        self.append(reply.as_bytes())


@pytest.fixture
def world(tmp_path: Path, smtp_server: SmtpServer, dovecot: Dovecot, mailbox: Mailbox, mail_certs: Certs,
          monkeypatch: pytest.MonkeyPatch) -> World:
    prog = Programme.create(tmp_path, roster=ROSTER, kind='"smtp"')
    with open(prog.config, "a") as f:
        f.write(f"""
[backend.smtp]
smtp_host = "127.0.0.1"
smtp_port = {smtp_server.port}
smtp_tls = "starttls"
imap_host = "127.0.0.1"
imap_port = {dovecot.tls_port}
imap_tls = "implicit"
password_env = "RM_TEST_SMTP_PASSWORD"
imap_username = "{mailbox.user}"
imap_password_env = "RM_TEST_IMAP_PASSWORD"
ca_file = "{mail_certs.ca_file}"
""")
    monkeypatch.setenv("RM_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("RM_TEST_IMAP_PASSWORD", PASSWORD)
    w = World(prog, smtp_server, dovecot, mailbox)

    def file_in_sent(received: Received) -> None:  # like Gmail and Microsoft 365
        dovecot.append(mailbox, received.data, folder="Sent", flags=("\\Seen",))

    smtp_server.handler.on_message = file_in_sent
    return w


def status(world: World, now: datetime, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    capsys.readouterr()
    assert world.prog.cli("status", "--json", "--now", now.isoformat()) == 0
    return {row["pair_id"]: row for row in json.loads(capsys.readouterr().out)["pairs"]}


def pairs_state(world: World) -> dict[str, dict]:
    data = json.loads(world.prog.state.read_bytes())
    return {doc["pair_id"]: doc for doc in data["pairs"].values()}


# -- the invitation, part by part (what real clients require) -------------------------------------------


def check_invitation(received: Received) -> icalendar.Calendar:
    msg = received.message
    (attendee,) = received.rcpt_tos  # one email per attendee, nobody in Cc/Bcc
    assert parseaddr(msg["To"])[1] == attendee and not msg["Cc"] and not msg["Bcc"]
    assert received.mail_from == ORGANIZER and parseaddr(msg["From"])[1] == ORGANIZER
    assert msg.get_content_type() == "multipart/mixed"
    first, attachment = msg.get_payload()
    assert first.get_content_type() == "multipart/alternative"  # Outlook looks only at the first child
    assert [p.get_content_type() for p in first.get_payload()] == ["text/plain", "text/html", "text/calendar"]
    calendar_part = first.get_payload()[2]
    assert calendar_part["Content-Transfer-Encoding"] == "base64"
    ics = calendar_part.get_payload(decode=True)
    assert attachment.get_content_type() == "application/ics" and attachment.get_payload(decode=True) == ics
    cal = icalendar.Calendar.from_ical(ics)
    assert calendar_part.get_param("method") == str(cal["METHOD"]) == "REQUEST"
    (event,) = cal.walk("VEVENT")
    assert str(event["ORGANIZER"]) == f"mailto:{ORGANIZER}" and "SENT-BY" not in event["ORGANIZER"].params
    assert [str(a).lower() for a in _list(event["ATTENDEE"]) if attendee in str(a).lower()] == [f"mailto:{attendee}"]
    assert "SEQUENCE" in event
    zones = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    assert event["DTSTART"].params["TZID"] in zones
    until = event["RRULE"].get("UNTIL")
    assert until is None or until[0].tzinfo is not None
    lines = ics.decode().split("\r\n")
    assert [line for line in lines if line.startswith("DTSTAMP")][0].endswith("Z")  # a new DTSTAMP, in UTC
    assert not [line for line in lines if line.endswith(":") and not line.startswith(" ")]  # no empty properties
    problems = libical_problems(ics)
    if problems is None:
        partly_missing(LIBICAL, "libical's RFC 5546 restriction check")
    assert not problems, problems
    return cal


def _list(value: object) -> list:
    return value if isinstance(value, list) else [value]


LIBICAL = """
import sys, gi
gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib
comp = ICalGLib.Component.new_from_string(sys.stdin.read())
ICalGLib.restriction_check(comp)
def walk(c):
    p = c.get_first_property(ICalGLib.PropertyKind.XLICERROR_PROPERTY)
    while p:
        print(p.get_xlicerror()); p = c.get_next_property(ICalGLib.PropertyKind.XLICERROR_PROPERTY)
    s = c.get_first_component(ICalGLib.ComponentKind.ANY_COMPONENT)
    while s:
        walk(s); s = c.get_next_component(ICalGLib.ComponentKind.ANY_COMPONENT)
walk(comp)
"""


def libical_problems(ics: bytes) -> list[str] | None:
    """libical's RFC 5546 restriction check (X-LIC-ERROR lines); None where Debian's bindings are missing."""
    if not Path("/usr/bin/python3").exists():
        return None
    done = subprocess.run(["/usr/bin/python3", "-c", LIBICAL], input=ics.decode(), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return None  # python3-gi / gir1.2-ical-3.0 not installed: .ci/run installs them
    return [line for line in done.stdout.splitlines() if line.strip()]


# -- calendar replies as real clients write them ----------------------------------------------------


def _event_lines(event: icalendar.Event) -> tuple[str, str, str]:
    return str(event["UID"]), event["DTSTART"].params["TZID"], event["DTSTART"].dt.strftime("%Y%m%dT%H%M%S")


def google_reply(invite: icalendar.Event, attendee: str, partstat: str) -> bytes:
    """Series answer: the calendar part and the same .ics attached, Auto-Submitted, Sender: Google."""
    uid, tzid, start = _event_lines(invite)
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "PRODID:-//Google Inc//Google Calendar 70.9054//EN", "VERSION:2.0", "METHOD:REPLY",
        "BEGIN:VEVENT", f"DTSTART;TZID={tzid}:{start}", f"RRULE:{invite['RRULE'].to_ical().decode()}",
        "DTSTAMP:20270104T093112Z", f"ORGANIZER;CN=Programme:mailto:{ORGANIZER}", f"UID:{uid}",
        f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};X-NUM-GUESTS=0:mailto:{attendee}",
        "SEQUENCE:0", "STATUS:CONFIRMED", "SUMMARY:Reverse mentoring", "END:VEVENT", "END:VCALENDAR", ""])
    b64 = base64.encodebytes(ics.encode()).decode()
    return (f"Sender: Google Calendar <calendar-notification@google.com>\r\nAuto-Submitted: auto-generated\r\n"
            f"Reply-To: {attendee}\r\nMessage-ID: <calendar-{abs(hash(ics))}@google.com>\r\n"
            f"Date: Mon, 04 Jan 2027 09:31:13 +0000\r\nSubject: Accepted: Reverse mentoring\r\n"
            f"From: {attendee}\r\nTo: {ORGANIZER}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="g1"\r\n\r\n--g1\r\n'
            'Content-Type: multipart/alternative; boundary="g2"\r\n\r\n--g2\r\n'
            'Content-Type: text/plain; charset="UTF-8"\r\n\r\nAccepted.\r\n--g2\r\n'
            'Content-Type: text/calendar; charset="UTF-8"; method=REPLY\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
            f"{ics}\r\n--g2--\r\n--g1\r\n"
            'Content-Type: application/ics; name="invite.ics"\r\nContent-Disposition: attachment; filename="invite.ics"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--g1--\r\n").encode()


GMT_STANDARD_TIME = [
    "BEGIN:VTIMEZONE", "TZID:GMT Standard Time",
    "BEGIN:STANDARD", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0000",
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
    "BEGIN:DAYLIGHT", "DTSTART:16010101T010000", "TZOFFSETFROM:+0000", "TZOFFSETTO:+0100",
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE"]


def outlook_decline_occurrence(invite: icalendar.Event, attendee: str) -> bytes:
    """Exchange: no ORGANIZER, DTSTAMP or SEQUENCE; a Windows zone name; the note in COMMENT."""
    uid, _, start = _event_lines(invite)
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0", *GMT_STANDARD_TIME,
        "BEGIN:VEVENT", f"ATTENDEE;PARTSTAT=DECLINED;CN=\"Hale, Richard\":MAILTO:{attendee.upper()}",
        "COMMENT;LANGUAGE=en-GB:Board meeting that morning\\, sorry.", f"RECURRENCE-ID;TZID=GMT Standard Time:{start}",
        f"UID:{uid}", "SUMMARY;LANGUAGE=en-GB:Declined: Reverse mentoring", f"DTSTART;TZID=GMT Standard Time:{start}",
        "X-MICROSOFT-CDO-BUSYSTATUS:BUSY", "END:VEVENT", "END:VCALENDAR", ""])
    msg = EmailMessage()
    msg["From"] = f"Richard Hale <{attendee}>"
    msg["To"] = ORGANIZER
    msg["Subject"] = "Declined: Reverse mentoring"
    msg["Message-ID"] = "<DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.exchangelabs.com>"
    msg["Thread-Topic"] = "Reverse mentoring"
    msg.set_content("Board meeting that morning, sorry.\n")
    msg.add_alternative(ics.encode(), maintype="text", subtype="calendar", params={"method": "REPLY", "charset": "utf-8"})
    return msg.as_bytes()


def thunderbird_accept_occurrence(invite: icalendar.Event, cal: icalendar.Calendar, attendee: str) -> bytes:
    """One occurrence, RECURRENCE-ID and no master, quoted-printable (Thunderbird's default)."""
    uid, tzid, start = _event_lines(invite)
    zone = next(tz for tz in cal.walk("VTIMEZONE") if str(tz["TZID"]) == tzid).to_ical().decode().strip().split("\r\n")
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN", "VERSION:2.0", "METHOD:REPLY",
        *zone, "BEGIN:VEVENT", "DTSTAMP:20270104T064400Z", f"UID:{uid}", "SUMMARY:Reverse mentoring",
        f"ORGANIZER;CN=Programme:mailto:{ORGANIZER}",
        f"ATTENDEE;RSVP=TRUE;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:{attendee}",
        f"RECURRENCE-ID;TZID={tzid}:{start}", "SEQUENCE:0", f"DTSTART;TZID={tzid}:{start}", "END:VEVENT",
        "END:VCALENDAR", ""])
    body = quopri.encodestring(ics.encode()).decode()
    return (f"Message-ID: <tb-{abs(hash(ics))}@example.org>\r\nDate: Mon, 04 Jan 2027 12:14:00 -0500\r\n"
            f"MIME-Version: 1.0\r\nUser-Agent: Mozilla Thunderbird\r\nFrom: {attendee}\r\nTo: {ORGANIZER}\r\n"
            "Subject: Accepted: Reverse mentoring\r\n"
            'Content-Type: multipart/mixed; boundary="tb1"\r\n\r\n--tb1\r\n'
            "Content-Type: text/plain; charset=UTF-8\r\n\r\nAccepted your event invitation.\r\n--tb1\r\n"
            "Content-Type: text/calendar; method=REPLY; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            f"{body}\r\n--tb1--\r\n").encode()


# -- the walk ---------------------------------------------------------------------------------------


def test_check_online_logs_in_to_both_servers(world: World, capsys, monkeypatch):
    assert world.prog.cli("check", "--online") == 0
    assert "online check passed" in capsys.readouterr().out
    monkeypatch.setenv("RM_TEST_IMAP_PASSWORD", "wrong")
    assert world.prog.cli("check", "--online") == 2
    out = capsys.readouterr()
    assert "IMAP 127.0.0.1" in out.out + out.err and "$RM_TEST_IMAP_PASSWORD" in out.out + out.err
    monkeypatch.delenv("RM_TEST_IMAP_PASSWORD")
    assert world.prog.cli("run", "--now", T0.isoformat()) == 2
    assert "RM_TEST_IMAP_PASSWORD" in capsys.readouterr().err and world.smtp.messages == []


def test_consent_invitations_replies_agenda_and_log_over_smtp_and_imap(world: World, capsys):
    prog = world.prog
    assert prog.run(T0) == 0
    kickoffs = world.sent("kickoff")
    assert sorted(m.rcpt_tos[0] for m in kickoffs) == sorted(
        ["aisha.khan@example.com", "richard.hale@example.com", "tom.becker@example.com", "linda.morales@example.com"])
    for kickoff in kickoffs:
        world.answer(kickoff, "Yes, I'm in.", T0)

    assert prog.run(T0 + timedelta(hours=1)) == 0
    invitations = world.sent("itip")
    assert len(invitations) == 4
    calendars = {m.rcpt_tos[0]: check_invitation(m) for m in invitations}
    p01 = next(iter(calendars["richard.hale@example.com"].walk("VEVENT")))
    p03_cal = calendars["linda.morales@example.com"]
    p03 = next(iter(p03_cal.walk("VEVENT")))

    world.append(google_reply(p01, "aisha.khan@example.com", "ACCEPTED"))
    world.append(outlook_decline_occurrence(p01, "richard.hale@example.com"))
    world.append(thunderbird_accept_occurrence(p03, p03_cal, "linda.morales@example.com"))
    assert prog.run(T0 + timedelta(hours=2)) == 0
    state = pairs_state(world)
    first_p01 = p01["DTSTART"].dt.astimezone(timezone.utc).isoformat()
    first_p03 = p03["DTSTART"].dt.astimezone(timezone.utc).isoformat()
    assert state["P01"]["responses"] == {"aisha.khan@example.com": {"series": "ACCEPTED"},
                                         "richard.hale@example.com": {first_p01: "DECLINED"}}
    assert state["P03"]["responses"] == {"linda.morales@example.com": {first_p03: "ACCEPTED"}}

    start = datetime.fromisoformat(status(world, T0 + timedelta(hours=2), capsys)["P03"]["next_session"])
    assert prog.run(start - timedelta(hours=23)) == 0
    agendas = world.sent("agenda.", to="tom.becker")
    assert len(agendas) == 1 and "mobile app team" in agendas[0].message.get_body(("plain",)).get_content()
    world.answer(agendas[0], "Attended: yes\nTopics: release trains, feature flags\nNext steps: sit in on a planning\n"
                 "Rating: 5", start + timedelta(hours=1))
    assert prog.run(start + timedelta(hours=2)) == 0
    row = status(world, start + timedelta(hours=2), capsys)["P03"]
    assert row["sessions_held"] == 1 and row["last_log"]

    # a rerun at the same moment sends nothing; nothing was ever sent twice
    before = len(world.smtp.messages)
    assert prog.run(start + timedelta(hours=2)) == 0
    keys = [m.message["X-RM-Key"] for m in world.smtp.messages]
    assert len(world.smtp.messages) == before and len(keys) == len(set(keys))
    # every reply is still in the mailbox, marked handled: nothing deleted, nothing left unread
    inbox = world.imap.messages(world.box)
    assert len(inbox) == world.appended and all(KEYWORD in flags for flags, _ in inbox.values())
    assert len(world.imap.messages(world.box, "Sent")) == len(world.smtp.messages)


def test_smtp_down_during_a_run_then_back_sends_each_message_once(world: World, capsys):
    world.smtp.stop()
    assert world.prog.run(T0) == 0
    out = capsys.readouterr().out
    assert "connection refused" in out and world.smtp.messages == []
    world.smtp.start()
    assert world.prog.run(T0 + timedelta(minutes=20)) == 0
    assert world.prog.run(T0 + timedelta(minutes=40)) == 0
    keys = [m.message["X-RM-Key"] for m in world.smtp.messages]
    assert len(world.sent("kickoff")) == 4 and len(keys) == len(set(keys))


def test_while_the_password_is_wrong_the_mail_waits_and_goes_once_it_is_fixed(world: World, capsys, monkeypatch):
    monkeypatch.setenv("RM_TEST_SMTP_PASSWORD", "the-app-password-that-was-revoked")  # 535 at AUTH
    assert world.prog.run(T0) == 0
    out = capsys.readouterr().out
    assert world.smtp.messages == [] and outbox_statuses(world.prog) == {"pending": 4}  # none refused for good
    assert "login refused for" in out and "$RM_TEST_SMTP_PASSWORD" in out
    assert "kept: it goes once the admin has fixed this" in out
    assert world.prog.cli("status", "--now", T0.isoformat()) == 0
    assert "waiting: 4 emails wait to be sent until the admin fixes this" in capsys.readouterr().out
    monkeypatch.setenv("RM_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    assert world.prog.run(T0 + timedelta(minutes=20)) == 0
    keys = [m.message["X-RM-Key"] for m in world.smtp.messages]
    assert len(world.sent("kickoff")) == 4 == len(set(keys)) and outbox_statuses(world.prog) == {"sent": 4}


def test_without_the_right_to_send_as_the_organizer_the_mail_waits_and_goes_once_it_is_granted(world: World, capsys):
    world.smtp.handler.refuse_data = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    assert world.prog.run(T0) == 0
    out = capsys.readouterr().out
    assert world.smtp.messages == [] and outbox_statuses(world.prog) == {"pending": 4}
    assert "5.7.60" in out and "refused for good" not in out
    world.smtp.handler.refuse_data = ""  # Microsoft 365: the admin granted Send As
    assert world.prog.run(T0 + timedelta(minutes=20)) == 0
    keys = [m.message["X-RM-Key"] for m in world.smtp.messages]
    assert len(world.sent("kickoff")) == 4 == len(set(keys))


def test_a_refused_address_shows_against_its_pair_and_the_rest_goes_on(world: World, capsys):
    world.smtp.handler.refuse["linda.morales@example.com"] = "550 5.1.1 User unknown"
    assert world.prog.run(T0) == 0
    out = capsys.readouterr().out
    assert "linda.morales@example.com refused: 550 5.1.1 User unknown" in out and "P03" in out
    assert sorted(m.rcpt_tos[0] for m in world.sent("kickoff")) == [
        "aisha.khan@example.com", "richard.hale@example.com", "tom.becker@example.com"]


def test_a_refused_address_is_shown_by_status(world: World, capsys):
    world.smtp.handler.refuse["linda.morales@example.com"] = "550 5.1.1 User unknown"
    assert world.prog.run(T0) == 0
    problems = status(world, T0, capsys)["P03"]["problems"]
    assert any("linda.morales@example.com" in p and "550" in p for p in problems)
