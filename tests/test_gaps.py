"""Time as it really passes: a daemon that was down for a day, a week or a year, or whose clock
went back, keeps the programme's record right (through the real CLI, local backend)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from programme import Programme, booked_programme, sent_keys, status

UTC = timezone.utc
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Mon: kickoffs
FIRST = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # P01's sessions: Mondays 09:00 London
WEEK = timedelta(days=7)
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track,status\n"
          "P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Learn TikTok,social media,active\n"
          "P02,Tom Becker,tom.becker@example.com,Linda Morales,linda.morales@example.com,Ship weekly,technology,active\n")


def booked(tmp_path) -> Programme:
    return booked_programme(tmp_path, ROSTER, T0, cadence='"weekly"')


def sessions(prog: Programme, now: datetime, capsys, pair: str = "P01") -> list[tuple[int, str, str, list[str]]]:
    return [(s["number"], s["start"][:10], s["status"], s["logged_by"]) for s in status(prog, now, capsys)[pair]["sessions"]]


def test_status_json_lists_every_occurrence_and_nothing_held_before_the_start(tmp_path, capsys):
    prog = booked(tmp_path)
    rows = status(prog, T0 + timedelta(hours=2), capsys)["P01"]
    assert [s["number"] for s in rows["sessions"]] == [1, 2, 3, 4, 5, 6]
    assert rows["sessions"][0] == {"number": 1, "start": "2027-01-11T09:00:00Z", "status": "planned", "logged_by": [],
                                   "agenda": None}
    prog.run(FIRST - timedelta(hours=20))
    prog.reply(prog.outbox("agenda", to="aisha")[0], "Attended: yes\nRating: 5", FIRST + timedelta(hours=2))
    prog.run(FIRST + timedelta(hours=3))
    assert sessions(prog, FIRST + timedelta(hours=3), capsys)[0] == (1, "2027-01-11", "held", ["aisha.khan@example.com"])
    # a status asked for a time before the programme shows nothing held, whatever the state file holds
    before = status(prog, T0, capsys)["P01"]
    assert before["sessions_held"] == 0 and {s["status"] for s in before["sessions"]} == {"planned"}


def test_down_through_a_session_no_late_agenda_the_session_counts_and_numbers_hold(tmp_path, capsys):
    """Runs on Sun 10 Jan and Wed 13 Jan: Monday's session got no agenda (recorded as not sent), it
    is still session 1 (missed or held, not forgotten), and the next agenda is session 2 of 6."""
    prog = booked(tmp_path)
    prog.run(FIRST - timedelta(hours=30))  # Sun: before the agenda's lead time
    prog.run(FIRST + 2 * timedelta(days=1) + timedelta(hours=1))  # Wed 10:00
    assert not prog.outbox("agenda")
    rows = status(prog, FIRST + timedelta(days=3), capsys)["P01"]["sessions"]
    assert rows[0]["status"] == "missed" and rows[0]["agenda"] == "not sent"
    # a pair that never met gets no "you have had your first session" survey, only a nudge naming the session
    assert not prog.outbox("survey")
    nudge = prog.outbox("nudge", to="richard")[0].get_body(("plain",)).get_content()
    assert "Mon 11 Jan 2027" in nudge
    prog.run(FIRST + WEEK - timedelta(hours=20))
    subject = prog.outbox("agenda", to="richard")[0]["Subject"]
    assert "session 2 with" in subject
    body = prog.outbox("agenda", to="richard")[0].get_body(("plain",)).get_content()
    assert "session 2 of 6" in body


def test_a_week_away_files_a_log_under_the_session_it_was_written_after(tmp_path, capsys):
    """Demo state, then a run a week later: Richard's note (on the kickoff thread, no session token)
    written after the 25 Jan session is that session's log, not "session 1"."""
    prog = booked(tmp_path)
    for day in range(8):
        prog.run(FIRST - timedelta(days=1) + day * timedelta(days=1))
    agenda = prog.outbox("agenda", to="richard")[0]
    prog.reply(agenda, "Attended: yes\nGreat first one", FIRST + timedelta(hours=3))
    prog.run(FIRST + timedelta(days=1))
    later = FIRST + 2 * WEEK + timedelta(hours=3)
    prog.reply(prog.outbox("kickoff", to="richard")[0], "Attended: yes\nWe went through the creator tools.", later)
    prog.run(later + timedelta(minutes=30))
    rows = sessions(prog, later + timedelta(hours=1), capsys)
    assert rows[0][2:] == ("held", ["richard.hale@example.com"])
    assert rows[1][2] == "planned" or rows[1][2] == "missed"
    assert rows[2] == (3, "2027-01-25", "held", ["richard.hale@example.com"])


def test_a_year_away_ends_the_programme_once_with_its_end_mail_only(tmp_path, capsys):
    prog = booked(tmp_path)
    later = T0 + timedelta(days=365)
    prog.run(later)
    for pair in ("P01", "P02"):
        row = status(prog, later, capsys)[pair]
        assert row["state"] == "ended"
        assert [s["status"] for s in row["sessions"]] == ["missed"] * 6
        assert all(s["agenda"] == "not sent" for s in row["sessions"])
    keys = sent_keys(prog)
    assert sum(k.startswith("certificate:P01:") for k in keys) == 2  # the mentor's and the champion's copy
    assert sum(k.startswith("survey:P01:end:") for k in keys) == 2
    assert not [k for k in keys if k.startswith(("survey:P01:first", "survey:P01:midpoint", "agenda:"))]
    assert not [k for k in keys if k.startswith(("nudge:", "alert:"))]  # nothing to get back on track for
    prog.run(later + timedelta(days=1))
    assert sent_keys(prog) == keys


def test_one_digest_for_the_weeks_the_daemon_was_down_and_none_before_the_first_session(tmp_path, capsys):
    prog = booked(tmp_path)  # ran at Mon 4 Jan 09:00, the digest moment: no session has taken place before it
    assert not prog.outbox("digest")
    prog.run(FIRST)  # Mon 11 Jan: P02's sessions are spread to Tuesdays, its first was on 5 Jan
    (first,) = prog.outbox("digest")
    assert "week of 05 Jan to 10 Jan 2027" in first["Subject"] + first.get_body(("plain",)).get_content()
    prog.run(FIRST + WEEK)  # Mon 18 Jan
    second = sorted(prog.outbox("digest"), key=lambda m: m["Date"].datetime)  # files are named by a keyed hash
    text = second[-1].get_body(("plain",)).get_content()
    assert len(second) == 2 and "week of 11 Jan to 17 Jan 2027" in second[-1]["Subject"] + text
    assert "quarantine" not in text.replace("quarantined mail  0", "")  # nothing quarantined: not mentioned
    prog.run(FIRST + 4 * WEEK + timedelta(hours=1))  # down for three weeks
    digests = sorted(prog.outbox("digest"), key=lambda m: m["Date"].datetime)
    assert len(digests) == 3
    text = digests[-1].get_body(("plain",)).get_content()
    assert "weeks of 18 Jan to 07 Feb 2027" in digests[-1]["Subject"] + text


def test_a_clock_gone_back_sends_nothing_again_and_shows_in_status(tmp_path, capsys):
    prog = booked(tmp_path)
    prog.run(FIRST - timedelta(hours=20))
    before = sent_keys(prog)
    assert prog.run(FIRST - timedelta(days=3)) == 0
    assert sent_keys(prog) == before
    capsys.readouterr()
    prog.cli("status", "--json", "--now", (FIRST - timedelta(days=3)).isoformat())
    clock = json.loads(capsys.readouterr().out)["clock"]
    assert clock["went_back"] == {"now": (FIRST - timedelta(days=3)).isoformat(), "latest": (FIRST - timedelta(hours=20)).isoformat()}
    prog.run(FIRST - timedelta(hours=19))  # later than the latest run again: jobs run as usual
    assert sent_keys(prog) == before


def test_a_skip_read_after_its_session_skips_the_session_it_was_written_for(tmp_path, capsys):
    """Richard writes SKIP on Friday for Monday's session; the daemon is down until Wednesday. The
    session he meant is skipped (not the next one), as if the daemon had read it at once."""
    prog = booked(tmp_path)
    prog.run(FIRST - timedelta(days=4))
    prog.reply(prog.outbox("kickoff", to="richard")[0], "SKIP", FIRST - timedelta(days=3))
    prog.reply(prog.outbox("kickoff", to="tom")[0], "RESCHEDULE Tue 14:00", FIRST - timedelta(days=3))
    prog.run(FIRST + 2 * timedelta(days=1))
    rows = sessions(prog, FIRST + 2 * timedelta(days=1), capsys)
    assert [r[2] for r in rows[:2]] == ["skipped", "planned"]
    p02 = status(prog, FIRST + 2 * timedelta(days=1), capsys)["P02"]["sessions"]
    # P02 meets on Tuesdays (sessions spread over the week): its next one, 12 Jan, moved to 14:00
    assert [(r["start"][:16], r["status"]) for r in p02[1:3]] == [("2027-01-12T14:00", "moved"), ("2027-01-19T10:00", "planned")]


def test_a_skipped_session_moves_no_milestone_the_report_announces_the_day_the_survey_goes(tmp_path, capsys):
    """Session 2 skipped: the midpoint (session 3 of 6) stays on 25 Jan in the report's upcoming
    milestones, the day the surveys job sends the midpoint survey, not on the next occurrence."""
    prog = booked(tmp_path)
    prog.run(FIRST - timedelta(days=4))
    prog.reply(prog.outbox("kickoff", to="richard")[0], "SKIP", FIRST + timedelta(days=2))
    prog.run(FIRST + timedelta(days=2, hours=1))
    capsys.readouterr()
    assert prog.cli("report", "--now", (FIRST + timedelta(days=9)).isoformat()) == 0
    report = capsys.readouterr().out
    assert "P01: midpoint (session 3 of 6), Mon 25 Jan 2027" in report
    prog.run(FIRST + 2 * WEEK + timedelta(hours=1))
    assert prog.outbox("survey", to="richard") and "halfway" in prog.outbox("survey", to="richard")[-1]["Subject"] + \
        prog.outbox("survey", to="richard")[-1].get_body(("plain",)).get_content()


def test_a_skip_before_a_pause_counts_as_one_of_the_sessions_after_the_resume(tmp_path, capsys):
    """sessions = 6: the first held, the second skipped, a PAUSE, a RESUME. The new series books
    the four sessions left, so the last one is "session 6 of 6", never 7."""
    prog = booked(tmp_path)
    prog.run(FIRST - timedelta(days=4))
    kickoff = prog.outbox("kickoff", to="richard")[0]
    prog.reply(kickoff, "Attended: yes", FIRST + timedelta(hours=2))
    prog.reply(kickoff, "SKIP", FIRST + timedelta(hours=3))
    prog.run(FIRST + timedelta(hours=4))
    prog.reply(kickoff, "PAUSE", FIRST + WEEK + timedelta(days=1))
    prog.run(FIRST + WEEK + timedelta(days=1, hours=1))
    prog.reply(kickoff, "RESUME", FIRST + 2 * WEEK + timedelta(days=1))
    prog.run(FIRST + 2 * WEEK + timedelta(days=1, hours=1))
    rows = sessions(prog, FIRST + 2 * WEEK + timedelta(days=2), capsys)
    assert [(n, s) for n, _, s, _ in rows] == [(1, "held"), (2, "skipped"), (3, "planned"), (4, "planned"),
                                               (5, "planned"), (6, "planned")]


def test_after_every_pair_ended_a_quiet_week_sends_no_digest_and_a_late_answer_still_does(tmp_path, capsys):
    """Six weekly sessions from 11 Jan: the last is on 15 Feb (P02's on the 16th). A digest reports
    that week; after it, weeks where nothing happens send none, and a late survey answer gets one."""
    prog = booked(tmp_path)
    for week in range(12):  # every Monday to 29 Mar
        prog.run(FIRST + week * WEEK)
    assert {p["state"] for p in status(prog, FIRST + 11 * WEEK, capsys).values()} == {"ended"}
    digests = sorted(prog.outbox("digest"), key=lambda m: m["Date"].datetime)
    last = digests[-1]
    assert last["Date"].datetime < FIRST + 11 * WEEK  # the quiet weeks at the end sent nothing
    assert "Feb" in last["Subject"] + last.get_body(("plain",)).get_content()
    count = len(digests)
    survey = prog.outbox("survey", to="richard")[-1]
    prog.reply(survey, "1: 4\n2: 5\n3: 4", FIRST + 11 * WEEK + timedelta(days=2))
    prog.run(FIRST + 12 * WEEK)  # read at the digest's moment: it belongs to the next week's digest
    assert len(prog.outbox("digest")) == count
    prog.run(FIRST + 13 * WEEK)
    assert len(prog.outbox("digest")) == count + 1
    prog.run(FIRST + 14 * WEEK)
    assert len(prog.outbox("digest")) == count + 1


def test_a_quiet_run_writes_the_state_once_so_the_backup_is_the_run_before(tmp_path):
    """The clock of a run goes with its first write (or its last): written apart, it was a whole
    state write each run, and ``state.json.bak`` then held this run's half-made state, not the last run's."""
    prog = booked(tmp_path)
    quiet = T0 + timedelta(hours=3)
    assert prog.run(quiet) == 0
    before = prog.state.read_bytes()
    assert prog.run(quiet + timedelta(minutes=5)) == 0
    assert prog.state.with_name("state.json.bak").read_bytes() == before
    assert json.loads(prog.state.read_bytes())["_meta"]["1"]["clock:latest"] == (quiet + timedelta(minutes=5)).isoformat()


def test_a_missed_session_is_nudged_at_the_run_its_log_window_closes_not_before(tmp_path):
    """The nudges job only works out the statuses of pairs with enough log windows closed: the
    run at the very moment the first one closes must still see it missed."""
    prog = booked(tmp_path)
    assert prog.run(FIRST - timedelta(hours=20)) == 0  # agendas
    assert prog.run(FIRST + timedelta(hours=48) - timedelta(minutes=1)) == 0
    assert not [k for k in sent_keys(prog) if k.startswith("nudge:P01:")]
    assert prog.run(FIRST + timedelta(hours=48)) == 0
    nudged = sorted(k.rsplit(":", 1)[1] for k in sent_keys(prog) if k.startswith("nudge:P01:missed:"))
    assert nudged == ["aisha.khan@example.com", "richard.hale@example.com"]
