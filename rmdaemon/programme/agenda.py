"""One session's agenda: its record (token, number, conversation starter), the words carried
forward from the last log, and the email itself. The agendas job sends it; ``preview`` shows it
with this very code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from rmdaemon import compose, phrases
from rmdaemon.compose import Templates
from rmdaemon.config import ProgramSettings
from rmdaemon.model import Outgoing, Pair, Person
from rmdaemon.programme import privacy
from rmdaemon.programme.messages import Mailer
from rmdaemon.programme.series import actual_start, goal_of, place, progress_sessions
from rmdaemon.programme.sessions import planned_rows, total
from rmdaemon.records import PairRecord, logs
from rmdaemon.store import Store


def session_record(templates: Templates, pair: Pair, doc: dict, start: datetime, sessions: dict[str, dict]) -> dict:
    """The session planned for ``start``: existing, or new with its number (its place in the
    programme, ``programme/sessions.py``) and an unused conversation starter.

    ``start`` is the planned start (the token derives from it); the record's ``start`` is when
    the session happens, which the booking job keeps current when a session moves.
    """
    uid = doc["series"]["uid"]
    token = compose.session_token(doc["series"], start)
    if token in sessions and sessions[token].get("starter"):
        return sessions[token]
    row = next(r for r in planned_rows(PairRecord.from_doc(doc)) if r["token"] == token)
    starter = compose.pick_starter(templates, pair.track, doc["starters_used"])
    translated = {p.language: templates.starter_in(starter, p.language) for p in pair.people if p.language}
    return {"token": token, "pair_id": pair.pair_id, "kind": "session", "uid": uid, "start": row["start"],
            "planned": row["planned"], "number": row["number"], "starter": starter.id, "starter_text": starter.text,
            "starter_mentor": starter.mentor, "starter_mentee": starter.mentee,
            "starter_texts": {lang: {"starter_text": s.text, "starter_mentor": s.mentor, "starter_mentee": s.mentee}
                              for lang, s in translated.items() if s is not starter}}


def when(doc: dict, session: dict) -> tuple[datetime, datetime]:
    """(planned, actual) start of a session record; records from before moves existed lack ``planned``."""
    planned = datetime.fromisoformat(session.get("planned") or session["start"])
    return planned, actual_start(doc["series"], planned) if doc.get("series") else planned


Steps = dict[str, list[str]]  # role (mentor | mentee) → the next steps that person logged


def latest_next_steps(store: Store, pairs: Mapping[str, Pair], pair_id: str | None = None) -> dict[str, Steps]:
    """Each pair's next steps (or one pair's) from the most recent session with any, as each of
    the two logged them: the next agenda carries both people's commitments forward, not only the
    last reply's. Only logs its current two people wrote together count: a person who joined the
    pair later never sees what was agreed before them."""
    latest: dict[str, tuple[str, str]] = {}  # pair → (received, token) of the newest log with steps
    found: dict[str, list] = {}
    for log in logs(store):
        pair = pairs.get(log.pair_id)
        if pair is None or (pair_id is not None and log.pair_id != pair_id) or not privacy.belongs_to(log, pair):
            continue
        if log.field("next_steps"):
            found.setdefault(log.pair_id, []).append(log)
            if log.received >= latest.get(log.pair_id, ("", ""))[0]:
                latest[log.pair_id] = (log.received, log.token)
    steps: dict[str, Steps] = {}
    for pid, (_, token) in latest.items():
        for log in sorted((x for x in found[pid] if x.token == token), key=lambda x: x.received):
            steps.setdefault(pid, {})[log.role or "mentee"] = log.field("next_steps")  # a person's later reply wins
    return steps


def _steps_view(pair: Pair, person: Person, steps: Steps) -> list[dict]:
    """Who committed to what, the reader's own steps first: {"mine", "name", "steps"}."""
    people = sorted(zip(("mentor", "mentee"), pair.people), key=lambda rp: rp[1] is not person)
    return [{"mine": p is person, "name": p.first_name, "steps": steps[role]} for role, p in people if steps.get(role)]


def agenda_context(program: ProgramSettings, pair: Pair, doc: dict, session: dict, person: Person, steps: Steps) -> dict:
    return _personal(*_shared(program, pair, doc, session), pair, session, person, steps)


def _shared(program: ProgramSettings, pair: Pair, doc: dict, session: dict) -> tuple[datetime, dict]:
    """When the session happens, and what both people's agendas of it say alike: worked out once
    for the two (the pair's plan was a tenth of building an agenda)."""
    sessions = total(planned_rows(PairRecord.from_doc(doc)))
    return when(doc, session)[1], {
        "program": program, "pair": pair, "token": session["token"], "number": session["number"],
        "total": sessions or None, "goal": goal_of(pair, doc),
        "ask_progress": session["number"] in progress_sessions(sessions),
        "location": place(program, pair), "join_url": doc["series"].get("join_url") or "",
    }


def _personal(start: datetime, shared: dict, pair: Pair, session: dict, person: Person, steps: Steps) -> dict:
    """One person's agenda context: ``shared`` with the times, the starter and the steps as they read them."""
    other = pair.mentee if person is pair.mentor else pair.mentor
    views = _steps_view(pair, person, steps)
    return {
        **shared, "person": person, "other": other,
        "when_local": phrases.local_time(start, person.timezone, person.language),
        "when_other": phrases.local_time(start, other.timezone, person.language),
        "starter": compose.starter_for({**session, **(session.get("starter_texts") or {}).get(person.language, {})},
                                       "mentor" if person is pair.mentor else "mentee",
                                       pair.mentor.first_name, pair.mentee.first_name),
        "next_steps": list(dict.fromkeys(step for view in views for step in view["steps"])),
        "next_steps_by": views,
    }


def agenda_key(doc: dict, planned: datetime, person: Person) -> str:
    """The agenda's idempotency key: the session (by its planned start) and, once moved, the new time."""
    return _key_prefix(doc, planned) + person.address


def _key_prefix(doc: dict, planned: datetime) -> str:
    actual = actual_start(doc["series"], planned)
    moved = "" if actual == planned else f"moved-{actual.astimezone(timezone.utc):%Y%m%dT%H%MZ}:"
    return f"agenda:{compose.session_token(doc['series'], planned)}:{moved}"


def agenda_messages(mail: Mailer, pair: Pair, doc: dict, session: dict, people: Iterable[Person],
                    steps: Steps) -> list[Outgoing]:
    """The agenda of a session to each of ``people`` (of ``pair``)."""
    prefix, (start, shared) = _key_prefix(doc, when(doc, session)[0]), _shared(mail.program, pair, doc, session)
    return [mail.email("agenda", key=prefix + person.address, to=person,
                       context=_personal(start, shared, pair, session, person, steps), kind="agenda",
                       pair_id=pair.pair_id, token=session["token"]) for person in people]
