"""Agenda emails, ``agenda_lead_hours`` before each session, to both people.

The session record (its token, number and conversation starter) is written in the same batch
that records the intent to send, so a rerun after a crash rebuilds the identical agenda.

A moved session keeps its token (named by its planned start) but its agenda goes out lead hours
before the new time and shows it; an agenda already sent for the old time does not stop that
one, because the key names the new time. A session that has already started gets none (the
daemon was down through its lead time): it is recorded as not sent. A session someone declined waits for the repair (the
pair picks another time, or it is skipped) and gets no agenda meanwhile.

Backends that can (``Capability.ANNOTATE``: Exchange) also get the agenda written into
that session's calendar entry, once, when it is first sent: a senior leader who only opens the
calendar sees it there. Best effort: a failure is logged and the emails stand.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rmdaemon import compose
from rmdaemon.backends.base import Capability, settle
from rmdaemon.records import ACTIVE, PAIRS, SESSIONS, PairRecord, RepairState, index, save
from rmdaemon.programme.context import Context, isolated
from rmdaemon.programme.delivery import deliver, final_keys
from rmdaemon.programme.context import log as job_log
from rmdaemon.programme.series import (meeting_for, next_session, utc_key)
from rmdaemon.programme.agenda import (Steps, agenda_context, agenda_key, agenda_messages, latest_next_steps, session_record,
                                       when)
from rmdaemon.programme.sessions import NOT_SENT, planned_rows
from rmdaemon.model import JobResult, Pair, RosterStatus


def run(ctx: Context) -> JobResult:
    result = JobResult("agendas")
    state = index(ctx.store, PAIRS, "pair_id")
    sessions = index(ctx.store, SESSIONS, "token")
    last_steps = latest_next_steps(ctx.store, {p.pair_id: p for p in ctx.pairs})
    lead = timedelta(hours=ctx.settings.program.agenda_lead_hours)
    new_sessions, pair_updates, messages = [], [], []
    notes: list[tuple[Pair, dict, dict, Steps, str]] = []
    done = final_keys(ctx)
    for pair in ctx.pairs:
        doc = state.get(pair.pair_id)
        if pair.status != RosterStatus.ACTIVE or not doc or doc["state"] != ACTIVE or not _published(doc):
            continue
        late = _too_late(ctx, doc, sessions)
        for row in late:
            sessions[row["token"]] = row
            result.add("agendas not sent (session had started)", f"{pair.pair_id}: session {row['number']} "
                       f"({row['start']}) started while the daemon was not running: no agenda sent")
        new_sessions += late
        found = next_session(doc["series"], pair.pair_id, ctx.now)
        if found is None or found[1] - lead > ctx.now or _awaiting_repair(doc["series"], found[0]):
            continue
        with isolated(result, pair.pair_id):  # built whole before anything is kept: a failure leaves no trace
            keys = [agenda_key(doc, found[0], person) for person in pair.people]
            if all(k in done for k in keys):  # sent on an earlier tick: not even built again
                continue
            session = session_record(ctx.templates, pair, doc, found[0], sessions)
            steps = last_steps.get(pair.pair_id, {})
            built = agenda_messages(ctx.mail, pair, doc, session,
                                    [person for person, key in zip(pair.people, keys) if key not in done], steps)
            if session["token"] not in sessions:
                new_sessions.append(session)
                sessions[session["token"]] = session
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


def _into_calendar(ctx: Context, notes: list[tuple[Pair, dict, dict, Steps]], result: JobResult) -> None:
    """The agendas just sent, written into their sessions' calendar entries where the backend can
    (Exchange: a few requests per 100). A failure of the whole call counts for every note."""
    if Capability.ANNOTATE not in ctx.backend.capabilities:
        return
    built = [(pair, meeting_for(ctx.mail, pair, doc), when(doc, session)[0],
              compose.render(ctx.templates, "agenda", agenda_context(ctx.settings.program, pair, doc, session, pair.mentee, steps),
                             ctx.mail.languages((pair.mentee,)), ctx.settings.program.language).text)
             for pair, doc, session, steps in notes]  # fmt: skip
    outcomes = settle(ctx.backend.annotate_many, [b[1:] for b in built], lambda note: (note[0].uid, note[1]))
    for pair, meeting, start, _ in built:  # best effort: the emails stand whatever the calendar says
        error = outcomes[(meeting.uid, start)]
        if error is not None:
            job_log.warning("pair %s: agenda not written into the calendar: %s", pair.pair_id, error)
            result.add("calendar notes failed", f"{pair.pair_id}: {error}")
            continue
        result.add("agendas in calendars")


def _too_late(ctx: Context, doc: dict, sessions: dict[str, dict]) -> list[dict]:
    """Sessions that started without their agenda (the daemon was down through their lead time):
    an agenda about a session already under way helps nobody, so it is not sent — it is recorded
    as not sent, once, and ``status`` shows it."""
    now = utc_key(ctx.now)
    return [dict(row, agenda=NOT_SENT) for row in planned_rows(PairRecord.from_doc(doc))
            if row["start"] <= now and row["token"] not in sessions and not row.get("skipped") and "cancelled_at" not in row]


def _published(doc: dict) -> bool:
    series = doc.get("series")
    return bool(series) and not series.get("cancelled") and series.get("published") is not None


def _awaiting_repair(series: dict, planned: datetime) -> bool:
    return (series.get("repairs") or {}).get(utc_key(planned), {}).get("state") == RepairState.OFFERED
