"""Make the calendars match the stored state: book consented pairs, re-send changed series, cancel
paused/ended/removed ones, cancel skipped occurrences.

Two steps, so a crash anywhere is safe: first one batch records the wanted series (new UID or a
raised SEQUENCE); then each backend call; then one batch records what the backend confirmed.
A rerun re-offers what is unconfirmed, and backends are idempotent on (uid, sequence).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rmdaemon import compose, planning
from rmdaemon.errors import BackendError, UserError
from rmdaemon.jobs.common import PAIRS, Context, index, log, save
from rmdaemon.jobs.consent import ACTIVE
from rmdaemon.jobs.series import (exdates, fingerprint, meeting_for, pair_from_doc, pair_to_doc, plan_from_doc,
                                  plan_to_doc)
from rmdaemon.model import JobResult, Pair

MIN_NOTICE_HOURS = 24


def run(ctx: Context) -> JobResult:
    result = JobResult("booking")
    state = index(ctx.store, PAIRS, "pair_id")
    roster = ctx.roster()
    taken = _taken(state)
    changed = {}
    for pair_id, doc in state.items():
        pair = roster.get(pair_id)
        if _wanted(pair, doc):
            new = _book_or_update(ctx, pair, doc, taken, result)
        else:
            new = _cancel(ctx, pair_id, doc, result)
        if new is not None:
            changed[pair_id] = new
    if changed:
        with ctx.store.batch():
            save(ctx.store, PAIRS, "pair_id", changed.values())
        state.update(changed)
    _publish(ctx, state, roster, result)
    return result


def _wanted(pair: Pair | None, doc: dict) -> bool:
    return pair is not None and pair.status == "active" and doc["state"] == ACTIVE


def _taken(state: dict[str, dict]) -> Counter:
    """How many live series use each (weekday, local time), so new pairs spread across the day."""
    taken: Counter = Counter()
    for doc in state.values():
        series = doc.get("series")
        if series and not series.get("cancelled"):
            start = datetime.fromisoformat(series["plan"]["first_start"]).astimezone(ZoneInfo(series["plan"]["tzid"]))
            taken[(start.weekday(), start.time())] += 1
    return taken


def _book_or_update(ctx: Context, pair: Pair, doc: dict, taken: Counter, result: JobResult) -> dict | None:
    series = doc.get("series")
    live = series is not None and not series.get("cancelled")
    if live and series["fingerprint"] == fingerprint(pair):
        return None
    used = doc.get("sessions_used", 0) + (_past(series, pair.pair_id, ctx.now) if live else 0)
    try:
        plan = _plan(ctx, pair, used, taken)
    except UserError as e:
        result.add("not bookable", f"{pair.pair_id}: {e.message}")
        return _with_error(doc, ctx, e.message)
    if plan is None:
        return None
    new = dict(doc, sessions_used=used, errors=[], pair=pair_to_doc(pair))
    if live:  # same UID, higher SEQUENCE: clients update the event instead of adding one
        new["series"] = dict(series, sequence=series["sequence"] + 1, plan=plan_to_doc(plan),
                             fingerprint=fingerprint(pair), exdates=[])
        result.add("series updated", f"{pair.pair_id}: series re-planned ({pair.cadence}, {plan.first_start:%a %H:%M} {plan.tzid})")
    else:
        generation = (series or {}).get("generation", -1) + 1
        uid = f"rm-{compose.digest(pair.pair_id, generation, length=12)}-{generation}@{compose.domain_of(ctx.settings.program.organizer)}"
        new["series"] = {"uid": uid, "generation": generation, "sequence": 0, "published": None,
                         "cancelled": False, "plan": plan_to_doc(plan), "fingerprint": fingerprint(pair),
                         "exdates": [], "cancel_occurrences": []}
        result.add("series planned", f"{pair.pair_id}: {plan.first_start:%a %H:%M} {plan.tzid}, {pair.cadence}")
    start = plan.first_start
    taken[(start.weekday(), start.time())] += 1
    return new


def _plan(ctx: Context, pair: Pair, used: int, taken: Counter):
    program = ctx.settings.program
    sessions = None
    if program.sessions is not None:
        sessions = program.sessions - used
        if sessions <= 0:
            return None
    # Notice: the first session is far enough ahead for its agenda to go out on time (and never
    # sprung on people the same day).
    not_before = ctx.now + timedelta(hours=max(program.agenda_lead_hours, MIN_NOTICE_HOURS))
    start_date = max(program.start_date, not_before.astimezone(ZoneInfo(pair.mentee.timezone)).date())
    busy = _busy(ctx, pair, start_date)
    return planning.plan_series(pair, start_date=start_date, sessions=sessions, end_date=program.end_date,
                                not_before=not_before, busy=busy, taken=taken)


def _busy(ctx: Context, pair: Pair, start_date: date):
    start = datetime.combine(start_date, time(0), ZoneInfo(pair.mentee.timezone))
    try:
        return ctx.backend.free_busy(list(pair.people), start, start + timedelta(days=42))
    except BackendError as e:
        log.warning("pair %s: free/busy unavailable, planning on working hours only: %s", pair.pair_id, e)
        return None


def _past(series: dict, pair_id: str, now: datetime) -> int:
    plan = plan_from_doc(pair_id, series["plan"])
    return len(planning.occurrences_between(plan, plan.first_start, now, exdates(series)))


def _cancel(ctx: Context, pair_id: str, doc: dict, result: JobResult) -> dict | None:
    series = doc.get("series")
    if not series or series.get("cancelled") or doc.get("completed"):
        return None  # a completed programme's series has simply run out: nothing to cancel
    used = doc.get("sessions_used", 0) + _past(series, pair_id, ctx.now)
    if series.get("published") is None:  # never reached a calendar: forget it quietly
        result.add("series dropped", f"{pair_id}: unbooked series dropped")
        return dict(doc, series=None, sessions_used=used)
    result.add("series cancelled", f"{pair_id}: series cancelled")
    return dict(doc, sessions_used=used, series=dict(series, cancelled=True, sequence=series["sequence"] + 1))


def _with_error(doc: dict, ctx: Context, message: str) -> dict | None:
    if message in doc.get("errors", []):
        return None
    return dict(doc, errors=[message], error_at=ctx.now.isoformat())


def _publish(ctx: Context, state: dict[str, dict], roster: dict[str, Pair], result: JobResult) -> None:
    """Hand every unconfirmed change to the backend; record only what it confirmed."""
    confirmed = {}
    for pair_id, doc in state.items():
        series = doc.get("series")
        if not series:
            continue
        pending = series.get("cancel_occurrences", [])
        if series.get("published") == series["sequence"] and not pending:
            continue
        pair = roster.get(pair_id) or pair_from_doc(doc["pair"])  # removed rows still get their cancellation
        try:
            meeting = meeting_for(ctx, pair, doc)
            if series.get("published") != series["sequence"]:
                ctx.backend.publish(meeting)
            for start in pending:
                ctx.backend.cancel_occurrence(meeting, datetime.fromisoformat(start))
        except BackendError as e:
            log.warning("pair %s: calendar not updated: %s", pair_id, e)
            result.add("publish errors", f"{pair_id}: {e}")
            continue
        confirmed[pair_id] = dict(doc, series=dict(series, published=series["sequence"], cancel_occurrences=[]))
        result.add("series published")
    if confirmed:
        with ctx.store.batch():
            save(ctx.store, PAIRS, "pair_id", confirmed.values())
