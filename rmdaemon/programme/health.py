"""Is a pair alive? Pure: from its sessions (``programme/sessions.py``: the series, logs, RSVPs
and the clock).

Relationships fizzle quietly (the article's first failure mode), so the signal is simple and
early: a session is *missed* when no log (or only "we didn't meet") arrives within the window
after it, or it was declined and nobody moved it; missed sessions in a row make a pair at risk,
then fizzling. One log brings it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rmdaemon.config import NudgeSettings
from rmdaemon.model import Pair, RosterStatus
from rmdaemon.programme import sessions
from rmdaemon.programme.series import pair_from_doc
from rmdaemon.records import ACTIVE, AWAITING, Log, PairRecord, Session, SessionStatus

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
    """A pair's logs, gathered once per job from the whole table (see ``gather``)."""

    logs: list[Log]


def gather(logs: Iterable[Log]) -> dict[str, PairRecords]:
    by_pair: dict[str, PairRecords] = {}
    for log in logs:
        by_pair.setdefault(log.pair_id, PairRecords([])).logs.append(log)
    return by_pair


def pair_sessions(pair: Pair | None, doc: PairRecord | None, records: PairRecords | None, now: datetime,
                  rules: NudgeSettings, rows: list[dict] | None = None) -> list[Session]:
    """The pair's sessions at ``now`` (``programme/sessions.py``; ``rows``: its planned rows when
    the caller has them), people from the roster or the stored snapshot."""
    if doc is None:
        return []
    people = pair or (pair_from_doc(doc.pair) if doc.pair else None)
    addresses = [p.address for p in people.people] if people else []
    rows = sessions.planned_rows(doc) if rows is None else rows
    return sessions.statuses(rows, doc, addresses, (records or PairRecords([])).logs, now,
                             timedelta(hours=rules.log_window_hours))


def may_be_missing(rows: Sequence[sessions.Row], now: datetime, rules: NudgeSettings) -> bool:
    """Whether the log windows of enough of these sessions (``sessions.planned_rows``) have closed
    by ``now`` for the pair to have missed ``at_risk_after`` in a row (a session counts as missed
    only once its window closed: ``counts_as_missed``). When not, the pair is not at risk, and the
    nudges job need not work out its sessions' statuses to know it (every pair's, every tick)."""
    window = timedelta(hours=rules.log_window_hours)
    return sum(datetime.fromisoformat(row["start"]) + window <= now for row in rows) >= rules.at_risk_after


def any_started(rows: Sequence[sessions.Row], now: datetime) -> bool:
    """Whether any of these sessions had started by ``now``: before then none is held or over."""
    return any(datetime.fromisoformat(row["start"]) <= now for row in rows)


def counts_as_missed(session: Session, now: datetime, window: timedelta) -> bool:
    """Missed, or declined and nobody moved it, once its log window has closed."""
    return session.status is SessionStatus.MISSED or (
        session.status is SessionStatus.DECLINED and session.start + window <= now)


def pair_health(pair: Pair | None, doc: PairRecord | None, records: PairRecords | None, now: datetime,
                rules: NudgeSettings, found: list[Session] | None = None) -> Health:
    """``found``: the pair's sessions when the caller already has them."""
    found = pair_sessions(pair, doc, records, now, rules) if found is None else found
    closed, run = missed_run(found, now, rules)
    stamp = now.isoformat()
    last_log = max((log.received for log in (records.logs if records else []) if log.received <= stamp), default=None)
    state = _state(pair, doc, len(run), rules)
    return Health(state=state, held=sum(s.status is SessionStatus.HELD for s in found), missed_in_a_row=len(run),
                  past=len(closed), last_log=last_log, missed=tuple(run))


def missed_run(found: list[Session], now: datetime, rules: NudgeSettings) -> tuple[list[Session], list[str]]:
    """The sessions whose outcome is known at ``now`` (held, or missed once the log window
    closed), in order, and the tokens of the missed ones since the last held."""
    window = timedelta(hours=rules.log_window_hours)
    closed = sorted((s for s in found if s.status is SessionStatus.HELD or counts_as_missed(s, now, window)),
                    key=lambda s: s.start)
    run: list[str] = []
    for session in closed:
        run = [] if session.status is SessionStatus.HELD else [*run, session.token]
    return closed, run


def run_state(missed: int, rules: NudgeSettings) -> str:
    """A meeting pair's state from its missed sessions in a row: active, at risk or fizzling."""
    if missed >= rules.fizzling_after:
        return "fizzling"
    return "at risk" if missed >= rules.at_risk_after else "active"


def _state(pair: Pair | None, doc: PairRecord | None, missed: int, rules: NudgeSettings) -> str:
    if pair is None:
        return "ended"
    if pair.status != RosterStatus.ACTIVE:
        return pair.status  # the roster's paused/ended wins
    if doc is None:
        return "new"
    state = doc.state
    return run_state(missed, rules) if state == ACTIVE else LABELS.get(state, state)
