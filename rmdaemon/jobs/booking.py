"""Make the calendars match the stored state: book consented pairs, re-send changed series, cancel
paused/ended/removed ones, cancel skipped occurrences.

Two steps, so a crash anywhere is safe: first one batch records the wanted series (new UID or a
raised SEQUENCE); then each backend call; then one batch records what the backend confirmed.
A rerun re-offers what is unconfirmed, and backends are idempotent on (uid, sequence).

Blackout and out-of-office days are EXDATEs from the start (with COUNT raised to make up for
them). A session someone declined in their calendar gets one repair email to the pair with
other times that week; it is skipped when it comes round unanswered. The short emails that
explain a refused RESCHEDULE are sent from here too: everything that follows from the
calendar state is reconciled by this one job, each email once (``deliver``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


from rmdaemon import compose, planning
from rmdaemon.backends.base import Capability, FreeBusy, settle
from rmdaemon.errors import BackendError, UserError
from rmdaemon.phrases import english
from rmdaemon.programme import counters, pairstate, repairs
from rmdaemon.programme.sessions import earlier
from rmdaemon.records import (ACTIVE, DECLINED, ENDED, PAIRS, PAUSED, SESSIONS, RepairState, index,
                                save)
from rmdaemon.programme.context import Context, isolated, log
from rmdaemon.programme.delivery import deliver, final_keys
from rmdaemon.programme.series import (actual_start, taken_slots, exdates, fingerprint, hours_to_doc, meeting_for, pair_from_doc,
                                  pair_to_doc, plan_from_doc, plan_to_doc, repair_token, utc_key, with_hours, with_skip)
from rmdaemon.model import BusyTime, JobResult, Meeting, Outgoing, Pair, Person, RosterStatus, WorkingHours

MIN_NOTICE_HOURS = 24
FREE_BUSY_DAYS = 42  # how far ahead calendars are read when planning (Exchange's longest window)
Busy = dict[str, list[BusyTime]] | None  # address → busy times; None: plan on working hours only
# Alternatives for a declined session start at least this far ahead, so people can still plan.
REPAIR_NOTICE = timedelta(hours=4)
# Series built and handed to the backend at a time (``_publish``): a multiple of the hundred a
# batching backend sends per request, and few enough that their invitation notes stay small.
PUBLISH_BATCH = 1000


@dataclass(frozen=True)
class Calendars:
    """What the backend read of a pair's calendars this tick: busy times, and the working hours
    people keep there (address → hours in their own zone; empty where the backend has none)."""

    busy: Busy = None
    hours: dict[str, WorkingHours] = field(default_factory=dict)


def run(ctx: Context) -> JobResult:
    result = JobResult("booking")
    state = index(ctx.store, PAIRS, "pair_id")
    sessions = index(ctx.store, SESSIONS, "token")
    roster = ctx.roster()
    taken = taken_slots(state)
    busy = _busy_all(ctx, [roster[pid] for pid, doc in state.items() if _needs_plan(ctx, roster.get(pid), doc)], result)
    changed, rows = {}, []
    for pair_id, doc in state.items():
        with isolated(result, pair_id):  # one pair's odd data must not keep the others' calendars back
            pair = roster.get(pair_id)
            if _wanted(pair, doc):
                new = _book_or_update(ctx, pair, doc, taken, busy.get(pair_id), result)
                new = _answer_counters(ctx, pair, new or doc, result) or new
                settled = _settle(ctx, pair, new or doc, sessions, result)
                new, rows = (settled[0], rows + settled[1]) if settled else (new, rows)
            else:
                new = _cancel(ctx, pair_id, doc, result, cancel_reason(pair, doc))
            if new is not None:
                changed[pair_id] = new
    merged: dict[str, dict] = {}
    for row in _session_times({**state, **changed}, sessions) + rows:
        merged[row["token"]] = {**merged.get(row["token"], {}), **row}
    if changed or merged:
        with ctx.store.batch():
            save(ctx.store, PAIRS, "pair_id", changed.values())
            save(ctx.store, SESSIONS, "token", merged.values())
        state.update(changed)
    _publish(ctx, state, roster, result)
    _mail(ctx, state, roster, result)
    return result


def _wanted(pair: Pair | None, doc: dict) -> bool:
    return pair is not None and pair.status == RosterStatus.ACTIVE and doc["state"] == ACTIVE


def _needs_plan(ctx: Context, pair: Pair | None, doc: dict) -> bool:
    """Whether this tick (re-)plans the pair: wanted, and no live series booked for its current row."""
    if not _wanted(pair, doc):
        return False
    series = doc.get("series")
    live = series is not None and not series.get("cancelled")
    return not (live and series["fingerprint"] == fingerprint(pair, ctx.settings.program.blackout_dates))


def _book_or_update(ctx: Context, pair: Pair, doc: dict, taken: Counter, busy: Calendars | None,
                    result: JobResult) -> dict | None:
    series = doc.get("series")
    live = series is not None and not series.get("cancelled")
    blackout = ctx.settings.program.blackout_dates
    if not _needs_plan(ctx, pair, doc):
        return None
    used = doc.get("sessions_used", 0) + (_past(series, pair.pair_id, ctx.now) if live else 0)
    try:
        planned = _plan(ctx, pair, used, taken, busy)
    except UserError as e:
        result.add("not bookable", f"{pair.pair_id}: {e.message}")
        return _with_error(doc, ctx, [e.message, *e.problems])
    if planned is None:
        return None
    plan, skipped, calendar_hours = planned
    note = _hours_note(calendar_hours)
    why = f" ({note})" if note else ""
    new = dict(doc, sessions_used=used, errors=[], pair=pair_to_doc(pair))
    if series and series.get("published") is not None:  # its sessions so far stay the pair's sessions
        new["earlier_series"] = [*doc.get("earlier_series", []), earlier(series, ctx.now)]
    # A new plan starts clean: old skips, moves and repair offers were about the old times.
    fresh = {"plan": plan_to_doc(plan), "fingerprint": fingerprint(pair, blackout), "exdates": list(skipped),
             "blackouts": list(skipped), "moved": [], "repairs": {},
             "calendar_hours": {a: hours_to_doc(h) for a, h in calendar_hours.items()}}
    if live:  # same UID, higher SEQUENCE: clients update the event instead of adding one
        new["series"] = dict(series, sequence=series["sequence"] + 1, **fresh)
        result.add("series updated", f"{pair.pair_id}: series re-planned ({pair.cadence}, {plan.first_start:%a %H:%M} {plan.tzid})"
                   + why)
    else:
        generation = (series or {}).get("generation", -1) + 1
        uid = series_uid(ctx.secret, pair.pair_id, generation, ctx.settings.program.organizer)
        new["series"] = {"uid": uid, "token_key": compose.keyed(ctx.secret, "series", uid), "generation": generation,
                         "sequence": 0, "published": None,
                         "cancelled": False, "cancel_occurrences": [], **fresh}
        result.add("series planned", f"{pair.pair_id}: {plan.first_start:%a %H:%M} {plan.tzid}, {pair.cadence}"
                   + (f", {len(skipped)} blackout day(s) skipped" if skipped else "") + why)
    start = plan.first_start
    taken[(start.weekday(), start.time())] += 1
    return new


def series_uid(secret: bytes, pair_id: str, generation: int, organizer: str) -> str:
    """A new series' UID: keyed, so nobody who knows the pair id can compute it and answer for its
    people. Series booked before the installation had a secret keep the plain hash they were
    invited with (``rm-`` + 12 hex digits) and no ``token_key``: clients know them by that UID."""
    return f"rm-{compose.keyed(secret, 'uid', pair_id, generation, length=24)}-{generation}@{compose.domain_of(organizer)}"


def _plan(ctx: Context, pair: Pair, used: int, taken: Counter,
          seen: Calendars | None) -> tuple[planning.SeriesPlan, list[str], dict[str, WorkingHours]] | None:
    """The new plan, the UTC keys of its sessions that fall on blocked days (its EXDATEs), and
    the working hours taken from people's calendars (kept with the series, so a RESCHEDULE is
    checked against the hours the series was planned in)."""
    program = ctx.settings.program
    sessions = None
    if program.sessions is not None:
        sessions = program.sessions - used
        if sessions <= 0:
            return None
    seen = seen or Calendars()
    pair, used = _with_calendar_hours(pair, seen.hours)
    not_before, start_date = _first_day(ctx, pair)
    try:
        plan = planning.plan_series(pair, start_date=start_date, sessions=sessions, end_date=program.end_date,
                                    not_before=not_before, busy=seen.busy, taken=taken,
                                    cache=ctx.cache.setdefault("plans", {}))
    except UserError as e:  # the hours it names are not the roster's: say where they came from
        raise UserError(e.message, [*e.problems, *([_hours_note(used)] if used else [])]) from None
    plan, skipped = planning.skip_blocked(plan, pair, program.blackout_dates)
    return plan, [utc_key(s) for s in skipped], used


def _with_calendar_hours(pair: Pair, hours: dict[str, WorkingHours]) -> tuple[Pair, dict[str, WorkingHours]]:
    """The pair as planned: who has no working hours of their own in the roster gets the hours
    they keep in their calendar, where the backend read some. The roster's hours win, then the
    calendar's, then ``[program] working_hours``. The pair stored with the series stays the
    roster's; also returned: the hours taken from a calendar, by address."""
    used = {p.address: hours[p.address] for p in pair.people
            if p.hours_defaulted and hours.get(p.address) not in (None, p.working_hours)}
    return with_hours(pair, used), used


def _hours_note(used: dict[str, WorkingHours]) -> str:
    """For the result line: whose working hours came from their calendar ("" when nobody's)."""
    return f"working hours from Exchange: {'; '.join(f'{a} {h}' for a, h in used.items())}" if used else ""


def _calendars_of(ctx: Context, people: list[Person], start: datetime, end: datetime) -> FreeBusy | None:
    """What the backend sees of these people's calendars; None where it sees none (a mailbox)."""
    if Capability.FREE_BUSY not in ctx.backend.capabilities:
        return None
    return ctx.backend.free_busy(people, start, end)


def _first_day(ctx: Context, pair: Pair) -> tuple[datetime, date]:
    """The earliest start of a new series, and that day in the mentee's zone. Notice: the first
    session is far enough ahead for its agenda to go out on time (and never sprung on people the
    same day)."""
    program = ctx.settings.program
    not_before = ctx.now + timedelta(hours=max(program.agenda_lead_hours, MIN_NOTICE_HOURS))
    return not_before, max(program.start_date, not_before.astimezone(ZoneInfo(pair.mentee.timezone)).date())


def _busy_all(ctx: Context, pairs: list[Pair], result: JobResult) -> dict[str, Calendars]:
    """Free/busy of everyone planned this tick, asked in ONE call over one window, so a backend can
    batch it (Exchange: 100 mailboxes a request) instead of paying a round trip per pair. The window
    is FREE_BUSY_DAYS from the earliest first day (pairs in later zones lose at most their last day).
    A pair whose people the backend could not all see is planned on working hours only. The same
    answers carry the working hours people keep in their calendars, where the backend reads them."""
    if not pairs:
        return {}
    start = min(datetime.combine(_first_day(ctx, p)[1], time(0), ZoneInfo(p.mentee.timezone)) for p in pairs)
    people = list({p.address: p for pair in pairs for p in pair.people}.values())
    try:
        read = _calendars_of(ctx, people, start, start + timedelta(days=FREE_BUSY_DAYS))
    except BackendError as e:
        read = None
        log.warning("free/busy unavailable, planning on working hours only: %s", e)
    if read is None:
        return {pair.pair_id: Calendars() for pair in pairs}
    found: dict[str, Calendars] = {}
    for pair in pairs:  # mailboxes the backend could not read: their pairs plan on working hours
        missing = [p.address for p in pair.people if p.address not in read.busy]
        if missing:
            why = _unread(read, missing)
            log.warning("pair %s: free/busy unavailable, planning on working hours only: %s", pair.pair_id, why)
            result.add("free/busy unavailable", f"{pair.pair_id}: calendars not readable, planned on working hours ({why})")
        found[pair.pair_id] = Calendars(None if missing else read.busy, read.hours)
    return found


def _unread(read: FreeBusy, addresses: list[str]) -> str:
    return "; ".join(f"{a}: {read.problems.get(a, 'not returned')}" for a in addresses)


def _past(series: dict, pair_id: str, now: datetime) -> int:
    """Sessions of ``series`` used up by ``now``: a skipped one too (it keeps its number, so a new
    series after a pause or a re-plan must not give it back: "session 7 of 7" with ``sessions = 6``);
    blackout days are no sessions at all."""
    plan = plan_from_doc(pair_id, series["plan"])
    blackouts = [datetime.fromisoformat(key) for key in series.get("blackouts", ())]
    return len(planning.occurrences_between(plan, plan.first_start, now, blackouts))


def cancel_reason(pair: Pair | None, doc: dict) -> str:
    """Why a series ends early, as its cancellation tells the pair: ``pause`` / ``stop`` (their
    own reply), ``paused`` / ``ended`` (the roster's status), ``removed`` (the row is gone)."""
    if pair is None:
        return "removed"
    if pair.status != RosterStatus.ACTIVE:
        return str(pair.status)
    return {PAUSED: "pause", ENDED: "stop", DECLINED: "declined"}.get(doc["state"], "removed")


def _cancel(ctx: Context, pair_id: str, doc: dict, result: JobResult, reason: str) -> dict | None:
    series = doc.get("series")
    if not series or series.get("cancelled") or doc.get("completed"):
        return None  # a completed programme's series has simply run out: nothing to cancel
    used = doc.get("sessions_used", 0) + _past(series, pair_id, ctx.now)
    if series.get("published") is None:  # never reached a calendar: forget it quietly
        result.add("series dropped", f"{pair_id}: unbooked series dropped")
        return dict(doc, series=None, sessions_used=used)
    result.add("series cancelled", f"{pair_id}: series cancelled")
    return dict(doc, sessions_used=used, series=dict(series, cancelled=True, cancelled_at=utc_key(ctx.now),
                                                     sequence=series["sequence"] + 1, cancel_reason=reason))



def _with_error(doc: dict, ctx: Context, errors: list[str]) -> dict | None:
    """The reason and its fix, for ``status``; recorded once, not rewritten every tick."""
    if doc.get("errors") == errors:
        return None
    return dict(doc, errors=errors, error_at=ctx.now.isoformat())


def _publish(ctx: Context, state: dict[str, dict], roster: dict[str, Pair], result: JobResult) -> None:
    """Hand every unconfirmed change to the backend, ``PUBLISH_BATCH`` series at a time; record
    only what it confirmed, pair by pair (one pair's failure never holds back the others), all
    of it after one ``flush``. A batch's series are built just before they go: each carries its
    invitation notes, and 10,000 of them held at once were most of a first tick's peak memory."""
    due = [pair_id for pair_id, doc in state.items() if _unconfirmed(doc.get("series"))]
    confirmed: dict[str, dict] = {}
    for start in range(0, len(due), PUBLISH_BATCH):
        confirmed.update(_publish_batch(ctx, {pid: state[pid] for pid in due[start:start + PUBLISH_BATCH]}, roster, result))
    if confirmed:
        ctx.backend.flush()  # durable before it is recorded (the local Maildir: one sync for every series)
        with ctx.store.deferred():  # lost in a crash, the backend is asked again and finds it done
            save(ctx.store, PAIRS, "pair_id", confirmed.values())
        state.update(confirmed)


def _unconfirmed(series: dict | None) -> bool:
    """A series with a change the backend has not confirmed: a sequence or sessions to cancel."""
    return bool(series) and (series.get("published") != series["sequence"] or bool(series.get("cancel_occurrences")))


def _publish_batch(ctx: Context, batch: dict[str, dict], roster: dict[str, Pair], result: JobResult) -> dict[str, dict]:
    """One batch through the backend (one ``publish_many``); the docs it confirmed, by pair."""
    todo: list[tuple[str, dict, Meeting]] = []
    for pair_id, doc in batch.items():
        pair = roster.get(pair_id) or pair_from_doc(doc["pair"])  # removed rows still get their cancellation
        with isolated(result, pair_id):
            todo.append((pair_id, doc, meeting_for(ctx.mail, pair, doc, **_notes(ctx, doc["series"]))))
    changed = [m for _, d, m in todo if d["series"].get("published") != d["series"]["sequence"]]
    outcomes = settle(ctx.backend.publish_many, changed, lambda m: m.uid)
    confirmed = {}
    for pair_id, doc, meeting in todo:
        series = doc["series"]
        error = outcomes.get(meeting.uid) or _cancel_occurrences(ctx, meeting, series.get("cancel_occurrences", []))
        if error is not None:
            log.warning("pair %s: calendar not updated: %s", pair_id, error)
            result.add("publish errors", f"{pair_id}: {error}")
            continue
        confirmed[pair_id] = dict(doc, series=dict(series, published=series["sequence"], cancel_occurrences=[],
                                                   **_join_url(ctx, meeting)))
        result.add("series published")
    return confirmed


def _notes(ctx: Context, series: dict) -> dict[str, bool]:
    """The covering notes the backend sends for this series (``meeting_for``): a mail backend
    e-mails each person their own to publish it and the shared one to cancel a single session;
    a calendar server keeps the shared one."""
    if not ctx.backend.invites_by_mail:
        return {"shared": True, "personal": False}
    return {"shared": bool(series.get("cancel_occurrences")), "personal": series.get("published") != series["sequence"]}


def _join_url(ctx: Context, meeting: Meeting) -> dict[str, str]:
    """The online meeting's join link the calendar server made for the series (agendas carry it)."""
    if Capability.ONLINE_MEETINGS not in ctx.backend.capabilities or meeting.cancelled:
        return {}
    url = ctx.backend.join_url(meeting.uid)
    return {"join_url": url} if url else {}


def _cancel_occurrences(ctx: Context, meeting: Meeting, starts: list[str]) -> BackendError | None:
    try:
        for start in starts:
            ctx.backend.cancel_occurrence(meeting, datetime.fromisoformat(start))
    except BackendError as e:
        return e
    return None


# --------------------------------------------------------------------------------------------
# Sessions that moved or were declined


def _session_times(state: dict[str, dict], sessions: dict[str, dict]) -> list[dict]:
    """Session records that changed with the series: ``start`` is when a moved session happens,
    and a session skipped after its agenda went out says so (``skipped: "skip"``)."""
    rows = []
    series_by_uid = {d["series"]["uid"]: d["series"] for d in state.values() if d.get("series")}
    for s in sessions.values():
        series = series_by_uid.get(s.get("uid", ""))
        if s["kind"] != "session" or series is None or s.get("skipped"):
            continue
        planned = s.get("planned") or s["start"]
        change = {"planned": planned, "start": utc_key(actual_start(series, datetime.fromisoformat(planned)))}
        if planned in series.get("exdates", []):
            change["skipped"] = "skip"
        change = {k: v for k, v in change.items() if s.get(k) != v}
        if change:
            rows.append({"token": s["token"], **change})
    return rows


def _answer_counters(ctx: Context, pair: Pair, doc: dict, result: JobResult) -> dict | None:
    """Take or refuse the times people proposed in their calendars (``programme/counters.py``),
    reading both calendars once for all of the pair's proposals where the backend can."""
    series = doc.get("series")
    if not counters.pending(series) or series.get("cancelled") or series.get("published") is None:
        return None
    start, end = counters.window(pair, series, ctx.now)
    try:
        read = _calendars_of(ctx, list(pair.people), start, end)
    except BackendError as e:
        log.warning("pair %s: free/busy unavailable, proposals checked on working hours only: %s", pair.pair_id, e)
        read = None
    busy = read.busy if read is not None and all(p.address in read.busy for p in pair.people) else None
    for counter in counters.pending(series):
        wanted, problem = counters.moves_for(ctx.now, ctx.settings.program.blackout_dates, pair, doc["series"],
                                             counter, busy)
        doc = counters.apply(ctx.now, pair, doc, counter, wanted, problem)
        result.add("proposals answered", f"{pair.pair_id}: {counter['from']} proposed {counter['start']} for "
                   f"{counter['slot']}: " + (f"refused ({english(problem)})" if problem else "taken"))
    return doc


def _settle(ctx: Context, pair: Pair, doc: dict, sessions: dict[str, dict], result: JobResult) -> tuple[dict, list[dict]] | None:
    """Close repair offers: skip the sessions that came round unanswered, drop retracted declines.

    A skipped declined session is recorded as a session without a log, so it counts as missed.
    """
    series = doc.get("series")
    if not series or series.get("cancelled") or series.get("published") is None:
        return None
    settled = pairstate.settle_repairs(series, pairstate.declined(doc, pair), ctx.now)
    if settled is None:
        return None
    new_series, skipped = settled
    rows = []
    for key in skipped:
        if key in new_series.get("exdates", []):
            continue  # skipped with SKIP meanwhile: said in time, so not missed
        planned = datetime.fromisoformat(key)
        new_series = with_skip(new_series, planned)
        token = compose.session_token(series, planned)
        rows.append({**sessions.get(token, {"token": token, "pair_id": pair.pair_id, "kind": "session", "uid": series["uid"],
                                            "start": key, "planned": key, "number": None, "starter": None, "starter_text": ""}),
                     "skipped": "declined"})
        result.add("declined sessions skipped", f"{pair.pair_id}: declined session {key} skipped (no other time picked)")
    return dict(doc, series=new_series), rows


def _mail(ctx: Context, state: dict[str, dict], roster: dict[str, Pair], result: JobResult) -> None:
    """Repair offers for declined sessions and the queued notices; each email exactly once."""
    offers: dict[str, dict] = {}
    rows: list[dict] = []
    messages: list[Outgoing] = []
    for pair_id, doc in state.items():
        with isolated(result, pair_id):
            pair = roster.get(pair_id)
            built: list[Outgoing] = []
            if _wanted(pair, doc) and doc.get("series") and not doc["series"].get("cancelled") \
                    and doc["series"].get("published") is not None:
                series, new_rows = _open_repairs(ctx, pair, doc, result)
                built = repairs.offer_messages(ctx.mail, pair, series)
                if new_rows:
                    offers[pair_id], rows = dict(doc, series=series), rows + new_rows
            messages += built + repairs.notice_messages(ctx.mail, pair or _snapshot(doc), doc)

    def record() -> None:
        save(ctx.store, PAIRS, "pair_id", offers.values())
        save(ctx.store, SESSIONS, "token", rows)

    if messages:
        deliver(ctx, messages, result, record=record)
    state.update(offers)
    _prune_notices(ctx, state)


def _snapshot(doc: dict) -> Pair | None:
    return pair_from_doc(doc["pair"]) if doc.get("pair") else None


def _open_repairs(ctx: Context, pair: Pair, doc: dict, result: JobResult) -> tuple[dict, list[dict]]:
    """One offer per newly declined session that is still ahead; the offer's token goes in the store."""
    series = doc["series"]
    repairs = dict(series.get("repairs") or {})
    rows = []
    for key, who in sorted(pairstate.declined(doc, pair).items()):
        planned = datetime.fromisoformat(key)
        if key in repairs or not _is_session(pair, series, planned) or actual_start(series, planned) <= ctx.now:
            continue
        offered, checked = _alternatives(ctx, pair, series, planned)
        token = repair_token(series, planned)
        repairs[key] = {"state": RepairState.OFFERED, "token": token, "offered": [utc_key(o) for o in offered],
                        "declined_by": who, "checked_calendars": checked, "at": ctx.now.isoformat()}
        rows.append({"token": token, "pair_id": pair.pair_id, "kind": "repair", "uid": series["uid"],
                     "planned": key, "start": None})
        result.add("repairs offered", f"{pair.pair_id}: {', '.join(who)} declined {key}; {len(offered)} other times offered")
    return (dict(series, repairs=repairs) if rows else series), rows


def _is_session(pair: Pair, series: dict, planned: datetime) -> bool:
    """Whether ``planned`` is a session of this series that has not been skipped."""
    plan = plan_from_doc(pair.pair_id, series["plan"])
    found = planning.occurrences_between(plan, planned, planned + timedelta(minutes=1), exdates(series))
    return [utc_key(s) for s in found] == [utc_key(planned)]


def _alternatives(ctx: Context, pair: Pair, series: dict, planned: datetime) -> tuple[list[datetime], bool]:
    """Other times that week for the session, and whether calendars were consulted (free/busy)."""
    actual = actual_start(series, planned)
    week = datetime.combine(actual.astimezone(ZoneInfo(pair.mentee.timezone)).date(), time(0), ZoneInfo(pair.mentee.timezone))
    week -= timedelta(days=week.weekday())
    plan = plan_from_doc(pair.pair_id, series["plan"])
    others = [actual_start(series, s) for s in planning.occurrences_between(plan, week - timedelta(days=7),
                                                                             week + timedelta(days=14), exdates(series))]
    try:
        read = _calendars_of(ctx, list(pair.people), week, week + timedelta(days=7))
        why = _unread(read, list(read.problems)) if read is not None else ""
    except BackendError as e:
        read, why = None, str(e)
    if why:
        log.warning("pair %s: free/busy unavailable, offering times on working hours only: %s", pair.pair_id, why)
        read = None
    if read is not None:  # offered inside the hours the series was planned in
        pair = _with_calendar_hours(pair, read.hours)[0]
    offered = planning.alternative_starts(pair, actual, not_before=ctx.now + REPAIR_NOTICE,
                                          busy=read.busy if read is not None else None,
                                          avoid=[o for o in others if o != actual],
                                          blackout=ctx.settings.program.blackout_dates)
    return offered, read is not None


def _prune_notices(ctx: Context, state: dict[str, dict]) -> None:
    """Forget notices once sent or refused for good (kept until then, so a crash before sending loses
    none): a notice left queued would be built again every tick, and sent again once pruning forgot its key."""
    with_notices = {pid: d for pid, d in state.items() if d.get("notices")}
    if not with_notices:
        return
    done = final_keys(ctx)
    pruned = {pid: dict(d, notices=[n for n in d["notices"] if n["key"] not in done]) for pid, d in with_notices.items()}
    pruned = {pid: d for pid, d in pruned.items() if len(d["notices"]) != len(with_notices[pid]["notices"])}
    if pruned:
        with ctx.store.deferred():  # notices already sent: forgetting them can wait for the next write
            save(ctx.store, PAIRS, "pair_id", pruned.values())
        state.update(pruned)
