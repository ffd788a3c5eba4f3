"""``make demo``: two simulated weeks of the example programme on the local backend.

It plays the people too: it reads their mail from ``var/outbox`` and drops their answers into
``var/inbox/new`` as real reply emails — exactly what a user does by hand in the walkthrough.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from rmdaemon.cli import main as cli

CONFIG = Path("config.example.toml")
VAR = Path("var")
MARKER = VAR / ".demo"
START = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
SILENT = {"sanjay.rao@example.com"}  # one person who has not answered yet, to show 'awaiting consent'
# The pair whose first session (Mon 11 January) the demo leaves unlogged: the README's walkthrough
# logs it by hand, so 'status' visibly changes. Keep the two in step.
BY_HAND = {"aisha.khan@example.com", "richard.hale@example.com"}


def run(now: datetime) -> None:
    """One run; its summary is shown only when it did something, to keep the story short."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["--config", str(CONFIG), "run", "--now", now.isoformat()])
    if code:
        sys.exit(code)
    if not out.getvalue().rstrip().endswith("nothing to do"):
        print(f"\n$ rmdaemon --config {CONFIG} run --now {now.isoformat()}\n{out.getvalue()}", end="")


def outbox_mail(kind: str) -> list[EmailMessage]:
    found = []
    for path in sorted((VAR / "outbox" / "new").glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        if msg["Message-ID"].startswith(f"<rm.{kind}."):
            found.append(msg)
    return found


def reply(to: EmailMessage, text: str, when: datetime) -> None:
    """Answer ``to`` the way a mail client does: Re: subject, threading headers, quoted original."""
    answer = EmailMessage()
    answer["From"] = to["To"]
    answer["To"] = to["From"]
    answer["Subject"] = f"Re: {to['Subject']}"
    answer["Date"] = format_datetime(when)
    answer["Message-ID"] = make_msgid(domain="example.com")
    answer["In-Reply-To"] = to["Message-ID"]
    answer["References"] = to["Message-ID"]
    quoted = "\n".join(f"> {line}" for line in to.get_body(("plain",)).get_content().splitlines())
    answer.set_content(f"{text}\n\nOn {to['Date']}, {to['From']} wrote:\n{quoted}\n")
    target = VAR / "inbox" / "new" / f"{answer['Message-ID'].strip('<>')}.eml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(answer.as_bytes())


def fresh_start() -> None:
    if (VAR / "state.json").exists() and not MARKER.exists():
        sys.exit("var/ holds state that the demo did not create; move it away (or run 'make clean') first")
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir()
    MARKER.touch()


def main() -> int:
    fresh_start()
    print(f"$ rmdaemon --config {CONFIG} check")
    if cli(["--config", str(CONFIG), "check"]):
        return 2
    run(START)  # kickoff emails to both people of every active pair
    for kickoff in outbox_mail("kickoff"):
        if kickoff["To"].addresses[0].addr_spec not in SILENT:
            reply(kickoff, "Yes, count me in!", START + timedelta(minutes=30))
    print(f"\n(the demo answered {len(outbox_mail('kickoff'))} kickoff emails with YES, except {', '.join(SILENT)})")
    run(START + timedelta(hours=1))  # consents recorded, series booked, invitations written
    now = START + timedelta(hours=1)
    logged: set[str] = set()
    while now < START + timedelta(days=14):
        now += timedelta(hours=6)
        for agenda in outbox_mail("agenda"):
            token = agenda["Subject"].rsplit("[", 1)[-1].rstrip("]")
            by_hand = agenda["To"].addresses[0].addr_spec in BY_HAND
            if token not in logged and not by_hand and _session_passed(agenda, now):
                logged.add(token)
                reply(agenda, "Attended: yes\nTopics: shared docs, async updates\nLearned: how the team uses "
                      "threads instead of meetings\nNext steps: try one async status update\nRating: 5", now)
        run(now)
    print(f"\n$ rmdaemon --config {CONFIG} status --now {now.isoformat()}")
    cli(["--config", str(CONFIG), "status", "--now", now.isoformat()])
    sent = len(list((VAR / "outbox" / "new").glob("*.eml")))
    print(f"\nDemo done at {now.isoformat()}: {sent} emails in var/outbox/new/, state in var/state.json. "
          "Open any .eml in a mail client. P01's first session is not logged yet: the README's walkthrough "
          f"logs it by hand (give every command --now {now.isoformat()} or later, the demo's time).")
    return 0


def _session_passed(agenda: EmailMessage, now: datetime) -> bool:
    """Reply once the session (a day after its agenda) is over: the agenda's Date + lead time."""
    sent = agenda["Date"].datetime
    return now >= sent + timedelta(hours=26)


if __name__ == "__main__":
    raise SystemExit(main())
