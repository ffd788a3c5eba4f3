"""What is private stays with the people who wrote it: the check-in's FLAG, consent to share,
a participant replaced in the roster (issue 15)."""

from __future__ import annotations

from datetime import timedelta

from attackkit import CHAMPION, MENTEE, MENTOR, ROSTER, armed, drop, sent_to, tables, text_mail, token_of

CANARY = "CANARY-7f3a"  # written where only the pair may read it


def body(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def flagged(tmp_path, answer: str) -> list:
    """The mentor asks for the private check-in (HELP), answers it with ``answer``; the champion's mail."""
    prog, now = armed(tmp_path)
    drop(prog, text_mail(MENTOR, f"Re: session [{token_of(prog, MENTOR)}]", "HELP", message_id="<help@client.example>"), "help.eml")
    for hours in range(4):
        assert prog.run(now + timedelta(hours=hours)) == 0
    (checkin,) = prog.outbox("checkin", to=MENTOR)
    prog.reply(checkin, answer, now + timedelta(hours=4))
    for hours in range(4, 8):
        assert prog.run(now + timedelta(hours=hours)) == 0
    return prog.outbox("flag", to=CHAMPION)


def test_only_the_text_after_flag_reaches_the_champion(tmp_path):
    (flag,) = flagged(tmp_path, f"We talked about {CANARY} and it went badly.\nFLAG: please call me this week")
    assert "please call me this week" in body(flag)
    assert CANARY not in flag.as_string()


def test_flag_alone_says_only_that_help_was_asked_for(tmp_path):
    (flag,) = flagged(tmp_path, f"{CANARY} is between us.\n\nFLAG")
    assert "asked for help" in body(flag) and CANARY not in flag.as_string()


def test_a_share_bullet_in_the_notes_is_not_consent(tmp_path):
    prog, now = armed(tmp_path)
    for person in (MENTOR, MENTEE):
        drop(prog, text_mail(person, f"Re: session [{token_of(prog, person)}]",
                             "Attended: yes\nNext steps:\n- share\n- share notes with the team",
                             message_id=f"<log-{person}>"), f"{person}.eml")
        assert prog.run(now) == 0
    assert not any((p.get("share_notes") or {}) for p in tables(prog)["pairs"] if p["pair_id"] == "P01")


def test_share_notes_counts_as_the_opening_command_line(tmp_path):
    prog, now = armed(tmp_path)
    drop(prog, text_mail(MENTOR, f"Re: session [{token_of(prog, MENTOR)}]", "SHARE NOTES\n\nAttended: yes"))
    assert prog.run(now) == 0
    (p01,) = [p for p in tables(prog)["pairs"] if p["pair_id"] == "P01"]
    assert p01["share_notes"] == {MENTOR: True}


NEW_MENTEE = "nadia.lopez@example.com"


def test_a_replaced_participant_starts_without_consent_and_never_sees_earlier_notes(tmp_path):
    """Both said SHARE NOTES and agreed next steps; then the mentee is replaced. The newcomer's
    agenda carries none of it, and the end certificate to the champion lists no topics."""
    prog, now = armed(tmp_path, sessions="2")
    for person in (MENTOR, MENTEE):
        text = f"SHARE NOTES\n\nAttended: yes\nTopics: {CANARY} topic\nNext steps:\n- {CANARY} step"
        drop(prog, text_mail(person, f"Re: session [{token_of(prog, person)}]", text, message_id=f"<s1-{person}>"), f"{person}.eml")
        assert prog.run(now + timedelta(hours=2)) == 0
    prog.roster.write_text(ROSTER.replace(f"Richard Hale,{MENTEE}", f"Nadia Lopez,{NEW_MENTEE}"))
    later = now + timedelta(hours=2)
    while not [m for m in sent_to(prog, NEW_MENTEE) if m["X-RM-Key"].startswith("agenda:")]:
        later += timedelta(hours=12)
        assert prog.run(later) == 0 and later < now + timedelta(days=30)
    # With the newcomer, the mentor notes a topic: the mentor shares, the newcomer never said so.
    later += timedelta(hours=2)
    drop(prog, text_mail(MENTOR, f"Re: session [{token_of(prog, MENTOR)}]", f"Attended: yes\nTopics: {CANARY} new topic",
                         message_id="<s2-mentor>"), "s2.eml")
    while later < now + timedelta(days=40):
        later += timedelta(hours=12)
        assert prog.run(later) == 0
    to_newcomer = sent_to(prog, NEW_MENTEE)
    assert any(m["X-RM-Key"].startswith("agenda:") for m in to_newcomer), "the newcomer never got an agenda"
    assert not any(CANARY in m.as_string() for m in to_newcomer)
    certificates = prog.outbox("certificate", to=CHAMPION)
    assert certificates and not any(CANARY in m.as_string() for m in certificates)
