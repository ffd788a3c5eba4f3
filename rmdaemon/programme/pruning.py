"""Forget what only proves "done already" once nothing can ask again: outbox keys and inbox ids
older than ``[storage] prune_after_days``. Without it they grow with every email and reply for as
long as the programme runs (bench/growth.py: two years of 1,000 pairs).

An outbox key stops a message going out twice only while some job could build that message
again. So a key goes only when it is older than the window, no longer pending (a pending key is
the intent a crash left behind), and its job cannot offer it again:

- an agenda names a session that has started by then (none goes out for a session that has
  started); kickoffs, surveys, certificates and notices are remembered in the pair's own record
  (its row, ``milestones``, its emptied ``notices`` queue);
- the newest digest key stays: the next digest starts where it ended;
- every other key of a pair (nudges, alerts, repair offers, check-ins, forwarded flags: a pair can
  go on needing them for longer than any window) only once the pair has
  been over (``ended``/``declined``) for the whole window; keys of no pair (confirmations) stay.

An inbox id stops a message being read twice only while the message can come back. Every backend
marks what it handled (local: moved to ``cur/``; IMAP: a keyword; Exchange and Graph: a category),
so what comes back is a copy: a redelivery, or a message whose mark failed. The inbox job
therefore sets aside (quarantines, with the reason) any message not remembered whose Date is
before the pruned horizon plus a day of clock skew (``forgotten_before``), and takes a log's
Message-ID as read whatever the inbox table still holds. Quarantine rows, and released ones,
stay: they are the admin's to-do list and count in reports.

All of it is one write of the state file, with the horizon in ``_meta`` ``prune``: a crash
before it prunes nothing, after it everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from rmdaemon.records import (DECLINED, ENDED, FINAL, INBOX, OUTBOX, InboxOutcome, InboxRow, OutboxEntry, PairRecord,
                              pair_records)
from rmdaemon.store import Store

META = "prune"
SKEW = timedelta(days=1)  # how far a sender's Date may run ahead of our clock
BY_AGE = frozenset({"agenda", "kickoff", "survey", "certificate", "notice"})


def prune(store: Store, now: datetime, days: int) -> dict[str, int]:
    """Remove what can be forgotten; returns how many outbox and inbox rows went (0 days: none)."""
    if days <= 0:
        return {"outbox": 0, "inbox": 0}
    cutoff = now - timedelta(days=days)
    outbox = _outbox_prunable(store.rows(OUTBOX), pair_records(store), cutoff)
    inbox = _inbox_prunable(store.rows(INBOX), cutoff)
    if not outbox and not inbox:
        return {"outbox": 0, "inbox": 0}
    before = store.meta(META) or {}
    with store.deferred():  # one write: the rows and the horizon the inbox job judges copies by
        store.table(OUTBOX).remove(doc_ids=outbox)
        store.table(INBOX).remove(doc_ids=inbox)
        store.set_meta(META, {"at": now.isoformat(), "forgotten_before": (cutoff + SKEW).isoformat(),
                              "outbox": before.get("outbox", 0) + len(outbox),
                              "inbox": before.get("inbox", 0) + len(inbox)})
    return {"outbox": len(outbox), "inbox": len(inbox)}


def forgotten_before(store: Store) -> datetime | None:
    """Messages written before this may have been read and forgotten (None: nothing pruned yet)."""
    stamp = (store.meta(META) or {}).get("forgotten_before")
    return datetime.fromisoformat(stamp) if stamp else None


def pruned_count(store: Store, table: str) -> int:
    """How many rows of ``table`` pruning removed so far (``status`` adds them to what it counts)."""
    return (store.meta(META) or {}).get(table, 0)


def _outbox_prunable(rows: Mapping[str, dict], pairs: dict[str, PairRecord], cutoff: datetime) -> list[int]:
    stamp = cutoff.isoformat()
    digests = [doc["key"] for doc in rows.values() if doc.get("kind") == "digest" and doc.get("status") in FINAL]
    newest = max(digests, default=None)
    over = {pid for pid, doc in pairs.items()
            if doc.state in (ENDED, DECLINED) and doc.ended_at and doc.ended_at < stamp}
    found = []
    for doc_id, doc in rows.items():
        entry = OutboxEntry.from_doc(doc)
        if entry.status not in FINAL or not (entry.sent_at or entry.at or stamp) < stamp:
            continue
        if (entry.kind in BY_AGE or entry.kind == "digest" and entry.key != newest
                or entry.pair_id and (entry.pair_id in over or entry.pair_id not in pairs)):
            found.append(int(doc_id))
    return found


def _inbox_prunable(rows: Mapping[str, dict], cutoff: datetime) -> list[int]:
    stamp = cutoff.isoformat()
    return [int(doc_id) for doc_id, doc in rows.items()
            if (row := InboxRow.from_doc(doc)).at and row.at < stamp and not row.quarantine
            and row.outcome != InboxOutcome.QUARANTINE and not doc.get("released_at")]
