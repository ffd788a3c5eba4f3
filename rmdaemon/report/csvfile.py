"""The report as CSV: one row per pair, plain numbers (rates as fractions, blanks for no data),
for people who take the data to a spreadsheet. Counts and scores only: no notes, ever; a pair's
own rating, goal progress and survey scores only where both its people said SHARE NOTES
("private" in those cells otherwise)."""

from __future__ import annotations

import csv
import io

from rmdaemon.programme.metrics import PairRow
from rmdaemon.report.data import ReportData

HEADER = ("pair_id", "mentor", "mentee", "track", "state", "sessions_planned", "sessions_held", "sessions_missed",
          "sessions_awaiting_log", "attendance_rate", "average_rating", "ratings", "goal_progress_first",
          "goal_progress_latest", "survey_first", "survey_midpoint", "survey_end", "notes_shared")


# A spreadsheet runs a cell that starts like a formula (CSV injection: =HYPERLINK(...), +cmd|...).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """Roster text as text: a leading apostrophe makes Excel, LibreOffice and Sheets show it, not run it."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _private(row: PairRow, cells: list[object]) -> list[object]:
    """A pair's own scores, or "private" in each cell when it does not share its notes."""
    return cells if row.shares_notes else ["private"] * len(cells)


def render(report: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
    writer.writerow(HEADER)
    for r in report.pairs:
        s = r.sessions
        writer.writerow([
            *map(_text, (r.pair_id, r.mentor, r.mentee, r.track, r.state)), s.planned, s.held, s.missed, s.open,
            _number(s.attendance, 4), *(_private(r, [
                _number(r.rating, 2), r.ratings, r.progress[0] if r.progress else "", r.progress[-1] if r.progress else "",
                *(_number(r.survey[m], 2) for m in ("first", "midpoint", "end"))])), "yes" if r.shares_notes else "no",
        ])
    return out.getvalue()
