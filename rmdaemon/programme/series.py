"""A pair's booked series as stored, and the Meeting a backend books from it.

The stored series doc is the single truth of what should be on the calendars:
``sequence`` is what we want published, ``published`` the last sequence a backend confirmed.
The booking job closes the gap; everything else only edits the doc.

A session is named by its *planned* start (the RRULE's instant: its token, its RECURRENCE-ID)
and happens at its *actual* start, which differs only for a moved session: ``moved`` holds
``[planned, new]`` pairs (UTC ISO strings), ``blackouts`` the EXDATEs that blackout and
out-of-office days put there, and ``repairs`` the offers made after a declined session.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import jinja2

from rmdaemon import compose, phrases, planning
from rmdaemon.errors import UserError
from rmdaemon.config import ProgramSettings
from rmdaemon.programme.messages import Mailer
from rmdaemon.model import Meeting, Pair, Person, SeriesPlan, WorkingHours
from rmdaemon.records import RepairState

CADENCE_TEXT = {"weekly": "every week", "biweekly": "every two weeks", "monthly": "once a month"}


def cadence_text(cadence: str) -> str:
    return CADENCE_TEXT.get(cadence, cadence)


def sessions_text(program: ProgramSettings) -> str:
    if program.sessions:
        return f"{program.sessions} sessions"
    return f"sessions until {program.end_date:%d %B %Y}"


def plan_to_doc(plan: SeriesPlan) -> dict:
    return {
        "tzid": plan.tzid, "first_start": plan.first_start.isoformat(), "duration_minutes": plan.duration_minutes,
        "cadence": plan.cadence, "rrule": plan.rrule, "count": plan.count,
        "until": plan.until.isoformat() if plan.until else None,
    }


def plan_from_doc(pair_id: str, doc: dict) -> SeriesPlan:
    return SeriesPlan(
        pair_id=pair_id, tzid=doc["tzid"],
        first_start=datetime.fromisoformat(doc["first_start"]).astimezone(ZoneInfo(doc["tzid"])),
        duration_minutes=doc["duration_minutes"], cadence=doc["cadence"], rrule=doc["rrule"],
        count=doc["count"], until=datetime.fromisoformat(doc["until"]) if doc["until"] else None,
    )


def pair_to_doc(pair: Pair) -> dict:
    """A snapshot of the people, so a pair removed from the roster can still be sent its cancellation."""
    doc = {"pair_id": pair.pair_id, "goal": pair.goal, "track": pair.track, "cadence": pair.cadence,
           "duration_minutes": pair.duration_minutes, "status": pair.status,
           "people": [[p.name, p.email, p.timezone, *hours_to_doc(p.working_hours)] for p in pair.people],
           "greeting": [[p.preferred_name, p.language] for p in pair.people]}
    return {**doc, "cohort": pair.cohort} if pair.cohort else doc  # no key without one: stored snapshots stay as they were


def hours_to_doc(hours: WorkingHours) -> list:
    return [hours.start.isoformat(), hours.end.isoformat(), list(hours.days)]


def hours_from_doc(doc: list) -> WorkingHours:
    start, end, days = doc
    return WorkingHours(time.fromisoformat(start), time.fromisoformat(end), tuple(days))


def with_hours(pair: Pair, hours: dict[str, WorkingHours]) -> Pair:
    """The pair with some people's working hours replaced (by address): those read from their
    calendars, for people whose roster row gave none."""
    if not hours:
        return pair
    mentor, mentee = (replace(p, working_hours=hours.get(p.address, p.working_hours)) for p in pair.people)
    return replace(pair, mentor=mentor, mentee=mentee)


def planned_pair(pair: Pair, series: dict) -> Pair:
    """The pair as its series was planned: with the calendar working hours kept with the series
    for people whose roster row still gives none (roster hours, once given, re-plan the series)."""
    kept = {address: hours_from_doc(doc) for address, doc in (series.get("calendar_hours") or {}).items()}
    return with_hours(pair, {p.address: kept[p.address] for p in pair.people if p.hours_defaulted and p.address in kept})


def pair_from_doc(doc: dict) -> Pair:
    greeting = doc.get("greeting") or [["", ""], ["", ""]]  # snapshots from before names and languages
    mentor, mentee = (Person(name, email, tz, hours_from_doc(hours), preferred_name=preferred, language=language)
                      for (name, email, tz, *hours), (preferred, language) in zip(doc["people"], greeting))
    return Pair(pair_id=doc["pair_id"], mentor=mentor, mentee=mentee, goal=doc["goal"], track=doc["track"],
                cadence=doc["cadence"], duration_minutes=doc["duration_minutes"], preferred_slot=None,
                status=doc["status"], cohort=doc.get("cohort", ""))


def taken_slots(state: dict[str, dict]) -> Counter:
    """How many live series use each (weekday, local time), so new pairs spread over the week and the day."""
    taken: Counter = Counter()
    for doc in state.values():
        series = doc.get("series")
        if series and not series.get("cancelled"):
            start = datetime.fromisoformat(series["plan"]["first_start"]).astimezone(ZoneInfo(series["plan"]["tzid"]))
            taken[(start.weekday(), start.time())] += 1
    return taken


def exdates(series: dict) -> tuple[datetime, ...]:
    return tuple(datetime.fromisoformat(s) for s in series.get("exdates", ()))


def moves(series: dict) -> tuple[tuple[datetime, datetime], ...]:
    """(planned start, new start) of every moved session, both aware."""
    return tuple((datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in series.get("moved", ()))


def actual_start(series: dict, planned: datetime) -> datetime:
    """When the session planned for ``planned`` happens (the same instant unless it was moved)."""
    key = utc_key(planned)
    return next((new for old, new in moves(series) if utc_key(old) == key), planned)


def utc_key(moment: datetime) -> str:
    """How instants are keyed in the store (exdates, moves, RSVPs, session starts)."""
    return moment.astimezone(timezone.utc).isoformat()


def next_session(series: dict | None, pair_id: str, after: datetime) -> tuple[datetime, datetime] | None:
    """(planned, actual) start of the session of a live series that happens next after ``after``."""
    if not series or series.get("cancelled"):
        return None
    return planning.next_actual(plan_from_doc(pair_id, series["plan"]), after, exdates(series), moves(series))


def upcoming(series: dict | None, pair_id: str, after: datetime) -> datetime | None:
    """The *planned* start of the next session (its identity: the token derives from it), or None."""
    found = next_session(series, pair_id, after)
    return found[0] if found else None


def with_move(series: dict, planned: datetime, new: datetime) -> dict:
    """The series with one session at ``new`` (an override VEVENT with RECURRENCE-ID = planned).

    Moving it back to its planned time removes the override. An open repair offer for the
    session is settled by the move. SEQUENCE rises, so the booking job re-sends the series.
    """
    key = utc_key(planned)
    moved = [m for m in series.get("moved", []) if m[0] != key]
    if utc_key(new) != key:
        moved.append([key, utc_key(new)])
    repairs = dict(series.get("repairs") or {})
    if repairs.get(key, {}).get("state") == RepairState.OFFERED:
        repairs[key] = dict(repairs[key], state=RepairState.MOVED, moved_to=utc_key(new))
    return dict(series, moved=sorted(moved), repairs=repairs, sequence=series["sequence"] + 1)


def with_skip(series: dict, planned: datetime) -> dict:
    """The series without one session: an EXDATE, plus a CANCEL for its RECURRENCE-ID to send."""
    key = utc_key(planned)
    return dict(series, exdates=[*series.get("exdates", []), key], sequence=series["sequence"] + 1,
                cancel_occurrences=[*series.get("cancel_occurrences", []), key])


def repair_token(series: dict, planned: datetime) -> str:
    """The token of the email that offers other times for a declined session (a "2" comes back on it)."""
    return compose.token(f"repair|{series['uid']}|{utc_key(planned)}", series.get("token_key"))


def fingerprint(pair: Pair, blackout: planning.DateRanges = ()) -> str:
    """What, when changed in the roster or config, means the series must be re-planned and re-sent.

    Blocked days count only when there are any, so pairs without them keep the fingerprint
    they were booked with.
    """
    people = [(p.email.casefold(), p.name, p.timezone, str(p.working_hours)) for p in pair.people]
    parts: list[object] = [pair.cadence, pair.duration_minutes, str(pair.preferred_slot), people]
    away = [[str(d) for span in p.out_of_office for d in span] for p in pair.people]
    if blackout or any(away):
        parts.append(([str(d) for span in blackout for d in span], away))
    return compose.digest(*parts)


def place(program: ProgramSettings, pair: Pair) -> str:
    """Where the pair meets: the roster's location, else ``[program] location``, either maybe a
    template (``https://meet.example.com/{{ pair.mentor.email }}``); "" when neither is set."""
    text = pair.location or program.location
    source = f"roster row {pair.row}: location" if pair.location else "[program] location"
    try:
        return compose.fill_in(text, {"pair": pair, "mentor": pair.mentor, "mentee": pair.mentee, "program": program})
    except jinja2.TemplateError as e:
        raise UserError(f"{source}: {e}", [f"{source}: write a room, a URL, or a template using pair, mentor, mentee "
                                           "and program (e.g. https://meet.example.com/{{ mentor.email }})"]) from None


def goal_of(pair: Pair, state: dict) -> str:
    return state.get("goal") or pair.goal


def meeting_for(mail: Mailer, pair: Pair, state: dict, *, shared: bool = True, personal: bool = True) -> Meeting:
    """The series as a backend books it, with the covering notes asked for: ``shared``, the one
    body a calendar item keeps for everyone (``subject``, ``body_text``, ``body_html``), and
    ``personal``, each attendee's own (``bodies``). A note not asked for is left empty: rendering
    one costs a template render and a CSS inlining per language, for a note nobody would read."""
    series = state["series"]
    plan = plan_from_doc(pair.pair_id, series["plan"])
    program = mail.program
    summary = f"{program.name}: {pair.mentor.name} & {pair.mentee.name}"
    champion = mail.champion()
    context = {
        "program": program, "pair": pair, "goal": goal_of(pair, state), "summary": summary,
        "cancelled": series.get("cancelled", False), "sequence": series["sequence"],
        "reason": series.get("cancel_reason", "removed"), "contact_name": champion.name, "contact": champion.email,
        "cadence_text": cadence_text(plan.cadence), "sessions_text": _count_text(plan, series, program),
        "count": plan.count - len(series.get("blackouts", ())) if plan.count else None,
        "first_mentee": phrases.local_time(plan.first_start, pair.mentee.timezone, pair.mentee.language),
        "first_mentor": phrases.local_time(plan.first_start, pair.mentor.timezone, pair.mentor.language),
        "location": place(program, pair), "join_url": series.get("join_url") or "",
    }

    def view(person: Person, shared: bool = False) -> dict:
        """The invitation as ``person`` reads it: their own time first, the other's after."""
        other = pair.mentee if person is pair.mentor else pair.mentor
        return dict(context, person=person, other=other, shared=shared,
                    when_local=phrases.local_time(plan.first_start, person.timezone, person.language),
                    when_other=phrases.local_time(plan.first_start, other.timezone, person.language))

    both, default = mail.languages((pair.mentee, pair.mentor)), program.language
    body = (compose.render(mail.templates, "invitation", view(pair.mentee, shared=True), both, default) if shared
            else compose.Rendered("", "", ""))
    own = tuple((p.address, compose.render(mail.templates, "invitation", view(p), mail.languages((p,)), default))
                for p in pair.people) if personal else ()
    return Meeting(
        uid=series["uid"], sequence=series["sequence"], organizer_email=program.organizer,
        organizer_name=program.organizer_name, attendees=pair.people, summary=summary,
        description=compose.render_text(mail.templates, "event_description.txt", view(pair.mentee, shared=True),
                                        both, default),
        plan=plan, exdates=exdates(series), moved=moves(series), cancelled=series.get("cancelled", False),
        subject=body.subject, body_text=body.text, body_html=body.html, token_key=series.get("token_key") or "",
        location=context["location"], bodies=tuple((address, r.subject, r.text, r.html) for address, r in own),
    )


def _count_text(plan: SeriesPlan, series: dict, program: ProgramSettings) -> str:
    """The number of sessions the pair gets: blackout days were added back at the end."""
    if plan.count:
        return f"{plan.count - len(series.get('blackouts', ()))} sessions"
    return sessions_text(program)


def milestone_sessions(total: int) -> dict[str, int]:
    """The session number after which each milestone falls (no midpoint in a very short series)."""
    marks = {"first": 1, "midpoint": math.ceil(total / 2) if total >= 3 else 0, "end": total}
    return {name: number for name, number in marks.items() if number}


def progress_sessions(total: int) -> set[int]:
    """Sessions whose agenda asks "how far are you towards your goal?": the midpoint and the last."""
    marks = milestone_sessions(total)
    return {marks[m] for m in ("midpoint", "end") if m in marks}
