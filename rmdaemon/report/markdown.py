"""The report as Markdown: readable in a terminal, pastes into a wiki or a ticket."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rmdaemon.programme.engagement import WEEK_STATES
from rmdaemon.programme.metrics import Figures, Note, percent
from rmdaemon.records import MILESTONES
from rmdaemon.report import data as fmt
from rmdaemon.report.data import ReportData, compare


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
           *([f"Only the pairs of {report.scope}."] if report.scope else []),
           "A pair's notes appear only when both people replied SHARE NOTES.", "",
           *([f"> {fmt.hidden_text(report)}", ""] if report.hidden else [])]
    out += _summary(report)
    for section in (_funnel, _attention, _weeks, _progress, _surveys, _adopted, _tracks, _buckets, _milestones,
                    _pairs, _notes):
        lines = section(report)
        out += ["", *lines] if lines else []
    return "\n".join(out).rstrip() + "\n"


def _figures(f: Figures) -> list[object]:
    return [fmt.held(f.sessions), percent(f.sessions.attendance), f.sessions.missed, f.sessions.open,
            fmt.shown(f.rating), fmt.shown(f.progress), f.paused, f.stopped, f.quarantined]


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


def _funnel(report: ReportData) -> list[str]:
    f = report.funnel
    first = f.steps[0].pairs if f.steps else 0
    rows = [(step.name, step.pairs, "" if i == 0 else step.lost, percent(step.pairs / first if first else None))
            for i, step in enumerate(f.steps)]
    return ["## Engagement funnel", "", *table(("step", "pairs", "lost since the step before", "of those invited"), rows),
            "", f"Beside the funnel: declined at the kickoff {f.declined}, paused now {f.paused}, stopped (STOP) {f.stopped}."]


def _attention(report: ReportData) -> list[str]:
    lines = [f"- **{a.pair_id}** {cell(a.mentor)} mentoring {cell(a.mentee)}: {a.state}, {a.missed} missed in a row, "
             f"{a.held} held. Reply to the weekly digest with: {', '.join(f'`{c}`' for c in a.commands)}"
             for a in report.attention]
    return ["## Attention needed now", "", *(lines or ["No pair needs attention now."])]


def _weeks(report: ReportData) -> list[str]:
    if not report.weeks:
        return ["## Health over time", "", "No pair has had its first session in this period yet."]
    rows = [(w.label, *w.states, w.sessions.planned, w.sessions.held, percent(w.sessions.attendance))
            for w in report.weeks]
    head = ("week", *WEEK_STATES, "planned", "held", "attendance")
    return ["## Health over time", "", "Pairs by state at the end of each week (from the week of their first session), "
            "and the week's sessions. Quiet weeks in a row are one line.", "", *table(head, rows)]


def _progress(report: ReportData) -> list[str]:
    rows = [(p.milestone, p.counts.people, *p.counts.counts, fmt.shown(p.mean))
            for p in report.outcomes.progress if p.counts.counts and any(p.counts.counts)]
    if not rows:
        return []
    return ["## Goal progress (people per answer, 1-5)", "",
            *table(("", "people", "1", "2", "3", "4", "5", "mean"), rows)]


def _surveys(report: ReportData) -> list[str]:
    out: list[str] = []
    for role, scores in report.outcomes.surveys.items():
        rows = [(q.question, *(fmt.shown(q.by_milestone[m]) for m in MILESTONES), fmt.change(q.change))
                for q in scores if any(v.mean is not None for v in q.by_milestone.values())]
        if rows:
            head = ("question", "after the first session", "midpoint", "end", "change")
            out += [*([""] if out else []), f"## {role.capitalize()}s' survey answers (average, 1-5)", "",
                    *table(head, rows)]
    return out


def _adopted(report: ReportData) -> list[str]:
    a = report.outcomes.adopted
    if a.suppressed or not a.answered:
        return []
    out = ["## Tools and practices adopted", "",
           f"{a.named} of {a.answered} mentees ({percent(a.share)}) named a tool or practice they adopted."]
    if a.top:
        out += ["", *table(("named most often (pairs who share their notes)", "mentees"), a.top)]
    return out


def _tracks(report: ReportData) -> list[str]:
    out: list[str] = []
    for title, groups in (("Tracks side by side", report.summary.tracks), ("Cohorts side by side", report.cohorts)):
        if groups:
            out += [*([""] if out else []), f"## {title}", "", *table(("", *(g.track for g in groups)), compare(groups))]
            if any(g.suppressed for g in groups):
                out += ["", f"\"-\": a group of fewer than {report.summary.min_group_size} people shows its number of "
                        "pairs only."]
    return out


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
