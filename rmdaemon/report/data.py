"""What every report format shows, gathered once: the summary, the per-pair rows, the notes the
pairs agreed to share; plus the few number formats all of them use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rmdaemon import compose, roster
from rmdaemon.model import Pair
from rmdaemon.programme import engagement, metrics, outcomes
from rmdaemon.programme.outcomes import Outcomes
from rmdaemon.config import Settings
from rmdaemon.programme.metrics import Note, PairRow, ProgrammeSummary
from rmdaemon.store import Store


@dataclass(frozen=True)
class ReportData:
    programme: str
    timezone: str
    summary: ProgrammeSummary
    pairs: list[PairRow]
    notes: list[Note]  # only pairs where both people said SHARE NOTES
    people: dict[str, str]  # pair_id → "mentor & mentee", to head a pair's shared notes
    funnel: engagement.Funnel
    weeks: tuple[engagement.Week, ...]
    attention: tuple[engagement.Attention, ...]  # at risk or fizzling now
    outcomes: Outcomes
    cohorts: tuple[metrics.TrackFigures, ...]  # empty when the roster has no cohort column filled in
    scope: str  # "track technology", when the report is about one track or cohort; "" for all

    @property
    def period_text(self) -> str:
        return period_text(self.summary.period, self.summary.now, ZoneInfo(self.timezone))

    @property
    def hidden(self) -> list[str]:
        """Every figure kept back for too few people, named once for the page's one notice."""
        s = self.summary
        found = [name for name, on in (("the average rating", s.this_period.rating.suppressed),
                                       ("the average goal progress", s.this_period.progress.suppressed),
                                       ("the ratings chart", s.rating_distribution.suppressed)) if on]
        found += outcomes.hidden(self.outcomes)
        small = [t.track for t in (*s.tracks, *self.cohorts) if t.suppressed]
        if small:
            found.append(f"the figures of {', '.join(small)} (only their number of pairs is shown)")
        return found


def gather(settings: Settings, now: datetime, since: datetime | None, until: datetime | None,
           questions: Sequence[compose.Question] = (), track: str | None = None,
           cohort: str | None = None) -> ReportData:
    """Read the roster and a read-only view of the store (safe while the daemon runs)."""
    pairs = roster.load_roster(settings.roster_path, settings.program)
    with Store.open(settings.storage_path, writer=False) as store:
        snap = metrics.snapshot(store)
    return assemble(snap, pairs, settings, now, since, until, questions, track, cohort)


def assemble(snap: metrics.Snapshot, pairs: Sequence[Pair], settings: Settings, now: datetime,
             since: datetime | None, until: datetime | None, questions: Sequence[compose.Question] = (),
             track: str | None = None, cohort: str | None = None) -> ReportData:
    """Every figure of the report from one snapshot (the digest hands its own)."""
    snap, pairs = metrics.select(snap, pairs, track, cohort)
    everyone = metrics.members(snap, pairs)
    outcome_of = metrics.session_outcomes(snap, {m.pair_id: m for m in everyone}, settings.nudges, now)
    rows = metrics.pair_table(snap, pairs, settings, now, since, until)
    period, floor = metrics.Period(since, until or now), settings.privacy.min_group_size
    zone = ZoneInfo(settings.program.timezone)
    cohorts = metrics.tracks(snap, everyone, outcome_of, period, floor, key=lambda m: m.cohort)
    return ReportData(
        programme=settings.program.name, timezone=settings.program.timezone,
        summary=metrics.programme_summary(snap, pairs, settings, now, since, until, questions=questions),
        pairs=rows, notes=metrics.shared_notes(snap, pairs, since, until, now=now),
        people={r.pair_id: f"{r.mentor} & {r.mentee}" for r in rows},
        funnel=engagement.funnel(snap, everyone, outcome_of, {r.pair_id: r.state for r in rows}),
        weeks=engagement.weeks(snap, everyone, outcome_of, period, zone, settings.nudges),
        attention=engagement.attention(snap, everyone, settings.nudges, now),
        outcomes=outcomes.outcomes(snap, everyone, period, floor, questions),
        cohorts=() if all(c.track == "-" for c in cohorts) else cohorts,
        scope=", ".join(f"{name} {value}" for name, value in (("track", track), ("cohort", cohort)) if value),
    )


def period_text(period: metrics.Period, now: datetime, zone: ZoneInfo) -> str:
    """``2027-01-01 to 2027-03-31`` (the last day shown is the day before --until)."""
    start = f"{period.since.astimezone(zone):%Y-%m-%d}" if period.since else "the start"
    if period.until == now:
        return f"{start} to now ({now.astimezone(zone):%Y-%m-%d %H:%M %Z})"
    return f"{start} to {(period.until - timedelta(days=1)).astimezone(zone):%Y-%m-%d}"


def hidden_text(report: ReportData) -> str:
    """The page's one word on suppression: what is left out, and why."""
    floor = report.summary.min_group_size
    return (f"Some figures stand on fewer than {floor} people ([privacy] min_group_size), so they are left out: "
            f"no one's answers should be recognisable. Not shown: {'; '.join(report.hidden)}. Counts of pairs and "
            "sessions, the funnel and the weekly states are shown whatever the size.")


def shown(found: metrics.Score) -> str:
    """An average, or "-" where there is none or it is kept back (the page's one notice says why)."""
    return "-" if found.suppressed or found.mean is None else f"{found.mean:.1f}"


def compare(groups: Sequence[metrics.TrackFigures]) -> list[tuple[object, ...]]:
    """Tracks (or cohorts) side by side: one row per figure, one column per group; a group too
    small to show gives its number of pairs only."""
    def row(label: str, value: Callable[[metrics.TrackFigures], object]) -> tuple[object, ...]:
        return (label, *("-" if g.suppressed else value(g) for g in groups))

    return [("pairs", *(g.pairs for g in groups)), row("completed", lambda g: g.completed),
            row("sessions held / planned", lambda g: held(g.sessions)),
            row("attendance", lambda g: metrics.percent(g.sessions.attendance)),
            row("average rating (1-5)", lambda g: shown(g.rating)),
            row("goal progress, latest (1-5)", lambda g: shown(g.progress))]


def mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def held(sessions: metrics.Sessions) -> str:
    return f"{sessions.held} / {sessions.planned}"


def progress(values: tuple[int, ...]) -> str:
    if not values:
        return "-"
    return str(values[0]) if len(values) == 1 else f"{values[0]} → {values[-1]}"


PRIVATE_NOTE = ("Rating, goal progress and survey scores are shown only for pairs whose two people both replied "
                "SHARE NOTES; the others say \"private\".")


def shared(row: PairRow, text: object) -> object:
    """``text`` for a pair that shares its notes, else "private" (see PRIVATE_NOTE)."""
    return text if row.shares_notes else "private"


def survey(row: PairRow) -> str:
    first, end = row.survey["first"], row.survey["end"]
    if first is None and end is None:
        return "-"
    return f"{mean(first)} → {mean(end)}"


def local(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%a %d %b %Y, %H:%M %Z}"


def day(stamp: str, zone: str) -> str:
    return f"{datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone)):%Y-%m-%d}"
