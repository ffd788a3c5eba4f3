"""Send exactly once: the record-before-send protocol every job uses for its emails.

A job writes the store in at most a few ``store.batch()`` blocks, never once per pair: TinyDB
rewrites a whole table per operation, so per-pair writes would make a tick quadratic in the
number of pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from rmdaemon.backends.base import settle
from rmdaemon.errors import BackendError
from rmdaemon.model import JobResult, Outgoing
from rmdaemon.programme.context import Context
from rmdaemon.records import FINAL, OUTBOX, PAIRS, OutboxEntry, OutboxStatus, index, outbox_keys, save

log = logging.getLogger("rmdaemon.jobs")

def deliver(ctx: Context, messages: list[Outgoing], result: JobResult,
            record: Callable[[], None] | None = None) -> set[str]:
    """Send ``messages`` exactly once each, also across crashes.

    1. one batch records every key as ``pending`` (before anything leaves);
    2. the messages go to the backend (``send_many``: Exchange sends 100 per request), which skips
       keys it already delivered, then ``flush`` makes them durable;
    3. one batch records the delivered keys as ``sent``, and permanent refusals as ``failed``
       (shown against the pair in ``status``; never retried).
    A crash between 1 and 3, or a temporary failure, leaves ``pending`` keys: jobs offer those
    messages again on a later tick (see ``pending_keys``), and the backend skips what it already
    delivered. A failure of the installation (``BackendError.setup``: a refused credential, say)
    is temporary too, and ``result.waiting`` tells ``status`` how many wait for the admin's fix. ``record`` runs inside the first batch: the job's own state changes land
    atomically with the intent to send. Returns the keys sent (or found sent) in this call.
    """
    done = final_keys(ctx)
    todo = [m for m in messages if m.key not in done]
    stamp = ctx.now.isoformat()
    if not todo:  # nothing leaves: the job's own changes need no write of their own
        if record is not None:
            with ctx.store.deferred():
                record()
        return set()
    known = outbox_keys(ctx.store)  # pending ones stay as they are
    with ctx.store.batch():  # the intent is on disk before anything leaves
        if record is not None:
            record()
        save(ctx.store, OUTBOX, "key", (
            OutboxEntry(m.key, OutboxStatus.PENDING, m.kind, m.pair_id, list(m.to), stamp).to_doc()
            for m in todo if m.key not in known))
    sent: set[str] = set()
    refused: dict[str, tuple[Outgoing, str]] = {}
    waiting: list[BackendError] = []
    outcomes = settle(ctx.backend.send_many, todo, lambda m: m.key)
    for message in todo:
        e = outcomes[message.key]
        if e is not None:
            why = f"{e}{_fate(e)}"
            log.warning("pair %s: %s to %s not sent: %s", message.pair_id, message.kind, ", ".join(message.to), why)
            result.add("send errors", f"{message.pair_id}: {message.kind} not sent: {why}")
            if e.permanent:
                refused[message.key] = (message, str(e))
            elif e.setup:
                waiting.append(e)
            continue
        sent.add(message.key)
        result.add(f"{message.kind} sent")
    if waiting:
        result.waiting.append(f"{len(waiting)} {'email waits' if len(waiting) == 1 else 'emails wait'} to be sent "
                              f"until the admin fixes this (rmdaemon check --online names the fix): {waiting[0]}")
    if sent:
        ctx.backend.flush()
    with ctx.store.deferred():  # a lost "sent" only means the backend is asked again, and skips it
        save(ctx.store, OUTBOX, "key", (OutboxEntry.change(k, status=OutboxStatus.SENT, sent_at=stamp) for k in sent))
        save(ctx.store, OUTBOX, "key", (OutboxEntry.change(k, status=OutboxStatus.FAILED, error=error)
                                        for k, (_, error) in refused.items()))
        _record_refusals(ctx, refused.values())
    return sent




def _fate(e: BackendError) -> str:
    """What becomes of a message that did not go, for the run's output and the log."""
    if e.permanent:
        return "; refused for good, not tried again"
    if e.setup:
        return "; kept: it goes once the admin has fixed this"
    return "; kept: tried again next tick"


def final_keys(ctx: Context) -> set[str]:
    """Keys that need nothing more (sent, or refused for good). Jobs that would otherwise rebuild
    every message they ever sent ask this first: building is most of the cost of a message."""
    return outbox_keys(ctx.store, *FINAL)


def pending_keys(ctx: Context) -> set[str]:
    """Keys recorded as pending: a temporary failure or a crash; their job offers them again."""
    return outbox_keys(ctx.store, OutboxStatus.PENDING)


def _record_refusals(ctx: Context, refused: Iterable[tuple[Outgoing, str]]) -> None:
    """A permanent refusal shows against its pair (``status`` problems) until the roster is fixed."""
    by_pair: dict[str, list[str]] = {}
    for message, error in refused:
        if message.pair_id:
            by_pair.setdefault(message.pair_id, []).append(f"{message.kind} to {', '.join(message.to)} refused: {error}")
    if not by_pair:
        return
    state = index(ctx.store, PAIRS, "pair_id")
    save(ctx.store, PAIRS, "pair_id", (
        {"pair_id": pid, "send_errors": sorted(set(state[pid].get("send_errors", [])) | set(lines))}
        for pid, lines in by_pair.items() if pid in state))
