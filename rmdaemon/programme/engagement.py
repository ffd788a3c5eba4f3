"""Is the programme working, week by week? The engagement funnel, the pairs' states over time,
sessions planned against held, and the pairs that need a word now.

Counts of pairs and sessions only (no answers, no words), so they are shown whatever the
group's size: a three-pair programme still sees how far each step got. Pure, like ``metrics``:
from a ``metrics.Snapshot``, the members and the clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rmdaemon.config import NudgeSettings
from rmdaemon.programme import health
from rmdaemon.programme.metrics import HELD, Member, Period, Sessions, Snapshot, count_sessions, group_by
from rmdaemon.programme.series import utc_key
from rmdaemon.records import DECLINED, PAUSED, PairRecord

STEPS = ("invited", "both consented", "booked", "first session held", "midpoint reached", "completed")
WEEK_STATES = ("active", "at risk", "fizzling", "paused", "ended")
ATTENTION = ("at risk", "fizzling")
COMMANDS = ("NUDGE", "ASK-MENTOR", "PAUSE")  # what the champion may reply for a pair (``programme/champion.py``)


# --- the funnel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    pairs: int  # pairs that got this far
    lost: int  # pairs that got to the step before and not to this one


@dataclass(frozen=True)
class Funnel:
    steps: tuple[Step, ...]
    declined: int  # someone said no at the kickoff
    paused: int  # paused now
    stopped: int  # pairs where someone replied STOP
    furthest: dict[str, str]  # pair id → the last step it reached ("" for none: not invited yet)


def _reached(m: Member, met: set[str], held: set[str]) -> list[bool]:
    """Which steps one pair reached, in STEPS order (facts the jobs recorded, not guesses);
    ``met``: pairs with a session to take place, ``held``: pairs with one held."""
    doc = m.doc
    if doc is None:
        return [False] * len(STEPS)
    spans = [*(doc.earlier_series or []), *([doc.series] if doc.series else [])]
    booked = m.pair_id in met or any(s.get("plan") for s in spans)
    people = m.people.people if m.people else ()
    consented = booked or (bool(people) and all(doc.consent.get(p.address) == "yes" for p in people))
    milestones = set(doc.milestones or ())
    return [True, consented, booked, m.pair_id in held, bool(milestones & {"midpoint", "end"}),
            doc.completed is not None]


def funnel(snap: Snapshot, everyone: Sequence[Member], outcomes: dict[str, str], states: dict[str, str]) -> Funnel:
    """invited → both consented → booked → first session held → midpoint reached → completed.
    A pair counts at a step only when it reached every step before it."""
    held = {s["pair_id"] for s in snap.sessions if outcomes.get(s["token"]) == HELD}
    met = {s["pair_id"] for s in snap.sessions}
    counts = [0] * len(STEPS)
    furthest: dict[str, str] = {}
    for m in everyone:
        furthest[m.pair_id] = ""
        for i, ok in enumerate(_reached(m, met, held)):
            if not ok:
                break
            counts[i] += 1
            furthest[m.pair_id] = STEPS[i]
    steps = tuple(Step(name, n, (counts[i - 1] - n) if i else 0) for i, (name, n) in enumerate(zip(STEPS, counts)))
    stopped = {c["pair_id"] for c in snap.commands if c.get("command") == "stop"}
    return Funnel(steps, declined=sum(1 for m in everyone if m.doc and m.doc.state == DECLINED),
                  paused=sum(1 for m in everyone if states.get(m.pair_id) == "paused"),
                  stopped=len(stopped & {m.pair_id for m in everyone}), furthest=furthest)


# --- weeks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """One week (or a run of quiet weeks collapsed into one: ``2027-W06 to W08``), in the
    programme's zone: the pairs by state at its end, and its sessions."""

    label: str
    weeks: int  # how many calendar weeks it stands for
    states: tuple[int, ...]  # pairs in each of WEEK_STATES at the end of the week
    sessions: Sessions

    @property
    def pairs(self) -> int:
        return sum(self.states)


def _monday(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), zone)


def _label(monday: datetime) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def state_at(m: Member, rows: list[dict], records: health.PairRecords | None, moment: datetime,
             rules: NudgeSettings) -> str | None:
    """The pair's state at ``moment`` from what the store dated: its completion, each series'
    cancellation (a pause until a later series replaced it; else the state it is in now) and its
    sessions as they stood then. None before its first session."""
    doc = m.doc
    if doc is None or not rows or rows[0]["start"] > utc_key(moment):
        return None
    stamp = utc_key(moment)
    if doc.completed and utc_key(datetime.fromisoformat(doc.completed)) <= stamp:
        return "ended"
    for series in [*(doc.earlier_series or []), *([doc.series] if doc.series else [])]:
        cut = series.get("cancelled_at") if series.get("cancelled") else None
        if cut and cut <= stamp and (not series.get("replaced") or stamp < series["replaced"]):
            return "paused" if series.get("replaced") or _off(m, doc) == "paused" else "ended"
    found = health.pair_sessions(m.people, doc, records, moment, rules, rows)
    return health.run_state(len(health.missed_run(found, moment, rules)[1]), rules)


def _off(m: Member, doc: PairRecord) -> str:
    """paused or ended: what a pair whose current series was cancelled is now."""
    roster_paused = m.roster is not None and m.roster.status == "paused"
    return "paused" if doc.state == PAUSED or roster_paused else "ended"


def weeks(snap: Snapshot, everyone: Sequence[Member], outcomes: dict[str, str], period: Period, zone: ZoneInfo,
          rules: NudgeSettings) -> tuple[Week, ...]:
    """Every week from the first session's (or ``period.since``) to the period's end; quiet
    weeks in a row (no session, no pair changing state) collapse into one."""
    first = min((s["start"] for s in snap.sessions), default=None)
    if first is None:
        return ()
    begin = max(filter(None, (datetime.fromisoformat(first), period.since)))
    if begin >= period.until:
        return ()
    rows = group_by(snap.sessions, lambda s: s["pair_id"])
    records = health.gather(snap.logs)
    found: list[Week] = []
    monday = _monday(begin, zone)
    while monday < period.until:
        nxt = datetime.combine(monday.date() + timedelta(days=7), time(0), zone)
        end = min(nxt, period.until)
        counted = Counter(state_at(m, rows.get(m.pair_id, []), records.get(m.pair_id), end - timedelta(seconds=1),
                                   rules) for m in everyone)
        week = Week(_label(monday), 1, tuple(counted[s] for s in WEEK_STATES),
                    count_sessions(snap.sessions, outcomes, Period(max(monday, begin), end)))
        found = _collapse(found, week)
        monday = nxt
    return tuple(found)


def _collapse(found: list[Week], week: Week) -> list[Week]:
    """Append ``week``, merged into the one before when both had no session and the same states."""
    last = found[-1] if found else None
    if last is None or week.sessions.planned or last.sessions.planned or week.states != last.states:
        return [*found, week]
    first = last.label.split(" to ")[0]
    merged = Week(f"{first} to {week.label.split('-')[1]}", last.weeks + 1, week.states, week.sessions)
    return [*found[:-1], merged]


# --- who needs a word now -----------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """A pair at risk or fizzling, for the champion: names and counts, never what they wrote."""

    pair_id: str
    mentor: str
    mentee: str
    state: str
    missed: int  # in a row
    held: int

    @property
    def commands(self) -> tuple[str, ...]:
        """The reply lines the digest offers for it (``NUDGE P01`` …)."""
        return tuple(f"{c} {self.pair_id}" for c in COMMANDS)


def attention(snap: Snapshot, everyone: Sequence[Member], rules: NudgeSettings, now: datetime) -> tuple[Attention, ...]:
    """At-risk and fizzling pairs in the roster now (the digest's list and the report's)."""
    records = health.gather(snap.logs)
    found = []
    for m in everyone:
        if m.roster is None or m.doc is None:
            continue
        h = health.pair_health(m.roster, m.doc, records.get(m.pair_id), now, rules)
        if h.state in ATTENTION:
            found.append(Attention(m.pair_id, m.roster.mentor.name, m.roster.mentee.name, h.state,
                                   h.missed_in_a_row, h.held))
    return tuple(found)
