"""A unique string in every private field of a pair that does not share its notes, then every
output searched for it: mail to anyone but the pair (every MIME part decoded: the digest's
attached report too), every report format and table (also per track and cohort), status, the
logs. With min_group_size 1 nothing is held back for the group's size, so only the sharing rule
stands between the canary and the page (the adopted tools' words, say).
Calendar comments (COMMENT and the text above the calendar part) are among the private fields."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

from attackkit import MENTEE, MENTOR, armed, drop, first_occurrence, series_uid, text_mail, token_of

CANARY = "CANARY-private-4b7e"


def test_nothing_private_reaches_anyone_outside_the_pair(tmp_path, capsys):
    prog, now = armed(tmp_path, sessions="2", min_group_size="1", attach_report="true")
    for person in (MENTOR, MENTEE):
        text = (f"Attended: yes\nTopics: {CANARY} topic\nLearned: {CANARY} learned\n"
                f"Next steps:\n- {CANARY} step\nRating: 2\nProgress: 1\n\n{CANARY} free text")
        drop(prog, text_mail(person, f"Re: [{token_of(prog, person)}]", text, message_id=f"<c-{person}>"), f"{person}.eml")
    # What people write with a calendar answer goes to the other person only (issue 17).
    occurrence = first_occurrence(prog)
    for n, (person, method, partstat, extra) in enumerate([
            (MENTOR, "REPLY", "ACCEPTED", []), (MENTEE, "REPLY", "DECLINED", [f"RECURRENCE-ID:{occurrence}"]),
            (MENTOR, "COUNTER", "TENTATIVE", [f"RECURRENCE-ID:{occurrence}", "DTSTART:20270301T030000Z",
                                              "DTEND:20270301T034500Z"])]):
        ics = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//client//EN", f"METHOD:{method}", "BEGIN:VEVENT",
                            f"UID:{series_uid(prog)}", *extra, "DTSTAMP:20270101T000000Z", f"COMMENT:{CANARY} comment",
                            f"ATTENDEE;PARTSTAT={partstat}:mailto:{person}", "END:VEVENT", "END:VCALENDAR", ""])
        raw = (f"From: {person}\nTo: mentoring@example.com\nSubject: {method}\nMessage-ID: <cal-{n}@client.example>\n"
               "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
               f"{CANARY} above the calendar\n--b\nContent-Type: text/calendar; method={method}\n\n{ics}\n--b--\n").encode()
        drop(prog, raw, f"cal-{n}.eml")
    later = now
    while later < now + timedelta(days=35):
        assert prog.run(later) == 0
        for survey in prog.outbox("survey"):  # survey free text too
            prog.reply(survey, f"1. 2\n2. {CANARY} survey\n3. 2\n4. {CANARY} answer", later)
        later += timedelta(hours=12)
    assert prog.run(later) == 0
    outputs = [capsys.readouterr()]
    outsiders = [p for p in prog.outbox_files() if MENTOR.encode() not in p.read_bytes().split(b"\r\n\r\n")[0]
                 and MENTEE.encode() not in p.read_bytes().split(b"\r\n\r\n")[0]]
    assert outsiders, "nothing went to the champion: the test would prove nothing"
    inside = [p for p in prog.outbox_files() if p not in outsiders]
    assert any(f"{CANARY} comment".encode() in p.read_bytes() for p in inside), "comments never reached the pair"
    assert any(part.get_filename() for p in outsiders for part in _parts(p)), "no digest carried the report"
    for args in (("--format", "md"), ("--format", "html"), ("--format", "csv"), ("--format", "csv", "--table", "figures"),
                 ("--track", "general"), ("--format", "html", "--track", "general")):
        assert prog.cli("report", *args, "--now", later.isoformat()) == 0
    assert prog.cli("status", "--now", later.isoformat()) == 0
    assert prog.cli("status", "--json", "--now", later.isoformat()) == 0
    outputs.append(capsys.readouterr())
    leaks = [p.name for p in outsiders if _found(p.read_bytes().decode("utf-8", "replace"))
             or any(_found(str(part.get_content())) for part in _parts(p))]
    leaks += [f"output {i}" for i, o in enumerate(outputs) if _found(o.out + o.err)]
    assert leaks == []


def _parts(path: Path) -> list:
    """Every leaf MIME part of a sent message, to read decoded (base64 hides a string from a byte search)."""
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    return [part for part in msg.walk() if not part.is_multipart()]


def _found(text: str) -> bool:
    """The canary in any case: a report may lower-case words to count them."""
    return CANARY.casefold() in text.casefold()
