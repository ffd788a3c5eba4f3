"""Sessions as occurrences (programme/sessions.py): number, status and logs from the stored
series, the logs and the clock — the same answer whatever runs happened in between."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rmdaemon.programme import sessions
from rmdaemon.programme.series import utc_key, with_move, with_skip
from rmdaemon.records import Log, PairRecord

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
