"""``purge --pair``: forget a pair's private material (notes, logs, commands, sessions, its
quarantined mail) — the right to be forgotten, and the end of a safe space done properly."""

from __future__ import annotations

from tinydb import Query

from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.programme.quarantine import delete_quarantined, quarantine_dir
from rmdaemon.records import COMMANDS, FLAGS, INBOX, LOGS, PAIRS, SESSIONS, SURVEYS, pair_records
from rmdaemon.store import Store


def purge(settings: Settings, pair_id: str) -> str:
    q = Query()
    counts: dict[str, int] = {}
    with Store.open(settings.storage_path) as store, store.batch():
        found = pair_records(store).get(pair_id)
        if found is not None:
            series = found.live_series or {}
            if series.get("published") is not None and not found.completed:
                raise UserError(f"pair {pair_id} still has a booked series; set its status to ended in "
                                f"{settings.roster_path} and run 'rmdaemon run --once' first, so the calendars are cleared")
        # The outbox keeps its keys (no private content): they stop a restarted pair's mail going out twice.
        for table in (LOGS, COMMANDS, SESSIONS, SURVEYS, FLAGS, PAIRS):
            counts[table] = len(store.table(table).remove(q.pair_id == pair_id))
        delete_quarantined(store, quarantine_dir(settings), {pair_id})
        store.table(INBOX).update({"reason": "purged", "quarantine": None, "pair_id": ""}, q.pair_id == pair_id)
    if not any(counts.values()):
        return f"nothing stored for pair {pair_id}"
    return (f"purged pair {pair_id}: {counts[LOGS]} session logs, {counts[SURVEYS]} survey answers, {counts[FLAGS]} "
            f"flags, {counts[COMMANDS]} commands, {counts[SESSIONS]} sessions and its quarantined mail; "
            "remove the row from the roster too, or it starts again as a new pair")
