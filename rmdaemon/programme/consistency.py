"""Invariants of the state file, checked as pure functions over its tables.

A crash may leave work *unfinished* (an outbox key ``pending``, a series not yet ``published``):
the next tick finishes it, so that is normal in the middle of a programme. What must never be
seen is state that no sequence of whole batches could produce: a row for a pair that does not
exist, a key recorded twice, a confirmed calendar version ahead of the wanted one, a
quarantined message without its raw bytes. The chaos harness (``bench/chaos.py``) runs these
after hundreds of ``kill -9``s; ``settled_problems`` adds what must hold after a clean run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from rmdaemon.errors import UserError
from rmdaemon.records import (COMMANDS, FLAGS, INBOX, LOGS, NO, OUTBOX, PAIRS, REQUESTS, SESSIONS, SURVEYS, YES,
                              InboxOutcome, OutboxStatus, PairState)
from rmdaemon.store import Store

Tables = Mapping[str, list[dict[str, Any]]]

TABLES = (PAIRS, SESSIONS, LOGS, SURVEYS, FLAGS, COMMANDS, REQUESTS, INBOX, OUTBOX)

SESSION_KINDS = ("kickoff", "session", "survey", "checkin", "repair")
TIME_BOUND = ("agenda", "nudge", "alert", "repair")
# Rows that name a pair; champion confirmations carry pair_id "" (they are about the programme).
PAIR_TABLES = (SESSIONS, LOGS, SURVEYS, FLAGS, COMMANDS, REQUESTS)


def _duplicates(rows: Iterable[dict], key: str) -> list[str]:
    counts = Counter(str(r.get(key)) for r in rows)
    return sorted(k for k, n in counts.items() if n > 1)


def _unique_keys(tables: Tables) -> list[str]:
    """Each keyed table holds one row per key: a second row means something was done twice."""
    keyed = {PAIRS: "pair_id", SESSIONS: "token", OUTBOX: "key", INBOX: "message_key", FLAGS: "id", REQUESTS: "id"}
    problems = []
    for table, key in keyed.items():
        for value in _duplicates(tables.get(table, []), key):
            problems.append(f"{table}: {key} {value!r} appears more than once")
    return problems


def _pair_problems(doc: dict) -> list[str]:
    pid = doc.get("pair_id")
    problems = []
    if doc.get("state") not in tuple(PairState):
        problems.append(f"pairs: {pid}: unknown state {doc.get('state')!r}")
    for address, answer in (doc.get("consent") or {}).items():
        if answer not in (YES, NO):
            problems.append(f"pairs: {pid}: consent of {address} is {answer!r}, not yes/no")
    series = doc.get("series")
    if series:
        problems += _series_problems(pid, series)
    return problems


def _series_problems(pid: str, series: dict) -> list[str]:
    """``published`` is the version a backend confirmed: it can lag ``sequence``, never lead it."""
    problems = []
    sequence, published = series.get("sequence"), series.get("published")
    if not isinstance(sequence, int) or sequence < 0:
        problems.append(f"pairs: {pid}: series sequence {sequence!r} is not a whole number ≥ 0")
    elif published is not None and (not isinstance(published, int) or published > sequence):
        problems.append(f"pairs: {pid}: series published {published!r} is ahead of sequence {sequence}")
    if not series.get("uid"):
        problems.append(f"pairs: {pid}: series without a uid")
    for key in series.get("cancel_occurrences") or []:
        if key not in (series.get("exdates") or []):
            problems.append(f"pairs: {pid}: occurrence {key} is to be cancelled but is not an EXDATE")
    return problems


def _series_uids(pairs: list[dict]) -> list[str]:
    """Two pairs sharing a series uid would update each other's calendars."""
    uids = [p["series"]["uid"] for p in pairs if p.get("series") and p["series"].get("uid")]
    return [f"pairs: series uid {uid} is used by more than one pair" for uid in _duplicates([{"u": u} for u in uids], "u")]


def _references(tables: Tables) -> list[str]:
    """Every row about a pair names a pair that exists; every log names a session that exists."""
    pair_ids = {p.get("pair_id") for p in tables.get(PAIRS, [])}
    tokens = {s.get("token") for s in tables.get(SESSIONS, [])}
    problems = []
    for table in PAIR_TABLES:
        for row in tables.get(table, []):
            pid = row.get("pair_id")
            if pid and pid not in pair_ids:
                problems.append(f"{table}: a row for pair {pid!r}, which is not in the pairs table")
    for row in tables.get(LOGS, []):
        if row.get("token") not in tokens:
            problems.append(f"logs: a log of pair {row.get('pair_id')!r} names session {row.get('token')!r}, which does not exist")
    return problems


def _rows_problems(tables: Tables) -> list[str]:
    problems = []
    for row in tables.get(SESSIONS, []):
        if row.get("kind") not in SESSION_KINDS:
            problems.append(f"sessions: {row.get('token')}: unknown kind {row.get('kind')!r}")
    for row in tables.get(OUTBOX, []):
        if row.get("status") not in tuple(OutboxStatus):
            problems.append(f"outbox: {row.get('key')}: unknown status {row.get('status')!r}")
    for row in tables.get(INBOX, []):
        if row.get("outcome") not in tuple(InboxOutcome):
            problems.append(f"inbox: {row.get('message_key')}: unknown outcome {row.get('outcome')!r}")
    return problems


def _meta_problems(meta: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, value in meta.items():
        if not key.startswith("job:"):
            continue
        for field in ("last_ok", "error_at", "next_due"):
            stamp = (value or {}).get(field)
            if stamp is not None and not _is_aware(stamp):
                problems.append(f"_meta: {key} {field} {stamp!r} is not an ISO 8601 time with an offset")
    return problems


def _is_aware(stamp: object) -> bool:
    try:
        return isinstance(stamp, str) and datetime.fromisoformat(stamp).tzinfo is not None
    except ValueError:
        return False


def problems(tables: Tables, meta: Mapping[str, Any] | None = None) -> list[str]:
    """Everything in the tables that whole batches could never have produced."""
    pairs = tables.get(PAIRS, [])
    found = _unique_keys(tables) + _series_uids(pairs) + _references(tables) + _rows_problems(tables)
    for doc in pairs:
        found += _pair_problems(doc)
    return found + _meta_problems(meta or {})


def settled_problems(tables: Tables, now: datetime) -> list[str]:
    """What must hold after a clean tick at ``now`` (no crash, the backend answering): nothing
    left ``pending`` from an earlier tick, and every live change confirmed by the backend.

    Mail that only makes sense before a moment (an agenda before its session, a nudge while the
    pair is behind, a repair offer before the declined session) is offered again only while it
    makes sense; a crash or outage across that moment leaves its key pending for good, which is
    right: a late agenda for a session that is over (or skipped) helps no one.
    """
    found = []
    for row in tables.get(OUTBOX, []):
        if row.get("kind") in TIME_BOUND:
            continue
        if row.get("status") == OutboxStatus.PENDING and datetime.fromisoformat(row["at"]) < now:
            found.append(f"outbox: {row['key']} still pending since {row['at']}")
    for doc in tables.get(PAIRS, []):
        series = doc.get("series") or {}
        if series and (series.get("published") != series.get("sequence") or series.get("cancel_occurrences")):
            found.append(f"pairs: {doc['pair_id']}: series {series.get('uid')} sequence {series.get('sequence')} "
                         f"not confirmed by the backend (published {series.get('published')})")
    return found


def quarantine_problems(tables: Tables, folder: Path) -> list[str]:
    """A quarantined message keeps its raw bytes until retention or purge clears the name."""
    return [f"inbox: {row['message_key']}: quarantined file {row['quarantine']} is missing from {folder}"
            for row in tables.get(INBOX, []) if row.get("quarantine") and not (folder / row["quarantine"]).is_file()]


def read_tables(path: Path, job_names: Iterable[str] = ()) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """Every table of a state file as plain rows, and the named jobs' records (read-only: safe
    while the daemon runs)."""
    with Store.open(path, writer=False) as store:
        tables = {name: [dict(doc) for doc in store.table(name).all()] for name in TABLES}
        meta = {f"job:{name}": store.meta(f"job:{name}") for name in job_names}
    return tables, meta


def check_file(path: Path, quarantine: Path | None = None, job_names: Iterable[str] = ()) -> list[str]:
    """Load the state file and check it; a file that does not load is itself the problem."""
    try:
        tables, meta = read_tables(path, job_names)
    except UserError as e:
        return [str(e)]
    found = problems(tables, meta)
    if quarantine is not None:
        found += quarantine_problems(tables, quarantine)
    return found
