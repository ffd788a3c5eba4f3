"""The report as CSV, for people who take the data to a spreadsheet: plain numbers (rates as
fractions, blanks for no data or a figure kept back for too few people).

Two tables, one a file (``--table``): ``pairs``, one row per pair (counts and scores only: no
notes, ever; a pair's own rating, goal progress and survey scores only where both its people
said SHARE NOTES, "private" in those cells otherwise); ``figures``, the programme's figures as
the other formats show them (summary, funnel, weeks, outcomes, tracks), one figure a row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from rmdaemon.programme.engagement import WEEK_STATES
from rmdaemon.programme.metrics import PairRow, Score
from rmdaemon.records import MILESTONES
from rmdaemon.report.data import ReportData

HEADER = ("pair_id", "mentor", "mentee", "track", "state", "sessions_planned", "sessions_held", "sessions_missed",
          "sessions_awaiting_log", "attendance_rate", "average_rating", "ratings", "goal_progress_first",
          "goal_progress_latest", "survey_first", "survey_midpoint", "survey_end", "notes_shared",
          "cohort", "furthest_step", "needs_attention")
FIGURES_HEADER = ("section", "group", "figure", "value")

# A spreadsheet runs a cell that starts like a formula (CSV injection: =HYPERLINK(...), +cmd|...).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """Roster text as text: a leading apostrophe makes Excel, LibreOffice and Sheets show it, not run it."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _score(found: Score) -> str:
    return "" if found.suppressed else _number(found.mean, 2)


def _private(row: PairRow, cells: list[object]) -> list[object]:
    """A pair's own scores, or "private" in each cell when it does not share its notes."""
    return cells if row.shares_notes else ["private"] * len(cells)


def _write(head: tuple[str, ...], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
    writer.writerow(head)
    writer.writerows(rows)
    return out.getvalue()


def render(report: ReportData) -> str:
    attention = {a.pair_id: a.state for a in report.attention}
    return _write(HEADER, ([
        *map(_text, (r.pair_id, r.mentor, r.mentee, r.track, r.state)), r.sessions.planned, r.sessions.held,
        r.sessions.missed, r.sessions.open, _number(r.sessions.attendance, 4), *(_private(r, [
            _number(r.rating, 2), r.ratings, r.progress[0] if r.progress else "", r.progress[-1] if r.progress else "",
            *(_number(r.survey[m], 2) for m in MILESTONES)])), "yes" if r.shares_notes else "no",
        _text("" if r.cohort == "-" else r.cohort), report.funnel.furthest.get(r.pair_id, ""), attention.get(r.pair_id, ""),
    ] for r in report.pairs))


def figures(report: ReportData) -> str:
    """Every programme figure, one a row: (section, group, figure, value)."""
    return _write(FIGURES_HEADER, ((section, _text(str(group)), figure, value)
                                   for section, group, figure, value in _figures(report)))


def _figures(report: ReportData) -> Iterator[tuple[str, object, str, object]]:
    s = report.summary
    for label, f in (("this period", s.this_period), ("overall", s.overall)):
        yield from (("summary", label, name, value) for name, value in (
            ("sessions planned", f.sessions.planned), ("sessions held", f.sessions.held),
            ("sessions missed", f.sessions.missed), ("attendance", _number(f.sessions.attendance, 4)),
            ("average rating", _score(f.rating)), ("goal progress latest", _score(f.progress))))
    yield from (("pairs by state", "now", state, n) for state, n in s.states)
    for step in report.funnel.steps:
        yield ("funnel", step.name, "pairs", step.pairs)
        yield ("funnel", step.name, "lost since the step before", step.lost)
    f = report.funnel
    yield from (("beside the funnel", "", name, n) for name, n in (("declined", f.declined), ("paused", f.paused),
                                                                    ("stopped", f.stopped)))
    for w in report.weeks:
        yield from (("week", w.label, state, n) for state, n in zip(WEEK_STATES, w.states))
        yield from (("week", w.label, name, value) for name, value in (
            ("sessions planned", w.sessions.planned), ("sessions held", w.sessions.held),
            ("attendance", _number(w.sessions.attendance, 4))))
    yield from (("needs attention", a.pair_id, a.state, a.missed) for a in report.attention)
    yield from _outcomes(report)
    for section, groups in (("track", s.tracks), ("cohort", report.cohorts)):
        for g in groups:
            yield (section, g.track, "pairs", g.pairs)
            if not g.suppressed and g.sessions is not None:
                yield from ((section, g.track, name, value) for name, value in (
                    ("completed", g.completed), ("sessions planned", g.sessions.planned),
                    ("sessions held", g.sessions.held), ("attendance", _number(g.sessions.attendance, 4)),
                    ("average rating", _score(g.rating) if g.rating else ""),
                    ("goal progress latest", _score(g.progress) if g.progress else "")))
    yield from (("not shown (too few people)", "", name, "") for name in report.hidden)


def _outcomes(report: ReportData) -> Iterator[tuple[str, object, str, object]]:
    o = report.outcomes
    for p in o.progress:
        if p.counts.counts:
            yield from (("goal progress", p.milestone, str(n), count) for n, count in enumerate(p.counts.counts, 1))
            yield ("goal progress", p.milestone, "mean", _score(p.mean))
    for role, scores in o.surveys.items():
        for q in scores:
            yield from ((f"survey {role}s", q.question, m, _score(q.by_milestone[m])) for m in MILESTONES)
            yield (f"survey {role}s", q.question, "change", _number(q.change, 2))
    a = o.adopted
    if not a.suppressed:
        yield from (("adopted", "", name, value) for name, value in (("mentees who answered", a.answered),
                                                                      ("named one", a.named), ("share", _number(a.share, 4))))
        yield from (("adopted", words, "mentees", n) for words, n in a.top or ())
