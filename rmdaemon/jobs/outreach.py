"""The confidential channel and the champion's confirmations.

The power gap runs one way, so the junior mentor alone gets a private check-in at the midpoint
and whenever they reply HELP (or the champion asks: ASK-MENTOR). What a mentor marks with FLAG
goes to the champion and nowhere else. Requests come from the inbox job as rows in the
``requests`` table; this job turns each into exactly one email and marks it done.
"""

from __future__ import annotations

from rmdaemon.records import FLAGS, PAIRS, REQUESTS, SESSIONS, index, save
from rmdaemon.programme.context import Context, isolated
from rmdaemon.programme.delivery import deliver, final_keys
from rmdaemon.programme.checkins import checkin
from rmdaemon.model import JobResult, Outgoing, Pair


def run(ctx: Context) -> JobResult:
    result = JobResult("outreach")
    roster = ctx.roster()
    state = index(ctx.store, PAIRS, "pair_id")
    pending = [r for r in ctx.store.table(REQUESTS).all() if r["kind"] in ("checkin", "confirm") and not r.get("done")]
    flags = [f for f in ctx.store.table(FLAGS).all() if not f.get("forwarded")]
    messages: dict[str, Outgoing] = {}
    sessions: list[dict] = []
    for request in pending:
        with isolated(result, request["pair_id"] or "-"):  # one bad request must not hold back the rest
            pair = roster.get(request["pair_id"])
            if request["kind"] == "confirm":
                messages[request["id"]] = confirm(ctx, request)
            elif pair is not None and request["pair_id"] in state:
                out, session = checkin(ctx.mail, pair, request["id"], ctx.pair_key(state[request["pair_id"]], pair.pair_id))
                messages[request["id"]], sessions = out, [*sessions, session]
    for flag in flags:
        with isolated(result, flag["pair_id"]):
            pair = roster.get(flag["pair_id"])
            if pair is not None:
                messages[flag["id"]] = forward_flag(ctx, pair, flag)

    def record() -> None:
        save(ctx.store, SESSIONS, "token", sessions)

    earlier = final_keys(ctx)  # sent on an earlier tick whose "done" mark a crash lost
    sent = deliver(ctx, list(messages.values()), result, record=record)
    done_ids = {rid for rid, m in messages.items() if m.key in sent or m.key in earlier}
    # Confirmations only: a lost one is made again on the next run from the outbox's final keys, before
    # pruning (rmdaemon/programme/pruning.py) could forget them.
    with ctx.store.deferred():
        save(ctx.store, REQUESTS, "id", (dict(r, done=ctx.now.isoformat()) for r in pending
                                          if r["id"] in done_ids or r["pair_id"] and r["pair_id"] not in roster))
        save(ctx.store, FLAGS, "id", (dict(f, forwarded=ctx.now.isoformat()) for f in flags if f["id"] in done_ids))
    result.lines += [f"{m.pair_id or '-'}: {m.kind} to {m.to[0]}" for m in messages.values() if m.key in sent]
    return result


def forward_flag(ctx: Context, pair: Pair, flag: dict) -> Outgoing:
    return ctx.mail.email("flag", key=f"flag:{flag['id']}", to=ctx.mail.champion(),
                          context={"pair": pair, "text": flag["text"]}, kind="flag", pair_id=pair.pair_id)


def confirm(ctx: Context, request: dict) -> Outgoing:
    return ctx.mail.email("confirm", key=f"confirm:{request['id']}", to=ctx.mail.admin(request["to"]),
                          context={"lines": [ctx.templates.said(line) for line in request["lines"]]}, kind="confirm")
