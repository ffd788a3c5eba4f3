"""Retention: a pair's private words are deleted ``retention_days`` after it ends; the numbers
(attendance, ratings, goal progress, survey scales) stay, so programme reports keep working.
Then outbox keys and inbox ids older than ``[storage] prune_after_days`` are pruned where nothing
can be sent or read twice for it (``programme/pruning.py``).

``rmdaemon purge --pair`` is the on-request version that removes everything at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rmdaemon.records import COMMANDS, DECLINED, ENDED, FLAGS, INBOX, LOGS, PAIRS, SURVEYS, pair_records, save
from rmdaemon.programme.context import Context
from rmdaemon.programme.pruning import prune
from rmdaemon.programme.quarantine import delete_quarantined, quarantine_dir
from rmdaemon.model import JobResult, RosterStatus

KEPT_FIELDS = ("attended", "rating", "progress")  # numbers, not words


def run(ctx: Context) -> JobResult:
    result = JobResult("retention")
    roster = ctx.roster()
    stamps, due = [], set()
    keep = timedelta(days=ctx.settings.privacy.retention_days)
    for pair_id, doc in pair_records(ctx.store).items():
        pair = roster.get(pair_id)
        over = doc.state in (ENDED, DECLINED) or pair is None or pair.status == RosterStatus.ENDED
        if not over or doc.redacted:
            continue
        if not doc.ended_at:
            stamps.append({"pair_id": pair_id, "ended_at": ctx.now.isoformat()})
        elif datetime.fromisoformat(doc.ended_at) + keep <= ctx.now:
            due.add(pair_id)
    if due:
        delete_quarantined(ctx.store, quarantine_dir(ctx.settings), due)
    with ctx.store.deferred():  # no side effect outside the store: the tick's flush writes it
        save(ctx.store, PAIRS, "pair_id", stamps)
        if due:
            redact(ctx, due)
            save(ctx.store, PAIRS, "pair_id", ({"pair_id": p, "redacted": ctx.now.isoformat()} for p in due))
    for pair_id in sorted(due):
        result.add("pairs redacted", f"{pair_id}: notes and raw replies deleted after the retention period")
    for table, count in prune(ctx.store, ctx.now, ctx.settings.prune_after_days).items():
        if count:
            result.add(f"{table} rows pruned", f"{count} {table} rows older than {ctx.settings.prune_after_days} days "
                       "forgotten", n=count)
    return result


def redact(ctx: Context, pair_ids: set[str]) -> None:
    """Remove words, keep numbers: one table rewrite per table."""
    def strip_log(doc: dict) -> None:
        if doc["pair_id"] in pair_ids:
            fields = doc.get("fields") or {}
            doc.update(body="", warnings=[], fields={k: fields.get(k) for k in KEPT_FIELDS})

    def strip_survey(doc: dict) -> None:
        if doc["pair_id"] in pair_ids:
            doc["answers"] = {k: v for k, v in doc["answers"].items() if isinstance(v, int)}

    ctx.store.table(LOGS).update(strip_log)
    ctx.store.table(SURVEYS).update(strip_survey)
    ctx.store.table(COMMANDS).update(lambda d: d.update(arg=None) if d["pair_id"] in pair_ids else None)
    ctx.store.table(FLAGS).remove(lambda d: d["pair_id"] in pair_ids)
    ctx.store.table(INBOX).update(lambda d: d.update(quarantine=None) if d.get("pair_id") in pair_ids else None)


