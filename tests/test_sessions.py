"""Sessions as occurrences (programme/sessions.py): number, status and logs from the stored
series, the logs and the clock — the same answer whatever runs happened in between."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from rmdaemon.model import Pair, Person, WorkingHours
from rmdaemon.programme import sessions
from rmdaemon.programme.pairstate import apply_reply
from rmdaemon.programme.series import exdates, moves, utc_key, with_move, with_skip
from rmdaemon.records import Log, PairRecord
from rmdaemon.replies import parse_reply

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
FIRST = datetime(2026, 12, 9, 10, 0, tzinfo=LONDON)  # Wednesdays, 10:00 London
WEEK = timedelta(days=7)
WINDOW = timedelta(hours=48)
PEOPLE = ("mentor@example.com", "mentee@example.com")


def series(count: int = 6, **extra: object) -> dict:
    plan = {"tzid": "Europe/London", "first_start": FIRST.isoformat(), "duration_minutes": 45, "cadence": "weekly",
            "rrule": f"FREQ=WEEKLY;BYDAY=WE;COUNT={count}", "count": count, "until": None}
    return {"uid": "rm-test-0@example.com", "generation": 0, "sequence": 1, "published": 1, "plan": plan,
            "exdates": [], "blackouts": [], "moved": [], "repairs": {}, **extra}


def doc(s: dict | None = None, **extra: object) -> PairRecord:
    return PairRecord.from_doc({"pair_id": "p1", "state": "active", "series": s or series(), **extra})


def log(received: datetime, who: str = PEOPLE[0], token: str | None = None, body: str = "good chat",
        attended: bool | None = True) -> Log:
    return Log.from_doc({"pair_id": "p1", "token": token, "from": who, "body": body, "received": utc_key(received),
                         "fields": {"attended": attended}})


def listed(d: PairRecord, logs: list[Log], now: datetime) -> list[tuple[int, str, str, tuple[str, ...]]]:
    return [(s.number, s.start.astimezone(UTC).strftime("%d %b"), str(s.status), s.logged_by)
            for s in sessions.pair_sessions(d, PEOPLE, logs, now, WINDOW)]


def nth(n: int) -> datetime:
    return FIRST + (n - 1) * WEEK


def test_every_occurrence_is_listed_numbered_and_none_is_held_before_it_starts() -> None:
    before = listed(doc(), [log(nth(1) + timedelta(hours=2))], FIRST - timedelta(days=30))
    assert [row[:3] for row in before] == [(n, f"{nth(n):%d %b}", "planned") for n in range(1, 7)]


def test_runs_on_7_and_10_december_count_the_9_december_session() -> None:
    """Nothing ran on 9 December: the session is there all the same, held by the log that came in
    on the 10th, and the next one is session 2."""
    logs = [log(datetime(2026, 12, 10, 8, 0, tzinfo=UTC))]
    rows = listed(doc(), logs, datetime(2026, 12, 10, 9, 0, tzinfo=UTC))
    assert rows[0] == (1, "09 Dec", "held", (PEOPLE[0],))
    assert rows[1][:3] == (2, "16 Dec", "planned")


def test_a_jump_of_a_week_files_the_log_under_the_session_just_held_and_marks_the_gap_missed() -> None:
    """Demo state, then a run a week later: the sessions in between were missed, and Richard's log
    written after the latest one belongs to it — not to "session 1"."""
    now = nth(4) + timedelta(hours=3)
    rows = listed(doc(), [log(now - timedelta(hours=1))], now)
    assert [r[2] for r in rows] == ["missed", "missed", "missed", "held", "planned", "planned"]
    assert rows[3][3] == (PEOPLE[0],)


def test_a_jump_of_a_year_decides_every_session() -> None:
    rows = listed(doc(), [log(nth(2) + timedelta(hours=1), token=None)], nth(1) + timedelta(days=365))
    assert [r[2] for r in rows] == ["missed", "held", "missed", "missed", "missed", "missed"]


def test_a_late_log_with_its_token_lands_on_its_own_session() -> None:
    d = doc()
    rows = sessions.planned_rows(d)
    late = log(nth(5), token=rows[1]["token"], body="sorry this is late")
    assert [r[2] for r in listed(d, [late], nth(5) + timedelta(hours=1))][:3] == ["missed", "held", "missed"]


def test_a_log_naming_a_date_lands_on_that_session() -> None:
    rows = listed(doc(), [log(nth(3) + timedelta(hours=4), body="Notes from our chat on 16 Dec: ...")],
                  nth(3) + timedelta(hours=5))
    assert [r[2] for r in rows[:3]] == ["missed", "held", "planned"]


def test_two_logs_without_token_fill_the_latest_sessions_without_a_log() -> None:
    now = nth(3) + timedelta(hours=3)
    logs = [log(nth(3) + timedelta(hours=1)), log(nth(3) + timedelta(hours=2), who=PEOPLE[1])]
    rows = listed(doc(), logs, now)
    # the second log, with no token and no date, goes to the latest session without a log: session 2
    assert [r[2] for r in rows[:3]] == ["missed", "held", "held"]


def test_skip_decline_move_and_cancel_keep_their_numbers() -> None:
    s = series()
    s = with_skip(s, nth(2))
    s = with_move(s, nth(3), nth(3) + timedelta(days=1))
    s["repairs"] = {utc_key(nth(4)): {"state": "skipped"}}
    s["exdates"].append(utc_key(nth(4)))
    s.update(cancelled=True, cancelled_at=utc_key(nth(5) - timedelta(days=1)))
    rows = listed(doc(s), [], nth(3))
    assert [(r[0], r[2]) for r in rows] == [(1, "missed"), (2, "skipped"), (3, "moved"), (4, "declined"),
                                           (5, "cancelled"), (6, "cancelled")]


def test_a_session_someone_declines_in_the_calendar_is_declined_until_taken_back() -> None:
    key = utc_key(nth(2))
    declined = doc(responses={PEOPLE[1]: {key: "DECLINED"}})
    assert listed(declined, [], nth(1))[1][2] == "declined"
    accepted = doc(responses={PEOPLE[1]: {key: "ACCEPTED"}})
    assert listed(accepted, [], nth(1))[1][2] == "planned"


def test_blackout_days_are_not_sessions_and_a_replaced_series_keeps_its_past() -> None:
    old = series(count=6, replaced=utc_key(nth(3) - timedelta(days=1)))
    new = series(count=4, uid="rm-test-1@example.com", blackouts=[utc_key(nth(4))], exdates=[utc_key(nth(4))])
    new["plan"] = dict(new["plan"], first_start=nth(3).isoformat(), rrule="FREQ=WEEKLY;BYDAY=WE;COUNT=5", count=5)
    rows = sessions.planned_rows(doc(new, earlier_series=[old]))
    assert [(r["number"], r["uid"][-14:], r["planned"][:10]) for r in rows] == [
        (1, "-0@example.com", "2026-12-09"), (2, "-0@example.com", "2026-12-16"), (3, "-1@example.com", "2026-12-23"),
        (4, "-1@example.com", "2027-01-06"), (5, "-1@example.com", "2027-01-13"), (6, "-1@example.com", "2027-01-20")]
    assert sessions.total(rows) == 6


def test_we_did_not_meet_is_missed_when_the_window_closes_unless_the_other_says_they_did() -> None:
    didnt = log(nth(1) + timedelta(hours=1), attended=False)
    assert listed(doc(), [didnt], nth(1) + timedelta(hours=2))[0][2] == "planned"
    assert listed(doc(), [didnt], nth(1) + WINDOW)[0][2:] == ("missed", (PEOPLE[0],))
    did = log(nth(1) + timedelta(hours=3), who=PEOPLE[1], token=sessions.planned_rows(doc())[0]["token"])
    assert listed(doc(), [didnt, did], nth(1) + WINDOW)[0][2:] == ("held", PEOPLE)


def test_moves_add_up_a_session_moved_again_has_one_new_time_and_one_moved_back_has_none() -> None:
    s = with_move(series(), nth(2), nth(2) + timedelta(days=1))
    s = with_move(s, nth(3), nth(3) + timedelta(days=1))  # the first move stays
    s = with_move(s, nth(2), nth(2) + timedelta(days=2))  # moved again: the latest time only
    assert [(r[0], r[1], r[2]) for r in listed(doc(s), [], FIRST - WEEK)[:3]] == [
        (1, "09 Dec", "planned"), (2, "18 Dec", "moved"), (3, "24 Dec", "moved")]
    s = with_move(s, nth(3), nth(3))  # back to its planned time: a plain session again
    assert [(r[0], r[1], r[2]) for r in listed(doc(s), [], FIRST - WEEK)[1:3]] == [(2, "18 Dec", "moved"),
                                                                                 (3, "23 Dec", "planned")]
    assert s["sequence"] == 5  # every change raises it, so calendars take each one


def test_a_second_skip_keeps_the_first_and_both_are_cancelled_in_the_calendars() -> None:
    s = with_skip(with_skip(series(), nth(2)), nth(4))
    assert s["exdates"] == s["cancel_occurrences"] == [utc_key(nth(2)), utc_key(nth(4))]
    assert [r[2] for r in listed(doc(s), [], FIRST - WEEK)] == ["planned", "skipped", "planned", "skipped", "planned",
                                                                "planned"]


def test_a_series_stored_before_skips_moves_and_repairs_existed_takes_them() -> None:
    """A series record written without the ``exdates``, ``moved``, ``cancel_occurrences`` and
    ``repairs`` keys (nothing had happened to it yet) reads as a plain series and takes a skip and
    a move."""
    bare = {k: v for k, v in series().items() if k not in ("exdates", "moved", "repairs", "blackouts")}
    assert (exdates(bare), moves(bare)) == ((), ())
    s = with_move(with_skip(bare, nth(2)), nth(3), nth(3) + timedelta(days=1))
    assert (exdates(s), moves(s)) == ((nth(2),), ((nth(3), nth(3) + timedelta(days=1)),))
    assert s["cancel_occurrences"] == [utc_key(nth(2))]


def test_a_picked_time_settles_the_repair_offer_so_a_second_pick_is_told_the_session_already_moved() -> None:
    hours = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    mentor, mentee = (Person(name, address, "Europe/London", hours) for name, address in zip(("Ana", "Bob"), PEOPLE))
    pair = Pair("p1", mentor, mentee, goal="g", track="", cadence="weekly", duration_minutes=45, preferred_slot=None,
                status="active")

    def reply(text: str):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = PEOPLE[1], "mentoring@example.com", "Re: other times [RM-REPAIR]"
        msg.set_content(text)
        return parse_reply(msg.as_bytes())

    key = utc_key(nth(2))
    offered = [utc_key(nth(2) + timedelta(days=d)) for d in (1, 2)]
    repairs = {key: {"state": "offered", "token": "RM-REPAIR", "offered": offered}}
    session = {"token": "RM-REPAIR", "pair_id": "p1", "kind": "repair", "planned": key}
    now = nth(1) + timedelta(hours=3)
    picked = apply_reply(now, (), pair, doc(series(repairs=repairs)), session, mentee, reply("2"))
    assert picked.reason == f"repair: {PEOPLE[1]} picked 2; session {key} moved to {offered[1]}"
    assert listed(picked.doc, [], now)[1][1:3] == ("18 Dec", "moved")
    again = apply_reply(now, (), pair, picked.doc, session, mentor, reply("1"))
    assert again.reason == ("reschedule refused: the session was already moved; "
                            "reply RESCHEDULE with a day and time to move it again")
    assert listed(again.doc, [], now)[1][1:3] == ("18 Dec", "moved")
