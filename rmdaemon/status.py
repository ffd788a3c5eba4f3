"""``rmdaemon status``: each pair's state, next session, sessions held and last log — from a
read-only view of the store, safe while the daemon runs."""

from __future__ import annotations

from datetime import datetime

from rmdaemon import compose
from rmdaemon.jobs.common import INBOX, LOGS, PAIRS, SESSIONS
from rmdaemon.jobs.consent import ACTIVE
from rmdaemon.jobs.series import upcoming
from rmdaemon.model import Pair
from rmdaemon.store import Store

STATE_LABELS = {"awaiting_consent": "awaiting consent"}


def pair_rows(store: Store, pairs: list[Pair], now: datetime) -> list[dict]:
    state = {d["pair_id"]: d for d in store.table(PAIRS).all()}
    held: dict[str, set[str]] = {}
    last_log: dict[str, str] = {}
    for log in store.table(LOGS).all():
        held.setdefault(log["pair_id"], set()).add(log["token"])
        last_log[log["pair_id"]] = max(last_log.get(log["pair_id"], ""), log["received"])
    past: dict[str, list[str]] = {}
    for s in store.table(SESSIONS).all():
        if s["kind"] == "session" and s["start"] <= now.isoformat():
            past.setdefault(s["pair_id"], []).append(s["token"])
    rows = []
    for pair in pairs:
        doc = state.get(pair.pair_id, {})
        missed = _missed_in_a_row(sorted(past.get(pair.pair_id, []), key=str), held.get(pair.pair_id, set()))
        nxt = upcoming(doc.get("series"), pair.pair_id, now) if doc.get("state") == ACTIVE and pair.status == "active" else None
        rows.append({
            "pair_id": pair.pair_id, "mentor": pair.mentor.email, "mentee": pair.mentee.email,
            "state": _state(pair, doc, missed),
            "next_session": nxt.isoformat() if nxt else None,
            "next_session_local": compose.local_time(nxt, pair.mentee.timezone) if nxt else None,
            "sessions_held": len(held.get(pair.pair_id, ())),
            "last_log": last_log.get(pair.pair_id),
            "problems": doc.get("errors", []),
        })
    return rows


def _missed_in_a_row(past_tokens: list[str], logged: set[str]) -> int:
    missed = 0
    for token in past_tokens:
        missed = 0 if token in logged else missed + 1
    return missed


def _state(pair: Pair, doc: dict, missed: int) -> str:
    if pair.status != "active":
        return pair.status  # the roster's paused/ended wins
    if not doc:
        return "new"
    state = doc["state"]
    if state == ACTIVE and missed >= 2:
        return "fizzling"
    if state == ACTIVE and missed == 1:
        return "at risk"
    return STATE_LABELS.get(state, state)


def summary(store: Store, job_names: list[str]) -> dict:
    inbox = store.table(INBOX).all()
    return {"quarantined": sum(1 for d in inbox if d["outcome"] == "quarantine"),
            "messages_processed": len(inbox),
            "jobs": {name: store.meta(f"job:{name}") or {} for name in job_names}}


def render_table(rows: list[dict]) -> str:
    head = ("PAIR", "STATE", "NEXT SESSION (mentee's time)", "HELD", "LAST LOG")
    body = [(r["pair_id"], r["state"], r["next_session_local"] or "-", str(r["sessions_held"]),
             (r["last_log"] or "-")[:10]) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head, *body)]
    for r in rows:
        lines += [f"  {r['pair_id']}: {p}" for p in r["problems"]]
    return "\n".join(lines)
