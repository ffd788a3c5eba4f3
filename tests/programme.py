"""A real programme in a temp directory, driven through the real CLI entry point.

Tests play the people: they read their mail from the outbox Maildir and drop replies into the
inbox Maildir as RFC 5322 bytes, like a mail client would.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

from rmdaemon.cli import main

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Programme:
    root: Path

    @classmethod
    def create(cls, root: Path, roster: str | None = None, **program: str) -> "Programme":
        (root / "examples").mkdir(parents=True, exist_ok=True)
        text = (REPO / "config.example.toml").read_text()
        for key, value in program.items():
            text = _set_key(text, key, value)
        (root / "rmdaemon.toml").write_text(text)
        if roster is None:
            shutil.copyfile(REPO / "examples" / "roster.csv", root / "examples" / "roster.csv")
        else:
            (root / "examples" / "roster.csv").write_text(roster)
        return cls(root)

    @property
    def config(self) -> Path:
        return self.root / "rmdaemon.toml"

    @property
    def roster(self) -> Path:
        return self.root / "examples" / "roster.csv"

    @property
    def state(self) -> Path:
        return self.root / "var" / "state.json"

    def docs(self) -> dict[str, dict]:
        """The stored pairs by pair id, read as ``status`` would."""
        from rmdaemon.records import PAIRS
        from rmdaemon.store import Store

        with Store.open(self.state, writer=False) as store:
            return {d["pair_id"]: dict(d) for d in store.table(PAIRS).all()}

    def cli(self, *args: str) -> int:
        return main(["--config", str(self.config), *args])

    def run(self, now: datetime, *args: str) -> int:
        return self.cli("run", "--now", now.isoformat(), *args)

    def outbox_files(self) -> list[Path]:
        return sorted((self.root / "var" / "outbox" / "new").glob("*.eml"))

    def outbox(self, kind: str = "", to: str = "") -> list[EmailMessage]:
        found = []
        for path in self.outbox_files():
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            if msg["Message-ID"].startswith(f"<rm.{kind}") and to in str(msg["To"]):
                found.append(msg)
        # in the order they were sent: file names are a keyed hash (the installation secret), so
        # their order says nothing; messages of one run keep the names' order
        return sorted(found, key=lambda m: m["Date"].datetime)

    def drop(self, raw: bytes, name: str) -> Path:
        target = self.root / "var" / "inbox" / "new" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        return target

    def reply(self, to: EmailMessage, text: str, when: datetime, sender: str | None = None,
              message_id: str | None = None) -> Path:
        answer = EmailMessage()
        answer["From"] = sender or to["To"]
        answer["To"] = to["From"]
        answer["Subject"] = f"Re: {to['Subject']}"
        answer["Date"] = format_datetime(when)
        answer["Message-ID"] = message_id or make_msgid(domain="client.example")
        answer["In-Reply-To"] = to["Message-ID"]
        quoted = "\n".join(f"> {line}" for line in to.get_body(("plain",)).get_content().splitlines())
        answer.set_content(f"{text}\n\nOn {to['Date']}, {to['From']} wrote:\n{quoted}\n")
        return self.drop(answer.as_bytes(), answer["Message-ID"].strip("<>") + ".eml")


def booked_programme(root: Path, roster: str, now: datetime, **program: str) -> Programme:
    """A programme whose pairs all said yes at ``now`` and were booked an hour later."""
    prog = Programme.create(root, roster=roster, **program)
    prog.run(now)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", now)
    prog.run(now + timedelta(hours=1))
    return prog


def opt_in_all(prog: Programme, when: datetime) -> None:
    """Everyone answers their kickoff with a yes at ``when``."""
    for n, kickoff in enumerate(prog.outbox("kickoff")):
        prog.reply(kickoff, "Yes, I'm in.", when, message_id=f"<optin-{n}@client.example>")


def booked(prog: Programme, now: datetime) -> Programme:
    """Kickoffs at ``now``, everyone in, booked an hour later (through whichever backend ``prog`` runs on)."""
    assert prog.run(now) == 0
    opt_in_all(prog, now)
    assert prog.run(now + timedelta(hours=1)) == 0
    return prog


def kill_during(prog: Programme, held, now: datetime, env: dict[str, str] | None = None) -> None:  # noqa: ANN001
    """Run the daemon as its own process and SIGKILL it once a test server did the work of the
    ``held`` request (a fault with ``reached`` and ``released`` events), before it answered."""
    import os
    import signal
    import subprocess
    import sys

    daemon_process = subprocess.Popen([sys.executable, "-m", "rmdaemon", "--config", str(prog.config), "run", "--now",
                                       now.isoformat()], env={**os.environ, **(env or {})},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert held.reached.wait(60), "the daemon never sent the held request"
        os.kill(daemon_process.pid, signal.SIGKILL)  # the server did it; the daemon never heard back
        assert daemon_process.wait(10) == -signal.SIGKILL
    finally:
        held.released.set()
        if daemon_process.poll() is None:
            daemon_process.kill()
        daemon_process.communicate()


def status(prog: Programme, now: datetime, capsys) -> dict[str, dict]:
    """``rmdaemon status --json`` at ``now``, as {pair_id: row}."""
    capsys.readouterr()
    assert prog.cli("status", "--json", "--now", now.isoformat()) == 0
    return {row["pair_id"]: row for row in json.loads(capsys.readouterr().out)["pairs"]}


def wait_for(predicate, timeout: float = 30.0) -> bool:
    """Poll for something a running daemon does (not a sleep standing in for behaviour)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def inbox_rows(prog: Programme) -> list[dict]:
    """What the inbox job recorded for each message it read: outcome, reason, pair, quarantine file."""
    from rmdaemon.store import Store

    with Store.open(prog.state, writer=False) as store:
        return [dict(d) for d in store.table("inbox").all()]


def outbox_statuses(prog: Programme) -> dict[str, int]:
    """How many outgoing messages the state records as pending, sent or failed (refused for good)."""
    from collections import Counter

    from rmdaemon.records import OUTBOX
    from rmdaemon.store import Store

    with Store.open(prog.state, writer=False) as store:
        return dict(Counter(d["status"] for d in store.rows(OUTBOX).values()))


def sent_keys(prog: Programme) -> list[str]:
    """The idempotency key of every message in the outbox, duplicates included."""
    return sorted(message_from_bytes(p.read_bytes(), policy=policy.default)["X-RM-Key"].strip() for p in prog.outbox_files())


def _set_key(text: str, key: str, value: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split("=")[0].strip().removeprefix("# ") == key:  # a commented-out example key too
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    raise KeyError(key)


def calendar_parts(msg: EmailMessage) -> list[tuple[str, bytes]]:
    """(method parameter, bytes) of every text/calendar part."""
    return [(part.get_param("method"), part.get_payload(decode=True))
            for part in msg.walk() if part.get_content_type() == "text/calendar"]


def outlook_rsvp(who: str, uid: str, occurrence: datetime, partstat: str, when: datetime, n: int = 0) -> tuple[str, bytes]:
    """(file name, bytes) of an RSVP for one occurrence the way Outlook writes it: RECURRENCE-ID in
    the Windows zone name, no ORGANIZER, no Date, the answer in the attendee's PARTSTAT (MS-OXCICAL;
    our fixtures in tests/fixtures/itip show the same shape)."""
    cal = Calendar()
    cal.add("PRODID", "Microsoft Exchange Server 2010")
    cal.add("VERSION", "2.0")
    cal.add("METHOD", "REPLY")
    event = Event()
    event.add("UID", uid)
    local = occurrence.astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None)
    event.add("RECURRENCE-ID", local, parameters={"TZID": "GMT Standard Time"})
    attendee = vCalAddress(f"mailto:{who}")
    attendee.params["PARTSTAT"] = partstat
    event.add("ATTENDEE", attendee)
    event.add("DTSTAMP", when)
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"] = who, "mentoring@example.com"
    msg["Subject"] = f"{partstat.title()}: Reverse Mentoring Pilot"
    msg["Message-ID"] = f"<rsvp-{n}-{who}-{occurrence:%Y%m%d}@client.example>"
    msg.set_content(f"{partstat.lower()}")
    msg.add_alternative(cal.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    return f"rsvp-{n}-{who}-{occurrence:%Y%m%d}.eml", msg.as_bytes()
