"""Agenda emails, ``agenda_lead_hours`` before each session, to both people.

The session record (its token, number and conversation starter) is written in the same batch
that records the intent to send, so a rerun after a crash rebuilds the identical agenda.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rmdaemon import compose
from rmdaemon.jobs.common import LOGS, PAIRS, SESSIONS, Context, deliver, index, save, templated
from rmdaemon.jobs.consent import ACTIVE
from rmdaemon.jobs.series import goal_of, progress_sessions, total_sessions, upcoming
from rmdaemon.model import JobResult, Outgoing, Pair, Person


def run(ctx: Context) -> JobResult:
    result = JobResult("agendas")
    state = index(ctx.store, PAIRS, "pair_id")
    sessions = index(ctx.store, SESSIONS, "token")
    last_steps = _last_next_steps(ctx)
    lead = timedelta(hours=ctx.settings.program.agenda_lead_hours)
    new_sessions, pair_updates, messages = [], [], []
    for pair in ctx.pairs:
        doc = state.get(pair.pair_id)
        if pair.status != "active" or not doc or doc["state"] != ACTIVE or not _published(doc):
            continue
        start = upcoming(doc["series"], pair.pair_id, ctx.now)
        if start is None or start - lead > ctx.now:
            continue
        session = session_record(ctx, pair, doc, start, sessions)
        if session["token"] not in sessions:
            new_sessions.append(session)
            sessions[session["token"]] = session
            pair_updates.append({"pair_id": pair.pair_id, "starters_used": [*doc["starters_used"], session["starter"]]})
        steps = last_steps.get(pair.pair_id, [])
        messages += [agenda_message(ctx, pair, doc, session, person, steps) for person in pair.people]

    def record() -> None:
        save(ctx.store, SESSIONS, "token", new_sessions)
        save(ctx.store, PAIRS, "pair_id", pair_updates)

    sent = deliver(ctx, messages, result, record=record)
    for m in messages:
        if m.key in sent:
            result.lines.append(f"{m.pair_id}: agenda to {m.to[0]}")
    return result


def _published(doc: dict) -> bool:
    series = doc.get("series")
    return bool(series) and not series.get("cancelled") and series.get("published") is not None


def session_record(ctx: Context, pair: Pair, doc: dict, start: datetime, sessions: dict[str, dict]) -> dict:
    """The session at ``start``: existing, or new with the next number and an unused starter."""
    uid = doc["series"]["uid"]
    token = compose.session_token(uid, start)
    if token in sessions:
        return sessions[token]
    held_before = sum(1 for s in sessions.values()
                      if s["pair_id"] == pair.pair_id and s["kind"] == "session" and s["start"] < _utc(start))
    starter = compose.pick_starter(ctx.templates, pair.track, doc["starters_used"])
    return {"token": token, "pair_id": pair.pair_id, "kind": "session", "uid": uid, "start": _utc(start),
            "number": held_before + 1, "starter": starter.id, "starter_text": starter.text}


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _last_next_steps(ctx: Context) -> dict[str, list[str]]:
    """Each pair's next steps from its most recent log that has any."""
    latest: dict[str, tuple[str, list[str]]] = {}
    for log in ctx.store.table(LOGS).all():
        steps = (log.get("fields") or {}).get("next_steps") or []
        if steps and log["received"] >= latest.get(log["pair_id"], ("", []))[0]:
            latest[log["pair_id"]] = (log["received"], steps)
    return {pair_id: steps for pair_id, (_, steps) in latest.items()}


def agenda_context(ctx: Context, pair: Pair, doc: dict, session: dict, person: Person, steps: list[str]) -> dict:
    other = pair.mentee if person is pair.mentor else pair.mentor
    start = datetime.fromisoformat(session["start"])
    return {
        "program": ctx.settings.program, "pair": pair, "person": person, "other": other,
        "token": session["token"], "number": session["number"], "total": ctx.settings.program.sessions,
        "when_local": compose.local_time(start, person.timezone), "when_other": compose.local_time(start, other.timezone),
        "goal": goal_of(pair, doc), "starter": session["starter_text"], "next_steps": steps,
        "ask_progress": session["number"] in progress_sessions(total_sessions(doc)),
    }


def agenda_message(ctx: Context, pair: Pair, doc: dict, session: dict, person: Person, steps: list[str]) -> Outgoing:
    return templated(ctx, "agenda", key=f"agenda:{session['token']}:{person.address}", to=person,
                     context=agenda_context(ctx, pair, doc, session, person, steps), kind="agenda",
                     pair_id=pair.pair_id, token=session["token"])
