"""``rmdaemon report`` through the real CLI on a real programme (replies dropped into the inbox
like test_walkthrough), in all three formats; the HTML opened in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from programme import Programme
import browser
from programme import REPO
from rmdaemon.programme import metrics
from rmdaemon.report import html as html_report
from rmdaemon.report.data import ReportData, assemble
from rmdaemon.compose import load_templates

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
END = T0 + timedelta(days=30)  # Wed 3 Feb: four weekly sessions for most pairs
SHARED = "SHARED-P01-NOTE"  # P01: both people reply SHARE NOTES
PRIVATE = "PRIVATE-P02-NOTE"  # P02: the mentee shares, the mentor says PRIVATE
REPLIES = {
    ("P01", "mentor"): f"SHARE NOTES\n\nAttended: yes\nTopics: TikTok search\nLearned: {SHARED}\nRating: 5\nProgress: 3",
    ("P01", "mentee"): f"SHARE NOTES\n\nAttended: yes\nLearned: {SHARED} too\nRating: 4",
    ("P02", "mentor"): f"PRIVATE\n\nAttended: yes\nLearned: {PRIVATE}\nRating: 4",
    ("P02", "mentee"): f"SHARE NOTES\n\nAttended: yes\nTopics: {PRIVATE} topic\nRating: 3",
    ("P04", "mentor"): "Attended: no\nWe could not make it this week.",
    ("P05", "mentee"): "Attended: yes\nTopics: pricing\nRating: 4\nProgress: 2",
    ("P07", "mentee"): "Attended: yes\nTopics: short video\nRating: 2",
}  # P03 never writes (fizzling); P06 is paused in the roster; P08's mentee says no at the kickoff


def play(prog: Programme) -> None:
    """Every day at 08:00 UTC: answer yesterday's agendas as scripted, then run the daemon."""
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "No, thank you." if "helen.schmidt" in str(kickoff["To"]) else "Yes, I'm in.", T0)
    answered: set[str] = set()
    now = T0 + timedelta(hours=1)
    while now <= END:
        for agenda in prog.outbox("agenda."):
            if agenda["Message-ID"] in answered or agenda["Date"].datetime > now - timedelta(hours=24):
                continue
            answered.add(agenda["Message-ID"])
            text = REPLIES.get(_pair_and_role(prog, agenda))
            if text:
                prog.reply(agenda, text, now)
        assert prog.run(now) == 0
        now = now.replace(hour=8) + timedelta(days=1)


def _pair_and_role(prog: Programme, agenda) -> tuple[str, str]:
    """Whose agenda this is, from the roster's mentor_email and mentee_email columns."""
    to = str(agenda["To"])
    for line in prog.roster.read_text().splitlines()[1:]:
        cells = line.split(",")
        if cells[2] in to or cells[4] in to:
            return cells[0], "mentor" if cells[2] in to else "mentee"
    raise AssertionError(f"agenda to {to} is for no pair in the roster")


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> Programme:
    programme = Programme.create(tmp_path_factory.mktemp("report"), cadence='"weekly"', min_group_size="4")
    play(programme)
    return programme


def report(prog: Programme, capsys, *args: str) -> str:
    capsys.readouterr()
    assert prog.cli("report", "--now", END.isoformat(), *args) == 0
    return capsys.readouterr().out


def pair_rows(text: str) -> dict[str, list[str]]:
    """The Markdown per-pair table as {pair id: cells}."""
    part = text.split("## Pairs", 1)[1].split("##", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in part.splitlines() if line.startswith("| P")]
    return {row[0]: row for row in rows}


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_per_pair_rows_show_what_each_pair_did(prog, capsys):
    rows = pair_rows(report(prog, capsys))
    p01, p03, p04 = rows["P01"], rows["P03"], rows["P04"]
    assert p01[4:9] == ["active", "4 / 4", "100%", "4.5", "3 → 3"] and p01[10] == "yes"
    assert p03[4:7] == ["fizzling", "0 / 5", "0%"]  # Tuesdays: its fifth session is still in its log window
    assert p04[4:7] == ["fizzling", "0 / 4", "0%"]  # "Attended: no" is a missed session, as in health
    assert rows["P02"][7:10] == ["private", "private", "private"] and rows["P02"][10] == "no"  # one said PRIVATE
    assert rows["P06"][4] == "paused" and rows["P08"][4] == "declined"


def test_markdown_summary_counts_the_programme(prog, capsys):
    text = report(prog, capsys)
    summary = text.split("## Summary", 1)[1].split("##", 1)[0]
    # pairs spread over the week rather than stacked on Monday morning: P02 now holds five sessions before END
    assert "| sessions held / planned | 17 / 26 | 17 / 26 |" in summary
    assert "| attendance | 68% | 68% |" in summary  # 17 of the 25 whose log window has closed
    assert "| awaiting a log | 1 | 1 |" in summary
    assert "| goal progress, latest (1-5) | - | - |" in summary  # two people answered: kept back
    assert "Not shown: the average goal progress" in text  # said once, above the summary
    assert "| average rating (1-5) | 3.7 | 3.7 |" in summary  # 4x(5,4) + 5x(4,3) + 4x4 + 4x2 over 26 ratings
    assert "- Pairs by state: active 4, fizzling 2, paused 1, declined 1" in summary
    assert "- Declined at the kickoff: 1" in summary


def test_a_pairs_notes_appear_only_when_both_people_share(prog, capsys):
    for fmt in ("md", "html", "csv"):
        text = report(prog, capsys, "--format", fmt)
        assert PRIVATE not in text
        assert (SHARED in text) is (fmt != "csv")  # CSV carries counts only


def test_a_period_counts_only_its_sessions(prog, capsys):
    january = pair_rows(report(prog, capsys, "--since", "2027-01-01", "--until", "2027-01-18"))
    assert january["P01"][5] == "1 / 1"  # P01 meets on Mondays: 11, 18, 25 January, 1 February
    assert "Period: 2027-01-01 to 2027-01-17." in report(prog, capsys, "--since", "2027-01-01", "--until", "2027-01-18")
    text = report(prog, capsys, "--since", "2027-01-18")
    assert "Period: 2027-01-18 to now" in text
    assert pair_rows(text)["P01"][5] == "3 / 3"


# --- CSV -----------------------------------------------------------------------------------


def test_csv_has_a_header_and_one_row_per_pair_with_plain_numbers(prog, capsys):
    rows = list(csv.DictReader(io.StringIO(report(prog, capsys, "--format", "csv"))))
    assert [r["pair_id"] for r in rows] == [f"P0{i}" for i in range(1, 9)]
    p01 = rows[0]
    assert (p01["sessions_planned"], p01["sessions_held"], p01["attendance_rate"]) == ("4", "4", "1.0000")
    assert (p01["average_rating"], p01["ratings"], p01["notes_shared"]) == ("4.50", "8", "yes")
    assert (rows[1]["average_rating"], rows[1]["survey_end"], rows[1]["notes_shared"]) == ("private", "private", "no")
    assert rows[2]["attendance_rate"] == "0.0000" and rows[5]["attendance_rate"] == ""


def test_out_writes_the_file_and_prints_nothing(prog, capsys, tmp_path):
    target = tmp_path / "report.csv"
    assert report(prog, capsys, "--format", "csv", "--out", str(target)) == ""
    assert target.read_text().startswith("pair_id,mentor,mentee,")


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (("--since", "2027-13-01"), ["--since '2027-13-01' is not a date", "YYYY-MM-DD"]),
    (("--until", "next week"), ["--until 'next week' is not a date", "YYYY-MM-DD"]),
    (("--since", "2027-02-01", "--until", "2027-01-01"), ["--since 2027-02-01 is not before --until 2027-01-01"]),
    (("--format", "pdf"), ["invalid choice: 'pdf'"]),
])
def test_bad_arguments_exit_2_naming_the_flag_and_the_format(prog, capsys, args, words):
    capsys.readouterr()
    assert prog.cli("report", "--now", END.isoformat(), *args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err


def test_an_unwritable_out_path_is_a_user_error(prog, capsys, tmp_path):
    capsys.readouterr()
    assert prog.cli("report", "--out", str(tmp_path / "missing" / "r.md")) == 2
    assert "check that the folder exists" in capsys.readouterr().err


# --- HTML ----------------------------------------------------------------------------------


def test_html_is_one_self_contained_file(prog, capsys):
    page = report(prog, capsys, "--format", "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5  # funnel, states, sessions, ratings, progress
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)
    assert page == report(prog, capsys, "--format", "html")  # same data, same bytes


# --- tracks, cohorts, the figures table ------------------------------------------------------


def test_track_filter_reports_only_that_tracks_pairs(prog, capsys):
    text = report(prog, capsys, "--track", "Social Media")  # as the roster spells it, any case
    assert "Only the pairs of track Social Media." in text
    assert sorted(pair_rows(text)) == ["P01", "P07"]
    funnel = text.split("## Engagement funnel", 1)[1].split("##", 1)[0]
    # both pairs opted in, were booked and met; four weekly sessions of six by 3 February: past the midpoint
    for step, pairs in (("invited", 2), ("both consented", 2), ("booked", 2), ("first session held", 2),
                        ("midpoint reached", 2), ("completed", 0)):
        assert f"| {step} | {pairs} |" in funnel
    assert "| sessions held / planned | 8 / 8 | 8 / 8 |" in text


def test_an_unknown_track_exits_2_listing_the_tracks(prog, capsys):
    capsys.readouterr()
    assert prog.cli("report", "--now", END.isoformat(), "--track", "gardening") == 2
    err = capsys.readouterr().err
    assert "--track 'gardening': no pair has it" in err and "social media, technology" in err
    assert prog.cli("report", "--now", END.isoformat(), "--cohort", "2027") == 2
    assert "the roster has none" in capsys.readouterr().err  # the example roster has no cohort column


def test_csv_figures_table_carries_the_funnel_weeks_and_tracks(prog, capsys):
    rows = list(csv.DictReader(io.StringIO(report(prog, capsys, "--format", "csv", "--table", "figures"))))
    value = {(r["section"], r["group"], r["figure"]): r["value"] for r in rows}
    assert value[("funnel", "invited", "pairs")] == "7"  # P06, paused in the roster from the start, got no kickoff
    assert value[("funnel", "both consented", "pairs")] == "6"  # P08's mentee said no
    assert value[("beside the funnel", "", "declined")] == "1"
    assert value[("summary", "overall", "sessions held")] == "17"  # sessions spread over the week: P02 holds five
    assert value[("needs attention", "P03", "fizzling")] == "4"  # of its five sessions, the fifth awaits a log
    assert ("track", "social media", "sessions held") in value and ("track", "inclusion", "sessions held") not in value
    assert sum(int(v) for (sec, _, fig), v in value.items() if sec == "week" and fig == "sessions planned") == 26
    capsys.readouterr()
    assert prog.cli("report", "--now", END.isoformat(), "--table", "figures") == 2  # Markdown has every table


def test_csv_pairs_table_says_how_far_each_pair_got(prog, capsys):
    rows = {r["pair_id"]: r for r in csv.DictReader(io.StringIO(report(prog, capsys, "--format", "csv")))}
    assert rows["P01"]["furthest_step"] == "midpoint reached" and rows["P08"]["furthest_step"] == "invited"
    assert rows["P03"]["needs_attention"] == "fizzling" and rows["P01"]["needs_attention"] == ""


def test_markdown_lists_the_pairs_that_need_attention_with_the_digests_reply_lines(prog, capsys):
    part = report(prog, capsys).split("## Attention needed now", 1)[1].split("##", 1)[0]
    assert "**P03** Tom Becker mentoring" in part and "`NUDGE P03`, `ASK-MENTOR P03`, `PAUSE P03`" in part
    assert "P01" not in part


# --- HTML in a real browser ------------------------------------------------------------------

SMALL_ROSTER_ROWS = 4  # the header and three pairs: P01 (shares its notes), P02 (one says PRIVATE), P03 (silent)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Programme:
    """A three-pair programme (six people, min_group_size 5): most averages are too small to show."""
    rows = (REPO / "examples" / "roster.csv").read_text().splitlines()[:SMALL_ROSTER_ROWS]
    programme = Programme.create(tmp_path_factory.mktemp("small"), roster="\n".join(rows) + "\n",
                                 cadence='"weekly"', min_group_size="5")
    play(programme)
    return programme


def test_small_programme_says_once_what_is_hidden_and_shows_the_counts(small, capsys):
    page = report(small, capsys, "--format", "html")
    assert page.count('id="suppressed"') == 1 and "suppressed (" not in page  # said once, not in every cell
    notice = page.split('id="suppressed">', 1)[1].split("</p>", 1)[0]
    assert "fewer than 5 people" in notice and "the ratings chart" in notice
    assert 'data-chart="ratings"' not in page  # not drawn as an empty box either
    text = report(small, capsys)
    funnel = text.split("## Engagement funnel", 1)[1].split("##", 1)[0]
    for step, pairs in (("invited", 3), ("both consented", 3), ("booked", 3), ("first session held", 2),
                        ("midpoint reached", 2), ("completed", 0)):
        assert f"| {step} | {pairs} |" in funnel, step


def test_small_and_full_reports_lay_out_in_chromium(small, capsys, tmp_path):
    page = report(small, capsys, "--format", "html")
    slots = browser.check_layout(page, tmp_path)
    assert {name for name, s in slots.items() if s["bars"]} == {"funnel", "states", "sessions", "progress"}
    assert "No mentee has answered" in slots["surveys-mentee"]["notice"]
    browser.screenshot(page, "report-3-pairs", tmp_path)
    assert browser.print_pdf(page, tmp_path).startswith(b"%PDF")


def test_every_chart_renders_from_a_full_data_set(settings_for_html, tmp_path):
    page = html_report.render(full_report(settings_for_html), load_templates(None).env)
    slots = browser.check_layout(page, tmp_path)
    assert {name: s["bars"] for name, s in slots.items()} == {
        "funnel": 6,  # 5 invited, consented, booked, met; 3 past the midpoint; 2 completed
        "states": 6,  # W03 active; W04-W06 one bar (quiet), active; W07 and W08 active and ended
        "sessions": 4,  # W03 and W07 x planned, held (quiet weeks are left out)
        "progress-distribution": 6,  # midpoint answers 2, 3, 4 and end answers 3, 4, 5
        "surveys-mentee": 4, "surveys-mentor": 4,  # confidence, value x first, end
        "ratings": 3,  # 3, 4, 5
        "progress": 10,  # five pairs x first, latest
    }


@pytest.fixture
def settings_for_html(tmp_path):
    from rmdaemon.config import load_settings

    return load_settings(Programme.create(tmp_path / "programme", min_group_size="5").config)


def full_report(settings) -> ReportData:
    """Five pairs, two sessions each (20 January, 20 February), ratings, goal progress and
    surveys, built as table rows; three pairs past their midpoint, two of them completed on 21 February."""
    from test_metrics import at, doc, log, make_pair, session, survey

    pairs = [make_pair(f"P0{i}") for i in range(1, 6)]
    sessions = [session(p, n, at(20, month=n)) for p in pairs for n in (1, 2)]
    logs = [log(p, s, role="mentee", rating=3 + (i + s["number"]) % 3, progress=1 + i % 3 + s["number"])
            for i, p in enumerate(pairs) for s in sessions if s["pair_id"] == p.pair_id]
    surveys = [survey(p, m, r, at(25, month=month), confidence=c, value=c + 1)
               for p in pairs for m, month, c in (("first", 1, 2), ("end", 2, 4)) for r in ("mentor", "mentee")]
    docs = [{**doc(p, share=(True, True)), "consent": {p.mentor.address: "yes", p.mentee.address: "yes"},
             "milestones": ["first", "midpoint", "end"][:3 if i < 3 else 1],
             **({"completed": "2027-02-21T10:00:00+00:00"} if i < 2 else {})} for i, p in enumerate(pairs)]
    snap = metrics.Snapshot.of(docs, sessions, logs, surveys)
    now = datetime(2027, 3, 1, tzinfo=timezone.utc)
    return assemble(snap, pairs, settings, now, None, None, load_templates(None).questions)


def test_a_pause_and_a_resume_show_as_paused_weeks_between_active_ones(tmp_path, capsys):
    """One pair logs every session; after its second it replies PAUSE, two weeks later RESUME."""
    from zoneinfo import ZoneInfo

    from programme import booked_programme

    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
              "P1,Alex Young,alex@example.com,Sam Senior,sam@example.com,Learn TikTok\n")
    prog = booked_programme(tmp_path, roster, T0, cadence='"weekly"', sessions="6")
    answered: set[str] = set()
    paused_at = resumed_at = None
    now = T0 + timedelta(days=1)
    while now <= T0 + timedelta(days=49):
        for agenda in prog.outbox("agenda.", to="alex@"):
            if agenda["Message-ID"] not in answered and agenda["Date"].datetime <= now - timedelta(hours=26):
                answered.add(agenda["Message-ID"])
                prog.reply(agenda, "Attended: yes\nRating: 4", now)
                if len(answered) == 2:
                    prog.reply(agenda, "PAUSE", now + timedelta(minutes=1))
                    paused_at = now
        if paused_at and not resumed_at and now >= paused_at + timedelta(days=14):
            prog.reply(prog.outbox("kickoff", to="alex@")[0], "RESUME", now)
            resumed_at = now
        assert prog.run(now + timedelta(minutes=5)) == 0
        now += timedelta(days=1)
    assert paused_at and resumed_at

    def week(moment: datetime) -> str:
        year, number, _ = moment.astimezone(ZoneInfo("Europe/London")).isocalendar()
        return f"{year}-W{number:02d}"

    capsys.readouterr()
    assert prog.cli("report", "--format", "csv", "--table", "figures", "--now", now.isoformat()) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    state = {r["group"]: r["figure"] for r in rows if r["section"] == "week" and r["value"] == "1"
             and r["figure"] in ("active", "at risk", "fizzling", "paused", "ended")}
    paused_week, resumed_week = week(paused_at), week(resumed_at)
    assert state[paused_week] == "paused" and state[week(paused_at + timedelta(days=7))] == "paused"
    assert state[resumed_week] == "active"  # RESUME books a new series; its sessions are logged
    labels = sorted(state)
    assert all(state[w] == "active" for w in labels if w < paused_week)
    assert all(state[w] == "active" for w in labels if w >= resumed_week), state
