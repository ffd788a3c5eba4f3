"""The state file's schema in one place: its vocabulary (``vocabulary``), its rows as typed
records (``docs``), and the two table helpers every reader and writer uses.

One home for what ``docs/state.md`` describes, so jobs, metrics, status, preview, purge and
consistency learn the schema here and never from each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rmdaemon.records.docs import InboxRow, Log, OutboxEntry, PairRecord
from rmdaemon.records.sessions import Session, SessionStatus
from rmdaemon.records.vocabulary import (ACTIVE, AWAITING, COMMANDS, DECLINED, ENDED, FINAL, FLAGS, INBOX, LOG_FIELDS,
                                         LOGS, MILESTONES, NO, OUTBOX, PAIRS, PAUSED, REQUESTS, SESSIONS, SURVEYS,
                                         YES, InboxOutcome, OutboxStatus, PairState, RepairState)
from rmdaemon.store import Store

__all__ = ["ACTIVE", "AWAITING", "COMMANDS", "DECLINED", "ENDED", "FINAL", "FLAGS", "INBOX", "LOG_FIELDS", "LOGS",
           "MILESTONES", "NO", "OUTBOX", "PAIRS", "PAUSED", "REQUESTS", "SESSIONS", "SURVEYS", "YES", "InboxOutcome",
           "InboxRow", "Log", "OutboxEntry", "OutboxStatus", "PairRecord", "PairState", "RepairState", "Session",
           "SessionStatus", "index", "logs", "outbox_keys", "pair_records", "save"]


def index(store: Store, table: str, key: str) -> dict[Any, dict]:
    """A whole table as a dict by ``key``: one read, then O(1) lookups for the rest of the job."""
    return {doc[key]: dict(doc) for doc in store.rows(table).values()}


def save(store: Store, table: str, key: str, docs: Iterable[dict]) -> None:
    """Upsert many docs by ``key`` with one table rewrite for updates and one for inserts."""
    tbl = store.table(table)
    existing = {doc[key]: doc_id for doc_id, doc in store.rows(table).items()}  # ids as stored (text): int() only for updates
    changed = {d[key]: d for d in docs}
    updates = {k: d for k, d in changed.items() if k in existing}
    if updates:
        tbl.update(lambda doc: doc.update(updates[doc[key]]), doc_ids=[int(existing[k]) for k in updates])
    inserts = [d for k, d in changed.items() if k not in existing]
    if inserts:
        tbl.insert_multiple(inserts)


def logs(store: Store) -> list[Log]:
    return [Log.from_doc(doc) for doc in store.rows(LOGS).values()]


def outbox_keys(store: Store, *statuses: OutboxStatus) -> set[str]:
    """Keys of the outbox entries in any of ``statuses`` (all of them without): every job asks
    this of a table that grows with every message, so no record is built for it."""
    rows = store.rows(OUTBOX).values()
    if not statuses:
        return {doc["key"] for doc in rows}
    return {doc["key"] for doc in rows if doc.get("status") in statuses}


def pair_records(store: Store) -> dict[str, PairRecord]:
    """The pairs table as records by pair id."""
    return {doc["pair_id"]: PairRecord.from_doc(doc) for doc in store.rows(PAIRS).values()}
