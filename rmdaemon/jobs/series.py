"""A pair's booked series as stored, and the Meeting a backend books from it.

The stored series doc is the single truth of what should be on the calendars:
``sequence`` is what we want published, ``published`` the last sequence a backend confirmed.
The booking job closes the gap; everything else only edits the doc.
"""

from __future__ import annotations

import math
from datetime import datetime, time
from zoneinfo import ZoneInfo

from rmdaemon import compose, planning
from rmdaemon.config import ProgramSettings
from rmdaemon.jobs.common import Context
from rmdaemon.model import Meeting, Pair, Person, SeriesPlan, WorkingHours

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
    return {"pair_id": pair.pair_id, "goal": pair.goal, "track": pair.track, "cadence": pair.cadence,
            "duration_minutes": pair.duration_minutes, "status": pair.status,
            "people": [[p.name, p.email, p.timezone, p.working_hours.start.isoformat(),
                        p.working_hours.end.isoformat(), list(p.working_hours.days)] for p in pair.people]}


def pair_from_doc(doc: dict) -> Pair:
    mentor, mentee = (Person(name, email, tz, WorkingHours(time.fromisoformat(a), time.fromisoformat(b), tuple(days)))
                      for name, email, tz, a, b, days in doc["people"])
    return Pair(pair_id=doc["pair_id"], mentor=mentor, mentee=mentee, goal=doc["goal"], track=doc["track"],
                cadence=doc["cadence"], duration_minutes=doc["duration_minutes"], preferred_slot=None,
                status=doc["status"])


def exdates(series: dict) -> tuple[datetime, ...]:
    return tuple(datetime.fromisoformat(s) for s in series.get("exdates", ()))


def upcoming(series: dict, pair_id: str, after: datetime) -> datetime | None:
    """The next session of a live series strictly after ``after``, or None."""
    if not series or series.get("cancelled"):
        return None
    return planning.next_occurrence(plan_from_doc(pair_id, series["plan"]), after, exdates(series))


def fingerprint(pair: Pair) -> str:
    """What, when changed in the roster, means the series must be re-planned and re-sent."""
    people = [(p.email.casefold(), p.name, p.timezone, str(p.working_hours)) for p in pair.people]
    return compose.digest(pair.cadence, pair.duration_minutes, str(pair.preferred_slot), people)


def goal_of(pair: Pair, state: dict) -> str:
    return state.get("goal") or pair.goal


def meeting_for(ctx: Context, pair: Pair, state: dict) -> Meeting:
    series = state["series"]
    plan = plan_from_doc(pair.pair_id, series["plan"])
    program = ctx.settings.program
    summary = f"{program.name}: {pair.mentor.name} & {pair.mentee.name}"
    context = {
        "program": program, "pair": pair, "goal": goal_of(pair, state), "summary": summary,
        "cancelled": series.get("cancelled", False), "sequence": series["sequence"],
        "cadence_text": cadence_text(plan.cadence), "sessions_text": _count_text(plan, program),
        "first_mentee": compose.local_time(plan.first_start, pair.mentee.timezone),
        "first_mentor": compose.local_time(plan.first_start, pair.mentor.timezone),
    }
    body = compose.render(ctx.templates, "invitation", context)
    return Meeting(
        uid=series["uid"], sequence=series["sequence"], organizer_email=program.organizer,
        organizer_name=program.organizer_name, attendees=pair.people, summary=summary,
        description=compose.render_text(ctx.templates, "event_description.txt", context),
        plan=plan, exdates=exdates(series), cancelled=series.get("cancelled", False),
        subject=body.subject, body_text=body.text, body_html=body.html,
    )


def _count_text(plan: SeriesPlan, program: ProgramSettings) -> str:
    if plan.count:
        return f"{plan.count} sessions"
    return sessions_text(program)

def total_sessions(doc: dict) -> int:
    """How many sessions the pair will have had: those of earlier series (before a pause or a
    re-plan) plus this series' occurrences, skipped ones excluded, so the last one is the end."""
    series = doc.get("series")
    used = doc.get("sessions_used", 0)
    if not series or series.get("cancelled"):
        return used
    return used + len(planning.occurrences(plan_from_doc(doc["pair_id"], series["plan"]), exdates(series)))


def milestone_sessions(total: int) -> dict[str, int]:
    """The session number after which each milestone falls (no midpoint in a very short series)."""
    marks = {"first": 1, "midpoint": math.ceil(total / 2) if total >= 3 else 0, "end": total}
    return {name: number for name, number in marks.items() if number}


def progress_sessions(total: int) -> set[int]:
    """Sessions whose agenda asks "how far are you towards your goal?": the midpoint and the last."""
    marks = milestone_sessions(total)
    return {marks[m] for m in ("midpoint", "end") if m in marks}
