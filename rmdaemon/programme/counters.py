"""Proposals of another time (iTIP COUNTER: Outlook's "Propose New Time", Google's "Propose a new
time"): taken when the time lies inside both people's working hours (those the series was planned
in), off blackout days, and free in both calendars where the backend can read them; otherwise
refused with the reason. Pure: the booking job reads the calendars and carries the answer out.

A proposal for one session names it by RECURRENCE-ID; one for the whole series moves every
remaining session by the same wall-clock shift (Outlook proposes the series' first start), and is
taken only if every one of them fits.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rmdaemon import planning
from rmdaemon.model import BusyTime, Pair, Person
from rmdaemon.phrases import moment, phrase
from rmdaemon.programme.calendar_answers import notice
from rmdaemon.programme.pairstate import Blackouts, move_problem
from rmdaemon.programme.series import actual_start, exdates, plan_from_doc, utc_key, with_move

Busy = dict[str, list[BusyTime]] | None  # address → busy times; None: the backend cannot see calendars
PENDING, ACCEPTED, REFUSED = "pending", "accepted", "refused"


def pending(series: dict | None) -> list[dict]:
    return [c for c in (series or {}).get("counters", []) if c["state"] == PENDING]


def window(pair: Pair, series: dict, now: datetime) -> tuple[datetime, datetime]:
    """The span whose free/busy the pending proposals need: now to the end of the series."""
    plan = plan_from_doc(pair.pair_id, series["plan"])
    starts = [now, *(datetime.fromisoformat(c["start"]) for c in pending(series))]
    starts += [actual_start(series, s) for s in planning.occurrences(plan, exdates(series))]
    return now, max(starts) + timedelta(minutes=plan.duration_minutes)


def moves_for(now: datetime, blackouts: Blackouts, pair: Pair, series: dict, counter: dict,
              busy: Busy) -> tuple[list[tuple[datetime, datetime]], dict | None]:
    """(planned, new) of every session the proposal moves, or why it cannot be taken (a phrase)."""
    proposer = pair.member(counter["from"])
    start = datetime.fromisoformat(counter["start"])
    if proposer is None:
        return [], phrase("refused.left_pair")
    if counter["slot"] == "series":
        ahead = [p for p in _planned(pair, series) if actual_start(series, p) > now]
        if not ahead:
            return [], phrase("refused.none_left")
        shift = _local(start, series) - _local(datetime.fromisoformat(series["plan"]["first_start"]), series)
        wanted = [(p, _shifted(p, shift, series)) for p in ahead]
    else:
        planned = datetime.fromisoformat(counter["slot"])
        if utc_key(planned) not in {utc_key(p) for p in _planned(pair, series)}:
            return [], phrase("refused.not_in_series")
        wanted = [(planned, start)]
    for planned, new in wanted:
        problem = (move_problem(now, blackouts, pair, series, planned, new, proposer)
                   or _clash(pair, series, planned, new, busy, proposer, len(wanted) > 1))
        if problem:
            return [], problem
    return wanted, None


def apply(now: datetime, pair: Pair, doc: dict, counter: dict, wanted: list[tuple[datetime, datetime]],
          problem: dict | None) -> dict:
    """The pair's doc with the proposal taken (sessions moved, SEQUENCE up, both told) or refused
    (a DECLINECOUNTER to the proposer; for one session the repair offer follows as for a decline)."""
    series = doc["series"]
    proposer = pair.member(counter["from"])
    notices = list(doc.get("notices") or [])
    name = proposer.name if proposer else counter["from"]
    responses = doc.get("responses") or {}
    if problem is None:
        for planned, new in wanted:
            series = with_move(series, planned, new)
        state = {"state": ACCEPTED, "closed": now.isoformat()}
        # "Decline and propose": the decline was of the old time; the new one is theirs.
        mine = {k: v for k, v in (responses.get(counter["from"]) or {}).items() if k != counter["slot"] or v != "DECLINED"}
        responses = {**responses, counter["from"]: mine}
        for person in pair.people:
            notices.append(_taken(pair, counter, person, name, wanted))
    else:
        state = {"state": REFUSED, "reason": problem, "closed": now.isoformat()}
        if proposer is not None:
            notices.append(notice(pair.pair_id, proposer, counter["id"], "declinecounter", what=phrase(
                "notice.proposal_refused"), reason=phrase("notice.stays", problem=problem),
                planned=None if counter["slot"] == "series" else counter["slot"], calendar="DECLINECOUNTER"))
        if counter["slot"] == "series":  # a single session gets the repair offer instead
            other = next((p for p in pair.people if p is not proposer), None)
            if other is not None:
                notices.append(notice(pair.pair_id, other, counter["id"], "refused", what=phrase(
                    "notice.series_proposed", name=name), who=name, comment=counter.get("comment", ""),
                    reason=phrase("notice.series_stays", problem=problem)))
    counters = [dict(c, **state) if c["id"] == counter["id"] else c for c in series.get("counters", [])]
    return dict(doc, series=dict(series, counters=counters), notices=notices, responses=responses)


def _taken(pair: Pair, counter: dict, person: Person, name: str, wanted: list[tuple[datetime, datetime]]) -> dict:
    if counter["slot"] == "series":
        what, planned = phrase("notice.series_taken", name=name), None
        reason = phrase("notice.series_from_now", when=moment(wanted[0][1], person.timezone))
    else:
        what, planned, reason = phrase("notice.one_taken", name=name), counter["slot"], ""
    return notice(pair.pair_id, person, counter["id"], "accepted", what=what, who=name, reason=reason,
                  comment=counter.get("comment", "") if person.address != counter["from"] else "", planned=planned)


def _clash(pair: Pair, series: dict, planned: datetime, new: datetime, busy: Busy, reader: Person,
           whole: bool) -> dict | None:
    """Another session of the series, or a busy time in either calendar (not our own sessions)."""
    length = timedelta(minutes=series["plan"]["duration_minutes"])
    ours = {actual_start(series, p) for p in _planned(pair, series)}
    if not whole and any(s != actual_start(series, planned) and s < new + length and new < s + length for s in ours):
        return phrase("refused.own_clash", when=moment(new, reader.timezone))
    for person in pair.people:
        for b in (busy or {}).get(person.address, []):
            if b.start < new + length and new < b.end and not (b.start in ours and b.end - b.start == length):
                return phrase("refused.busy", name=person.name, when=moment(new, reader.timezone))
    return None


def _planned(pair: Pair, series: dict) -> list[datetime]:
    return planning.occurrences(plan_from_doc(pair.pair_id, series["plan"]), exdates(series))


def _local(moment: datetime, series: dict) -> datetime:
    return moment.astimezone(ZoneInfo(series["plan"]["tzid"])).replace(tzinfo=None)


def _shifted(planned: datetime, shift: timedelta, series: dict) -> datetime:
    """The same wall-clock shift in the series' zone (a Tuesday 10:00 series stays 10:00 across DST)."""
    zone = ZoneInfo(series["plan"]["tzid"])
    return (_local(planned, series) + shift).replace(tzinfo=zone).astimezone(timezone.utc)
