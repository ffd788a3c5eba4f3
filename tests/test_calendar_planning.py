"""The pure parts of moves, repairs and blackout days: planning, the series doc, reply handling,
and how the config and roster spell blackout and out-of-office days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rmdaemon import planning
from rmdaemon.config import ProgramSettings, load_settings
from rmdaemon.errors import UserError
from rmdaemon.phrases import english
from rmdaemon.programme import pairstate
from rmdaemon.programme.series import actual_start, next_session, plan_to_doc, upcoming, with_move, with_skip
from rmdaemon.model import BusyTime, Pair, Person, SeriesPlan, WorkingHours
from rmdaemon.roster import read_roster

LONDON, KOLKATA = ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")
OFFICE = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
REPO = Path(__file__).resolve().parents[1]


def pair(mentor_zone: str = "Europe/London", mentor_hours: WorkingHours = OFFICE, cadence: str = "weekly",
         mentee_away: tuple = (), mentor_away: tuple = ()) -> Pair:
    return Pair("P1", Person("Asha", "asha@example.com", mentor_zone, mentor_hours, mentor_away),
                Person("Rob", "rob@example.com", "Europe/London", OFFICE, mentee_away),
                "goal", "general", cadence, 45, None, "active")


def at(text: str, zone: ZoneInfo = LONDON) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def weekly(first: str = "2027-01-11 09:00", count: int = 4, cadence: str = "weekly"):
    p = pair(cadence=cadence)
    return planning.plan_series(p, start_date=date.fromisoformat(first[:10]), sessions=count, end_date=None,
                                not_before=at(first) - timedelta(minutes=1)), p


# --------------------------------------------------------------------------------------------
# RESCHEDULE's day and time


@pytest.mark.parametrize("text, expected", [
    ("Thu 14:00", (3, time(14))),
    ("Thursday at 2:30pm", (3, time(14, 30))),
    ("Thu 2 pm", (3, time(14))),
    ("thu 14.15", (3, time(14, 15))),
    ("Do 14:00", (3, time(14))),          # German
    ("jeudi 14h30", (3, time(14, 30))),   # French
    ("miércoles 10:00", (2, time(10))),   # Spanish
    ("Donnerstag 14 Uhr", (3, time(14))),
    ("14:00 Thursday", (3, time(14))),
    ("15:00", (None, time(15))),          # same day, later
    ("Friday", (4, None)),                # same time, other day
    ("so we do Thursday 11:00", (3, time(11))),  # "so" and "do" are words here, Thursday is the day
    ("Thu 12am", (3, time(0))),
])
def test_reschedule_text_gives_a_day_and_a_time(text, expected):
    assert planning.parse_day_time(text) == expected


@pytest.mark.parametrize("text, hint", [
    ("next week", "could not read a day or a time"),
    ("", "could not read a day or a time"),
    ("Thu 3", "write it like 15:00 or 3pm"),
    ("Thu 13pm", "write it like 15:00 or 3pm"),
    ("Thu 25:00", "write it like 15:00 or 3pm"),
])
def test_unreadable_reschedule_text_says_how_to_write_it(text, hint):
    with pytest.raises(ValueError, match=hint):
        planning.parse_day_time(text)


def test_a_move_stays_in_the_week_of_the_planned_session_in_the_given_zone():
    monday = at("2027-01-11 09:00")
    assert planning.in_same_week(monday, "Europe/London", 3, time(14)) == at("2027-01-14 14:00")
    assert planning.in_same_week(monday, "Europe/London", 6, None) == at("2027-01-17 09:00")
    assert planning.in_same_week(monday, "Europe/London", None, time(15)) == at("2027-01-11 15:00")
    assert planning.in_same_week(monday, "Asia/Kolkata", 1, time(15)) == at("2027-01-12 15:00", KOLKATA)


# --------------------------------------------------------------------------------------------
# The next session when some moved


def test_next_session_follows_moves_and_skips():
    plan, _ = weekly()
    moved = ((at("2027-01-11 09:00"), at("2027-01-14 14:00")),)
    assert planning.next_actual(plan, at("2027-01-10 12:00"), moved=moved) == (at("2027-01-11 09:00"), at("2027-01-14 14:00"))
    assert planning.next_actual(plan, at("2027-01-14 15:00"), moved=moved)[0] == at("2027-01-18 09:00")
    skipped = (at("2027-01-18 09:00"),)
    assert planning.next_actual(plan, at("2027-01-14 15:00"), skipped, moved)[0] == at("2027-01-25 09:00")


def test_a_session_moved_before_its_predecessor_comes_first():
    plan, _ = weekly(cadence="weekly")
    moved = ((at("2027-01-18 09:00"), at("2027-01-18 08:00")), (at("2027-01-11 09:00"), at("2027-01-17 10:00")))
    assert planning.next_actual(plan, at("2027-01-12 00:00"), moved=moved) == (at("2027-01-11 09:00"), at("2027-01-17 10:00"))
    assert planning.next_actual(plan, at("2027-02-01 10:00"), moved=moved) is None


def test_series_doc_moves_keep_the_planned_start_as_the_sessions_name():
    plan, _ = weekly()
    doc = {"plan": plan_to_doc(plan), "sequence": 0, "exdates": [], "moved": [], "cancelled": False}
    doc = with_move(doc, at("2027-01-11 09:00"), at("2027-01-13 10:00"))
    assert doc["sequence"] == 1 and doc["moved"] == [["2027-01-11T09:00:00+00:00", "2027-01-13T10:00:00+00:00"]]
    assert upcoming(doc, "P1", at("2027-01-12 00:00")) == at("2027-01-11 09:00")
    assert next_session(doc, "P1", at("2027-01-12 00:00"))[1] == at("2027-01-13 10:00")
    back = with_move(doc, at("2027-01-11 09:00"), at("2027-01-11 09:00"))
    assert back["moved"] == [] and back["sequence"] == 2
    assert actual_start(back, at("2027-01-11 09:00")) == at("2027-01-11 09:00")
    skipped = with_skip(doc, at("2027-01-11 09:00"))
    assert skipped["cancel_occurrences"] == ["2027-01-11T09:00:00+00:00"]
    assert next_session(skipped, "P1", at("2027-01-10 00:00"))[0] == at("2027-01-18 09:00")


# --------------------------------------------------------------------------------------------
# Other times for a declined session


def test_alternatives_lie_in_both_peoples_hours_nearest_the_original_time_one_per_day():
    p = pair(mentor_zone="Asia/Kolkata")  # London 09:00-11:30 is 14:30-17:00 in Kolkata
    declined = at("2027-01-12 10:00")
    found = planning.alternative_starts(p, declined, not_before=at("2027-01-11 00:00"))
    assert found == [at(f"2027-01-{d} 10:00") for d in (11, 13, 14)]  # Mon, Wed, Thu at the same time
    assert all(planning.inside_both(p, s) for s in found)


def test_alternatives_avoid_busy_time_blackouts_the_past_and_other_sessions():
    p = pair()
    declined = at("2027-01-13 09:00")  # a Wednesday
    busy = {"asha@example.com": [BusyTime(at("2027-01-14 08:00"), at("2027-01-14 12:00"))]}
    found = planning.alternative_starts(p, declined, not_before=at("2027-01-12 12:00"), busy=busy,
                                        avoid=[at("2027-01-15 09:00")], blackout=((date(2027, 1, 15), date(2027, 1, 15)),))
    days = {s.date() for s in found}
    assert date(2027, 1, 11) not in days and date(2027, 1, 15) not in days  # past; blackout
    assert all(not (at("2027-01-14 08:00") < s + timedelta(minutes=45) and s < at("2027-01-14 12:00")) for s in found)
    assert at("2027-01-13 09:00") not in found and all(abs(s - declined) >= timedelta(minutes=45) for s in found)
    assert len(found) == 3


def test_no_alternatives_when_the_hours_never_meet():
    la = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    p = Pair("P9", Person("Priya", "p@example.com", "Asia/Kolkata", la), Person("Sam", "s@example.com", "America/Los_Angeles", la),
             "goal", "general", "weekly", 45, None, "active")
    assert planning.alternative_starts(p, at("2027-01-12 10:00"), not_before=at("2027-01-01 00:00")) == []


# --------------------------------------------------------------------------------------------
# Blackout and out-of-office days


def test_blocked_days_become_exdates_and_count_grows_to_keep_the_number_of_sessions():
    plan, p = weekly(count=4)
    new, skipped = planning.skip_blocked(plan, p, ((date(2027, 1, 18), date(2027, 1, 18)),))
    assert skipped == (at("2027-01-18 09:00"),) and new.count == 5 and "COUNT=5" in new.rrule
    assert planning.occurrences(new, skipped) == [at(f"2027-{d} 09:00") for d in ("01-11", "01-25", "02-01", "02-08")]


def test_an_added_session_that_is_blocked_too_is_replaced_again():
    plan, p = weekly(count=2)
    new, skipped = planning.skip_blocked(plan, p, ((date(2027, 1, 18), date(2027, 1, 26)),))
    assert len(planning.occurrences(new, skipped)) == 2 and new.count == 4


def test_a_blocked_first_session_moves_dtstart_instead_of_an_exdate():
    plan, p = weekly(count=3)
    new, skipped = planning.skip_blocked(plan, p, ((date(2027, 1, 11), date(2027, 1, 11)),))
    assert skipped == () and new.first_start == at("2027-01-18 09:00") and new.count == 3


def test_a_monthly_rule_keeps_its_weekday_when_sessions_are_added():
    p = pair(cadence="monthly")
    plan = SeriesPlan("P1", "Europe/London", at("2027-01-12 09:00"), 45, "monthly", "FREQ=MONTHLY;BYDAY=2TU;COUNT=3", 3)
    new, skipped = planning.skip_blocked(plan, p, ((date(2027, 2, 9), date(2027, 2, 9)),))
    assert new.rrule == "FREQ=MONTHLY;BYDAY=2TU;COUNT=4"
    assert [s.date() for s in planning.occurrences(new, skipped)] == [date(2027, 1, 12), date(2027, 3, 9), date(2027, 4, 13)]


def test_a_last_weekday_rule_stays_the_last_weekday_when_its_first_session_is_blocked():
    p = pair(cadence="monthly")
    plan = SeriesPlan("P1", "Europe/London", at("2027-03-30 09:00"), 45, "monthly", "FREQ=MONTHLY;BYDAY=-1TU;COUNT=2", 2)
    new, skipped = planning.skip_blocked(plan, p, ((date(2027, 3, 30), date(2027, 3, 30)),))
    assert new.rrule == plan.rrule and skipped == ()
    assert [s.date() for s in planning.occurrences(new)] == [date(2027, 4, 27), date(2027, 5, 25)]  # 4th, then 4th again


def test_out_of_office_counts_for_that_person_and_an_end_date_stands():
    p = pair(mentor_away=((date(2027, 1, 25), date(2027, 1, 31)),))
    plan = planning.plan_series(p, start_date=date(2027, 1, 11), sessions=None, end_date=date(2027, 2, 1),
                                not_before=at("2027-01-10 00:00"))
    new, skipped = planning.skip_blocked(plan, p)
    assert skipped == (at("2027-01-25 09:00"),) and new.until == plan.until and new.count is None
    assert english(planning.blocked_reason(p, at("2027-01-25 09:00"))) == "Asha is out of office on Mon 25 Jan 2027"


def test_a_blackout_day_is_read_in_each_persons_own_zone():
    p = pair(mentor_zone="Asia/Kolkata")
    late = at("2027-01-11 23:00")  # already Tuesday in Kolkata
    blocked = planning.blocked_reason(p, late, ((date(2027, 1, 12), date(2027, 1, 12)),))
    assert english(blocked) == "Tue 12 Jan 2027 is a programme blackout day"
    assert planning.blocked_reason(p, late, ((date(2027, 1, 13), date(2027, 1, 13)),)) is None


def test_blackouts_on_every_session_are_a_user_error_with_the_fix():
    plan, p = weekly(count=2)
    with pytest.raises(UserError, match="every planned session") as e:
        planning.skip_blocked(plan, p, ((date(2027, 1, 1), date(2027, 12, 31)),))
    assert "blackout_dates" in " ".join(e.value.problems)


def write_config(tmp_path: Path, line: str) -> Path:
    text = (REPO / "config.example.toml").read_text().replace("blackout_dates = []", line)
    (tmp_path / "rmdaemon.toml").write_text(text)
    return tmp_path / "rmdaemon.toml"


def test_config_blackout_dates_take_days_ranges_and_strings(tmp_path):
    path = write_config(tmp_path, 'blackout_dates = [2027-04-05, { start = 2027-12-24, end = 2027-12-31 }, "2027-08-02..2027-08-06"]')
    assert load_settings(path).program.blackout_dates == (
        (date(2027, 4, 5), date(2027, 4, 5)), (date(2027, 8, 2), date(2027, 8, 6)), (date(2027, 12, 24), date(2027, 12, 31)))


@pytest.mark.parametrize("line, message", [
    ("blackout_dates = 2027-04-05", "expected a list like [2027-04-05"),
    ("blackout_dates = [{ start = 2027-12-31, end = 2027-12-24 }]", "ends before it starts; swap start and end"),
    ('blackout_dates = ["2027-13-01"]', "expected a date like 2027-04-05"),
    ("blackout_dates = [{ from = 2027-12-24, end = 2027-12-31 }]", "expected a range like { start = "),
])
def test_config_blackout_mistakes_name_the_line_and_the_fix(tmp_path, line, message):
    path = write_config(tmp_path, line)
    with pytest.raises(UserError) as e:
        load_settings(path)
    (problem,) = e.value.problems
    assert "line 21: [program] blackout_dates:" in problem and message in problem


def program() -> ProgramSettings:
    return ProgramSettings("P", "Europe/London", "weekly", 45, 4, None, date(2027, 1, 4), OFFICE, True, 24,
                           "m@example.com", "M", "c@example.com", 1)


def test_roster_out_of_office_columns(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_out_of_office,mentee_out_of_office\n"
                      "P1,A,a@example.com,B,b@example.com,g,2027-02-01..2027-02-14;2027-04-05,\n"
                      "P2,C,c@example.com,D,d@example.com,g,,2027-02-30\n")
    pairs, problems = read_roster(roster, program())
    assert pairs[0].mentor.out_of_office == ((date(2027, 2, 1), date(2027, 2, 14)), (date(2027, 4, 5), date(2027, 4, 5)))
    assert pairs[0].mentee.out_of_office == ()
    (problem,) = problems
    assert problem.endswith("roster.csv: row 3, column mentee_out_of_office: expected a date like 2027-04-05 or a range "
                            "like 2027-02-01..2027-02-14, got '2027-02-30'")
    assert [q.pair_id for q in pairs] == ["P1"]


# --------------------------------------------------------------------------------------------
# Replies to a repair offer, and its end


@pytest.mark.parametrize("body, number", [("2", 2), ("#3\n\nthanks", 3), ("2.", 2), ("Option 1", 1),
                                          ("2 works for me", None), ("", None), ("Tue", None)])
def test_a_choice_is_a_number_alone_on_the_first_line(body, number):
    assert pairstate.slot_number(body) == number


def test_declines_are_per_session_and_a_series_decline_is_left_to_status():
    p = pair()
    doc = {"responses": {"asha@example.com": {"series": "DECLINED", "2027-01-18T09:00:00+00:00": "DECLINED"},
                         "rob@example.com": {"2027-01-18T09:00:00+00:00": "DECLINED", "2027-01-25T09:00:00+00:00": "ACCEPTED"}}}
    assert pairstate.declined(doc, p) == {"2027-01-18T09:00:00+00:00": ["asha@example.com", "rob@example.com"]}


def test_an_open_offer_is_skipped_when_its_session_comes_and_withdrawn_when_accepted():
    plan, _ = weekly()
    key, other = "2027-01-18T09:00:00+00:00", "2027-01-25T09:00:00+00:00"
    series = {"plan": plan_to_doc(plan), "sequence": 1, "exdates": [], "moved": [],
              "repairs": {key: {"state": "offered"}, other: {"state": "offered"}}}
    declines = {key: ["rob@example.com"]}
    assert pairstate.settle_repairs(series, declines, at("2027-01-18 08:59")) == (
        {**series, "repairs": {key: {"state": "offered"}, other: {"state": "withdrawn", "closed": "2027-01-18T08:59:00+00:00"}}}, [])
    new, skip = pairstate.settle_repairs(series, declines, at("2027-01-18 09:00"))
    assert skip == [key] and new["repairs"][key]["state"] == "skipped"
    assert pairstate.settle_repairs({**series, "repairs": {key: {"state": "moved"}}}, declines, at("2027-02-01 00:00")) is None
