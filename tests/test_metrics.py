"""Programme figures on hand-built table rows: exact counts and averages, and the privacy rules
(notes only when both people share; no average over fewer than min_group_size people)."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime, time, timedelta, timezone

import pytest

from programme import Programme
from rmdaemon import compose, roster
from rmdaemon.jobs import surveys
from rmdaemon.programme import metrics
from rmdaemon.programme.context import Context
from rmdaemon.records import LOGS
from rmdaemon.report import csvfile, markdown
from rmdaemon.report.csvfile import HEADER
from rmdaemon.report.data import ReportData, assemble
from rmdaemon.store import Store
from rmdaemon.compose import Question
from rmdaemon.config import PrivacySettings, Settings, load_settings
from rmdaemon.model import Pair, Person, WorkingHours

UTC = timezone.utc
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    prog = Programme.create(tmp_path_factory.mktemp("metrics"))
    return with_floor(load_settings(prog.config), 5)


def with_floor(settings: Settings, floor: int) -> Settings:
    return dataclasses.replace(settings, privacy=PrivacySettings(min_group_size=floor, retention_days=365))


def make_pair(pid: str, track: str = "technology") -> Pair:
    n = pid.lower()
    return Pair(pid, Person(f"Mentor {pid}", f"mentor.{n}@example.com", "Europe/London", HOURS),
                Person(f"Mentee {pid}", f"mentee.{n}@example.com", "Europe/London", HOURS),
                goal="Learn", track=track, cadence="biweekly", duration_minutes=45, preferred_slot=None, status="active")


def doc(pair: Pair, state: str = "active", share: tuple[bool | None, bool | None] = (None, None)) -> dict:
    chosen = {p.address: s for p, s in zip(pair.people, share) if s is not None}
    return {"pair_id": pair.pair_id, "state": state, "consent": {}, "share_notes": chosen, "series": None}


def session(pair: Pair, n: int, start: datetime) -> dict:
    return {"token": f"{pair.pair_id}-{n}", "pair_id": pair.pair_id, "kind": "session", "start": start.isoformat(),
            "number": n}


def log(pair: Pair, s: dict, role: str = "mentor", received: datetime | None = None, body: str = "",
        **fields: object) -> dict:
    person = pair.mentor if role == "mentor" else pair.mentee
    start = datetime.fromisoformat(s["start"])
    return {"pair_id": pair.pair_id, "token": s["token"], "session_start": s["start"], "from": person.address,
            "role": role, "body": body, "fields": {"attended": True, **fields},
            "received": (received or start + timedelta(hours=2)).isoformat(), "message_id": f"<{s['token']}.{role}>"}


def survey(pair: Pair, milestone: str, role: str, received: datetime, **answers: object) -> dict:
    person = pair.mentor if role == "mentor" else pair.mentee
    return {"pair_id": pair.pair_id, "token": f"S-{pair.pair_id}-{milestone}-{role}", "milestone": milestone,
            "from": person.address, "role": role, "answers": answers, "received": received.isoformat()}


def snap(pairs: list[Pair], docs: list[dict] | None = None, sessions=(), logs=(), surveys=(), commands=(),
         inbox=()) -> metrics.Snapshot:
    docs = docs if docs is not None else [doc(p) for p in pairs]
    return metrics.Snapshot.of(docs, sessions, logs, surveys, commands, inbox)


def at(day: int, month: int = 2, hour: int = 10) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


# --- sessions, attendance, ratings ---------------------------------------------------------


def one_pair_five_sessions() -> tuple[Pair, list[dict], list[dict]]:
    """Held; said "didn't meet"; silent; inside its log window now; still ahead."""
    p = make_pair("P01")
    s = [session(p, 1, at(1)), session(p, 2, at(8)), session(p, 3, at(15)),
         session(p, 4, NOW - timedelta(hours=1)), session(p, 5, NOW + timedelta(days=7))]
    logs = [log(p, s[0], rating=4), log(p, s[1], attended=False)]
    return p, s, logs


def test_planned_held_missed_and_open_sessions_and_the_attendance_rate(settings):
    p, s, logs = one_pair_five_sessions()
    summary = metrics.programme_summary(snap([p], sessions=s, logs=logs), [p], settings, NOW)
    counted = summary.this_period.sessions
    assert (counted.planned, counted.held, counted.missed, counted.open) == (4, 1, 2, 1)
    assert counted.attendance == pytest.approx(1 / 3)  # the open one is not counted against them yet
    assert metrics.percent(counted.attendance) == "33%"


def test_a_log_without_an_attended_answer_counts_as_held_as_in_health(settings):
    p = make_pair("P01")
    s = [session(p, 1, at(1))]
    logs = [log(p, s[0], attended=None, topics=["x"])]
    row, = metrics.pair_table(snap([p], sessions=s, logs=logs), [p], settings, NOW)
    assert (row.sessions.held, row.sessions.missed, row.sessions.attendance) == (1, 0, 1.0)


def test_a_pairs_row_carries_its_roster_cohort_to_the_csv(settings):
    """The CSV's cohort column is filled from the row (blank for "-")."""
    from rmdaemon.report import csvfile
    from test_report import full_report

    spring, plain = dataclasses.replace(make_pair("P01"), cohort="Spring 2027"), make_pair("P02")
    rows = metrics.pair_table(snap([spring, plain]), [spring, plain], settings, NOW)
    assert [r.cohort for r in rows] == ["Spring 2027", "-"]
    table = csv.DictReader(io.StringIO(csvfile.render(dataclasses.replace(full_report(settings), pairs=rows))))
    assert [(r["pair_id"], r["cohort"]) for r in table] == [("P01", "Spring 2027"), ("P02", "")]


def test_the_period_counts_sessions_that_started_inside_it_only(settings):
    p, s, logs = one_pair_five_sessions()
    summary = metrics.programme_summary(snap([p], sessions=s, logs=logs), [p], settings, NOW,
                                        since=at(5), until=at(20))
    assert (summary.this_period.sessions.planned, summary.this_period.sessions.held) == (2, 0)
    assert (summary.overall.sessions.planned, summary.overall.sessions.held) == (4, 1)


def five_rated_pairs(values: list[int]) -> tuple[list[Pair], list[dict], list[dict]]:
    pairs = [make_pair(f"P{i:02d}") for i in range(1, len(values) + 1)]
    sessions = [session(p, 1, at(2)) for p in pairs]
    logs = [log(p, s, role="mentee", rating=v) for p, s, v in zip(pairs, sessions, values)]
    return pairs, sessions, logs


def test_average_rating_is_exact_over_enough_people(settings):
    pairs, sessions, logs = five_rated_pairs([5, 4, 4, 3, 2])
    summary = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, NOW)
    assert summary.this_period.rating.mean == pytest.approx(3.6)
    assert str(summary.this_period.rating) == "3.6"
    assert summary.rating_distribution.counts == (0, 1, 1, 2, 1)


def test_average_rating_over_fewer_people_than_the_floor_is_suppressed_with_no_value(settings):
    pairs, sessions, logs = five_rated_pairs([5, 4, 4, 3])
    summary = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, NOW)
    rating = summary.this_period.rating
    assert rating.mean is None and rating.suppressed and rating.people == 4
    assert str(rating) == "suppressed (fewer than 5)"
    assert summary.rating_distribution.counts is None and summary.rating_distribution.suppressed
    lower = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, with_floor(settings, 4), NOW)
    assert lower.this_period.rating.mean == pytest.approx(4.0)


def test_one_person_rating_twice_is_still_one_person(settings):
    p = make_pair("P01")
    s = [session(p, n, at(n)) for n in range(1, 6)]
    logs = [log(p, x, rating=5) for x in s]
    summary = metrics.programme_summary(snap([p], sessions=s, logs=logs), [p], settings, NOW)
    assert summary.this_period.rating.answers == 5 and summary.this_period.rating.suppressed


def test_held_and_ratings_per_month_with_quiet_months_as_zero_and_the_trend(settings):
    pairs = [make_pair(f"P{i:02d}") for i in range(1, 6)]
    sessions = [session(p, 1, at(10, month=1)) for p in pairs] + [session(p, 2, at(10, month=3)) for p in pairs]
    logs = [log(p, s, role="mentee", rating=3) for p, s in zip(pairs, sessions[:5])]
    logs += [log(p, s, role="mentee", rating=5 if i < 3 else 4) for i, (p, s) in enumerate(zip(pairs, sessions[5:]))]
    later = datetime(2027, 3, 20, tzinfo=UTC)
    summary = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, later)
    assert [(b.label, b.planned, b.held) for b in summary.by_bucket] == [("2027-01", 5, 5), ("2027-02", 0, 0),
                                                                         ("2027-03", 5, 5)]
    assert [b.rating.mean for b in summary.by_bucket] == [3.0, None, pytest.approx(4.6)]
    assert summary.rating_change == pytest.approx(1.6)
    weekly = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, later,
                                       since=datetime(2027, 3, 1, tzinfo=UTC), by="week")
    assert [b.label for b in weekly.by_bucket] == ["2027-W10"]


# --- goal progress, surveys ----------------------------------------------------------------


def test_goal_progress_in_order_per_pair_and_each_persons_latest_for_the_programme(settings):
    pairs = [make_pair(f"P{i:02d}") for i in range(1, 4)]
    sessions = [session(p, n, at(n * 7)) for p in pairs for n in (1, 2)]
    logs = []
    for i, p in enumerate(pairs):
        first, second = (s for s in sessions if s["pair_id"] == p.pair_id)
        logs += [log(p, first, role="mentor", progress=2), log(p, first, role="mentee", progress=1 + i),
                 log(p, second, role="mentor", progress=4), log(p, second, role="mentee", progress=3 + i)]
    docs = [doc(pairs[0], share=(True, True)), *(doc(p) for p in pairs[1:])]  # only P01 shares its notes
    table = metrics.pair_table(snap(pairs, docs, sessions=sessions, logs=logs), pairs, settings, NOW)
    assert table[0].progress == (2, 1, 4, 3)
    assert table[1].progress == ()  # one person's own answers: private unless the pair shares
    summary = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, NOW)
    assert summary.this_period.progress.mean == pytest.approx((4 * 3 + 3 + 4 + 5) / 6)
    assert summary.this_period.progress.answers == 6


def test_survey_scores_per_question_and_milestone_before_and_after(settings):
    pairs = [make_pair(f"P{i:02d}") for i in range(1, 4)]  # 6 people
    rows = []
    for p in pairs:
        rows += [survey(p, "first", "mentor", at(3), confidence=2, heard=3, learned="secret words"),
                 survey(p, "first", "mentee", at(3), confidence=3),
                 survey(p, "end", "mentor", at(3, month=4), confidence=4, heard=5),
                 survey(p, "end", "mentee", at(3, month=4), confidence=5, adopted="the tool")]
    later = datetime(2027, 5, 1, tzinfo=UTC)
    summary = metrics.programme_summary(snap(pairs, surveys=rows), pairs, settings, later)
    scores = {s.question: s for s in summary.surveys}
    assert scores["confidence"].by_milestone["first"].mean == 2.5
    assert scores["confidence"].by_milestone["end"].mean == 4.5
    assert scores["confidence"].change == 2.0
    assert str(scores["confidence"].by_milestone["midpoint"]) == "no data"
    heard = scores["heard"].by_milestone["end"]  # mentors only: 3 people
    assert heard.suppressed and heard.mean is None and scores["heard"].change is None
    assert "learned" not in scores and "adopted" not in scores  # text answers are not scores
    docs = [doc(pairs[0], share=(True, True)), *(doc(p) for p in pairs[1:])]
    shared, private, _ = metrics.pair_table(snap(pairs, docs, surveys=rows), pairs, settings, later)
    assert shared.survey == {"first": pytest.approx(8 / 3), "midpoint": None, "end": pytest.approx(14 / 3)}
    assert private.survey == {"first": None, "midpoint": None, "end": None} and private.rating is None


def test_survey_questions_from_the_file_give_order_and_text():
    question = Question("value", "How valuable?", "scale", ("mentor",), ("first",))
    text = Question("learned", "What?", "text", ("mentor",), ("first",))
    found = metrics.survey_scores([], metrics.Period(None, NOW), 5, [text, question])
    assert [(s.question, s.text) for s in found] == [("value", "How valuable?")]


# --- privacy -------------------------------------------------------------------------------


NOTE = "we discussed the reorganisation rumours"


def three_pairs_with_notes() -> tuple[list[Pair], metrics.Snapshot]:
    pairs = [make_pair("P01"), make_pair("P02"), make_pair("P03")]
    docs = [doc(pairs[0], share=(True, True)), doc(pairs[1], share=(True, None)), doc(pairs[2], share=(True, False))]
    sessions = [session(p, 1, at(1)) for p in pairs]
    # the mentor writes prose; the mentee's reply is fields only (an HTML form, say)
    logs = [log(p, s, role=role, body=f"{NOTE} {p.pair_id} {role}" if role == "mentor" else "", learned=f"learned {p.pair_id}",
                topics=[f"topic {p.pair_id}"], next_steps=[f"step {p.pair_id}"], rating=4)
            for p, s in zip(pairs, sessions) for role in ("mentor", "mentee")]
    surveys = [survey(p, "first", "mentee", at(2), confidence=4, learned=f"survey text {p.pair_id}") for p in pairs]
    return pairs, snap(pairs, docs=docs, sessions=sessions, logs=logs, surveys=surveys)


def test_notes_appear_only_for_pairs_where_both_people_share(settings):
    pairs, data = three_pairs_with_notes()
    notes = metrics.shared_notes(data, pairs, now=NOW)
    assert {n.pair_id for n in notes} == {"P01"}
    text = repr(notes)
    assert f"{NOTE} P01 mentor" in text and "survey text P01" in text
    assert "learned P01" in text and "topic P01" in text and "step P01" in text
    for hidden in ("P02", "P03"):
        assert hidden not in text


def test_summary_and_pair_rows_carry_no_note_text_at_all(settings):
    pairs, data = three_pairs_with_notes()
    everything = repr(metrics.programme_summary(data, pairs, with_floor(settings, 1), NOW))
    everything += repr(metrics.pair_table(data, pairs, settings, NOW))
    for secret in (NOTE, "learned P0", "topic P0", "step P0", "survey text"):
        assert secret not in everything
    assert [r.shares_notes for r in metrics.pair_table(data, pairs, settings, NOW)] == [True, False, False]


def test_a_pair_that_said_private_after_sharing_is_private_again(settings):
    pairs, data = three_pairs_with_notes()
    data.pairs["P01"].share_notes[pairs[0].mentee.address] = False
    assert metrics.shared_notes(data, pairs, now=NOW) == []


def test_a_small_track_shows_its_size_only(settings):
    pairs = [make_pair("P01", "ai"), make_pair("P02", "ai"), *(make_pair(f"P1{i}", "social") for i in range(3))]
    sessions = [session(p, 1, at(2)) for p in pairs]
    logs = [log(p, s, role=r, rating=4) for p, s in zip(pairs, sessions) for r in ("mentor", "mentee")]
    summary = metrics.programme_summary(snap(pairs, sessions=sessions, logs=logs), pairs, settings, NOW)
    ai, social = summary.tracks
    assert (ai.track, ai.pairs, ai.people, ai.suppressed, ai.sessions, ai.rating) == ("ai", 2, 4, True, None, None)
    assert (social.track, social.people, social.suppressed, social.sessions.held) == ("social", 6, False, 3)
    assert social.rating.mean == 4.0


# --- states, opt-outs, milestones ----------------------------------------------------------


def test_pairs_by_state_come_from_health(settings):
    ok, risk, fizz, paused = (make_pair(f"P0{i}") for i in range(1, 5))
    declined = make_pair("P05")
    sessions = [session(ok, 1, at(1)), session(risk, 1, at(1)), session(fizz, 1, at(1)), session(fizz, 2, at(8))]
    logs = [log(ok, sessions[0])]
    docs = [doc(ok), doc(risk), doc(fizz), doc(paused, "paused"), doc(declined, "declined")]
    gone = {"pair_id": "P99", "state": "active", "series": None}  # removed from the roster
    pairs = [ok, risk, fizz, paused, declined, make_pair("P06")]
    summary = metrics.programme_summary(snap(pairs, docs=[*docs, gone], sessions=sessions, logs=logs), pairs,
                                        settings, NOW)
    assert summary.states == (("new", 1), ("active", 1), ("at risk", 1), ("fizzling", 1), ("paused", 1),
                              ("ended", 1), ("declined", 1))
    assert summary.declined == 1


def test_stops_pauses_and_quarantined_messages_in_the_period_and_overall(settings):
    p = make_pair("P01")
    commands = [{"pair_id": "P01", "command": c, "at": d.isoformat(), "from": p.mentor.address}
                for c, d in (("pause", at(1)), ("resume", at(3)), ("pause", at(10)), ("stop", at(12)))]
    inbox = [{"message_key": f"<m{i}>", "outcome": o, "at": d.isoformat()}
             for i, (o, d) in enumerate((("quarantine", at(1)), ("log", at(9)), ("quarantine", at(11))))]
    summary = metrics.programme_summary(snap([p], commands=commands, inbox=inbox), [p], settings, NOW,
                                        since=at(8), until=at(15))
    assert (summary.this_period.paused, summary.this_period.stopped, summary.this_period.quarantined) == (1, 1, 1)
    assert (summary.overall.paused, summary.overall.stopped, summary.overall.quarantined) == (2, 1, 2)


def series_doc(pair: Pair, count: int = 6, used: int = 0) -> dict:
    plan = {"tzid": "Europe/London", "first_start": "2027-01-05T10:00:00+00:00", "duration_minutes": 45,
            "cadence": "biweekly", "rrule": f"FREQ=WEEKLY;INTERVAL=2;COUNT={count}", "count": count, "until": None}
    return dict(doc(pair), sessions_used=used, series={"uid": "u", "sequence": 0, "published": 0, "cancelled": False,
                                                       "plan": plan, "exdates": []})


def test_upcoming_midpoints_and_ends_in_the_next_period(settings):
    assert settings.program.sessions == 6
    p, q = make_pair("P01"), make_pair("P02")
    # every two weeks from 5 Jan; P02 was re-planned after two sessions, so its 5 Jan is session 3
    replanned = series_doc(q, count=4, used=2)
    first = dict(replanned["series"], plan=dict(replanned["series"]["plan"], first_start="2026-12-08T10:00:00+00:00",
                                                rrule="FREQ=WEEKLY;INTERVAL=2;COUNT=2", count=2))
    replanned["earlier_series"] = [dict(first, uid="u0", replaced="2027-01-01T00:00:00+00:00")]
    data = snap([p, q], docs=[series_doc(p), replanned])
    soon = metrics.programme_summary(data, [p, q], settings, at(1, month=1), since=at(1, month=1) - timedelta(days=28),
                                     until=at(1, month=1))
    assert soon.next_period.until == at(29, month=1)
    assert [(m.pair_id, m.milestone, m.number, m.start.date().isoformat()) for m in soon.upcoming] == [
        ("P02", "midpoint", 3, "2027-01-05")]
    later = metrics.programme_summary(data, [p, q], settings, at(1), since=at(1), until=at(1),
                                      horizon=timedelta(days=16))
    assert [(m.pair_id, m.milestone, m.start.date().isoformat()) for m in later.upcoming] == [
        ("P01", "midpoint", "2027-02-02"), ("P02", "end", "2027-02-16")]


def report_of(pairs: list[Pair], data: metrics.Snapshot, settings: Settings) -> ReportData:
    return assemble(data, pairs, settings, NOW, None, None)


def test_the_csv_and_markdown_show_a_private_pairs_own_scores_as_private(settings):
    pairs, data = three_pairs_with_notes()
    report = report_of(pairs, data, settings)
    rows = {r[0]: r for r in csv.reader(io.StringIO(csvfile.render(report)))}
    scores = slice(HEADER.index("average_rating"), HEADER.index("notes_shared"))
    shared = HEADER.index("notes_shared")
    assert rows["P01"][scores] == ["4.00", "2", "", "", "4.00", "", ""] and rows["P01"][shared] == "yes"
    for private in ("P02", "P03"):
        assert rows[private][scores] == ["private"] * 7 and rows[private][shared] == "no"
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
             for line in markdown.render(report).splitlines() if line.startswith("| P0")}
    assert table["P01"][7:] == ["4.0", "-", "4.0 → -", "yes"]
    assert table["P02"][7:] == ["private", "private", "private", "no"]


def test_a_removed_pairs_row_names_no_one_and_its_names_are_not_formulas(settings):
    pairs = [dataclasses.replace(make_pair("P01"), mentor=Person("=HYPERLINK(1)", "m@example.com", "Europe/London", HOURS))]
    gone = doc(make_pair("P09"))
    report = report_of(pairs, snap(pairs, docs=[doc(pairs[0]), gone]), settings)
    rows = {r[0]: r for r in csv.reader(io.StringIO(csvfile.render(report)))}
    assert (rows["P01"][1], rows["P01"][2]) == ("'=HYPERLINK(1)", "Mentee P01")
    assert (rows["P09"][1], rows["P09"][2]) == ("'-", "'-")  # the placeholder, neutralised like any leading "-"


def test_a_sharing_pairs_rating_is_the_mean_of_both_peoples_ratings(settings):
    pairs, data = three_pairs_with_notes()
    data = dataclasses.replace(data, logs=(data.logs[0], dataclasses.replace(data.logs[1], fields={**data.logs[1].fields,
                                                                                                  "rating": 2}),
                                           *data.logs[2:]))
    (row, *_) = metrics.pair_table(data, pairs, settings, NOW)
    assert (row.rating, row.ratings) == (3.0, 2)


def test_notes_before_the_period_are_not_shared(settings):
    pairs, data = three_pairs_with_notes()
    assert metrics.shared_notes(data, pairs, since=at(2), now=NOW) == [n for n in metrics.shared_notes(data, pairs, now=NOW)
                                                                      if n.when >= at(2).isoformat()]
    assert [n.source for n in metrics.shared_notes(data, pairs, since=at(2), now=NOW)] == ["survey first"]


def test_a_certificate_lists_topics_only_of_pairs_that_share_and_only_those_its_people_wrote(tmp_path):
    prog = Programme.create(tmp_path)
    settings = load_settings(prog.config)
    pairs = roster.load_roster(settings.roster_path, settings.program)
    p01, p02 = pairs[0], pairs[1]
    both = {p.address: True for p in p01.people}
    state = {"P01": {"pair_id": "P01", "share_notes": both},
             "P02": {"pair_id": "P02", "share_notes": {p02.mentor.address: True}}}

    def written(pair: Pair, topics: list[str], people: list[str] | None) -> dict:
        return {"pair_id": pair.pair_id, "token": f"T{len(topics)}{pair.pair_id}{people}", "fields": {"topics": topics},
                "people": people, "from": pair.mentor.address, "role": "mentor", "body": "", "received": NOW.isoformat()}

    with Store.open(tmp_path / "state.json") as store:
        store.table(LOGS).insert_multiple([
            written(p01, ["reels", "hooks"], sorted(p.address for p in p01.people)),
            written(p01, ["hooks", "captions"], None),  # written before logs kept their people: the pair's
            written(p01, ["the old mentee's topic"], sorted([p01.mentor.address, "someone.before@example.com"])),
            written(p02, ["figma"], sorted(p.address for p in p02.people)),
        ])
        ctx = Context(store=store, backend=None, settings=settings, pairs=pairs,  # type: ignore[arg-type]
                      templates=compose.load_templates(settings.templates_dir), now=NOW, secret=bytes(32))
        assert surveys._shared_topics(ctx, state) == {"P01": ["reels", "hooks", "captions"]}
