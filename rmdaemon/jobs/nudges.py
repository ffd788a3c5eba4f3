"""Fizzle detection: a friendly nudge to an at-risk pair, the champion told about a fizzling one.

Each missed session triggers at most one nudge and one alert (their keys name the session), so
the daemon never nags; a log resets the run and the pair recovers by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from rmdaemon import compose, phrases
from rmdaemon.programme import health
from rmdaemon.backends.base import Capability
from rmdaemon.errors import BackendError
from rmdaemon.records import ACTIVE, PAIRS, REQUESTS, PairRecord, Session, index, logs, outbox_keys, save
from rmdaemon.programme.context import Context, isolated
from rmdaemon.programme.delivery import deliver
from rmdaemon.programme.series import goal_of, meeting_for, next_session
from rmdaemon.programme.sessions import planned_rows
from rmdaemon.model import JobResult, Outgoing, Pair, Person


def run(ctx: Context) -> JobResult:
    result = JobResult("nudges")
    state = index(ctx.store, PAIRS, "pair_id")
    records = health.gather(logs(ctx.store))
    requested = {r["pair_id"]: r for r in ctx.store.rows(REQUESTS).values() if r["kind"] == "nudge" and not r.get("done")}
    messages: list[Outgoing] = []
    for pair in ctx.pairs:
        doc = state.get(pair.pair_id)
        if not doc:
            continue
        with isolated(result, pair.pair_id):
            messages += _pair_messages(ctx, pair, doc, records.get(pair.pair_id), requested.get(pair.pair_id))
    sent = deliver(ctx, messages, result)
    done = [dict(r, done=ctx.now.isoformat()) for r in requested.values()
            if any(k.startswith(f"nudge:{r['pair_id']}:request:{r['id']}:") for k in sent)
            or state.get(r["pair_id"], {}).get("state") != ACTIVE]
    if done:
        with ctx.store.deferred():  # confirmations only: a lost one means a deduplicated resend
            save(ctx.store, REQUESTS, "id", done)
    result.lines += [f"{m.pair_id}: {m.kind} to {m.to[0]}" for m in messages if m.key in sent]
    return result


def _pair_messages(ctx: Context, pair: Pair, doc: dict, record, request: dict | None) -> list[Outgoing]:  # type: ignore[no-untyped-def]
    """The nudges (and the champion's alert) one pair needs now."""
    stored = PairRecord.from_doc(doc)
    rows = planned_rows(stored)
    if request is None and not health.may_be_missing(rows, ctx.now, ctx.settings.nudges):
        return []  # too few sessions over for a missed run: nothing to nudge about
    found = health.pair_sessions(pair, stored, record, ctx.now, ctx.settings.nudges, rows)
    h = health.pair_health(pair, stored, record, ctx.now, ctx.settings.nudges, found)
    missed = [s for s in found if s.token in h.missed]
    out: list[Outgoing] = []
    # A pair with no session ahead has had its last one: the surveys job ends it in this same tick.
    # Asking it to get back on track then (a daemon back after the end) is mail a daemon that ran
    # all along would never have sent (tests/test_schedules.py).
    over = next_session(doc.get("series"), pair.pair_id, ctx.now) is None
    if h.state in ("at risk", "fizzling") and not over and not _calendar_says_held(ctx, pair, doc, missed[-1]):
        reason = h.missed[-1]
        out += [nudge(ctx, pair, doc, person, h.missed_in_a_row, f"missed:{reason}", missed) for person in pair.people]
    if h.state == "fizzling" and not over:
        out.append(alert(ctx, pair, h))
    if request is not None and doc["state"] == ACTIVE:
        out += [nudge(ctx, pair, doc, person, h.missed_in_a_row, f"request:{request['id']}", missed)
                for person in pair.people]
    return out


def _calendar_says_held(ctx: Context, pair: Pair, doc: dict, session: Session) -> bool:
    """Ask "did you meet?" only when it is unclear. Where the backend can read the calendar
    (Exchange) and both people accepted that session and it is still there, it most likely took
    place: no nudge. Declined, cancelled or deleted means it did not, and the nudge goes out.
    Asked once per missed session: once its nudge is out, the calendar is not read again."""
    token = session.token
    if Capability.OCCURRENCE_ANSWERS not in ctx.backend.capabilities or not doc.get("series"):
        return False
    if "outbox_keys" not in ctx.cache:
        ctx.cache["outbox_keys"] = outbox_keys(ctx.store)
    if any(f"nudge:{pair.pair_id}:missed:{token}:{p.address}" in ctx.cache["outbox_keys"] for p in pair.people):
        return False
    try:
        said = ctx.backend.occurrence_answers(meeting_for(ctx.mail, pair, doc), session.planned)
    except BackendError:
        return False  # unclear: ask by email
    return bool(said) and all(said.get(p.address) == "ACCEPTED" for p in pair.people)


def nudge(ctx: Context, pair: Pair, doc: dict, person: Person, missed: int, reason: str,
          sessions: Sequence[Session] = ()) -> Outgoing:
    """``sessions``: the missed ones, named in the email (in the reader's zone)."""
    other = pair.mentee if person is pair.mentor else pair.mentor
    found = next_session(doc.get("series"), pair.pair_id, ctx.now)
    nxt = found[1] if found else None  # when it really happens: a moved session shows its new time
    context = {"pair": pair, "person": person, "other": other, "missed": max(missed, 1), "goal": goal_of(pair, doc),
               "next_local": phrases.local_time(nxt, person.timezone, person.language) if nxt else None,
               # The champion's NUDGE says so: otherwise it repeats, word for word, the nudge the
               # pair got for the same missed session a tick earlier (found by bench/chaos.py).
               "requested": reason.startswith("request:"),
               "missed_when": [phrases.local_time(s.start, person.timezone, person.language) for s in sessions]}
    token = compose.kickoff_token(ctx.pair_key(doc, pair.pair_id), pair.pair_id)  # replies go to the kickoff thread
    return ctx.mail.email("nudge", key=f"nudge:{pair.pair_id}:{reason}:{person.address}", to=person, context=context,
                          kind="nudge", pair_id=pair.pair_id, token=token)


def alert(ctx: Context, pair: Pair, h: health.Health) -> Outgoing:
    """Counts only, never notes: the champion learns that a pair struggles, not what they said."""
    champion = ctx.mail.champion()
    context = {"pair": pair, "state": h.state, "missed": h.missed_in_a_row, "held": h.held}
    return ctx.mail.email("alert", key=f"alert:{pair.pair_id}:{h.missed[-1]}", to=champion, context=context,
                          kind="alert", pair_id=pair.pair_id)
