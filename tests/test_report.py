"""``rmdaemon report`` through the real CLI on a real programme (replies dropped into the inbox
like test_walkthrough), in all three formats; the HTML opened in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme
from prerequisites import CHROMIUM, missing
from rmdaemon.programme import metrics
from rmdaemon.report import html as html_report
from rmdaemon.report.data import ReportData
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
    assert "| goal progress, latest (1-5) | suppressed (fewer than 4) | suppressed (fewer than 4) |" in summary
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
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3  # no survey answers yet
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)
    assert page == report(prog, capsys, "--format", "html")  # same data, same bytes


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")

# Run in the page by the test only (the report has no script): what the browser laid out.
MEASURE = """<script>
const found = [...document.querySelectorAll("figure.chart")].map(fig => {
  const svg = fig.querySelector("svg"), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const bars = svg ? [...svg.querySelectorAll("rect.rect")].filter(r => {
    const b = r.getBBox(); return b.width > 0 && b.height > 0; }).length : 0;
  const empty = fig.querySelector("p.empty");
  return {chart: fig.dataset.chart, width: box.width, height: box.height, bars, empty: empty ? empty.textContent : ""};
});
const out = document.createElement("pre"); out.id = "measured"; out.textContent = JSON.stringify(found);
document.body.appendChild(out);
</script>"""


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        missing(CHROMIUM)
    return found


def open_in_chromium(page: str, tmp_path: Path) -> list[dict]:
    """Screenshot the report as it is, then measure the charts in a copy with the probe script."""
    browser = chromium()
    report_file, probe_file = tmp_path / "report.html", tmp_path / "probe.html"
    report_file.write_text(page)
    probe_file.write_text(page.replace("</body>", MEASURE + "</body>"))
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run([*common, "--window-size=1280,2400", f"--screenshot={tmp_path / 'report.png'}",
                           report_file.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    dom = subprocess.run([*common, "--dump-dom", probe_file.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    measured = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert measured, dom.stdout[-2000:]
    return json.loads(measured[1].replace("&quot;", '"').replace("&amp;", "&"))


def test_html_report_of_the_programme_renders_its_charts_in_chromium(prog, capsys, tmp_path):
    charts = {c["chart"]: c for c in open_in_chromium(report(prog, capsys, "--format", "html"), tmp_path)}
    assert list(charts) == ["sessions", "ratings", "progress", "surveys"]
    for name in ("sessions", "ratings", "progress"):
        assert charts[name]["width"] > 300 and charts[name]["height"] > 100
    assert charts["sessions"]["bars"] == 4  # planned and held, January and February
    assert charts["ratings"]["bars"] == 4  # ratings 2, 3, 4, 5 were given; 1 never
    assert charts["progress"]["bars"] == 2  # P01's first and latest answer; P05 does not share its notes
    assert "No survey answers" in charts["surveys"]["empty"]


def test_all_four_charts_render_from_a_full_data_set(settings_for_html, tmp_path):
    page = html_report.render(full_report(settings_for_html), load_templates(None).env)
    charts = {c["chart"]: c for c in open_in_chromium(page, tmp_path)}
    assert {name: c["bars"] for name, c in charts.items()} == {
        "sessions": 4,  # two months x planned, held
        "ratings": 3,  # 3, 4, 5
        "progress": 10,  # five pairs x first, latest
        "surveys": 4,  # confidence, value x first, end
    }
    assert all(c["width"] > 300 and c["height"] > 100 and not c["empty"] for c in charts.values())
    assert (tmp_path / "report.png").stat().st_size > 20_000


@pytest.fixture
def settings_for_html(tmp_path):
    from rmdaemon.config import load_settings

    return load_settings(Programme.create(tmp_path / "programme", min_group_size="5").config)


def full_report(settings) -> ReportData:
    """Five pairs, two months of sessions, ratings, goal progress and surveys, built as table rows."""
    from test_metrics import at, doc, log, make_pair, session, survey

    pairs = [make_pair(f"P0{i}") for i in range(1, 6)]
    sessions = [session(p, n, at(20, month=n)) for p in pairs for n in (1, 2)]
    logs = [log(p, s, role="mentee", rating=3 + (i + s["number"]) % 3, progress=1 + i % 3 + s["number"])
            for i, p in enumerate(pairs) for s in sessions if s["pair_id"] == p.pair_id]
    surveys = [survey(p, m, r, at(25, month=month), confidence=c, value=c + 1)
               for p in pairs for m, month, c in (("first", 1, 2), ("end", 2, 4)) for r in ("mentor", "mentee")]
    snap = metrics.Snapshot.of([doc(p, share=(True, True)) for p in pairs], sessions, logs, surveys)
    now = datetime(2027, 3, 1, tzinfo=timezone.utc)
    rows = metrics.pair_table(snap, pairs, settings, now)
    return ReportData(programme="Pilot", timezone="Europe/London",
                      summary=metrics.programme_summary(snap, pairs, settings, now), pairs=rows,
                      notes=metrics.shared_notes(snap, pairs, now=now), people={})
