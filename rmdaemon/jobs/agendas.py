"""Agenda emails, ``agenda_lead_hours`` before each session, to both people.

The session record (its token, number and conversation starter) is written in the same batch
that records the intent to send, so a rerun after a crash rebuilds the identical agenda.

A moved session keeps its token (named by its planned start) but its agenda goes out lead hours
before the new time and shows it; an agenda already sent for the old time does not stop that
one, because the key names the new time. A session someone declined waits for the repair (the
pair picks another time, or it is skipped) and gets no agenda meanwhile.

Backends that can (``annotate_many`` / ``annotate_occurrence``, optional: Exchange) also get the agenda written into
that session's calendar entry, once, when it is first sent: a senior leader who only opens the
calendar sees it there. Best effort: a failure is logged and the emails stand.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rmdaemon import compose
from rmdaemon.errors import BackendError
from rmdaemon.jobs.common import LOGS, PAIRS, SESSIONS, Context, deliver, final_keys, index, isolated, save, templated
from rmdaemon.jobs.common import log as job_log
from rmdaemon.jobs.consent import ACTIVE
from rmdaemon.jobs.series import (actual_start, goal_of, meeting_for, next_session, progress_sessions, total_sessions,
                                  utc_key)
from rmdaemon.model import JobResult, Outgoing, Pair, Person


def run(ctx: Context) -> JobResult:
    result = JobResult("agendas")
    state = index(ctx.store, PAIRS, "pair_id")
    sessions = index(ctx.store, SESSIONS, "token")
    by_pair: dict[str, list[dict]] = {}
    for row in sessions.values():
        by_pair.setdefault(row["pair_id"], []).append(row)
    last_steps = _last_next_steps(ctx)
    lead = timedelta(hours=ctx.settings.program.agenda_lead_hours)
    new_sessions, pair_updates, messages = [], [], []
    notes: list[tuple[Pair, dict, dict, list[str], str]] = []
    done = final_keys(ctx)
    for pair in ctx.pairs:
        doc = state.get(pair.pair_id)
        if pair.status != "active" or not doc or doc["state"] != ACTIVE or not _published(doc):
            continue
        found = next_session(doc["series"], pair.pair_id, ctx.now)
        if found is None or found[1] - lead > ctx.now or _awaiting_repair(doc["series"], found[0]):
            continue
        with isolated(result, pair.pair_id):  # built whole before anything is kept: a failure leaves no trace
            keys = [agenda_key(doc, found[0], person) for person in pair.people]
            if all(k in done for k in keys):  # sent on an earlier tick: not even built again
                continue
            session = session_record(ctx, pair, doc, found[0], sessions, by_pair.get(pair.pair_id, []))
            steps = last_steps.get(pair.pair_id, [])
            built = [agenda_message(ctx, pair, doc, session, person, steps)
                     for person, key in zip(pair.people, keys) if key not in done]
            if session["token"] not in sessions:
                new_sessions.append(session)
                sessions[session["token"]] = session
                by_pair.setdefault(pair.pair_id, []).append(session)
                pair_updates.append({"pair_id": pair.pair_id, "starters_used": [*doc["starters_used"], session["starter"]]})
            messages += built
            notes.append((pair, doc, session, steps, keys[-1]))  # the mentee's (the senior leader's) agenda

    def record() -> None:
        save(ctx.store, SESSIONS, "token", new_sessions)
        save(ctx.store, PAIRS, "pair_id", pair_updates)

    sent = deliver(ctx, messages, result, record=record)
    for m in messages:
        if m.key in sent:
            result.lines.append(f"{m.pair_id}: agenda to {m.to[0]}")
    _into_calendar(ctx, [n[:4] for n in notes if n[4] in sent], result)
    return result


def _into_calendar(ctx: Context, notes: list[tuple[Pair, dict, dict, list[str]]], result: JobResult) -> None:
    """The agendas just sent, written into their sessions' calendar entries where the backend can:
    all at once with ``annotate_many`` (a few requests per 100), else one by one."""
    many = getattr(ctx.backend, "annotate_many", None)
    one = getattr(ctx.backend, "annotate_occurrence", None)
    if many is None and one is None:
        return
    built = [(pair, meeting_for(ctx, pair, doc), _when(doc, session)[0],
              compose.render(ctx.templates, "agenda", agenda_context(ctx, pair, doc, session, pair.mentee, steps)).text)
             for pair, doc, session, steps in notes]  # fmt: skip
    outcomes: dict = {}
    if many is not None:
        try:
            outcomes = many([b[1:] for b in built])
        except BackendError as e:  # best effort: the emails stand whatever the calendar says
            outcomes = {(meeting.uid, start): e for _, meeting, start, _ in built}
    for pair, meeting, start, text in built:
        try:
            error = outcomes.get((meeting.uid, start)) if many is not None else one(meeting, start, text)
            if error is not None:
                raise error
        except BackendError as e:
            job_log.warning("pair %s: agenda not written into the calendar: %s", pair.pair_id, e)
            result.add("calendar notes failed", f"{pair.pair_id}: {e}")
            continue
        result.add("agendas in calendars")


def _published(doc: dict) -> bool:
    series = doc.get("series")
    return bool(series) and not series.get("cancelled") and series.get("published") is not None


def _awaiting_repair(series: dict, planned: datetime) -> bool:
    return (series.get("repairs") or {}).get(utc_key(planned), {}).get("state") == "offered"


def session_record(ctx: Context, pair: Pair, doc: dict, start: datetime, sessions: dict[str, dict],
                   mine: list[dict] | None = None) -> dict:
    """The session planned for ``start``: existing, or new with the next number and an unused starter.

    ``start`` is the planned start (the token derives from it); the record's ``start`` is when
    the session happens, which the booking job keeps current when a session moves.
    """
    uid = doc["series"]["uid"]
    token = compose.session_token(uid, start)
    if token in sessions:
        return sessions[token]
    actual = utc_key(actual_start(doc["series"], start))
    if mine is None:  # callers with many pairs pass each pair's sessions, gathered once
        mine = [s for s in sessions.values() if s["pair_id"] == pair.pair_id]
    held_before = sum(1 for s in mine if s["kind"] == "session" and not s.get("skipped") and s["start"] < actual)
    starter = compose.pick_starter(ctx.templates, pair.track, doc["starters_used"])
    return {"token": token, "pair_id": pair.pair_id, "kind": "session", "uid": uid, "start": actual,
            "planned": utc_key(start), "number": held_before + 1, "starter": starter.id, "starter_text": starter.text}


def _when(doc: dict, session: dict) -> tuple[datetime, datetime]:
    """(planned, actual) start of a session record; records from before moves existed lack ``planned``."""
    planned = datetime.fromisoformat(session.get("planned") or session["start"])
    return planned, actual_start(doc["series"], planned) if doc.get("series") else planned


def _last_next_steps(ctx: Context) -> dict[str, list[str]]:
    """Each pair's next steps from its most recent log that has any."""
    latest: dict[str, tuple[str, list[str]]] = {}
    for log in ctx.store.rows(LOGS).values():
        steps = (log.get("fields") or {}).get("next_steps") or []
        if steps and log["received"] >= latest.get(log["pair_id"], ("", []))[0]:
            latest[log["pair_id"]] = (log["received"], steps)
    return {pair_id: steps for pair_id, (_, steps) in latest.items()}


def agenda_context(ctx: Context, pair: Pair, doc: dict, session: dict, person: Person, steps: list[str]) -> dict:
    other = pair.mentee if person is pair.mentor else pair.mentor
    start = _when(doc, session)[1]
    return {
        "program": ctx.settings.program, "pair": pair, "person": person, "other": other,
        "token": session["token"], "number": session["number"], "total": ctx.settings.program.sessions,
        "when_local": compose.local_time(start, person.timezone), "when_other": compose.local_time(start, other.timezone),
        "goal": goal_of(pair, doc), "starter": session["starter_text"], "next_steps": steps,
        "ask_progress": session["number"] in progress_sessions(total_sessions(doc)),
    }


def agenda_key(doc: dict, planned: datetime, person: Person) -> str:
    """The agenda's idempotency key: the session (by its planned start) and, once moved, the new time."""
    actual = actual_start(doc["series"], planned)
    moved = "" if actual == planned else f"moved-{actual.astimezone(timezone.utc):%Y%m%dT%H%MZ}:"
    return f"agenda:{compose.session_token(doc['series']['uid'], planned)}:{moved}{person.address}"


def agenda_message(ctx: Context, pair: Pair, doc: dict, session: dict, person: Person, steps: list[str]) -> Outgoing:
    return templated(ctx, "agenda", key=agenda_key(doc, _when(doc, session)[0], person), to=person,
                     context=agenda_context(ctx, pair, doc, session, person, steps), kind="agenda",
                     pair_id=pair.pair_id, token=session["token"])
