"""Programme outcomes as numbers, for the report and the champion's digest.

Nobody measures (the article's second failure mode), so these are the figures a programme is
judged by: sessions held against planned, attendance, ratings and their trend, goal progress,
survey scores before and after, opt-outs. Everything here is a pure function of table rows
(``snapshot`` is the one reader of the store), so the digest and the report cannot disagree.

Privacy lives here, not in the renderers, so no output format can forget it:
- a pair's notes (log bodies, learned, topics, next steps, survey free text) come out of
  ``shared_notes`` only when both people said SHARE NOTES;
- an average over fewer than ``[privacy] min_group_size`` people is a ``Score`` without a
  value ("suppressed (fewer than N)"), so a figure cannot point at one person.
Per-pair rows (``pair_table``) are for the admin: counts and scores, never notes.

Held / missed come from ``health.pair_health`` (the one definition), asked once per session.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from rmdaemon.programme import health, privacy
from rmdaemon.programme.sessions import planned_rows
from rmdaemon.compose import Question
from rmdaemon.config import NudgeSettings, Settings
from rmdaemon.errors import UserError
from rmdaemon.records import (ACTIVE, COMMANDS, DECLINED, ENDED, INBOX, LOGS, MILESTONES, PAIRS, SURVEYS,
                              InboxOutcome, InboxRow, Log, PairRecord, SessionStatus)
from rmdaemon.programme.series import milestone_sessions, pair_from_doc
from rmdaemon.model import Pair
from rmdaemon.store import Store

STATE_ORDER = ("new", "awaiting consent", "active", "at risk", "fizzling", "paused", "ended", "declined")
HELD, MISSED, OPEN, UPCOMING = "held", "missed", "open", "upcoming"
Row = TypeVar("Row")
SCALE = range(1, 6)


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Every table the figures need, read once: a consistent view even while the daemon writes."""

    pairs: dict[str, PairRecord]
    sessions: tuple[dict, ...]  # every occurrence that was to take place (``sessions.planned_rows``)
    logs: tuple[Log, ...]
    surveys: tuple[dict, ...]
    commands: tuple[dict, ...]
    inbox: tuple[InboxRow, ...]

    @classmethod
    def of(cls, pairs: Iterable[dict] = (), sessions: Iterable[dict] = (), logs: Iterable[dict] = (),
           surveys: Iterable[dict] = (), commands: Iterable[dict] = (), inbox: Iterable[dict] = ()) -> Snapshot:
        """From stored docs: the one place the figures' rows become records."""
        return cls(pairs={d["pair_id"]: PairRecord.from_doc(d) for d in pairs},
                   sessions=tuple(s for s in sessions if s.get("kind") == "session"),
                   logs=tuple(map(Log.from_doc, logs)), surveys=tuple(surveys), commands=tuple(commands),
                   inbox=tuple(map(InboxRow.from_doc, inbox)))


def snapshot(store: Store) -> Snapshot:
    def rows(name: str) -> tuple[dict, ...]:
        return tuple(dict(doc) for doc in store.table(name).all())

    pairs = rows(PAIRS)
    return Snapshot.of(pairs, _meetings(pairs), rows(LOGS), rows(SURVEYS), rows(COMMANDS), rows(INBOX))


def first_session(store: Store) -> str | None:
    """The start (UTC key) of the programme's first session, as ``snapshot`` would find it among
    its ``sessions``, without copying every table: the digest asks every tick, and before the
    first session nothing more (the snapshot was a third of an agenda tick's memory at 10,000 pairs)."""
    return min((row["start"] for row in _meetings(store.rows(PAIRS).values())), default=None)


def _meetings(pairs: Iterable[dict]) -> Iterable[dict]:
    """Every session that was to take place (``programme/sessions.py``): SKIPped and cancelled
    ones never were (declined ones were, and count as missed)."""
    for doc in pairs:
        yield from (row for row in planned_rows(PairRecord.from_doc(doc))
                    if row.get("skipped") != "skip" and not row.get("cancelled_at"))


# --- small values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """``[since, until)``; ``since`` None means from the first record."""

    since: datetime | None
    until: datetime

    def __contains__(self, stamp: str | datetime | None) -> bool:
        if stamp is None:
            return False
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
        return (self.since is None or moment >= self.since) and moment < self.until


@dataclass(frozen=True)
class Score:
    """An average of 1-5 answers. Behind fewer than ``floor`` people it has no value at all
    (not merely hidden), so no caller can print it by mistake."""

    mean: float | None  # None: no answers, or suppressed
    answers: int
    people: int
    floor: int

    @property
    def suppressed(self) -> bool:
        return 0 < self.people < self.floor

    def __str__(self) -> str:
        if self.suppressed:
            return f"suppressed (fewer than {self.floor})"
        if self.mean is None:
            return "no data"
        return f"{self.mean:.1f}"


def score(answers: Iterable[tuple[str, int]], floor: int) -> Score:
    """(person, value) pairs → Score; ``floor`` is the smallest group whose average may be shown."""
    values = list(answers)
    people = len({who for who, _ in values})
    if not values or people < floor:
        return Score(None, len(values), people, floor)
    return Score(sum(v for _, v in values) / len(values), len(values), people, floor)


@dataclass(frozen=True)
class Distribution:
    """How many answers gave 1, 2, 3, 4, 5; ``counts`` is None when suppressed."""

    counts: tuple[int, int, int, int, int] | None
    people: int
    floor: int

    @property
    def suppressed(self) -> bool:
        return 0 < self.people < self.floor


@dataclass(frozen=True)
class Sessions:
    """Meetings that started in a window: held (a log says so), missed (the log window closed
    without one, or both declined), open (still inside the log window)."""

    planned: int
    held: int
    missed: int
    open: int

    @property
    def attendance(self) -> float | None:
        """Held out of the sessions whose outcome is known; open ones are not yet counted against."""
        decided = self.held + self.missed
        return self.held / decided if decided else None


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


# --- the programme's pairs ----------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One pair as the figures see it: in the roster now, or only in the store (a removed row)."""

    pair_id: str
    roster: Pair | None  # None: no longer in the roster (counts as ended)
    people: Pair | None  # the roster's pair, else the snapshot stored at booking
    doc: PairRecord | None  # None: not started yet

    @property
    def track(self) -> str:
        return self.people.track if self.people and self.people.track else "-"

    @property
    def cohort(self) -> str:
        return self.people.cohort if self.people and self.people.cohort else "-"

    @property
    def shares_notes(self) -> bool:
        """Both people said SHARE NOTES (and neither said PRIVATE since)."""
        return privacy.shares_notes(self.people, self.doc.share_notes if self.doc else None)


def members(snap: Snapshot, pairs: Sequence[Pair]) -> list[Member]:
    """Roster pairs in roster order, then pairs only the store remembers, by id."""
    found = [Member(p.pair_id, p, p, snap.pairs.get(p.pair_id)) for p in pairs]
    listed = {p.pair_id for p in pairs}
    for pair_id in sorted(set(snap.pairs) - listed):
        doc = snap.pairs[pair_id]
        people = pair_from_doc(doc.pair) if doc.pair else None
        found.append(Member(pair_id, None, people, doc))
    return found


def select(snap: Snapshot, pairs: Sequence[Pair], track: str | None = None,
           cohort: str | None = None) -> tuple[Snapshot, list[Pair]]:
    """Only the pairs of one track and/or cohort (case-insensitive), roster and store alike; every
    figure computed from the result is that group's. An unknown name is the admin's typo: say
    which names there are."""
    everyone = members(snap, pairs)
    chosen = everyone
    for flag, wanted, of in (("--track", track, lambda m: m.track), ("--cohort", cohort, lambda m: m.cohort)):
        if wanted is None:
            continue
        known = sorted({of(m) for m in everyone} - {"-"})
        chosen = [m for m in chosen if of(m).casefold() == wanted.strip().casefold()]
        if wanted.strip().casefold() not in {k.casefold() for k in known}:
            listed = ", ".join(known) or "none (no row fills in that column)"
            raise UserError(f"{flag} {wanted!r}: no pair has it; the roster has {listed}")
    ids = {m.pair_id for m in chosen}
    kept = Snapshot(pairs={k: v for k, v in snap.pairs.items() if k in ids},
                    sessions=tuple(s for s in snap.sessions if s["pair_id"] in ids),
                    logs=tuple(log for log in snap.logs if log.pair_id in ids),
                    surveys=tuple(r for r in snap.surveys if r["pair_id"] in ids),
                    commands=tuple(c for c in snap.commands if c.get("pair_id") in ids),
                    inbox=tuple(m for m in snap.inbox if m.pair_id in ids))
    return kept, [p for p in pairs if p.pair_id in ids]


def session_outcomes(snap: Snapshot, by_id: dict[str, Member], rules: NudgeSettings,
                     now: datetime) -> dict[str, str]:
    """token → held / missed / open / upcoming, from each pair's sessions (``health``: one definition)."""
    logs = health.gather(snap.logs)
    window = timedelta(hours=rules.log_window_hours)
    out: dict[str, str] = {}
    for pair_id, rows in group_by(snap.sessions, lambda s: s["pair_id"]).items():
        m = by_id.get(pair_id)
        doc = (m.doc if m else None) or snap.pairs.get(pair_id) or PairRecord(pair_id, ENDED)
        for s in health.pair_sessions(m.people if m else None, doc, logs.get(pair_id), now, rules, rows):
            out[s.token] = (UPCOMING if s.start > now else HELD if s.status is SessionStatus.HELD
                            else MISSED if health.counts_as_missed(s, now, window) else OPEN)
    return out


def group_by(rows: Iterable[Row], key: Callable[[Row], str]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return grouped


def count_sessions(sessions: Iterable[dict], outcomes: dict[str, str], period: Period) -> Sessions:
    found = Counter(outcomes[s["token"]] for s in sessions if s["start"] in period)
    return Sessions(planned=found[HELD] + found[MISSED] + found[OPEN], held=found[HELD], missed=found[MISSED],
                    open=found[OPEN])


def _scale(value: object) -> int | None:
    """A 1-5 answer, or None (text, booleans and out-of-range numbers are not scores)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value in SCALE else None


def ratings(logs: Iterable[Log], period: Period) -> list[tuple[str, int]]:
    """(person, rating) of every log about a session that started in the period."""
    found = []
    for log in logs:
        value = _scale(log.field("rating"))
        if value is not None and log.session_start in period:
            found.append((log.sender, value))
    return found


def progress(logs: Iterable[Log], period: Period) -> list[tuple[str, int]]:
    """(person, goal progress 1-5) in the order they were reported, within the period."""
    found = [(log.received, log.sender, _scale(log.field("progress"))) for log in logs
             if log.session_start in period]
    return [(who, value) for _, who, value in sorted(found, key=lambda f: f[0]) if value is not None]


def latest_each(answers: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Each person's last answer: progress is where someone is now, not an average of the way there."""
    return list({who: (who, value) for who, value in answers}.values())


# --- figures for one window ---------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The headline numbers of one window (the period, or the whole programme so far)."""

    sessions: Sessions
    rating: Score
    progress: Score  # each person's latest goal progress, averaged
    quarantined: int  # inbox messages set aside (raw bytes kept) for the admin to look at
    stopped: int  # STOP commands
    paused: int  # PAUSE commands from the pairs (a champion's PAUSE is the admin's own act)


def figures(snap: Snapshot, outcomes: dict[str, str], period: Period, floor: int) -> Figures:
    commands = Counter(c["command"] for c in snap.commands if c.get("at") in period)
    return Figures(
        sessions=count_sessions(snap.sessions, outcomes, period),
        rating=score(ratings(snap.logs, period), floor),
        progress=score(latest_each(progress(snap.logs, period)), floor),
        quarantined=sum(1 for m in snap.inbox if m.outcome == InboxOutcome.QUARANTINE and m.at in period),
        stopped=commands["stop"], paused=commands["pause"],
    )


@dataclass(frozen=True)
class Bucket:
    """One month (``2027-03``) or digest week (``2027-W09``) in the programme's time zone."""

    label: str
    planned: int
    held: int
    rating: Score


def bucket_label(moment: datetime, zone: ZoneInfo, by: str) -> str:
    local = moment.astimezone(zone)
    if by == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local:%Y-%m}"


def _labels(first: datetime, last: datetime, zone: ZoneInfo, by: str) -> list[str]:
    """Every label from ``first`` to ``last``, so a quiet month shows as a zero, not a gap.
    Steps of 7 or 28 days land in each week or month in turn (no month is shorter than 28 days)."""
    step, end = timedelta(days=7 if by == "week" else 28), bucket_label(last, zone, by)
    labels, moment = [], first
    while (label := bucket_label(moment, zone, by)) <= end:
        if label not in labels:
            labels.append(label)
        moment += step
    return labels


def buckets(snap: Snapshot, outcomes: dict[str, str], period: Period, zone: ZoneInfo, by: str,
            floor: int) -> tuple[Bucket, ...]:
    """Sessions held against planned, and the average rating, per month or week of the period."""
    started = [s for s in snap.sessions if s["start"] in period and outcomes[s["token"]] != UPCOMING]
    if not started:
        return ()
    starts = sorted(datetime.fromisoformat(s["start"]) for s in started)
    per: dict[str, Counter[str]] = {label: Counter() for label in _labels(starts[0], starts[-1], zone, by)}
    for s in started:
        per[bucket_label(datetime.fromisoformat(s["start"]), zone, by)][outcomes[s["token"]]] += 1
    rated: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for log in snap.logs:
        value = _scale(log.field("rating"))
        if value is not None and log.session_start in period:
            rated[bucket_label(datetime.fromisoformat(log.session_start), zone, by)].append((log.sender, value))
    return tuple(Bucket(label, c[HELD] + c[MISSED] + c[OPEN], c[HELD], score(rated.get(label, []), floor))
                 for label, c in per.items())


def rating_change(trend: Sequence[Bucket]) -> float | None:
    """Latest shown average minus the one before it (suppressed buckets are skipped, not guessed)."""
    shown = [b.rating.mean for b in trend if b.rating.mean is not None]
    return shown[-1] - shown[-2] if len(shown) >= 2 else None


def distribution(answers: list[tuple[str, int]], floor: int) -> Distribution:
    people = len({who for who, _ in answers})
    if people < floor:
        return Distribution(None, people, floor)
    found = Counter(value for _, value in answers)
    return Distribution((found[1], found[2], found[3], found[4], found[5]), people, floor)


# --- surveys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyScore:
    """One scale question's average at each milestone; ``first`` vs ``end`` is the before/after."""

    question: str  # id
    text: str
    by_milestone: dict[str, Score]

    @property
    def change(self) -> float | None:
        before, after = self.by_milestone["first"].mean, self.by_milestone["end"].mean
        return after - before if before is not None and after is not None else None


def survey_scores(surveys: Iterable[dict], period: Period, floor: int,
                  questions: Sequence[Question] = ()) -> tuple[SurveyScore, ...]:
    """Per scale question and milestone; without the question list, any numeric answer is a scale."""
    answers: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for row in surveys:
        if row.get("received") not in period:
            continue
        for qid, value in (row.get("answers") or {}).items():
            if _scale(value) is not None:
                answers[(qid, row["milestone"])].append((row["from"], value))
    known = [(q.id, q.text) for q in questions if q.kind == "scale"]
    listed = {qid for qid, _ in known}
    known += [(qid, qid) for qid in sorted({qid for qid, _ in answers} - listed)]
    return tuple(SurveyScore(qid, text, {m: score(answers.get((qid, m), []), floor) for m in MILESTONES})
                 for qid, text in known)


# --- tracks and milestones ----------------------------------------------------------------


@dataclass(frozen=True)
class TrackFigures:
    """A track's figures; a track of fewer than ``floor`` people shows its size only."""

    track: str
    pairs: int
    people: int
    suppressed: bool
    sessions: Sessions | None
    rating: Score | None
    progress: Score | None = None  # each person's latest goal progress, averaged
    completed: int = 0  # pairs that reached their last session


def tracks(snap: Snapshot, everyone: Sequence[Member], outcomes: dict[str, str], period: Period,
           floor: int, key: Callable[[Member], str] = lambda m: m.track) -> tuple[TrackFigures, ...]:
    """Per track (or per cohort with ``key``), side by side."""
    grouped: dict[str, list[Member]] = defaultdict(list)
    for m in everyone:
        grouped[key(m)].append(m)
    out = []
    for track, group in sorted(grouped.items()):
        ids = {m.pair_id for m in group}
        people = len({p.address for m in group if m.people for p in m.people.people})
        if people < floor:
            out.append(TrackFigures(track, len(group), people, True, None, None))
            continue
        sessions = count_sessions((s for s in snap.sessions if s["pair_id"] in ids), outcomes, period)
        mine = [log for log in snap.logs if log.pair_id in ids]
        out.append(TrackFigures(track, len(group), people, False, sessions, score(ratings(mine, period), floor),
                                score(latest_each(progress(mine, period)), floor),
                                sum(1 for m in group if m.doc and m.doc.completed)))
    return tuple(out)


@dataclass(frozen=True)
class Milestone:
    pair_id: str
    milestone: str  # midpoint | end
    number: int  # the session that marks it
    total: int
    start: datetime


def upcoming_milestones(everyone: Sequence[Member], settings: Settings, window: Period) -> tuple[Milestone, ...]:
    """Live pairs whose midpoint or last session starts inside ``window`` (the next period): the
    sessions the surveys job counts (``programme/sessions.py``: skipped ones keep their numbers),
    so a digest never announces a milestone for a day the survey will not go out on."""
    found = []
    for m in everyone:
        if m.roster is None or m.doc is None or m.doc.state != ACTIVE or m.doc.live_series is None:
            continue
        rows = {r["number"]: r for r in planned_rows(m.doc) if "cancelled_at" not in r}
        total = max(rows, default=0)
        for name, number in milestone_sessions(total).items():
            start = datetime.fromisoformat(rows[number]["start"]) if name != "first" else None
            if start is not None and start in window:
                found.append(Milestone(m.pair_id, name, number, total, start))
    return tuple(sorted(found, key=lambda x: (x.start, x.pair_id)))


# --- what callers use ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeSummary:
    now: datetime
    period: Period
    min_group_size: int
    states: tuple[tuple[str, int], ...]  # (state, pairs), now
    this_period: Figures
    overall: Figures  # from the first record to now
    declined: int  # pairs where someone said no at the kickoff (no date is kept for it)
    by_bucket: tuple[Bucket, ...]  # held vs planned and rating per month (or week) of the period
    rating_change: float | None  # latest bucket's average minus the previous one
    rating_distribution: Distribution
    surveys: tuple[SurveyScore, ...]
    tracks: tuple[TrackFigures, ...]
    upcoming: tuple[Milestone, ...]  # midpoints and ends in the next period
    next_period: Period


def programme_summary(snap: Snapshot, pairs: Sequence[Pair], settings: Settings, now: datetime,
                      since: datetime | None = None, until: datetime | None = None, *, by: str = "month",
                      horizon: timedelta | None = None,
                      questions: Sequence[Question] = ()) -> ProgrammeSummary:
    """Aggregates only: safe for the champion. ``by`` is "month" or "week" (the digest's trend);
    ``horizon`` is how far ahead milestones are listed (default: the period's length, else 7 days)."""
    period = Period(since, until or now)
    floor = settings.privacy.min_group_size
    everyone = members(snap, pairs)
    outcomes = session_outcomes(snap, {m.pair_id: m for m in everyone}, settings.nudges, now)
    trend = buckets(snap, outcomes, period, ZoneInfo(settings.program.timezone), by, floor)
    ahead = horizon or (period.until - since if since else timedelta(days=7))
    nxt = Period(period.until, period.until + ahead)
    return ProgrammeSummary(
        now=now, period=period, min_group_size=floor,
        states=_states(snap, everyone, settings.nudges, now),
        this_period=figures(snap, outcomes, period, floor),
        overall=figures(snap, outcomes, Period(None, now), floor),
        declined=sum(1 for d in snap.pairs.values() if d.state == DECLINED),
        by_bucket=trend, rating_change=rating_change(trend),
        rating_distribution=distribution(ratings(snap.logs, period), floor),
        surveys=survey_scores(snap.surveys, period, floor, questions),
        tracks=tracks(snap, everyone, outcomes, period, floor),
        upcoming=upcoming_milestones(everyone, settings, nxt), next_period=nxt,
    )


def _health(snap: Snapshot, everyone: Sequence[Member], rules: NudgeSettings, now: datetime) -> dict[str, health.Health]:
    records = health.gather(snap.logs)
    rows = group_by(snap.sessions, lambda s: s["pair_id"])
    return {m.pair_id: health.pair_health(m.roster, m.doc, records.get(m.pair_id), now, rules, health.pair_sessions(
        m.people, m.doc, records.get(m.pair_id), now, rules, rows.get(m.pair_id, []))) for m in everyone}


def _states(snap: Snapshot, everyone: Sequence[Member], rules: NudgeSettings, now: datetime) -> tuple[tuple[str, int], ...]:
    found = Counter(h.state for h in _health(snap, everyone, rules, now).values())
    order = [s for s in STATE_ORDER if found[s]] + sorted(set(found) - set(STATE_ORDER))
    return tuple((state, found[state]) for state in order)


@dataclass(frozen=True)
class PairRow:
    """One pair for the admin: counts and scores of the period, its state now; never notes."""

    pair_id: str
    mentor: str  # names
    mentee: str
    track: str
    state: str
    sessions: Sessions
    rating: float | None  # the pair's average rating (both people)
    ratings: int
    progress: tuple[int, ...]  # goal progress answers (1-5) in the order they came
    survey: dict[str, float | None]  # milestone → average of the pair's scale answers
    shares_notes: bool
    cohort: str = "-"


def pair_table(snap: Snapshot, pairs: Sequence[Pair], settings: Settings, now: datetime,
               since: datetime | None = None, until: datetime | None = None) -> list[PairRow]:
    period = Period(since, until or now)
    everyone = members(snap, pairs)
    outcomes = session_outcomes(snap, {m.pair_id: m for m in everyone}, settings.nudges, now)
    states = _health(snap, everyone, settings.nudges, now)
    sessions, surveys = (group_by(rows, lambda r: r["pair_id"]) for rows in (snap.sessions, snap.surveys))
    logs = group_by(snap.logs, lambda log: log.pair_id)
    return [_pair_row(m, states[m.pair_id].state, count_sessions(sessions.get(m.pair_id, []), outcomes, period),
                      logs.get(m.pair_id, []), surveys.get(m.pair_id, []), period) for m in everyone]


def _pair_row(m: Member, state: str, counted: Sessions, logs: list[Log], surveys: list[dict], period: Period) -> PairRow:
    """A pair's row. Its rating, goal progress and survey scores are one or two people's own
    answers, so they are left out (None) unless both said SHARE NOTES: the summary's group-size
    rule would mean nothing if the per-pair rows printed what it hides."""
    if not m.shares_notes:
        logs, surveys = [], []
    rated = [value for _, value in ratings(logs, period)]
    survey: dict[str, float | None] = {}
    for milestone in MILESTONES:
        values = [v for row in surveys if row["milestone"] == milestone and row.get("received") in period
                  for v in map(_scale, (row.get("answers") or {}).values()) if v is not None]
        survey[milestone] = sum(values) / len(values) if values else None
    return PairRow(
        pair_id=m.pair_id, mentor=m.people.mentor.name if m.people else "-",
        mentee=m.people.mentee.name if m.people else "-", track=m.track, state=state, sessions=counted,
        rating=sum(rated) / len(rated) if rated else None, ratings=len(rated),
        progress=tuple(value for _, value in progress(logs, period)), survey=survey, shares_notes=m.shares_notes,
        cohort=m.cohort)


@dataclass(frozen=True)
class Note:
    """What a pair wrote, for pairs that both said SHARE NOTES; ``lines`` are (label, text)."""

    pair_id: str
    when: str  # the session's start (logs) or when the answers came (surveys), ISO UTC
    role: str  # mentor | mentee
    source: str  # session | survey <milestone>
    lines: tuple[tuple[str, str], ...]


def shared_notes(snap: Snapshot, pairs: Sequence[Pair], since: datetime | None = None,
                 until: datetime | None = None, *, now: datetime) -> list[Note]:
    """The only way notes leave the store for a report or digest: both people must have opted in."""
    period = Period(since, until or now)
    sharing = {m.pair_id for m in members(snap, pairs) if m.shares_notes}
    notes = [_log_note(log) for log in snap.logs if log.pair_id in sharing and log.session_start in period]
    notes += [_survey_note(row) for row in snap.surveys if row["pair_id"] in sharing and row.get("received") in period]
    return sorted((n for n in notes if n.lines), key=lambda n: (n.pair_id, n.when, n.role))


def _log_note(log: Log) -> Note:
    """The text the person wrote, whole; the parsed fields only when there is no text (they come from it)."""
    body = (log.body or "").strip()
    lines = [("notes", body)] if body else [
        ("topics", ", ".join(log.field("topics") or [])), ("learned", log.field("learned") or ""),
        ("next steps", "; ".join(log.field("next_steps") or []))]
    return Note(log.pair_id, log.session_start or "", log.role, "session",
                tuple((label, text) for label, text in lines if text))


def _survey_note(row: dict) -> Note:
    texts = tuple((qid, value.strip()) for qid, value in (row.get("answers") or {}).items()
                  if isinstance(value, str) and value.strip())
    return Note(row["pair_id"], row["received"], row.get("role", ""), f"survey {row['milestone']}", texts)
