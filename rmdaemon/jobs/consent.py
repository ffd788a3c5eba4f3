"""Kickoff: ask both people of each new pair to opt in. Participation is voluntary, so nothing
is booked for a pair until both said yes (when ``require_opt_in``); without opt-in the kickoff
is a welcome and the pair is active at once."""

from __future__ import annotations

from rmdaemon import compose
from rmdaemon.records import ACTIVE, AWAITING, PAIRS, SESSIONS, index, save
from rmdaemon.programme.context import Context, isolated
from rmdaemon.programme.delivery import deliver, pending_keys
from rmdaemon.programme.series import cadence_text, sessions_text
from rmdaemon.model import JobResult, Outgoing, Pair, Person, RosterStatus


def run(ctx: Context) -> JobResult:
    result = JobResult("consent")
    state = index(ctx.store, PAIRS, "pair_id")
    new = [p for p in ctx.pairs if p.status == RosterStatus.ACTIVE and p.pair_id not in state]
    pending = pending_keys(ctx)  # kickoffs a temporary failure (or a crash) kept from going out
    retry = [p for p in ctx.pairs if p.pair_id in state and any(kickoff_key(p, x) in pending for x in p.people)]
    messages: list[Outgoing] = []
    for pair in [*new, *retry]:
        with isolated(result, pair.pair_id):  # one pair's data must not keep the others' kickoffs back
            messages += kickoff_messages(ctx, pair, state.get(pair.pair_id))
    built = {m.pair_id for m in messages}
    new = [p for p in new if p.pair_id in built]  # the rest start next tick

    def record() -> None:
        opt_in = ctx.settings.program.require_opt_in
        save(ctx.store, PAIRS, "pair_id", (new_pair_doc(p, ctx, opt_in) for p in new))
        save(ctx.store, SESSIONS, "token", ({"token": compose.kickoff_token(ctx.pair_key(None, p.pair_id), p.pair_id),
                                             "pair_id": p.pair_id, "kind": "kickoff", "start": None} for p in new))

    sent = deliver(ctx, messages, result, record=record)
    if new:
        result.add("pairs started", n=len(new))
    for pair in [*new, *retry]:  # only what left: a kickoff kept back is in the send errors, and goes next tick
        to = [person.name for person in pair.people if kickoff_key(pair, person) in sent]
        if to:
            result.lines.append(f"{pair.pair_id}: kickoff sent to {' and '.join(to)}")
    return result


def new_pair_doc(pair: Pair, ctx: Context, opt_in: bool) -> dict:
    return {
        "pair_id": pair.pair_id,
        "state": AWAITING if opt_in else ACTIVE,
        "consent": {} if opt_in else {p.address: "yes" for p in pair.people},
        "goal": None,  # a refined goal replaces the roster's once someone sends "Goal: ..."
        "started": ctx.now.isoformat(),
        "series": None,
        "starters_used": [],
        "responses": {},
        "errors": [],
        "token_key": ctx.pair_key(None, pair.pair_id),
    }


def kickoff_key(pair: Pair, person: Person) -> str:
    return f"kickoff:{pair.pair_id}:{person.address}"


def kickoff_messages(ctx: Context, pair: Pair, doc: dict | None) -> list[Outgoing]:
    """Both people's kickoffs; the thread's token and what the two read alike are worked out once."""
    program, mail = ctx.settings.program, ctx.mail
    token = compose.kickoff_token(ctx.pair_key(doc, pair.pair_id), pair.pair_id)
    shared = {"pair": pair, "goal": pair.goal, "require_opt_in": program.require_opt_in,
              "cadence_text": cadence_text(pair.cadence), "sessions_text": sessions_text(program)}

    def context(person: Person) -> dict:
        mentor = person is pair.mentor
        return {**shared, "person": person, "other": pair.mentee if mentor else pair.mentor,
                "role": "mentor" if mentor else "mentee"}

    return [mail.email("kickoff", key=kickoff_key(pair, person), to=person, context=context(person),
                       kind="kickoff", pair_id=pair.pair_id, token=token) for person in pair.people]
