"""Participation is voluntary: nothing is booked for a pair until both people answered the kickoff
YES; a NO (or STOP) from either ends it; a reply that says neither is kept for the admin. Each
test plays the two people through the real CLI and reads what they and the admin would see: the
invitations in the outbox, ``status``, the inbox's recorded outcome and reason."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage

import pytest

from programme import Programme, inbox_rows, status
from rmdaemon.model import Pair, Person, WorkingHours
from rmdaemon.programme.pairstate import apply_reply
from rmdaemon.records import PairRecord
from rmdaemon.replies import ParsedReply, parse_reply

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(hours=1)
MENTOR, MENTEE = "aisha.khan@example.com", "richard.hale@example.com"
ONE_PAIR = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
            f"P01,Aisha Khan,{MENTOR},Richard Hale,{MENTEE},Understand TikTok\n")


def started(tmp_path, **program: str) -> Programme:
    prog = Programme.create(tmp_path, roster=ONE_PAIR, **program)
    assert prog.run(T0) == 0
    return prog


def answer(prog: Programme, who: str, text: str) -> None:
    (kickoff,) = prog.outbox("kickoff", to=who)
    prog.reply(kickoff, text, T0 + timedelta(minutes=30))


def last_outcome(prog: Programme) -> tuple[str, str]:
    row = inbox_rows(prog)[-1]
    return row["outcome"], row.get("reason", "")


def test_one_yes_books_nothing_and_the_second_yes_books_the_series(tmp_path, capsys):
    prog = started(tmp_path)
    answer(prog, MENTOR, "YES")
    assert prog.run(LATER) == 0
    assert last_outcome(prog) == ("consent", "aisha.khan@example.com opted in")
    assert prog.outbox("itip") == [] and status(prog, LATER, capsys)["P01"]["state"] == "awaiting consent"
    answer(prog, MENTEE, "Yes, I'm in.")
    assert prog.run(LATER + timedelta(hours=1)) == 0
    assert last_outcome(prog) == ("consent", "richard.hale@example.com opted in; both in, booking next")
    assert {str(m["To"]).split("<")[-1].rstrip(">") for m in prog.outbox("itip")} == {MENTOR, MENTEE}
    assert status(prog, LATER + timedelta(hours=1), capsys)["P01"]["state"] == "active"


def test_the_same_person_saying_yes_twice_is_not_both_people(tmp_path, capsys):
    prog = started(tmp_path)
    answer(prog, MENTOR, "YES")
    prog.run(LATER)
    (kickoff,) = prog.outbox("kickoff", to=MENTOR)
    prog.reply(kickoff, "YES, really", LATER)
    prog.run(LATER + timedelta(hours=1))
    assert prog.outbox("itip") == [] and status(prog, LATER + timedelta(hours=1), capsys)["P01"]["state"] == "awaiting consent"


def test_a_no_from_either_person_declines_the_pair_even_after_the_other_said_yes(tmp_path, capsys):
    prog = started(tmp_path)
    answer(prog, MENTOR, "YES")
    answer(prog, MENTEE, "No, thank you")
    assert prog.run(LATER) == 0
    assert last_outcome(prog) == ("consent", "richard.hale@example.com declined")
    prog.run(LATER + timedelta(days=1))
    assert prog.outbox("itip") == [] and status(prog, LATER + timedelta(days=1), capsys)["P01"]["state"] == "declined"


def test_stop_before_opting_in_declines_too(tmp_path, capsys):
    prog = started(tmp_path)
    answer(prog, MENTEE, "STOP")
    prog.run(LATER)
    assert last_outcome(prog) == ("consent", "richard.hale@example.com declined")
    assert status(prog, LATER, capsys)["P01"]["state"] == "declined"


def test_a_reply_without_yes_or_no_waits_and_is_kept_for_the_admin(tmp_path, capsys):
    prog = started(tmp_path)
    answer(prog, MENTEE, "Can we talk about this first?")
    prog.run(LATER)
    assert last_outcome(prog) == ("quarantine", "reply to the kickoff without a YES or NO")
    answer(prog, MENTOR, "Goal: learn TikTok ads")
    prog.run(LATER + timedelta(minutes=5))
    assert last_outcome(prog) == ("consent", "goal or sharing noted; still waiting for YES or NO")
    answer(prog, MENTEE, "SHARE NOTES")
    prog.run(LATER + timedelta(minutes=10))
    assert last_outcome(prog) == ("consent", "goal or sharing noted; still waiting for YES or NO")
    assert prog.outbox("itip") == [] and status(prog, LATER, capsys)["P01"]["state"] == "awaiting consent"


def test_without_opt_in_the_kickoff_is_a_welcome_and_the_pair_is_booked_at_once(tmp_path, capsys):
    prog = started(tmp_path, require_opt_in="false")
    assert len(prog.outbox("kickoff")) == 2
    assert status(prog, T0, capsys)["P01"]["state"] == "active"
    prog.run(LATER)
    assert {str(m["To"]).split("<")[-1].rstrip(">") for m in prog.outbox("itip")} == {MENTOR, MENTEE}


def test_each_person_gets_one_kickoff_naming_their_role_and_no_second_one_next_tick(tmp_path):
    prog = started(tmp_path)
    prog.run(LATER)
    mentor, mentee = (m.get_body(("plain",)).get_content() for who in (MENTOR, MENTEE)
                      for m in prog.outbox("kickoff", to=who))
    assert "Richard Hale" in mentor and "Aisha Khan" in mentee
    assert len(prog.outbox("kickoff")) == 2


def test_the_run_names_the_pairs_it_started_and_later_ticks_run_the_job_cleanly(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ONE_PAIR)
    capsys.readouterr()
    assert prog.run(T0) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "consent: 2 kickoff sent, 1 pairs started", "  P01: kickoff sent to Aisha Khan and Richard Hale"]
    assert prog.run(LATER) == 0  # a pair on record, its kickoffs sent: nothing to do, and no job failure
    assert capsys.readouterr().out == f"rmdaemon run at {LATER:%Y-%m-%dT%H:%M+00:00}: nothing to do\n"
    assert prog.cli("status", "--json", "--now", LATER.isoformat()) == 0
    job = json.loads(capsys.readouterr().out)["jobs"]["consent"]
    assert (job["last_ok"], job["failures"], job.get("last_error")) == (LATER.isoformat(), 0, None)


def test_each_kickoff_greets_its_reader_and_speaks_to_their_role(tmp_path):
    prog = started(tmp_path)
    mentor, mentee = (prog.outbox("kickoff", to=who)[0].get_body(("plain",)).get_content() for who in (MENTOR, MENTEE))
    assert "Hello Aisha," in mentor and "invited to mentor Richard Hale" in mentor and "mentored by" not in mentor
    assert "Hello Richard," in mentee and "invited to be mentored by Aisha Khan" in mentee and "to mentor" not in mentee
    for text in (mentor, mentee):
        assert "of 45 minutes, every two weeks," in text and "Reply to this email with YES" in text


def kickoff_template(prog: Programme, text: str) -> None:
    """The admin's own kickoff, in the templates folder the config names."""
    (prog.root / "my-templates").mkdir()
    (prog.root / "my-templates" / "kickoff.txt").write_text(text)
    prog.config.write_text(prog.config.read_text().replace('# dir = "my-templates"', 'dir = "my-templates"'))


def test_an_admins_kickoff_template_gets_each_readers_role_as_documented(tmp_path):
    """``role`` is 'mentor' or 'mentee' (docs/templates.md lists it so): a template may print it."""
    prog = Programme.create(tmp_path, roster=ONE_PAIR)
    kickoff_template(prog, "Subject: {{ program.name }} [{{ token }}]\n\nYou join as the {{ role }}. Reply YES or NO.\n")
    assert prog.run(T0) == 0
    said = {who: prog.outbox("kickoff", to=who)[0].get_body(("plain",)).get_content() for who in (MENTOR, MENTEE)}
    assert "You join as the mentor." in said[MENTOR] and "You join as the mentee." in said[MENTEE]


# Aisha mentors two colleagues: her answer to one kickoff is about that pair only, which only the
# kickoff's token can say (her address is in both pairs).
TWO_PAIRS = ONE_PAIR + f"P02,Aisha Khan,{MENTOR},Tom Becker,tom.becker@example.com,Try Copilot\n"


def kickoff_to(prog: Programme, who: str, pair_token: str) -> EmailMessage:
    (found,) = [m for m in prog.outbox("kickoff", to=who) if pair_token in str(m["Subject"])]
    return found


def tokens(prog: Programme) -> dict[str, str]:
    """pair id → the token of its kickoff thread, as the state file holds it (and purge names it)."""
    from rmdaemon.store import Store

    with Store.open(prog.state, writer=False) as store:
        return {r["pair_id"]: r["token"] for r in store.table("sessions").all() if r["kind"] == "kickoff"}


def outbox_broken(prog: Programme) -> None:
    """The outbox cannot be written (a Maildir folder is a file): every send fails for now."""
    new = prog.root / "var" / "outbox" / "new"
    new.parent.mkdir(parents=True, exist_ok=True)
    new.write_text("not a folder")


def outbox_fixed(prog: Programme) -> None:
    (prog.root / "var" / "outbox" / "new").unlink()


def from_before_the_secret(prog: Programme) -> None:
    """The pairs' records as the version before the installation secret wrote them: no token key,
    kickoff tokens the plain hash."""
    from rmdaemon import compose
    from rmdaemon.store import Store

    with Store.open(prog.state) as store, store.batch():
        for doc in store.table("pairs").all():
            store.table("pairs").update({"token_key": None}, doc_ids=[doc.doc_id])
        for row in store.table("sessions").all():
            store.table("sessions").update({"token": compose.kickoff_token(None, row["pair_id"])}, doc_ids=[row.doc_id])


def test_a_yes_from_someone_in_two_pairs_counts_for_the_pair_whose_kickoff_they_answered(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=TWO_PAIRS, max_pairs_per_mentor="2")
    assert prog.run(T0) == 0
    first = tokens(prog)
    prog.reply(kickoff_to(prog, MENTOR, first["P02"]), "YES", T0 + timedelta(minutes=30))
    assert prog.run(LATER) == 0
    assert last_outcome(prog) == ("consent", "aisha.khan@example.com opted in")
    assert prog.docs()["P02"]["consent"] == {MENTOR: "yes"} and prog.docs()["P01"].get("consent", {}) == {}
    capsys.readouterr()
    assert prog.cli("purge", "--pair", "P01") == 0  # an admin searching the mailboxes finds the kickoffs by this
    assert f"search for {first['P01']} and delete it there" in capsys.readouterr().out


@pytest.mark.parametrize("upgraded", [False, True], ids=["same version", "upgraded meanwhile"])
def test_a_kickoff_a_temporary_failure_kept_back_goes_next_tick_once_with_its_pairs_token(tmp_path, capsys, upgraded):
    """Upgraded meanwhile: the pairs were started by the version before the installation secret,
    so their kickoffs keep the plain tokens that version recorded."""
    prog = Programme.create(tmp_path, roster=TWO_PAIRS, max_pairs_per_mentor="2")
    outbox_broken(prog)
    capsys.readouterr()
    assert prog.run(T0) == 0
    out = capsys.readouterr().out
    assert "consent: 2 pairs started, 4 send errors" in out and "P01: kickoff not sent: cannot read outbox" in out
    assert "kickoff sent to" not in out  # the run does not say a kickoff went that did not
    if upgraded:
        from_before_the_secret(prog)
    recorded = tokens(prog)
    outbox_fixed(prog)
    assert prog.run(LATER) == 0
    out = capsys.readouterr().out
    assert "consent: 4 kickoff sent\n" in out
    assert "  P01: kickoff sent to Aisha Khan and Richard Hale\n  P02: kickoff sent to Aisha Khan and Tom Becker" in out
    carrying = {p: sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in prog.outbox("kickoff") if t in str(m["Subject"]))
                for p, t in recorded.items()}  # each pair's two kickoffs, with the token its session row holds
    assert carrying == {"P01": [MENTOR, MENTEE], "P02": [MENTOR, "tom.becker@example.com"]}
    prog.reply(kickoff_to(prog, MENTOR, recorded["P02"]), "YES", LATER + timedelta(minutes=30))
    assert prog.run(LATER + timedelta(hours=1)) == 0
    assert last_outcome(prog) == ("consent", "aisha.khan@example.com opted in")
    assert prog.docs()["P02"]["consent"] == {MENTOR: "yes"}
    assert prog.run(LATER + timedelta(hours=2)) == 0
    assert len(prog.outbox("kickoff")) == 4  # nothing twice


def test_a_kickoff_template_changed_after_the_kickoffs_went_out_leaves_started_pairs_alone(tmp_path, capsys):
    """Only a kickoff still owed is built again: an admin's new template that cannot greet Cher (one
    name) is no problem for her pair, whose kickoff left before the change."""
    from test_isolation import KICKOFF, ROSTER

    prog = Programme.create(tmp_path, roster=ROSTER)
    assert prog.run(T0) == 0
    kickoff_template(prog, KICKOFF)
    assert prog.run(LATER) == 0
    capsys.readouterr()
    assert prog.cli("status", "--json", "--now", LATER.isoformat()) == 0
    assert "pair_errors" not in json.loads(capsys.readouterr().out)["jobs"]["consent"]


def test_without_opt_in_a_pair_counts_as_consented_even_before_a_time_is_found(tmp_path, capsys):
    """Kolkata and Los Angeles share no working hour: the pair cannot be booked, but nobody had to
    opt in, so the report's funnel has it past "both consented"."""
    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone\n"
              "P09,Priya Nair,priya.nair@example.com,Sam Lee,sam.lee@example.com,Async video,Asia/Kolkata,"
              "America/Los_Angeles\n")
    prog = Programme.create(tmp_path, roster=roster, require_opt_in="false")
    prog.run(T0)
    prog.run(LATER)
    assert status(prog, LATER, capsys)["P09"]["state"] == "not bookable"
    assert prog.cli("report", "--format", "csv", "--table", "figures", "--now", LATER.isoformat()) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    funnel = {r["group"]: r["value"] for r in rows if r["section"] == "funnel" and r["figure"] == "pairs"}
    assert (funnel["invited"], funnel["both consented"], funnel["booked"]) == ("1", "1", "0")


# -- the same rules on one reply at a time (pairstate.apply_reply), fast enough for `make mutate` --

HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
AISHA = Person("Aisha Khan", "Aisha.Khan@example.com", "Europe/London", HOURS)
RICHARD = Person("Richard Hale", MENTEE, "Europe/London", HOURS)
PAIR = Pair("P01", AISHA, RICHARD, goal="Understand TikTok", track="", cadence="biweekly", duration_minutes=45,
            preferred_slot=None, status="active")


def reply(text: str) -> ParsedReply:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = MENTEE, "mentoring@example.com", "Re: Welcome [RM-ABC123]"
    msg.set_content(text)
    return parse_reply(msg.as_bytes())


def awaiting(**consent: str) -> PairRecord:
    return PairRecord("P01", "awaiting_consent", consent={a.casefold(): v for a, v in consent.items()})


@pytest.mark.parametrize(("doc", "who", "text", "outcome", "reason", "state", "consent"), [
    (awaiting(), AISHA, "YES", "consent", "Aisha.Khan@example.com opted in", "awaiting_consent", {AISHA.address: "yes"}),
    (awaiting(**{MENTOR: "yes"}), RICHARD, "yes, count me in", "consent",
     f"{MENTEE} opted in; both in, booking next", "active", {AISHA.address: "yes", MENTEE: "yes"}),
    (awaiting(**{MENTEE: "yes"}), RICHARD, "YES", "consent", f"{MENTEE} opted in", "awaiting_consent", {MENTEE: "yes"}),
    (awaiting(**{MENTOR: "yes"}), RICHARD, "No thanks", "consent", f"{MENTEE} declined", "declined",
     {AISHA.address: "yes", MENTEE: "no"}),
    (awaiting(**{MENTOR: "yes"}), RICHARD, "STOP", "consent", f"{MENTEE} declined", "declined",
     {AISHA.address: "yes", MENTEE: "no"}),
])
def test_a_kickoff_answer_moves_the_pair_only_when_both_said_yes(doc, who, text, outcome, reason, state, consent):
    stored = dict(doc.consent)
    update = apply_reply(T0, (), PAIR, doc, {}, who, reply(text))
    assert (update.kind, update.reason, update.doc.state, update.doc.consent) == (outcome, reason, state, consent)
    assert (doc.state, doc.consent) == ("awaiting_consent", stored)  # the record read from the store is not edited


def test_a_kickoff_reply_without_an_answer_changes_nothing_unless_it_sets_the_goal_or_sharing():
    asked = apply_reply(T0, (), PAIR, awaiting(), {}, RICHARD, reply("What is this about?"))
    assert (asked.kind, asked.reason, asked.doc) == ("quarantine", "reply to the kickoff without a YES or NO", None)
    goal = apply_reply(T0, (), PAIR, awaiting(), {}, RICHARD, reply("Goal: reels for our brand"))
    assert (goal.kind, goal.reason, goal.doc.goal, goal.doc.state, goal.doc.consent) == (
        "consent", "goal or sharing noted; still waiting for YES or NO", "reels for our brand", "awaiting_consent", {})
    shared = apply_reply(T0, (), PAIR, awaiting(), {}, RICHARD, reply("SHARE NOTES"))
    assert (shared.kind, shared.doc.share_notes, shared.doc.state) == ("consent", {MENTEE: True}, "awaiting_consent")
    both = apply_reply(T0, (), PAIR, awaiting(**{MENTOR: "yes"}), {}, RICHARD, reply("YES\nSHARE NOTES"))
    assert (both.doc.state, both.doc.share_notes) == ("active", {MENTEE: True})
