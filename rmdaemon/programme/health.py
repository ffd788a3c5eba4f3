"""Is a pair alive? Pure: from its stored sessions, logs and RSVPs, and the clock.

Relationships fizzle quietly (the article's first failure mode), so the signal is simple and
early: a session is *missed* when no log (or only "we didn't meet") arrives within the window
after it, or both people declined it; missed sessions in a row make a pair at risk, then
fizzling. One log brings it back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rmdaemon.config import NudgeSettings
from rmdaemon.model import Pair, RosterStatus
from rmdaemon.records import ACTIVE, AWAITING, Log, PairRecord

LABELS = {AWAITING: "awaiting consent"}


@dataclass(frozen=True)
class Health:
    state: str  # new, awaiting consent, active, at risk, fizzling, paused, ended, declined
    held: int  # sessions with a log saying they happened
    missed_in_a_row: int
    past: int  # sessions whose log window has closed
    last_log: str | None
    missed: tuple[str, ...] = field(default=())  # tokens of the missed sessions in the current run


@dataclass(frozen=True)
class PairRecords:
    """A pair's rows, gathered once per job from whole tables (see ``gather``)."""

    sessions: list[dict]
    logs: list[Log]


def gather(sessions: Iterable[dict], logs: Iterable[Log]) -> dict[str, PairRecords]:
    by_pair: dict[str, PairRecords] = {}
    for s in sessions:
        if s["kind"] == "session" and s.get("skipped") != "skip":  # SKIPped in time: neither held nor missed
            by_pair.setdefault(s["pair_id"], PairRecords([], [])).sessions.append(s)
    for log in logs:
        by_pair.setdefault(log.pair_id, PairRecords([], [])).logs.append(log)
    return by_pair


def pair_health(pair: Pair | None, doc: PairRecord | None, records: PairRecords | None, now: datetime,
                rules: NudgeSettings) -> Health:
    records = records or PairRecords([], [])
    held_tokens = {log.token for log in records.logs if log.attended}
    last_log = max((log.received for log in records.logs), default=None)
    window = timedelta(hours=rules.log_window_hours)
    closed = sorted((s for s in records.sessions
                     if datetime.fromisoformat(s["start"]) + window <= now
                     or (datetime.fromisoformat(s["start"]) <= now and _both_declined(pair, doc, s))),
                    key=lambda s: s["start"])
    run: list[str] = []
    for session in closed:
        run = [] if session["token"] in held_tokens else [*run, session["token"]]
    state = _state(pair, doc, len(run), rules)
    return Health(state=state, held=len(held_tokens), missed_in_a_row=len(run), past=len(closed),
                  last_log=last_log, missed=tuple(run))


def _both_declined(pair: Pair | None, doc: PairRecord | None, session: dict) -> bool:
    if pair is None or doc is None:
        return False
    key = session.get("planned") or session["start"]  # RSVPs name the occurrence by its planned start
    return all(doc.answer(p.address, key) == "DECLINED" for p in pair.people)


def _state(pair: Pair | None, doc: PairRecord | None, missed: int, rules: NudgeSettings) -> str:
    if pair is None:
        return "ended"
    if pair.status != RosterStatus.ACTIVE:
        return pair.status  # the roster's paused/ended wins
    if doc is None:
        return "new"
    state = doc.state
    if state == ACTIVE and missed >= rules.fizzling_after:
        return "fizzling"
    if state == ACTIVE and missed >= rules.at_risk_after:
        return "at risk"
    return LABELS.get(state, state)
