"""A unique string in every private field of a pair that does not share its notes, then every
output searched for it: mail to anyone but the pair, every report format, status, the logs."""

from __future__ import annotations

from datetime import timedelta

from attackkit import MENTEE, MENTOR, armed, drop, text_mail, token_of

CANARY = "CANARY-private-4b7e"


def test_nothing_private_reaches_anyone_outside_the_pair(tmp_path, capsys):
    prog, now = armed(tmp_path, sessions="2")
    for person in (MENTOR, MENTEE):
        text = (f"Attended: yes\nTopics: {CANARY} topic\nLearned: {CANARY} learned\n"
                f"Next steps:\n- {CANARY} step\nRating: 2\nProgress: 1\n\n{CANARY} free text")
        drop(prog, text_mail(person, f"Re: [{token_of(prog, person)}]", text, message_id=f"<c-{person}>"), f"{person}.eml")
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
    for fmt in ("md", "html", "csv"):
        assert prog.cli("report", "--format", fmt, "--now", later.isoformat()) == 0
    assert prog.cli("status", "--now", later.isoformat()) == 0
    assert prog.cli("status", "--json", "--now", later.isoformat()) == 0
    outputs.append(capsys.readouterr())
    leaks = [p.name for p in outsiders if CANARY.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, o in enumerate(outputs) if CANARY in o.out + o.err]
    assert leaks == []
