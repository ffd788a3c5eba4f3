"""roster.csv as an admin saves it from a spreadsheet: every problem named by row, column and fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rmdaemon.config import ProgramSettings, load_settings
from rmdaemon.errors import UserError
from rmdaemon.model import Pair, Person, Slot, WorkingHours
from rmdaemon.roster import load_roster, notes, read_roster

REPO = Path(__file__).resolve().parent.parent
HEADER = "pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal"
GOOD = "P01,Aisha Khan,Aisha.Khan@example.com,Richard Hale,richard.hale@example.com,Learn TikTok"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where the roster lives, so messages name ``roster.csv`` as the admin sees it."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def program() -> ProgramSettings:
    return ProgramSettings(
        name="Pilot", timezone="Europe/London", cadence="biweekly", duration_minutes=45, sessions=6,
        end_date=None, start_date=date(2027, 1, 4),
        working_hours=WorkingHours(time(9), time(17), (0, 1, 2, 3, 4)), require_opt_in=True,
        agenda_lead_hours=24, organizer="mentoring@example.com", organizer_name="Pilot",
        champion="champion@example.com", max_pairs_per_mentor=1,
    )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def only_problem(path: Path, program: ProgramSettings) -> str:
    pairs, problems = read_roster(path, program)
    assert len(problems) == 1, problems
    return problems[0]


# --- clean rosters ------------------------------------------------------------------------


def test_minimal_row_takes_the_programme_defaults(tmp_path: Path, program: ProgramSettings) -> None:
    pairs, problems = read_roster(write(tmp_path, HEADER, GOOD), program)
    assert problems == []
    assert pairs == [Pair(
        pair_id="P01",
        mentor=Person("Aisha Khan", "Aisha.Khan@example.com", "Europe/London", program.working_hours),
        mentee=Person("Richard Hale", "richard.hale@example.com", "Europe/London", program.working_hours),
        goal="Learn TikTok", track="general", cadence="biweekly", duration_minutes=45,
        preferred_slot=None, status="active", row=2,
    )]
    assert pairs[0].member("aisha.khan@EXAMPLE.com") is pairs[0].mentor  # kept as written, compared casefolded


def test_optional_columns_override_the_programme(tmp_path: Path, program: ProgramSettings) -> None:
    header = HEADER + ",mentor_timezone,mentee_working_hours,mentor_working_hours,track,cadence,duration_minutes,preferred_slot,status"
    row = GOOD + ",Asia/Kolkata,08:00-18:00,11:00-19:00 Mon-Thu,AI at work,Weekly,30,tue 15:00,Paused"
    [pair], problems = read_roster(write(tmp_path, header, row), program)
    assert problems == []
    assert pair.mentor.timezone == "Asia/Kolkata" and pair.mentee.timezone == "Europe/London"
    assert pair.mentor.working_hours == WorkingHours(time(11), time(19), (0, 1, 2, 3))
    assert pair.mentee.working_hours == WorkingHours(time(8), time(18), (0, 1, 2, 3, 4))
    assert (pair.track, pair.cadence, pair.duration_minutes, pair.status) == ("AI at work", "weekly", 30, "paused")
    assert pair.preferred_slot == Slot(1, time(15))


def test_excel_bom_blank_rows_and_multiline_cells_keep_spreadsheet_row_numbers(
        tmp_path: Path, program: ProgramSettings) -> None:
    path = tmp_path / "roster.csv"
    text = "\r\n".join([HEADER, GOOD, ",,,,,", 'P02,Ann,ann@example.com,Ben,ben@example.com,"Two\nlines"',
                        "P03,Cy,cy@example.com,Di,di@,Goal"]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    pairs, problems = read_roster(path, program)
    assert [p.pair_id for p in pairs] == ["P01", "P02"] and pairs[1].row == 4 and pairs[1].goal == "Two\nlines"
    assert problems == ["roster.csv: row 5, column mentee_email: 'di@' is not an email address"]


def test_example_roster_reads_clean_with_the_example_config() -> None:
    settings = load_settings(REPO / "config.example.toml")
    pairs, problems = read_roster(settings.roster_path, settings.program)
    assert problems == []
    assert len(pairs) >= 7
    zones = {p.timezone for pair in pairs for p in pair.people}
    assert {"Europe/London", "America/New_York", "Asia/Kolkata"} <= zones
    assert any(pair.status == "paused" for pair in pairs)
    assert any(pair.preferred_slot for pair in pairs)
    assert {pair.track for pair in pairs} <= {"technology", "social media", "AI at work", "customer insight", "inclusion"}


def _overlap_minutes(mentor: Person, mentee: Person, day: date) -> float:
    """Shared working minutes on one calendar date, each person in their own zone (DST included)."""
    if day.weekday() not in mentor.working_hours.days or day.weekday() not in mentee.working_hours.days:
        return 0.0
    zones = [ZoneInfo(p.timezone) for p in (mentor, mentee)]
    start = max(datetime.combine(day, p.working_hours.start, z) for p, z in zip((mentor, mentee), zones))
    end = min(datetime.combine(day, p.working_hours.end, z) for p, z in zip((mentor, mentee), zones))
    return max(0.0, (end - start).total_seconds() / 60)


def test_every_example_pair_can_meet_every_week_of_the_year_across_dst() -> None:
    """The demo must book every pair: each week of 2027 (both DST switches) has a shared window."""
    settings = load_settings(REPO / "config.example.toml")
    for pair in load_roster(settings.roster_path, settings.program):
        for week in range(52):
            monday = date(2027, 1, 4) + timedelta(weeks=week)
            best = max(_overlap_minutes(pair.mentor, pair.mentee, monday + timedelta(days=d)) for d in range(7))
            assert best >= pair.duration_minutes, f"{pair.pair_id} cannot meet in the week of {monday}"


# --- one problem each ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path, program: ProgramSettings) -> None:
    assert read_roster(tmp_path / "roster.csv", program) == (
        [], ["roster.csv: file not found; create it or fix [roster] path in the config"])


def test_empty_file_asks_for_the_header(tmp_path: Path, program: ProgramSettings) -> None:
    (tmp_path / "roster.csv").write_bytes(b"")
    assert only_problem(tmp_path / "roster.csv", program) == (
        "roster.csv: the file is empty; the first row must be the header: "
        "pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal")


def test_not_utf8_names_the_row_byte_and_how_to_save(tmp_path: Path, program: ProgramSettings) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\nP02,Zoë,zoe@example.com,Al,al@example.com,Goal\n".encode("latin-1"))
    offset = len(f"{HEADER}\n{GOOD}\nP02,Zo".encode())
    assert only_problem(path, program) == (
        f"roster.csv: row 3: byte {offset} (0xEB) is not UTF-8; "
        'save the file as "CSV UTF-8" (Excel) or with UTF-8 encoding')


def test_misspelt_required_column_gets_a_did_you_mean(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER.replace("mentee_email", "mentee_emial"), GOOD)
    assert read_roster(path, program) == ([], [
        "roster.csv: row 1: missing required column mentee_email; is it the column mentee_emial? (rename it to mentee_email)"])


def test_missing_required_column_without_a_near_name(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER.replace(",goal", ""), GOOD.rsplit(",", 1)[0])
    assert only_problem(path, program) == "roster.csv: row 1: missing required column goal; add it to the header"


def test_unknown_column(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER + ",mentor_timzone", GOOD + ",Asia/Kolkata")
    assert only_problem(path, program) == (
        "roster.csv: row 1, column mentor_timzone: unknown column; did you mean mentor_timezone?")


def test_bad_email_reads_as_the_spec_promises(tmp_path: Path, program: ProgramSettings) -> None:
    rows = [GOOD.replace("P01", f"P0{i}").replace("Aisha.Khan", f"m{i}") for i in range(2, 8)]
    path = write(tmp_path, HEADER, GOOD, *rows[:4], "P07,Tom,tom@example.com,Bob,bob@,Goal")
    assert only_problem(path, program) == "roster.csv: row 7, column mentee_email: 'bob@' is not an email address"


@pytest.mark.parametrize("address", ["bob", "bob@example", "bob smith@example.com", "a@@example.com",
                                     "Bob <bob@example.com>"])
def test_not_an_email_address(tmp_path: Path, program: ProgramSettings, address: str) -> None:
    path = write(tmp_path, HEADER, GOOD.replace("Aisha.Khan@example.com", f'"{address}"'))
    assert only_problem(path, program) == f"roster.csv: row 2, column mentor_email: {address!r} is not an email address"


def test_empty_email(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER, GOOD.replace("Aisha.Khan@example.com", ""))
    assert only_problem(path, program) == "roster.csv: row 2, column mentor_email: is empty; fill in the address"


def test_unknown_time_zone(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER + ",mentee_timezone", GOOD + ",America/New_Yrok")
    assert only_problem(path, program) == (
        "roster.csv: row 2, column mentee_timezone: 'America/New_Yrok' is not an IANA time zone; "
        "did you mean America/New_York?")


@pytest.mark.parametrize(("hours", "complaint"), [
    ("8-6", "expected working hours like 08:00-18:00 (optionally followed by days like Mon-Thu), got '8-6'"),
    ("18:00-08:00", "working hours must end after they start, got '18:00-08:00'"),
    ("08:00-25:00", "expected a 24-hour time like 09:00, got '25:00'"),
    ("08:00-16:00 Mon-Frii", "expected a day like Mon, Tue, ... Sun, got 'Frii'"),
])
def test_bad_working_hours(tmp_path: Path, program: ProgramSettings, hours: str, complaint: str) -> None:
    path = write(tmp_path, HEADER + ",mentor_working_hours", f"{GOOD},{hours}")
    assert only_problem(path, program) == f"roster.csv: row 2, column mentor_working_hours: {complaint}"


def test_bad_preferred_slot(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER + ",preferred_slot", GOOD + ",Tuesday afternoon")
    assert only_problem(path, program) == (
        "roster.csv: row 2, column preferred_slot: expected a 24-hour time like 09:00, got 'afternoon'")


def test_preferred_slot_outside_the_mentees_hours(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER + ",preferred_slot", GOOD + ",Fri 16:30")
    assert only_problem(path, program) == (
        "roster.csv: row 2, column preferred_slot: 'Fri 16:30' for 45 minutes is outside the mentee's working hours "
        "(09:00-17:00 Mon,Tue,Wed,Thu,Fri); pick a slot inside them or change mentee_working_hours")


def test_duplicate_pair_id_names_both_rows(tmp_path: Path, program: ProgramSettings) -> None:
    other = "p01,Ann,ann@example.com,Ben,ben@example.com,Goal"
    pairs, problems = read_roster(write(tmp_path, HEADER, GOOD, "P02,Cy,cy@example.com,Di,di@example.com,G", other), program)
    assert problems == ["roster.csv: row 4, column pair_id: 'p01' is already used on row 2; every pair needs its own id"]


def test_pair_id_with_spaces_is_refused(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER, GOOD.replace("P01", "pair 1"))
    assert only_problem(path, program) == (
        "roster.csv: row 2, column pair_id: pair_id 'pair 1' may only use letters, digits, - and _")


def test_mentor_equal_to_mentee_compares_case_insensitively(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER, GOOD.replace("richard.hale@example.com", "aisha.khan@EXAMPLE.com"))
    assert only_problem(path, program) == (
        "roster.csv: row 2, column mentee_email: 'aisha.khan@EXAMPLE.com' is also the mentor; "
        "a pair needs two different people")


def test_empty_goal(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER, GOOD.replace("Learn TikTok", " "))
    assert only_problem(path, program) == "roster.csv: row 2, column goal: is empty; fill it in"


def test_mentor_in_too_many_active_pairs_names_the_rows(tmp_path: Path, program: ProgramSettings) -> None:
    header = HEADER + ",status"
    second = "P02,Aisha K,aisha.khan@example.com,Ben,ben@example.com,Goal,active"
    paused = "P03,Aisha K,AISHA.KHAN@example.com,Cy,cy@example.com,Goal,paused"  # paused pairs do not count
    third = "P04,Aisha K,aisha.khan@example.com,Di,di@example.com,Goal,"
    pairs, problems = read_roster(write(tmp_path, header, GOOD + ",", second, paused, third), program)
    assert problems == [
        "roster.csv: rows 2, 3, 5, column mentor_email: 'Aisha.Khan@example.com' mentors 3 active pairs (P01, P02, P04) "
        "but [program] max_pairs_per_mentor is 1; pause or end one of them, or raise max_pairs_per_mentor"]


def test_mentor_limit_from_the_programme_is_respected(tmp_path: Path, program: ProgramSettings) -> None:
    second = "P02,Aisha K,aisha.khan@example.com,Ben,ben@example.com,Goal"
    pairs, problems = read_roster(write(tmp_path, HEADER, GOOD, second), replace(program, max_pairs_per_mentor=2))
    assert problems == [] and len(pairs) == 2


@pytest.mark.parametrize(("column", "value", "complaint"), [
    ("cadence", "fortnightly", "expected weekly|biweekly|monthly, got 'fortnightly'"),
    ("status", "done", "expected active|paused|ended, got 'done'"),
    ("duration_minutes", "45min", "expected a whole number of minutes between 10 and 240, got '45min'"),
    ("duration_minutes", "600", "expected a whole number of minutes between 10 and 240, got '600'"),
])
def test_bad_cadence_status_or_duration(tmp_path: Path, program: ProgramSettings, column: str, value: str,
                                        complaint: str) -> None:
    path = write(tmp_path, f"{HEADER},{column}", f"{GOOD},{value}")
    assert only_problem(path, program) == f"roster.csv: row 2, column {column}: {complaint}"


def test_extra_cells_beyond_the_header(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER, GOOD + ", and TikTok,")
    assert only_problem(path, program) == (
        "roster.csv: row 2: 8 cells but the header has 6 columns; remove the extra cells or quote values that contain commas")


# --- everything at once -------------------------------------------------------------------


def test_all_problems_are_reported_at_once_and_good_rows_still_read(tmp_path: Path, program: ProgramSettings) -> None:
    path = write(tmp_path, HEADER + ",mentee_timezone",
                 GOOD + ",",
                 "P02,Ann,ann@,Ben,ben@example.com,Goal,Mars/Olympus",
                 "P03,Cy,cy@example.com,Di,di@example.com,,",
                 "P01,Ed,ed@example.com,Flo,flo@example.com,Goal,")
    pairs, problems = read_roster(path, program)
    assert [p.pair_id for p in pairs] == ["P01"]
    assert len(problems) == 4, problems
    assert [p.split(":")[1] for p in problems] == [" row 3, column mentor_email", " row 3, column mentee_timezone",
                                                   " row 4, column goal", " row 5, column pair_id"]
    with pytest.raises(UserError) as caught:
        load_roster(path, program)
    assert caught.value.message == "roster.csv has 4 problems" and caught.value.problems == problems


@pytest.mark.parametrize("sep, name", [(";", "semicolon"), ("\t", "tab")])
def test_semicolon_and_tab_separated_spreadsheets_read_with_a_note(tmp_path: Path, program: ProgramSettings,
                                                                    sep: str, name: str) -> None:
    """European Excel saves 'CSV' with semicolons (a goal with a comma stays one cell); a sheet
    saved as text uses tabs. A BOM from 'CSV UTF-8' is fine."""
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeff".encode() + f"{HEADER}\n{GOOD}, with a comma\n".replace(",", sep).replace(
        f"{sep} with a comma", ", with a comma").encode())
    pairs, problems = read_roster(path, program)
    assert problems == [] and [p.goal for p in pairs] == ["Learn TikTok, with a comma"]
    assert notes(path) == [f"roster.csv: read as {name}-separated"]


def test_header_names_as_people_type_them_are_read_with_a_note(tmp_path: Path, program: ProgramSettings) -> None:
    header = "Pair ID,Mentor Name,Mentor E-mail,Mentee name,MENTEE_EMAIL, Goal "
    path = write(tmp_path, header, GOOD)
    pairs, problems = read_roster(path, program)
    assert problems == [] and pairs[0].mentor.email == "Aisha.Khan@example.com" and pairs[0].goal == "Learn TikTok"
    assert notes(path) == ["roster.csv: row 1: read the columns 'Pair ID' as pair_id, 'Mentor Name' as mentor_name, "
                           "'Mentor E-mail' as mentor_email, 'Mentee name' as mentee_name"]  # case alone is no news
    assert notes(write(tmp_path, HEADER, GOOD)) == []


@pytest.mark.parametrize(("name", "refused"), [
    ("Ann\u2028Lee", True), ("Ann\u2029Lee", True), ("Ann\x85Lee", True), ("Ann\x7fLee", True), ("Ann\tLee", True),
    ("Ann\u00a0Lee", False), ("Zoë\u200f Ann", False), ("山田 花子", False), ("Ann 🙂", False),
])
def test_a_name_that_would_break_a_header_line_is_refused_and_no_other(tmp_path: Path, program: ProgramSettings,
                                                                       name: str, refused: bool) -> None:
    """Unicode's control characters and line or paragraph separators (categories Cc, Zl, Zp) only."""
    pairs, problems = read_roster(write(tmp_path, HEADER, GOOD.replace("Aisha Khan", f'"{name}"')), program)
    assert [p.mentor.name for p in pairs] == ([] if refused else [name])
    assert any("contains a line break or control character" in p for p in problems) == refused
