"""The report as Markdown: readable in a terminal, pastes into a wiki or a ticket."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rmdaemon.programme.metrics import Figures, Note, percent
from rmdaemon.report import data as fmt
from rmdaemon.report.data import ReportData


def cell(value: object) -> str:
    """A table cell: a pipe or a line break in a name must not break the table."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def render(report: ReportData) -> str:
    s = report.summary
    out = [f"# {report.programme}: programme report", "",
           f"Period: {report.period_text}. States are as of {fmt.local(s.now, report.timezone)}.",
           f"Averages over fewer than {s.min_group_size} people are suppressed. A pair's notes appear only "
           "when both people replied SHARE NOTES.", ""]
    out += _summary(report)
    for section in (_buckets, _surveys, _tracks, _milestones, _pairs, _notes):
        out += ["", *section(report)]
    return "\n".join(out).rstrip() + "\n"


def _figures(f: Figures) -> list[object]:
    return [fmt.held(f.sessions), percent(f.sessions.attendance), f.sessions.missed, f.sessions.open, f.rating,
            f.progress, f.paused, f.stopped, f.quarantined]


LABELS = ("sessions held / planned", "attendance", "sessions missed", "awaiting a log", "average rating (1-5)",
          "goal progress, latest (1-5)", "PAUSE replies", "STOP replies", "quarantined messages")


def _summary(report: ReportData) -> list[str]:
    s = report.summary
    rows = zip(LABELS, _figures(s.this_period), _figures(s.overall))
    states = ", ".join(f"{state} {n}" for state, n in s.states) or "no pairs yet"
    trend = f"{fmt.change(s.rating_change)} against the month before" if s.rating_change is not None else "-"
    return ["## Summary", "", *table(("", "this period", "overall"), rows), "",
            f"- Pairs by state: {states}", f"- Declined at the kickoff: {s.declined}",
            f"- Rating trend: {trend}"]


def _buckets(report: ReportData) -> list[str]:
    rows = [(b.label, b.planned, b.held, b.rating) for b in report.summary.by_bucket]
    if not rows:
        return ["## Sessions per month", "", "No session has taken place in this period yet."]
    return ["## Sessions per month", "", *table(("month", "planned", "held", "average rating"), rows)]


def _surveys(report: ReportData) -> list[str]:
    rows = [(s.question, s.by_milestone["first"], s.by_milestone["midpoint"], s.by_milestone["end"],
             fmt.change(s.change)) for s in report.summary.surveys]
    if not rows:
        return ["## Surveys", "", "No survey answers in this period yet."]
    head = ("question", "after the first session", "midpoint", "end", "change")
    return ["## Surveys (average, 1-5)", "", *table(head, rows)]


def _tracks(report: ReportData) -> list[str]:
    rows: list[tuple[object, ...]] = []
    for t in report.summary.tracks:
        if t.suppressed or t.sessions is None:
            rows.append((t.track, t.pairs, f"suppressed (fewer than {report.summary.min_group_size})", "", ""))
        else:
            rows.append((t.track, t.pairs, fmt.held(t.sessions), percent(t.sessions.attendance), t.rating))
    return ["## Tracks", "", *table(("track", "pairs", "held / planned", "attendance", "average rating"), rows)]


def _milestones(report: ReportData) -> list[str]:
    s = report.summary
    head = f"## Upcoming milestones (until {fmt.local(s.next_period.until, report.timezone)})"
    lines = [f"- {m.pair_id}: {m.milestone} (session {m.number} of {m.total}), {fmt.local(m.start, report.timezone)}"
             for m in s.upcoming]
    return [head, "", *(lines or ["None."])]


def _pairs(report: ReportData) -> list[str]:
    head = ("pair", "mentor", "mentee", "track", "state", "held / planned", "attendance", "rating",
            "goal progress", "survey first → end", "notes shared")
    rows = [(r.pair_id, r.mentor, r.mentee, r.track, r.state, fmt.held(r.sessions), percent(r.sessions.attendance),
             fmt.shared(r, fmt.mean(r.rating)), fmt.shared(r, fmt.progress(r.progress)), fmt.shared(r, fmt.survey(r)),
             "yes" if r.shares_notes else "no")
            for r in report.pairs]
    return ["## Pairs", "", fmt.PRIVATE_NOTE, "", *table(head, rows)]


def _notes(report: ReportData) -> list[str]:
    out = ["## Shared notes", ""]
    if not report.notes:
        return out + ["No pair has chosen to share its notes."]
    current = None
    for note in report.notes:
        if note.pair_id != current:
            current = note.pair_id
            out += [*([""] if out[-1] else []), f"### {note.pair_id}: {cell(report.people.get(note.pair_id, ''))}", ""]
        out += _note(note, report.timezone)
    return out


def _note(note: Note, zone: str) -> list[str]:
    lines = [f"- {fmt.day(note.when, zone)}, {note.role}, {note.source}:"]
    for label, text in note.lines:
        body = text.splitlines() or [""]
        lines.append(f"  - {label}: {body[0]}")
        lines += [f"    {line}".rstrip() for line in body[1:]]
    return lines
