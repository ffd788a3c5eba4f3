"""A whole programme, 12 pairs over its full length, with scripted people (issue 6's simulation).

Healthy pairs log every session; one pair fizzles and recovers; one pauses; one stops; one
never consents. Every step is `rmdaemon run --now …` through the real CLI; people read their
mail from the outbox and answer into the inbox.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from programme import Programme
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 7, 0, tzinfo=timezone.utc)
HEALTHY = [f"H{n}" for n in range(1, 9)]
PEOPLE = {pid: (f"mentor.{pid.lower()}@example.com", f"mentee.{pid.lower()}@example.com")
          for pid in [*HEALTHY, "F1", "PA", "ST", "NC"]}
SECRET = "SECRET-NOTE"


def roster() -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track"]
    for pid, (mentor, mentee) in PEOPLE.items():
        rows.append(f"{pid},Mentor {pid},{mentor},Mentee {pid},{mentee},Goal of {pid},technology")
    return "\n".join(rows) + "\n"


class People:
    """What each person does, and what they have already answered."""

    def __init__(self, prog: Programme) -> None:
        self.prog = prog
        self.answered: set[str] = set()
        self.logged: dict[str, int] = {}

    def new_mail(self) -> list[EmailMessage]:
        fresh = []
        for msg in self.prog.outbox():
            if msg["Message-ID"] not in self.answered:
                fresh.append(msg)
        return fresh

    def act(self, now: datetime, sessions: dict[str, dict]) -> None:
        for msg in self.new_mail():
            mid, kind = msg["Message-ID"], msg["Message-ID"].split(".")[1]
            to = msg["To"].addresses[0].addr_spec
            pid = next((p for p, people in PEOPLE.items() if to in people), None)
            if kind == "kickoff" and pid != "NC":
                self.reply(msg, now, "Yes, I'm in." + ("\n\nSHARE NOTES" if pid == "H1" else ""))
            elif kind == "agenda" and to == PEOPLE[pid][0]:
                if not self._agenda(msg, now, pid, sessions):
                    continue  # answered later, once the session is over
            elif kind == "survey":
                self.reply(msg, now, "1. 4\n2. 5\n3. 4\n4. more async work")
            elif kind == "checkin":
                self.reply(msg, now, "FLAG: we keep getting interrupted" if pid == "F1" else "OK")
            elif kind == "alert":
                self.reply(msg, now, f"NUDGE {msg['Subject'].split()[-3]}", sender="champion@example.com")
            self.answered.add(mid)

    def _agenda(self, msg: EmailMessage, now: datetime, pid: str, sessions: dict[str, dict]) -> bool:
        token = msg["Subject"].rsplit("[", 1)[1].rstrip("]")
        start = datetime.fromisoformat(sessions[token]["start"])
        if now < start + timedelta(hours=1):
            return False
        number = sessions[token]["number"]
        if pid == "F1" and number in (2, 3):
            return True  # silence: two missed sessions in a row
        if pid == "PA" and number == 2:
            self.reply(msg, now, "PAUSE")
        elif pid == "ST" and number == 1:
            self.reply(msg, now, "STOP")
        else:
            text = f"Attended: yes\nTopics: topic {number} of {pid}\nLearned: {SECRET} {pid} {number}\nRating: 4"
            if "Progress: 1-5" in msg.get_body(("plain",)).get_content():
                text += f"\nProgress: {2 if number == 3 else 4}"
            if pid == "F1" and number == 4:
                text += "\n\nHELP"
            self.reply(msg, now, text)
            self.logged[pid] = self.logged.get(pid, 0) + 1
        return True

    def reply(self, msg: EmailMessage, now: datetime, text: str, sender: str | None = None) -> None:
        self.prog.reply(msg, text, now, sender=sender)


def sessions_of(prog: Programme) -> dict[str, dict]:
    if not prog.state.exists():
        return {}
    with Store.open(prog.state, writer=False) as store:
        return {s["token"]: dict(s) for s in store.table("sessions").all() if s["kind"] == "session"}



@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Run the whole programme once; tests below read what happened."""
    prog = Programme.create(tmp_path_factory.mktemp("sim"), roster=roster(), cadence='"weekly"')
    people = People(prog)
    seen_states: dict[str, set[str]] = {pid: set() for pid in PEOPLE}
    now = T0
    import io
    from contextlib import redirect_stdout

    from rmdaemon.cli import main

    printed = io.StringIO()  # everything the daemon printed or logged, to search for private words
    handler = logging.StreamHandler(printed)
    logging.getLogger("rmdaemon").addHandler(handler)
    while now < T0 + timedelta(weeks=8):
        with redirect_stdout(printed):
            assert prog.run(now) == 0
            people.act(now, sessions_of(prog))
            out = io.StringIO()
        with redirect_stdout(out):
            main(["--config", str(prog.config), "status", "--json", "--now", now.isoformat()])
        for row in json.loads(out.getvalue())["pairs"]:
            seen_states[row["pair_id"]].add(row["state"])
        now += timedelta(hours=12)
    logging.getLogger("rmdaemon").removeHandler(handler)
    prog.printed = printed.getvalue()
    return prog, people, seen_states, now


def final_states(simulated) -> dict[str, str]:
    import io
    from contextlib import redirect_stdout

    from rmdaemon.cli import main

    prog, _, _, now = simulated
    out = io.StringIO()
    with redirect_stdout(out):
        main(["--config", str(prog.config), "status", "--json", "--now", now.isoformat()])
    return {r["pair_id"]: r["state"] for r in json.loads(out.getvalue())["pairs"]}


def test_states_at_the_end(simulated):
    states = final_states(simulated)
    assert {pid: states[pid] for pid in HEALTHY} == {pid: "ended" for pid in HEALTHY}
    assert states["F1"] == "ended"  # recovered and finished
    assert states["PA"] == "paused" and states["ST"] == "ended" and states["NC"] == "awaiting consent"


def test_fizzling_pair_was_nudged_flagged_and_recovered(simulated):
    prog, _, seen, _ = simulated
    assert {"at risk", "fizzling", "active"} <= seen["F1"]
    nudges = prog.outbox("nudge", to="mentee.f1@example.com")
    assert len(nudges) >= 2  # one per missed session, plus the champion's NUDGE
    alerts = prog.outbox("alert", to="champion@example.com")
    assert [a["Subject"] for a in alerts] == ["Reverse Mentoring Pilot: pair F1 is fizzling"]
    confirms = prog.outbox("confirm", to="champion@example.com")
    assert confirms and "NUDGE F1" in confirms[0].get_body(("plain",)).get_content()
    assert not any("H" in a["Subject"].split()[-3] for a in alerts)


def test_healthy_pairs_get_three_surveys_each_and_mentors_a_certificate(simulated):
    prog, _, _, _ = simulated
    for pid in HEALTHY:
        mentor, mentee = PEOPLE[pid]
        assert len(prog.outbox("survey", to=mentee)) == 3
        assert len(prog.outbox("certificate", to=mentor)) == 1
        assert not prog.outbox("certificate", to=mentee)
    with Store.open(prog.state, writer=False) as store:
        answers = [s for s in store.table("surveys").all() if s["pair_id"] == "H2" and s["milestone"] == "end"]
    assert {a["role"] for a in answers} == {"mentor", "mentee"}
    assert all(a["answers"]["confidence"] == 4 for a in answers)


def test_goal_progress_is_asked_at_the_midpoint_and_the_end_and_logged(simulated):
    prog, _, _, _ = simulated
    with Store.open(prog.state, writer=False) as store:
        progress = {(log["pair_id"], log["fields"].get("progress")) for log in store.table("logs").all()
                    if log["fields"].get("progress")}
    assert {("H5", 2), ("H5", 4)} <= progress
    asked = [m for m in prog.outbox("agenda.", to=PEOPLE["H5"][0]) if "Progress: 1-5" in m.get_body(("plain",)).get_content()]
    assert len(asked) == 2


def test_confidential_channel_reaches_mentor_and_champion_only(simulated):
    prog, _, _, _ = simulated
    mentor, mentee = PEOPLE["F1"]
    assert prog.outbox("checkin", to=mentor)
    assert not prog.outbox("checkin", to=mentee)
    flags = prog.outbox("flag", to="champion@example.com")
    assert flags and "we keep getting interrupted" in flags[0].get_body(("plain",)).get_content()
    assert not any("interrupted" in m.get_body(("plain",)).get_content() for m in prog.outbox(to=mentee))


def test_no_private_note_reaches_the_champion(simulated):
    prog, _, _, _ = simulated
    shared_seen = False
    for msg in prog.outbox(to="champion@example.com"):
        text = msg.get_body(("plain",)).get_content()
        assert f"{SECRET} H2" not in text and f"{SECRET} F1" not in text
        shared_seen |= f"{SECRET} H1" in text  # H1's people both said SHARE NOTES
    assert shared_seen
    shared = prog.outbox("certificate", to=PEOPLE["H1"][0])[0].get_body(("plain",)).get_content()
    assert "topic 1 of H1" in shared  # H1 said SHARE NOTES: topics on the certificate
    private = prog.outbox("certificate", to=PEOPLE["H2"][0])[0].get_body(("plain",)).get_content()
    assert "topic 1 of H2" not in private


def test_champion_gets_one_digest_a_week_with_the_numbers(simulated):
    prog, _, _, _ = simulated
    digests = sorted(prog.outbox("digest", to="champion@example.com"), key=lambda m: m["Date"].datetime)
    # one per Monday 09:00 London from 18 January (the first sessions were in the week of 11 January;
    # no digest covers time before them) to 22 February
    assert len(digests) == 6 and "week of 11 Jan to 17 Jan 2027" in digests[0]["Subject"]
    assert len({d["Subject"] for d in digests}) == 6
    bodies = [d.get_body(("plain",)).get_content() for d in digests]
    f1 = [next((s for s in ("at risk", "fizzling") if f"F1  Mentor F1 mentoring Mentee F1: {s}" in b), "-") for b in bodies]
    assert f1 == ["-", "at risk", "fizzling", "-", "-", "-"]  # and recovered after the nudges
    assert "NUDGE F1" in bodies[2] and "Mentee H2" not in bodies[2]
    last = digests[-1].get_body(("plain",)).get_content()
    assert "sessions held" in last and "declined to join" in last


def test_reports_and_run_output_keep_notes_private(simulated, capsys):
    prog, _, _, now = simulated
    assert "P" in prog.printed and SECRET not in prog.printed and "topic 2 of H2" not in prog.printed
    capsys.readouterr()
    for fmt in ("md", "csv", "html"):
        assert prog.cli("report", "--format", fmt, "--now", now.isoformat()) == 0
        out = capsys.readouterr().out
        assert f"{SECRET} H2" not in out and "topic 2 of H2" not in out, fmt
    assert prog.cli("report", "--format", "csv", "--now", now.isoformat()) == 0
    rows = capsys.readouterr().out.splitlines()
    header = rows[0].split(",")
    h3 = dict(zip(header, next(r for r in rows if r.startswith("H3,")).split(",")))
    assert h3["state"] == "ended" and h3["sessions_held"] == "6"


def test_pause_and_stop_cancel_their_series(simulated):
    prog, _, _, _ = simulated
    from programme import calendar_parts

    for pid in ("PA", "ST"):
        methods = [calendar_parts(m)[0][0] for m in prog.outbox("itip", to=PEOPLE[pid][1])]
        assert methods == ["REQUEST", "CANCEL"], pid
    healthy = [calendar_parts(m)[0][0] for m in prog.outbox("itip", to=PEOPLE["H3"][1])]
    assert healthy == ["REQUEST"]  # a completed series is not cancelled
