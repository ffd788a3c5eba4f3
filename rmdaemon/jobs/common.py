"""What every job shares: its inputs, the record-before-send protocol, and bulk saving.

A job is a function of (stored state, roster, now). It writes the store in at most a few
``store.batch()`` blocks, never once per pair: TinyDB rewrites a whole table per operation, so
per-pair writes would make a tick quadratic in the number of pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rmdaemon import compose
from rmdaemon.backends.base import Backend
from rmdaemon.compose import Templates
from rmdaemon.config import Settings
from rmdaemon.errors import BackendError, UserError
from rmdaemon.model import JobResult, Outgoing, Pair, Person
from rmdaemon.store import Store

log = logging.getLogger("rmdaemon.jobs")

PAIRS, OUTBOX, SESSIONS, LOGS, INBOX, COMMANDS = "pairs", "outbox", "sessions", "logs", "inbox", "commands"
SURVEYS, FLAGS, REQUESTS = "surveys", "flags", "requests"


@dataclass
class Context:
    store: Store
    backend: Backend
    settings: Settings
    pairs: list[Pair]  # the roster as read this tick
    templates: Templates
    now: datetime  # aware UTC
    cache: dict[str, Any] = field(default_factory=dict)  # per-tick memos of pure work (slot scoring)

    def roster(self) -> dict[str, Pair]:
        return {p.pair_id: p for p in self.pairs}


def templated(ctx: Context, template: str, *, key: str, to: Person, context: dict, kind: str,
              pair_id: str = "", token: str = "") -> Outgoing:
    """One email from a template pair (``template``.txt/.html) to one person, from the programme mailbox."""
    program = ctx.settings.program
    envelope = compose.Envelope(
        key=key, sender=program.organizer, sender_name=program.organizer_name, to=to, date=ctx.now,
        message_id=compose.message_id(kind, key, compose.domain_of(program.organizer), token))
    content = compose.render(ctx.templates, template, {"program": program, "token": token, **context})
    return Outgoing(key=key, to=(to.email,), raw=compose.build_email(envelope, content), kind=kind, pair_id=pair_id)


@contextmanager
def isolated(result: JobResult, pair_id: str) -> Iterator[None]:
    """One pair's share of a job. A bug met there (odd data, a template that fails for this pair
    only) is logged with the pair and kept for ``status``, and the job goes on with the other
    pairs; the pair is tried again next tick. A UserError (a broken template, say) concerns
    every pair, so it still stops the tick and is shown to the admin."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 — isolation is the point
        log.exception("%s: pair %s could not be handled", result.name, pair_id)
        result.add("pair errors")
        result.problems.append(f"{pair_id}: {type(e).__name__}: {e}"[:300])


def index(store: Store, table: str, key: str) -> dict[Any, dict]:
    """A whole table as a dict by ``key``: one read, then O(1) lookups for the rest of the job."""
    return {doc[key]: dict(doc) for doc in store.rows(table).values()}


def save(store: Store, table: str, key: str, docs: Iterable[dict]) -> None:
    """Upsert many docs by ``key`` with one table rewrite for updates and one for inserts."""
    tbl = store.table(table)
    existing = {doc[key]: int(doc_id) for doc_id, doc in store.rows(table).items()}
    changed = {d[key]: d for d in docs}
    updates = {k: d for k, d in changed.items() if k in existing}
    if updates:
        tbl.update(lambda doc: doc.update(updates[doc[key]]), doc_ids=[existing[k] for k in updates])
    inserts = [d for k, d in changed.items() if k not in existing]
    if inserts:
        tbl.insert_multiple(inserts)


def deliver(ctx: Context, messages: list[Outgoing], result: JobResult,
            record: Callable[[], None] | None = None) -> set[str]:
    """Send ``messages`` exactly once each, also across crashes.

    1. one batch records every key as ``pending`` (before anything leaves);
    2. the messages go to the backend (all at once where it has ``send_many``), which skips keys
       it already delivered;
    3. one batch records the delivered keys as ``sent``, and permanent refusals as ``failed``
       (shown against the pair in ``status``; never retried).
    A crash between 1 and 3, or a temporary failure, leaves ``pending`` keys: jobs offer those
    messages again on a later tick (see ``pending_keys``), and the backend skips what it already
    delivered. ``record`` runs inside the first batch: the job's own state changes land
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
    known = {d["key"] for d in ctx.store.rows(OUTBOX).values()}  # pending ones stay as they are
    with ctx.store.batch():  # the intent is on disk before anything leaves
        if record is not None:
            record()
        save(ctx.store, OUTBOX, "key", (
            {"key": m.key, "status": "pending", "kind": m.kind, "pair_id": m.pair_id, "to": list(m.to), "at": stamp}
            for m in todo if m.key not in known))
    sent: set[str] = set()
    refused: dict[str, tuple[Outgoing, str]] = {}
    outcomes = _send_all(ctx.backend, todo)
    for message in todo:
        e = outcomes[message.key]
        if e is not None:
            log.warning("pair %s: %s to %s not sent: %s", message.pair_id, message.kind, ", ".join(message.to), e)
            result.add("send errors", f"{message.pair_id}: {message.kind} not sent: {e}")
            if e.permanent:
                refused[message.key] = (message, str(e))
            continue
        sent.add(message.key)
        result.add(f"{message.kind} sent")
    flush = getattr(ctx.backend, "flush", None)
    if sent and flush is not None:
        flush()
    with ctx.store.deferred():  # a lost "sent" only means the backend is asked again, and skips it
        save(ctx.store, OUTBOX, "key", ({"key": k, "status": "sent", "sent_at": stamp} for k in sent))
        save(ctx.store, OUTBOX, "key", ({"key": k, "status": "failed", "error": err} for k, (_, err) in refused.items()))
        _record_refusals(ctx, refused.values())
    return sent


def _send_all(backend: Backend, messages: list[Outgoing]) -> dict[str, BackendError | None]:
    """Each message's outcome by key (None: sent, or found sent). A backend with ``send_many``
    (optional: Exchange sends 100 emails per request) gets them all at once; others one call each.
    A message the backend says nothing about counts as not sent (temporary): nothing is recorded
    as done unless the backend said so."""
    many = getattr(backend, "send_many", None)
    if many is None:
        return {m.key: _send_one(backend, m) for m in messages}
    try:
        outcomes = many(messages)
    except BackendError as e:
        return {m.key: e for m in messages}
    return {m.key: _outcome(outcomes, m.key) for m in messages}


def _send_one(backend: Backend, message: Outgoing) -> BackendError | None:
    try:
        backend.send(message)
    except BackendError as e:
        return e
    return None


def _outcome(outcomes: dict[str, Exception | None], key: str) -> BackendError | None:
    if key not in outcomes:
        return BackendError("the backend gave no outcome for this message", permanent=False)
    found = outcomes[key]
    if found is None or isinstance(found, BackendError):
        return found
    return BackendError(f"{type(found).__name__}: {found}", permanent=False)


FINAL = ("sent", "failed")


def final_keys(ctx: Context) -> set[str]:
    """Keys that need nothing more (sent, or refused for good). Jobs that would otherwise rebuild
    every message they ever sent ask this first: building is most of the cost of a message."""
    return {d["key"] for d in ctx.store.rows(OUTBOX).values() if d.get("status") in FINAL}


def pending_keys(ctx: Context) -> set[str]:
    """Keys recorded as pending: a temporary failure or a crash; their job offers them again."""
    return {d["key"] for d in ctx.store.rows(OUTBOX).values() if d.get("status") == "pending"}


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
