"""What every report format shows, gathered once: the summary, the per-pair rows, the notes the
pairs agreed to share; plus the few number formats all of them use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rmdaemon import compose, roster
from rmdaemon.programme import metrics
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

    @property
    def period_text(self) -> str:
        return period_text(self.summary.period, self.summary.now, ZoneInfo(self.timezone))


def gather(settings: Settings, now: datetime, since: datetime | None, until: datetime | None,
           questions: Sequence[compose.Question] = ()) -> ReportData:
    """Read the roster and a read-only view of the store (safe while the daemon runs)."""
    pairs = roster.load_roster(settings.roster_path, settings.program)
    with Store.open(settings.storage_path, writer=False) as store:
        snap = metrics.snapshot(store)
    rows = metrics.pair_table(snap, pairs, settings, now, since, until)
    return ReportData(
        programme=settings.program.name, timezone=settings.program.timezone,
        summary=metrics.programme_summary(snap, pairs, settings, now, since, until, questions=questions),
        pairs=rows, notes=metrics.shared_notes(snap, pairs, since, until, now=now),
        people={r.pair_id: f"{r.mentor} & {r.mentee}" for r in rows},
    )


def period_text(period: metrics.Period, now: datetime, zone: ZoneInfo) -> str:
    """``2027-01-01 to 2027-03-31`` (the last day shown is the day before --until)."""
    start = f"{period.since.astimezone(zone):%Y-%m-%d}" if period.since else "the start"
    if period.until == now:
        return f"{start} to now ({now.astimezone(zone):%Y-%m-%d %H:%M %Z})"
    return f"{start} to {(period.until - timedelta(days=1)).astimezone(zone):%Y-%m-%d}"


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
