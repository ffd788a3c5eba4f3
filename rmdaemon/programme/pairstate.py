"""What a participant's reply does to their pair: consent, a command, or a session log.

Pure with respect to the store: takes the pair's record and returns the new one plus rows to
insert; the inbox job writes them in its one batch. Calendar effects (a cancelled series, a
skipped or moved session) are only marked in the series doc here; the booking job carries them
out, and also sends the short emails queued in the doc's ``notices`` (why a RESCHEDULE could
not be done), so that this module never builds mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from rmdaemon import compose, planning
from rmdaemon.records import (ACTIVE, AWAITING, COMMANDS, DECLINED, ENDED, LOGS, NO, PAUSED, YES, InboxOutcome,
                              Log, PairRecord, RepairState)
from rmdaemon.programme import privacy, sessions
from rmdaemon.programme.series import actual_start, next_session, planned_pair, utc_key, with_move, with_skip
from rmdaemon.model import Pair, Person
from rmdaemon.phrases import PhraseError, english, moment, phrase
from rmdaemon.phrases import hours as working
from rmdaemon.replies import ParsedReply


@dataclass
class Update:
    kind: InboxOutcome
    reason: str = ""
    doc: PairRecord | None = None  # the pair's new state, when it changed
    docs: dict[str, list[dict]] = field(default_factory=dict)


Blackouts = tuple[tuple[date, date], ...]  # [program] blackout_dates


def apply_reply(now: datetime, blackouts: Blackouts, pair: Pair, doc: PairRecord, session: dict, sender: Person,
                parsed: ParsedReply, written: datetime | None = None, logged: frozenset[str] | set[str] = frozenset()) -> Update:
    """``session`` is the one the reply's token names ({} if none); ``written`` when the reply was
    written (its Date), ``logged`` the tokens of the pair's sessions that have a log: a log without
    a session token is filed under the session its text dates, else the latest without a log
    (``programme/sessions.py``). A RESCHEDULE never lands on one of the ``blackouts``."""
    doc = replace(doc)
    goal = (parsed.fields or {}).get("goal")
    if goal:
        doc.goal = goal
    if parsed.share_notes is not None:
        doc.share_notes = {**(doc.share_notes or {}), sender.address: parsed.share_notes}
    if doc.state == AWAITING:
        return _consent(pair, doc, sender, parsed)
    if session.get("kind") == "repair" and parsed.command is None:
        return _pick(now, pair, doc, session, sender, parsed)
    if parsed.command:
        return _command(now, blackouts, pair, doc, session, sender, parsed, written)
    return _log(now, pair, doc, session, sender, parsed, written, logged)


def _consent(pair: Pair, doc: PairRecord, sender: Person, parsed: ParsedReply) -> Update:
    answer = NO if parsed.command == "stop" else parsed.consent
    if answer not in (YES, NO):
        if doc.goal or parsed.share_notes is not None:
            return Update(InboxOutcome.CONSENT, "goal or sharing noted; still waiting for YES or NO", doc)
        return Update(InboxOutcome.QUARANTINE, "reply to the kickoff without a YES or NO")
    doc.consent = {**doc.consent, sender.address: answer}
    if answer == NO:
        doc.state = DECLINED
        return Update(InboxOutcome.CONSENT, f"{sender.email} declined", doc)
    if all(doc.consent.get(p.address) == YES for p in pair.people):
        doc.state = ACTIVE
        return Update(InboxOutcome.CONSENT, f"{sender.email} opted in; both in, booking next", doc)
    return Update(InboxOutcome.CONSENT, f"{sender.email} opted in", doc)


def _command(now: datetime, blackouts: Blackouts, pair: Pair, doc: PairRecord, session: dict, sender: Person,
             parsed: ParsedReply, written: datetime | None = None) -> Update:
    """SKIP and RESCHEDULE are about the session ahead *when they were written* (the reply's Date,
    never later than now): a daemon that was down when the SKIP arrived still skips the session the
    sender meant, as one that read it at once would have (tests/test_schedules.py)."""
    command = parsed.command
    at = min(written, now) if written is not None else now
    row = {"pair_id": pair.pair_id, "command": command, "arg": parsed.command_arg, "from": sender.address,
           "at": now.isoformat(), "message_id": parsed.message_id, "token": session.get("token")}
    docs = {COMMANDS: [row]}
    if command == "pause" and doc.state == ACTIVE:
        doc.state = PAUSED
    elif command == "resume" and doc.state == PAUSED:
        doc.state = ACTIVE
    elif command == "stop" and doc.state in (ACTIVE, PAUSED):
        doc.state = ENDED
    elif command == "skip":
        return _skip(at, pair, doc, session, docs)
    elif command == "reschedule":
        return _reschedule(at, blackouts, pair, doc, session, sender, parsed, docs)
    else:
        return Update(InboxOutcome.COMMAND, f"{command} noted (state stays {doc.state})", doc, docs)
    return Update(InboxOutcome.COMMAND, f"{command} by {sender.email}: now {doc.state}", doc, docs)


def _target(now: datetime, pair: Pair, series: dict | None, session: dict) -> tuple[datetime, datetime] | None:
    """(planned, actual) start of the session a command is about: the one the reply's token names
    while it is still ahead (skipped or not), else the next one."""
    if not series or series.get("cancelled"):
        return None
    named = session.get("planned") or session.get("start")
    if named and session.get("kind") in ("session", "repair"):
        planned = datetime.fromisoformat(named)
        actual = actual_start(series, planned)
        if actual > now:
            return planned, actual
    return next_session(series, pair.pair_id, now)


def _skip(now: datetime, pair: Pair, doc: PairRecord, session: dict, docs: dict) -> Update:
    """Skip the session the reply is about if it is still ahead, else the next one."""
    series = doc.series
    found = _target(now, pair, series, session)
    if found is None:
        return Update(InboxOutcome.COMMAND, "skip: no upcoming session to skip", doc, docs)
    key = utc_key(found[0])
    if key in series.get("exdates", []):
        return Update(InboxOutcome.COMMAND, f"skip: session {key} already skipped", doc, docs)
    doc.series = with_skip(series, found[0])
    return Update(InboxOutcome.COMMAND, f"skip: session {key} cancelled", doc, docs)


def _reschedule(now: datetime, blackouts: Blackouts, pair: Pair, doc: PairRecord, session: dict, sender: Person,
                parsed: ParsedReply, docs: dict) -> Update:
    """Move the session the reply is about (or the next one) to a day and time of the same week,
    both read in the sender's zone; an impossible time leaves everything as it was and queues a
    notice that tells the sender why."""
    series = doc.series
    found = _target(now, pair, series, session) if doc.state == ACTIVE else None
    if found is None:
        return _refuse(now, doc, sender, parsed, docs, None, phrase("refused.no_session"))
    planned, actual = found
    try:
        weekday, at = planning.parse_day_time(parsed.command_arg or "")
    except PhraseError as e:
        reason = e.said if parsed.command_arg else phrase("refused.needs_time")
        return _refuse(now, doc, sender, parsed, docs, planned, reason)
    # Read in the sender's own zone: it is the zone their agenda showed the session in.
    new = planning.in_same_week(planned, sender.timezone, weekday, at)
    problem = move_problem(now, blackouts, pair, series, planned, new, sender)
    if problem:
        return _refuse(now, doc, sender, parsed, docs, planned, problem)
    if new == actual:
        return Update(InboxOutcome.COMMAND, f"reschedule: session {utc_key(planned)} is already at that time", doc, docs)
    doc.series = with_move(series, planned, new)
    return Update(InboxOutcome.COMMAND, f"reschedule: session {utc_key(planned)} moved to {utc_key(new)}", doc, docs)


def move_problem(now: datetime, blackouts: Blackouts, pair: Pair, series: dict, planned: datetime, new: datetime,
                 reader: Person) -> dict | None:
    """Why the session planned for ``planned`` cannot happen at ``new``: a phrase, its times in ``reader``'s zone."""
    when = moment(new, reader.timezone)
    pair = planned_pair(pair, series)  # the hours the series was planned in (some may be from calendars)
    if utc_key(planned) in series.get("exdates", []):
        return phrase("refused.skipped", when=moment(planned, reader.timezone))
    if new <= now:
        return phrase("refused.passed", when=when)
    outside = planning.outside_whose_hours(pair, new)
    if outside:
        hours = [phrase("refused.works", name=p.name, hours=working(p.working_hours)) if p.timezone == reader.timezone
                 else phrase("refused.works_there", name=p.name, hours=working(p.working_hours), zone=p.timezone,
                             when=moment(new, p.timezone)) for p in outside]
        return phrase("refused.outside_hours", when=when, hours=hours)
    return planning.blocked_reason(pair, new, blackouts)


def _refuse(now: datetime, doc: PairRecord, sender: Person, parsed: ParsedReply, docs: dict, planned: datetime | None,
            reason: dict) -> Update:
    """Nothing moves; the sender gets a short email saying why (``reason``, a phrase: sent by the
    booking job in the sender's language)."""
    doc.notices = [*(doc.notices or []), {
        "key": f"notice:{doc.pair_id}:{compose.digest(parsed.message_id or now.isoformat())}:{sender.address}",
        "kind": "reschedule_refused", "to": sender.address, "asked": parsed.command_arg or "",
        "reason": reason, "planned": utc_key(planned) if planned else None, "reply_to": parsed.message_id or "",
    }]
    return Update(InboxOutcome.COMMAND, f"reschedule refused: {english(reason)}", doc, docs)


def _pick(now: datetime, pair: Pair, doc: PairRecord, session: dict, sender: Person, parsed: ParsedReply) -> Update:
    """A reply to a repair offer: the number of one of the offered times moves the declined session."""
    number = slot_number(parsed.body)
    row = {"pair_id": pair.pair_id, "command": "pick", "arg": None if number is None else str(number),
           "from": sender.address, "at": now.isoformat(), "message_id": parsed.message_id,
           "token": session.get("token")}
    docs = {COMMANDS: [row]}
    series = doc.series or {}
    planned = datetime.fromisoformat(session["planned"])
    repair = (series.get("repairs") or {}).get(session["planned"])
    problem = _pick_problem(now, doc, series, repair, number)
    if problem:
        parsed = replace(parsed, command_arg=parsed.body.strip()[:60])
        return _refuse(now, doc, sender, parsed, docs, planned, problem)
    new = datetime.fromisoformat(repair["offered"][number - 1])
    doc.series = with_move(series, planned, new)
    return Update(InboxOutcome.COMMAND,
                  f"repair: {sender.email} picked {number}; session {session['planned']} moved to {utc_key(new)}", doc, docs)


def _pick_problem(now: datetime, doc: PairRecord, series: dict, repair: dict | None, number: int | None) -> dict | None:
    if doc.state != ACTIVE or repair is None or series.get("cancelled"):
        return phrase("refused.offer_closed")
    if repair["state"] == RepairState.MOVED:
        return phrase("refused.already_moved")
    if repair["state"] != RepairState.OFFERED:
        return phrase("refused.already_skipped")
    offered = repair["offered"]
    if number is None or not 1 <= number <= len(offered):
        return phrase("refused.no_choice", count=len(offered)) if offered else phrase("refused.no_choice_left")
    if datetime.fromisoformat(offered[number - 1]) <= now:
        return phrase("refused.offer_passed")
    return None


_NUMBER_RE = re.compile(r"^\s*(?:#|no\.?|nr\.?|option|slot|number)?\s*(\d{1,2})\s*[.)!]?\s*$", re.IGNORECASE)


def slot_number(body: str) -> int | None:
    """The number a reply to a repair offer picks: its first line is just the number ("2", "#2", "2.")."""
    first = next((line for line in body.splitlines() if line.strip()), "")
    match = _NUMBER_RE.match(first)
    return int(match[1]) if match else None


def _log(now: datetime, pair: Pair, doc: PairRecord, session: dict, sender: Person, parsed: ParsedReply,
         written: datetime | None, logged: frozenset[str] | set[str]) -> Update:
    at = min(written or now, now)  # a Date in the future is not believed
    rows = sessions.planned_rows(doc)
    named = session.get("token") if session.get("kind") == "session" else None
    target = sessions.attribute(rows, set(logged), at, named, parsed.body, sessions.series_zone(doc)) if rows else None
    if target is None:
        return Update(InboxOutcome.QUARANTINE, "a note arrived before any session was held")
    row = Log(pair.pair_id, target["token"], target["start"], sender.address,
              "mentor" if sender is pair.mentor else "mentee", parsed.body, parsed.fields, now.isoformat(),
              parsed.message_id, parsed.warnings, utc_key(at), privacy.people_of(pair))
    doc.last_log = now.isoformat()
    return Update(InboxOutcome.LOG, f"session {target['number']} logged by {sender.email}", doc,
                  {LOGS: [row.to_doc()]})


# --------------------------------------------------------------------------------------------
# Declined in the calendar: the repair offer's life


def declined(doc: dict, pair: Pair) -> dict[str, list[str]]:
    """Planned start (UTC key) → who declined that single session in their calendar (iTIP REPLY
    with RECURRENCE-ID, or a COUNTER we refused). A declined *series* is not here: it is shown by
    ``status``."""
    found: dict[str, list[str]] = {}
    responses = doc.get("responses") or {}
    for person in pair.people:
        for key, answer in (responses.get(person.address) or {}).items():
            if key != "series" and answer == "DECLINED":
                found.setdefault(key, []).append(person.address)
    # A proposed time we could not take counts as a decline of that session until they accept it.
    for counter in (doc.get("series") or {}).get("counters", []):
        who, key = counter["from"], counter["slot"]
        if counter["state"] == "refused" and key != "series" and pair.member(who) \
                and (responses.get(who) or {}).get(key) != "ACCEPTED" and who not in found.get(key, []):
            found.setdefault(key, []).append(who)
    return found


def settle_repairs(series: dict, declines: dict[str, list[str]], now: datetime) -> tuple[dict, list[str]] | None:
    """Close open offers: withdrawn when nobody declines any more (an accept came after the
    decline), skipped when the session's time came without a new time picked (or it was
    skipped meanwhile). Returns the series with the new states and the keys to skip, or None."""
    repairs = dict(series.get("repairs") or {})
    skip: list[str] = []
    for key, repair in repairs.items():
        if repair["state"] != RepairState.OFFERED:
            continue
        if not declines.get(key):
            repairs[key] = dict(repair, state=RepairState.WITHDRAWN, closed=now.isoformat())
        elif key in series.get("exdates", []) or actual_start(series, datetime.fromisoformat(key)) <= now:
            repairs[key] = dict(repair, state=RepairState.SKIPPED, closed=now.isoformat())
            skip.append(key)
    if repairs == (series.get("repairs") or {}):
        return None
    return dict(series, repairs=repairs), skip
