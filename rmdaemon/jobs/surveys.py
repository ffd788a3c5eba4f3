"""Milestones: a short survey after the first session, at the midpoint and at the end; the
mentor's private check-in at the midpoint; and at the end a thank-you with a certificate-style
summary for the mentor (recognition is part of the mentor's benefit) and the pair ``ended``.

Measurable outcomes are the article's answer to "nobody measures": the same scale questions at
the first and the last milestone give a before/after for the report.
"""

from __future__ import annotations

from datetime import timedelta

from rmdaemon import compose
from rmdaemon.programme import health
from rmdaemon.records import ACTIVE, ENDED, PAIRS, SESSIONS, PairRecord, Session, SessionStatus, index, logs, save
from rmdaemon.programme import privacy
from rmdaemon.programme.context import Context, isolated
from rmdaemon.programme.delivery import deliver, pending_keys
from rmdaemon.programme.checkins import checkin
from rmdaemon.programme.series import goal_of, milestone_sessions
from rmdaemon.programme.sessions import planned_rows
from rmdaemon.model import JobResult, Outgoing, Pair, Person, RosterStatus

MILESTONE_TEXT = {"first": "after your first session", "midpoint": "halfway through", "end": "the programme's end"}


def run(ctx: Context) -> JobResult:
    result = JobResult("surveys")
    state = index(ctx.store, PAIRS, "pair_id")
    gathered = health.gather(logs(ctx.store))
    topics = _shared_topics(ctx, state)
    messages: list[Outgoing] = []
    sessions: list[dict] = []
    updates: list[dict] = []
    unsent = _pending_milestones(ctx)
    for pair in ctx.pairs:
        doc = state.get(pair.pair_id)
        if not doc:
            continue
        with isolated(result, pair.pair_id):  # built whole before anything is kept: a failure leaves no trace
            done = set(doc.get("milestones", []))
            due = set(unsent.get(pair.pair_id, ()))  # mail a temporary failure (or a crash) kept back
            stored = PairRecord.from_doc(doc)
            rows = planned_rows(stored)  # before any session starts none is held or over: no milestone, none held
            found = health.pair_sessions(pair, stored, gathered.get(pair.pair_id), ctx.now, ctx.settings.nudges,
                                         rows) if health.any_started(rows, ctx.now) else []
            late: set[str] = set()
            if doc["state"] == ACTIVE and pair.status == RosterStatus.ACTIVE:
                fresh = set(reached(ctx, pair, found)) - done
                late = {m for m in fresh if m != "end"} if "end" in fresh else set()
                due |= fresh - late
            order = sorted(due, key=list(MILESTONE_TEXT).index)
            held = sum(s.status is SessionStatus.HELD for s in found)
            built = [milestone_mail(ctx, pair, doc, m, held, topics) for m in order]
            for out, rows in built:
                messages += out
                sessions += rows
            for milestone in (m for m in order if m not in done):
                result.add(f"{milestone} milestones", f"{pair.pair_id}: {milestone} milestone")
            for milestone in sorted(late):
                result.add("milestones not sent (programme over)", f"{pair.pair_id}: {milestone} milestone not sent: "
                           "the programme had ended when the daemon came back")
            done |= due | late
            if done != set(doc.get("milestones", [])):
                ended = "end" in done
                skipped = sorted({*doc.get("milestones_not_sent", []), *late})
                updates.append({"pair_id": pair.pair_id, "milestones": sorted(done),
                                **({"milestones_not_sent": skipped} if skipped else {}),
                                **({"state": ENDED, "completed": ctx.now.isoformat()} if ended else {})})

    def record() -> None:
        save(ctx.store, SESSIONS, "token", sessions)
        save(ctx.store, PAIRS, "pair_id", updates)

    deliver(ctx, messages, result, record=record)
    return result


def _pending_milestones(ctx: Context) -> dict[str, set[str]]:
    """Milestones whose mail is still pending, by pair, read from the outbox keys."""
    found: dict[str, set[str]] = {}
    for key in pending_keys(ctx):
        kind, _, rest = key.partition(":")
        pair_id, _, tail = rest.partition(":")
        milestone = {"survey": tail.partition(":")[0], "certificate": "end", "checkin": tail}.get(kind)
        if milestone in MILESTONE_TEXT:
            found.setdefault(pair_id, set()).add(milestone)
    return found


def reached(ctx: Context, pair: Pair, found: list[Session]) -> list[str]:
    """Milestones due by now, in order, from the pair's sessions (``programme/sessions.py``):
    "first" once a session was held and is over, "midpoint" once the middle session's time is
    over, "end" once the last session's time is over — whatever became of them, and however
    long the daemon was away."""
    length = timedelta(minutes=pair.duration_minutes)
    live = [s for s in found if s.status is not SessionStatus.CANCELLED]
    over = {s.number for s in live if s.start + length <= ctx.now}
    marks = milestone_sessions(max((s.number for s in live), default=0))
    held = any(s.status is SessionStatus.HELD and s.start + length <= ctx.now for s in live)
    return [name for name, number in marks.items() if (held if name == "first" else number in over)]


def milestone_mail(ctx: Context, pair: Pair, doc: dict, milestone: str, held: int,
                   topics: dict[str, list[str]]) -> tuple[list[Outgoing], list[dict]]:
    out, rows = [], []
    for person in pair.people:
        role = "mentor" if person is pair.mentor else "mentee"
        token = compose.thread_token(ctx.pair_key(doc, pair.pair_id), "survey", pair.pair_id, milestone, person.address)
        rows.append({"token": token, "pair_id": pair.pair_id, "kind": "survey", "start": None,
                     "milestone": milestone, "person": person.address, "role": role})
        other = pair.mentee if person is pair.mentor else pair.mentor
        intro = {"first": "You have had your first session.", "midpoint": "You are halfway through.",
                 "end": "Your last session is done. Thank you for taking part!"}[milestone]
        questions = [ctx.templates.question_in(q, person.language) for q in ctx.templates.survey(milestone, role)]
        context = {"pair": pair, "person": person, "other": other, "questions": questions,
                   "milestone_text": MILESTONE_TEXT[milestone], "intro": intro, "milestone": milestone,
                   "min_group": ctx.settings.privacy.min_group_size}
        out.append(ctx.mail.email("survey", key=f"survey:{pair.pair_id}:{milestone}:{person.address}", to=person,
                                  context=context, kind="survey", pair_id=pair.pair_id, token=token))
    if milestone == "midpoint":
        message, session = checkin(ctx.mail, pair, "midpoint", ctx.pair_key(doc, pair.pair_id))
        out.append(message)
        rows.append(session)
    if milestone == "end":
        out += certificates(ctx, pair, doc, held, topics.get(pair.pair_id, []))
    return out, rows


def certificates(ctx: Context, pair: Pair, doc: dict, held: int, topics: list[str]) -> list[Outgoing]:
    """The mentor's letter, and a copy for the champion: visibility is part of the mentor's reward."""
    context = {"pair": pair, "person": pair.mentor, "other": pair.mentee, "held": held, "goal": goal_of(pair, doc),
               "topics": topics, "champion": ctx.settings.program.champion}
    copy: Person = ctx.mail.champion()
    return [ctx.mail.email("certificate", key=f"certificate:{pair.pair_id}:{p.address}", to=p, context=context,
                           kind="certificate", pair_id=pair.pair_id) for p in (pair.mentor, copy)]


def _shared_topics(ctx: Context, state: dict[str, dict]) -> dict[str, list[str]]:
    """Topics per pair, only for pairs whose two current people both said SHARE NOTES, and only
    from what those two wrote (a replaced participant's notes stay theirs)."""
    shared = {p.pair_id: p for p in ctx.pairs if p.pair_id in state and privacy.shares_notes(p, state[p.pair_id].get("share_notes"))}
    topics: dict[str, list[str]] = {}
    for log in logs(ctx.store):
        if log.pair_id in shared and privacy.belongs_to(log, shared[log.pair_id]):
            for topic in log.field("topics") or []:
                if topic not in topics.setdefault(log.pair_id, []):
                    topics[log.pair_id].append(topic)
    return topics
