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
SHARING = {"H1", "H3", "H4", "H5", "H6"}  # both people reply SHARE NOTES with their YES; H2 and the rest do not
SOCIAL = {"H5", "H6", "H7", "H8", "ST", "NC"}  # track "social media"; the others "technology"
SPRING = {"H1", "H2", "H3", "H4", "H5", "H6"}  # cohort "spring"; the others "summer"


def roster() -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track,cohort"]
    for pid, (mentor, mentee) in PEOPLE.items():
        track = "social media" if pid in SOCIAL else "technology"
        cohort = "spring" if pid in SPRING else "summer"
        rows.append(f"{pid},Mentor {pid},{mentor},Mentee {pid},{mentee},Goal of {pid},{track},{cohort}")
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
                self.reply(msg, now, "Yes, I'm in." + ("\n\nSHARE NOTES" if pid in SHARING else ""))
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
    prog = Programme.create(tmp_path_factory.mktemp("sim"), roster=roster(), cadence='"weekly"', attach_report="true")
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
        sent = sorted(prog.outbox("itip", to=PEOPLE[pid][1]), key=lambda m: m["Date"].datetime)  # files are named by a keyed hash
        methods = [calendar_parts(m)[0][0] for m in sent]
        assert methods == ["REQUEST", "CANCEL"], pid
    healthy = [calendar_parts(m)[0][0] for m in prog.outbox("itip", to=PEOPLE["H3"][1])]
    assert healthy == ["REQUEST"]  # a completed series is not cancelled


# --- the champion's report of the whole programme (issue 20) ----------------------------------
# Every figure below is worked out from the script above, not read from the code: 12 pairs, six
# weekly sessions each from the week of 11 January (2027-W02) to the week of 15 February (W07).


def figures(simulated, capsys, *args: str) -> dict[tuple[str, str, str], str]:
    prog, _, _, now = simulated
    capsys.readouterr()
    assert prog.cli("report", "--format", "csv", "--table", "figures", "--now", now.isoformat(), *args) == 0
    import csv
    import io

    return {(r["section"], r["group"], r["figure"]): r["value"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}


def test_report_funnel_matches_the_script(simulated, capsys):
    value = figures(simulated, capsys)
    funnel = [(step, int(value[("funnel", step, "pairs")])) for step in
              ("invited", "both consented", "booked", "first session held", "midpoint reached", "completed")]
    # NC never answers its kickoff; ST's first session is answered with STOP, not a log; PA pauses
    # at its second of six sessions, before the midpoint (the third); H1-H8 and F1 reach the end.
    assert funnel == [("invited", 12), ("both consented", 11), ("booked", 11), ("first session held", 10),
                      ("midpoint reached", 9), ("completed", 9)]
    assert [value[("beside the funnel", "", k)] for k in ("declined", "paused", "stopped")] == ["0", "1", "1"]


def test_report_weekly_states_and_sessions_match_the_script(simulated, capsys):
    value = figures(simulated, capsys)
    states = ("active", "at risk", "fizzling", "paused", "ended")
    weeks = {}
    for (section, week, figure), v in value.items():
        if section == "week":
            weeks.setdefault(week, {})[figure] = v
    table = {week: ([int(w[s]) for s in states], int(w["sessions planned"]), int(w["sessions held"]))
             for week, w in weeks.items()}
    assert table == {
        # ST stops at its first session; the other ten met. ST's session is planned but not held.
        "2027-W02": ([10, 0, 0, 0, 1], 11, 10),
        # F1 is silent about its 2nd session (at risk); PA answers its 2nd with PAUSE (no log: missed)
        "2027-W03": ([8, 1, 0, 1, 1], 10, 8),
        # F1 silent again: fizzling; PA's series is cancelled, so nine sessions
        "2027-W04": ([8, 0, 1, 1, 1], 9, 8),
        # F1 logs its 4th session: active again
        "2027-W05": ([9, 0, 0, 1, 1], 9, 9),
        "2027-W06": ([9, 0, 0, 1, 1], 9, 9),
        # the 6th and last session: H1-H8 and F1 complete
        "2027-W07": ([0, 0, 0, 1, 10], 9, 9),
        # after the programme, quiet weeks with nothing changing are one line, up to the report's moment
        "2027-W08 to W09": ([0, 0, 0, 1, 10], 0, 0),
    }
    assert value[("week", "2027-W03", "attendance")] == "0.8000"  # 8 of 10


def test_report_outcomes_match_the_script(simulated, capsys):
    value = figures(simulated, capsys)
    # mentors answer "Progress: 2" at the 3rd session (the midpoint: F1 is silent then) and 4 at the 6th
    assert [value[("goal progress", "midpoint", str(n))] for n in range(1, 6)] == ["0", "8", "0", "0", "0"]
    assert [value[("goal progress", "end", str(n))] for n in range(1, 6)] == ["0", "0", "0", "9", "0"]
    assert (value[("goal progress", "midpoint", "mean")], value[("goal progress", "end", "mean")]) == ("2.00", "4.00")
    # every survey answer is "1. 4 / 2. 5 / 3. 4 / 4. more async work": mentees' 1-2 are confidence
    # and value, mentors' 1-3 confidence, value, heard; nobody answers the 5th (mentors' visibility)
    for role, question, answer in (("mentees", "confidence", "4.00"), ("mentees", "value", "5.00"),
                                   ("mentors", "confidence", "4.00"), ("mentors", "heard", "4.00")):
        assert [value[(f"survey {role}", question, m)] for m in ("first", "midpoint", "end")] == [answer] * 3
        assert value[(f"survey {role}", question, "change")] == "0.00"
    assert ("survey mentees", "heard", "first") not in value  # a mentor's question stays the mentors'
    assert value[("survey mentors", "visibility", "end")] == ""
    # mentees' 4th answer at the midpoint and the end is the adopted tool: 9 mentees got those surveys;
    # the words come from the five sharing pairs only (H1, H3, H4, H5, H6), enough people to show them
    assert [value[("adopted", "", k)] for k in ("mentees who answered", "named one", "share")] == ["9", "9", "1.0000"]
    assert value[("adopted", "more async work", "mentees")] == "5"


def test_report_compares_tracks_and_cohorts_side_by_side(simulated, capsys):
    value = figures(simulated, capsys)

    def group(section: str, name: str) -> tuple[str, ...]:
        return tuple(value[(section, name, k)] for k in ("pairs", "completed", "sessions planned", "sessions held"))

    # technology: H1-H4 (24 of 24), F1 (4 of 6), PA (1 of 2); social media: H5-H8 (24 of 24), ST (0 of 1), NC
    assert group("track", "technology") == ("6", "5", "32", "29")
    assert group("track", "social media") == ("6", "4", "25", "24")
    # spring: H1-H6, all held; summer: H7, H8, F1, PA, ST, NC
    assert group("cohort", "spring") == ("6", "6", "36", "36")
    assert group("cohort", "summer") == ("6", "3", "21", "17")
    social = figures(simulated, capsys, "--track", "social media")
    assert [social[("funnel", s, "pairs")] for s in ("invited", "both consented", "first session held", "completed")] \
        == ["6", "5", "4", "4"]
    assert social[("summary", "overall", "sessions held")] == "24"


def test_the_digest_carries_the_report_and_it_keeps_notes_private(simulated):
    prog, _, _, _ = simulated
    last = max(prog.outbox("digest", to="champion@example.com"), key=lambda m: m["Date"].datetime)
    files = [part for part in last.iter_attachments() if part.get_filename() == "report-2027-02-22.html"]
    assert len(files) == 1 and files[0].get_content_type() == "text/html"
    page = files[0].get_content()
    assert page.startswith("<!DOCTYPE html>") and "Engagement funnel" in page and "<script" not in page
    assert f"{SECRET} H1" in page and f"{SECRET} H2" not in page and "topic 2 of H2" not in page


def test_the_report_of_the_whole_programme_lays_out_in_chromium(simulated, capsys, tmp_path):
    import browser

    prog, _, _, now = simulated
    capsys.readouterr()
    assert prog.cli("report", "--format", "html", "--now", now.isoformat()) == 0
    page = capsys.readouterr().out
    slots = browser.check_layout(page, tmp_path)
    drawn = {name for name, s in slots.items() if s["bars"]}
    assert drawn == {"funnel", "states", "sessions", "progress-distribution", "surveys-mentee", "surveys-mentor",
                     "ratings", "progress"}
    assert slots["funnel"]["bars"] == 6 and slots["sessions"]["bars"] == 12  # six weeks x planned, held
    with capsys.disabled():
        browser.screenshot(page, "report-simulation-12-pairs", tmp_path, height=7200)
        browser.screenshot(page, "report-simulation-12-pairs-a4", tmp_path, width=browser.A4_PX, height=9000)
