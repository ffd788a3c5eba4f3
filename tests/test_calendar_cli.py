"""Calendar changes as people make them, through the real CLI on the local backend.

Every invitation the daemon emits is read back by icalendar, recurring_ical_events and ICAL.js
(see ``test_calendar_readers``): what the tests assert is what Outlook/Gmail-like (Python) and
Thunderbird (ICAL.js) users would see. The pair meets weekly, Mondays 09:00 London, four times:
11, 18 and 25 January and 1 February 2027.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from programme import Programme, calendar_parts, outlook_rsvp, status
from test_calendar_readers import (agreed_starts, check_every_calendar, ical_js_events, icalendar_read,
                                   invitations, master, opt_in_all)
from rmdaemon.atomic import atomic_write
from rmdaemon.jobs import booking
from rmdaemon.secret import SIZE, secret_path

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
LONDON = ZoneInfo("Europe/London")
HEADER = "pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,cadence"
ROSTER = HEADER + "\nP01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Understand TikTok,Europe/London,Europe/London,weekly\n"
SESSIONS = [datetime(2027, 1, d, 9, 0, tzinfo=timezone.utc) for d in (11, 18, 25)] + [datetime(2027, 2, 1, 9, 0, tzinfo=timezone.utc)]


def booked(tmp_path, roster: str = ROSTER, **program: str) -> Programme:
    prog = Programme.create(tmp_path, roster=roster, sessions="4", **program)
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    return prog



def agenda_for(prog: Programme, start: datetime, to: str = "richard.hale") -> EmailMessage:
    prog.run(start - timedelta(hours=23))
    return prog.outbox("agenda.", to=to)[-1]


def london(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(timezone.utc)


def rsvp(prog: Programme, who: str, uid: str, occurrence: datetime, partstat: str, when: datetime, n: int = 0) -> None:
    name, raw = outlook_rsvp(who, uid, occurrence, partstat, when, n)
    prog.drop(raw, name)


def series_uid(prog: Programme) -> str:
    return str(master(icalendar_read(invitations(prog, "aisha.khan")[0][1]))["UID"])


# --------------------------------------------------------------------------------------------
# Updates, skips, moves, pause and resume


def test_first_invitation_is_the_planned_series(tmp_path):
    prog = booked(tmp_path)
    (method, ics), = invitations(prog, "aisha.khan")
    assert method == "REQUEST"
    assert agreed_starts(ics) == SESSIONS


def test_update_keeps_the_uid_and_raises_the_sequence(tmp_path):
    prog = booked(tmp_path)
    prog.roster.write_text(ROSTER.replace(",weekly", ",biweekly"))
    prog.run(T0 + timedelta(hours=2))
    (m0, first), (m1, second) = invitations(prog, "aisha.khan")
    assert (m0, m1) == ("REQUEST", "REQUEST")
    old, new = master(icalendar_read(first)), master(icalendar_read(second))
    assert str(old["UID"]) == str(new["UID"]) and (old["SEQUENCE"], new["SEQUENCE"]) == (0, 1)
    assert [(e["uid"], e["sequence"]) for e in ical_js_events(second)] == [(str(old["UID"]), 1)]
    starts = agreed_starts(second)
    assert len(starts) == 4 and {b - a for a, b in zip(starts, starts[1:])} == {timedelta(days=14)}


def test_skip_is_an_exdate_in_the_series_and_a_cancel_of_that_session(tmp_path, capsys):
    prog = booked(tmp_path)
    prog.reply(agenda_for(prog, SESSIONS[0]), "SKIP", SESSIONS[0] - timedelta(hours=22))
    prog.run(SESSIONS[0] - timedelta(hours=21))
    sent = invitations(prog, "aisha.khan")
    assert [m for m, _ in sent] == ["REQUEST", "REQUEST", "CANCEL"]
    assert agreed_starts(sent[1][1]) == SESSIONS[1:]
    (cancel,) = ical_js_events(sent[2][1])
    assert cancel["status"] == "CANCELLED" and cancel["sequence"] == 1
    assert cancel["recurrence_id"] == "2027-01-11T09:00:00Z" and cancel["uid"] == series_uid(prog)
    # the series comes to each with their own note; the one session's cancel with the note both read
    greetings = {("RECURRENCE-ID" in calendar_parts(m)[0][1].decode(), m.get_body(("plain",)).get_content().splitlines()[0])
                 for m in prog.outbox("itip", to="aisha.khan")}
    assert greetings == {(False, "Hello Aisha,"), (True, "Hello Aisha and Richard,")}
    assert status(prog, SESSIONS[0] - timedelta(hours=21), capsys)["P01"]["next_session"] == SESSIONS[1].isoformat()
    # a session's number is its place in the series: the skipped one keeps 1, so no number changes
    assert "session 2 with Aisha Khan, Mon 18 Jan 2027" in agenda_for(prog, SESSIONS[1])["Subject"]


def test_reschedule_moves_that_session_and_its_agenda_keeps_the_token(tmp_path, capsys):
    prog = booked(tmp_path)
    first_agenda = agenda_for(prog, SESSIONS[0])
    prog.reply(first_agenda, "RESCHEDULE Thu 14:00", SESSIONS[0] - timedelta(hours=22))
    prog.run(SESSIONS[0] - timedelta(hours=21))
    moved = london("2027-01-14 14:00")
    (_, _), (method, ics) = invitations(prog, "aisha.khan")
    assert method == "REQUEST"
    assert agreed_starts(ics) == sorted([moved, *SESSIONS[1:]])
    override = next(e for e in ical_js_events(ics) if e["recurrence_id"])
    assert (override["recurrence_id"], override["start"], override["sequence"]) == ("2027-01-11T09:00:00Z", "2027-01-14T14:00:00Z", 1)
    assert status(prog, SESSIONS[0] - timedelta(hours=21), capsys)["P01"]["next_session"] == moved.isoformat()
    prog.run(moved - timedelta(hours=25))
    assert len(prog.outbox("agenda.", to="richard.hale")) == 1  # not yet: lead hours before the NEW time
    prog.run(moved - timedelta(hours=23))
    second_agenda = prog.outbox("agenda.", to="richard.hale")[-1]
    assert "Thu 14 Jan 2027, 14:00 GMT" in second_agenda["Subject"]
    token = first_agenda["Subject"].rsplit("[", 1)[1]
    assert second_agenda["Subject"].endswith("[" + token) and "session 1 " in second_agenda["Subject"]


def test_reschedule_is_read_in_the_senders_own_zone(tmp_path):
    roster = ROSTER.replace("Understand TikTok,Europe/London", "Understand TikTok,Europe/Berlin")
    prog = booked(tmp_path, roster)
    prog.reply(agenda_for(prog, SESSIONS[0], to="aisha.khan"), "Reschedule to Wednesday 11:00",
               SESSIONS[0] - timedelta(hours=22), sender="aisha.khan@example.com")
    prog.run(SESSIONS[0] - timedelta(hours=21))
    ics = invitations(prog, "aisha.khan")[-1][1]
    assert london("2027-01-13 10:00") in agreed_starts(ics)  # 11:00 in Berlin


@pytest.mark.parametrize("asked, reason", [
    ("RESCHEDULE Sat 10:00", "Sat 23 Jan 2027, 10:00 GMT is outside working hours (Aisha Khan works 09:00-17:00 "
                             "Mon,Tue,Wed,Thu,Fri; Richard Hale works 09:00-17:00 Mon,Tue,Wed,Thu,Fri)"),
    ("RESCHEDULE Thu 16:30", "outside working hours"),  # 45 minutes do not fit before 17:00
    ("RESCHEDULE 08:30", "Mon 18 Jan 2027, 08:30 GMT has already passed"),
    ("RESCHEDULE whenever suits", "could not read a day or a time in 'whenever suits'"),
    ("RESCHEDULE Thu 3", "could not tell what time '3' means"),
])
def test_impossible_reschedule_changes_nothing_and_tells_the_sender_why(tmp_path, asked, reason):
    prog = booked(tmp_path)
    agenda = agenda_for(prog, SESSIONS[1])  # session 2: Mon 18 January, 09:00
    asked_at = SESSIONS[1] - (timedelta(minutes=20) if "08:30" in asked else timedelta(hours=22))
    prog.reply(agenda, asked, asked_at)
    prog.run(asked_at + timedelta(minutes=10))
    assert [m for m, _ in invitations(prog, "aisha.khan")] == ["REQUEST"]
    (notice,) = prog.outbox("notice")
    assert str(notice["To"]) == "Richard Hale <richard.hale@example.com>"
    assert notice["In-Reply-To"] and notice["Auto-Submitted"] == "auto-generated"
    text = notice.get_body(("plain",)).get_content()
    assert reason in " ".join(text.split()) and "RESCHEDULE Thu 14:00" in text
    prog.run(asked_at + timedelta(minutes=20))
    assert len(prog.outbox("notice")) == 1  # sent once


def test_pause_cancels_the_series_and_resume_books_the_remaining_sessions(tmp_path):
    prog = booked(tmp_path)
    agenda = agenda_for(prog, SESSIONS[0])
    prog.reply(agenda, "PAUSE", SESSIONS[0] + timedelta(hours=2))
    prog.run(SESSIONS[0] + timedelta(hours=3))
    (_, _), (method, cancel) = invitations(prog, "aisha.khan")
    (event,) = ical_js_events(cancel)
    assert (method, event["status"], event["sequence"], event["recurrence_id"]) == ("CANCEL", "CANCELLED", 1, None)
    assert event["uid"] == series_uid(prog)
    prog.reply(agenda, "RESUME", SESSIONS[0] + timedelta(days=2))
    prog.run(SESSIONS[0] + timedelta(days=2, hours=1))
    (method, again) = invitations(prog, "aisha.khan")[-1]
    check_every_calendar(prog.outbox("itip", to="aisha.khan")[-1])
    starts = agreed_starts(again)
    assert method == "REQUEST" and len(starts) == 3  # one of four was held before the pause
    assert min(starts) > SESSIONS[0] + timedelta(days=3)  # booked with notice after the resume


def test_every_calendar_of_a_busy_month_reads_the_same_in_three_readers(tmp_path):
    prog = booked(tmp_path)
    prog.reply(agenda_for(prog, SESSIONS[0]), "RESCHEDULE Tue 10:00", SESSIONS[0] - timedelta(hours=22))
    prog.run(SESSIONS[0] - timedelta(hours=21))
    prog.reply(agenda_for(prog, SESSIONS[1]), "SKIP", SESSIONS[1] - timedelta(hours=22))
    prog.run(SESSIONS[1] - timedelta(hours=21))
    sent = prog.outbox("itip")
    assert len(sent) == 2 * 4  # booked, moved, skipped (REQUEST + CANCEL), to each of two people
    for msg in sent:
        check_every_calendar(msg)


# --------------------------------------------------------------------------------------------
# A declined session: one offer to the pair, a number moves it, silence skips it


def test_declined_session_gets_one_offer_and_a_number_moves_it(tmp_path):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    rsvp(prog, "aisha.khan@example.com", uid, SESSIONS[1], "DECLINED", T0 + timedelta(days=2))
    rsvp(prog, "aisha.khan@example.com", uid, SESSIONS[1], "DECLINED", T0 + timedelta(days=2), n=1)  # Google sends two
    prog.run(T0 + timedelta(days=2, hours=1))
    prog.run(T0 + timedelta(days=2, hours=2))
    (offer,) = prog.outbox("repair")
    assert "aisha.khan@example.com" in str(offer["To"]) and "richard.hale@example.com" in str(offer["To"])
    text = offer.get_body(("plain",)).get_content()
    assert "Aisha Khan declined" in text and "Mon 18 Jan 2027, 09:00 GMT" in text
    options = [line.strip() for line in text.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert [o[:3] for o in options] == ["1. ", "2. ", "3. "]
    assert all("Jan 2027" in o and o[3:6] in ("Mon", "Tue", "Wed", "Thu", "Fri") for o in options)
    chosen = datetime.strptime(options[1][3:].replace(" GMT", ""), "%a %d %b %Y, %H:%M").replace(tzinfo=timezone.utc)
    prog.reply(offer, "2", T0 + timedelta(days=2, hours=3), sender="richard.hale@example.com")
    prog.run(T0 + timedelta(days=2, hours=4))
    method, ics = invitations(prog, "aisha.khan")[-1]
    assert method == "REQUEST"
    assert agreed_starts(ics) == sorted([SESSIONS[0], chosen, *SESSIONS[2:]])
    assert len(prog.outbox("repair")) == 1 and not prog.outbox("notice")


def test_unanswered_decline_skips_the_session_when_it_comes_and_counts_as_missed(tmp_path, capsys):
    prog = booked(tmp_path)
    agenda = agenda_for(prog, SESSIONS[0])
    prog.reply(agenda, "Attended: yes\nTopics: creators\nRating: 5", SESSIONS[0] + timedelta(hours=2))
    rsvp(prog, "richard.hale@example.com", series_uid(prog), SESSIONS[1], "DECLINED", SESSIONS[0] + timedelta(hours=2))
    prog.run(SESSIONS[0] + timedelta(hours=3))
    assert len(prog.outbox("repair")) == 1
    prog.run(SESSIONS[1] - timedelta(hours=23))
    assert len(prog.outbox("agenda.", to="richard.hale")) == 1  # no agenda while the offer is open
    prog.run(SESSIONS[1] - timedelta(minutes=5))
    assert [m for m, _ in invitations(prog, "aisha.khan")] == ["REQUEST"]  # still open just before
    prog.run(SESSIONS[1] + timedelta(minutes=5))
    sent = invitations(prog, "aisha.khan")
    assert [m for m, _ in sent] == ["REQUEST", "REQUEST", "CANCEL"]
    assert agreed_starts(sent[1][1]) == [SESSIONS[0], *SESSIONS[2:]]
    assert ical_js_events(sent[2][1])[0]["recurrence_id"] == "2027-01-18T09:00:00Z"
    row = status(prog, SESSIONS[1] + timedelta(days=3), capsys)["P01"]
    assert (row["sessions_held"], row["missed_in_a_row"], row["state"]) == (1, 1, "at risk")


def test_accepting_again_withdraws_the_decline(tmp_path):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    rsvp(prog, "aisha.khan@example.com", uid, SESSIONS[1], "DECLINED", T0 + timedelta(days=1))
    prog.run(T0 + timedelta(days=1, hours=1))
    rsvp(prog, "aisha.khan@example.com", uid, SESSIONS[1], "ACCEPTED", T0 + timedelta(days=2), n=1)
    prog.run(T0 + timedelta(days=2, hours=1))
    agenda = agenda_for(prog, SESSIONS[1], to="aisha.khan")
    assert "Mon 18 Jan 2027, 09:00 GMT" in agenda["Subject"]  # the session goes ahead as planned
    prog.run(SESSIONS[1] + timedelta(minutes=5))
    assert [m for m, _ in invitations(prog, "aisha.khan")] == ["REQUEST"]


# --------------------------------------------------------------------------------------------
# Blackout and out-of-office days; pairs that cannot be booked


def test_blackout_and_out_of_office_days_are_exdates_and_the_series_grows_to_keep_four_sessions(tmp_path):
    roster = (ROSTER.replace(",cadence", ",cadence,mentee_out_of_office")
              .replace(",weekly\n", ",weekly,2027-01-30..2027-02-02\n"))
    prog = booked(tmp_path, roster, blackout_dates="[2027-01-18, { start = 2027-03-01, end = 2027-03-05 }]")
    (method, ics), = invitations(prog, "aisha.khan")
    event = master(icalendar_read(ics))
    assert event["RRULE"]["COUNT"] == [6]
    assert sorted(e.dt for x in event.get("EXDATE") for e in x.dts) == [london("2027-01-18 09:00"), london("2027-02-01 09:00")]
    assert agreed_starts(ics) == [SESSIONS[0], SESSIONS[2], london("2027-02-08 09:00"), london("2027-02-15 09:00")]
    assert "4 sessions" in prog.outbox("itip", to="aisha.khan")[0].get_body(("plain",)).get_content()


KOLKATA_LA = "P09,Priya Nair,priya.nair@example.com,Sam Lee,sam.lee@example.com,Async video,Asia/Kolkata,America/Los_Angeles,weekly\n"


def test_check_warns_about_a_pair_that_cannot_be_booked_and_status_says_why(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER + KOLKATA_LA, sessions="4")
    capsys.readouterr()
    assert prog.cli("check") == 0
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if "P09" in line)
    assert "warning" in warning and "roster row 3" in warning
    assert all(w in warning for w in ("Asia/Kolkata", "America/Los_Angeles", "09:00-17:00", "mentor_working_hours"))
    assert "P01" not in out
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    assert not prog.outbox("itip", to="sam.lee") and prog.outbox("itip", to="richard.hale")
    row = status(prog, T0 + timedelta(hours=1), capsys)["P09"]
    assert row["state"] == "not bookable" and row["next_session"] is None
    problems = " ".join(row["problems"])
    assert "Asia/Kolkata" in problems and "America/Los_Angeles" in problems and "working_hours" in problems
    capsys.readouterr()
    prog.cli("status", "--now", (T0 + timedelta(hours=1)).isoformat())
    assert "P09: mentor priya.nair@example.com: 09:00-17:00" in capsys.readouterr().out


def test_check_passes_quietly_when_every_pair_fits(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER, sessions="4")
    capsys.readouterr()
    assert prog.cli("check") == 0
    assert "warning" not in capsys.readouterr().out


def test_a_programme_larger_than_a_publishing_batch_gets_the_same_invitations(tmp_path, monkeypatch):
    """Booking hands series to the calendar ``PUBLISH_BATCH`` at a time (each carries its rendered
    notes; all at once were a large first tick's peak memory): batches of two send the example
    programme's invitations byte for byte as one batch does, and record every series published."""
    sent = {}
    for batch in (1000, 2):
        monkeypatch.setattr(booking, "PUBLISH_BATCH", batch)
        prog = Programme.create(tmp_path / str(batch))
        prog.state.parent.mkdir(parents=True)
        atomic_write(secret_path(prog.state), b"5e" * SIZE + b"\n", mode=0o600)  # one secret: the same keys
        prog.run(T0)
        opt_in_all(prog, T0)
        prog.run(T0 + timedelta(hours=1))
        sent[batch] = {path.name: path.read_bytes() for path in prog.outbox_files()}
        assert len(prog.outbox("itip")) == 14
        assert all(d["series"]["published"] == d["series"]["sequence"] for d in prog.docs().values() if d.get("series"))
    assert sent[2] == sent[1000]
