"""What a participant's reply does to their pair: consent, a command, or a session log.

Pure with respect to the store: takes the pair's stored doc and returns the new doc plus rows to
insert; the inbox job writes them in its one batch. Calendar effects (a cancelled series, a
skipped occurrence) are only marked in the series doc here; the booking job carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from rmdaemon.jobs.common import COMMANDS, LOGS, Context
from rmdaemon.jobs.consent import ACTIVE, AWAITING, DECLINED, ENDED, PAUSED
from rmdaemon.jobs.series import upcoming
from rmdaemon.model import Pair, Person
from rmdaemon.replies import ParsedReply


@dataclass
class Update:
    kind: str
    reason: str = ""
    doc: dict | None = None  # the pair's new state doc, when it changed
    docs: dict[str, list[dict]] = field(default_factory=dict)


def apply_reply(ctx: Context, pair: Pair, doc: dict, session: dict, sender: Person, parsed: ParsedReply,
                latest: dict | None = None) -> Update:
    """``session`` is the one the reply's token names ({} if none); ``latest`` the pair's most
    recent session, which a log without a usable token is filed under."""
    doc = dict(doc)
    goal = (parsed.fields or {}).get("goal")
    if goal:
        doc["goal"] = goal
    if parsed.share_notes is not None:
        doc["share_notes"] = {**doc.get("share_notes", {}), sender.address: parsed.share_notes}
    if doc["state"] == AWAITING:
        return _consent(pair, doc, sender, parsed)
    if parsed.command:
        return _command(ctx, pair, doc, session, sender, parsed)
    return _log(ctx, pair, doc, session if session.get("kind") == "session" else latest, sender, parsed)


def _consent(pair: Pair, doc: dict, sender: Person, parsed: ParsedReply) -> Update:
    answer = "no" if parsed.command == "stop" else parsed.consent
    if answer not in ("yes", "no"):
        if doc.get("goal") or parsed.share_notes is not None:
            return Update("consent", "goal or sharing noted; still waiting for YES or NO", doc)
        return Update("quarantine", "reply to the kickoff without a YES or NO")
    doc["consent"] = {**doc.get("consent", {}), sender.address: answer}
    if answer == "no":
        doc["state"] = DECLINED
        return Update("consent", f"{sender.email} declined", doc)
    if all(doc["consent"].get(p.address) == "yes" for p in pair.people):
        doc["state"] = ACTIVE
        return Update("consent", f"{sender.email} opted in; both in, booking next", doc)
    return Update("consent", f"{sender.email} opted in", doc)


def _command(ctx: Context, pair: Pair, doc: dict, session: dict, sender: Person, parsed: ParsedReply) -> Update:
    command = parsed.command
    row = {"pair_id": pair.pair_id, "command": command, "arg": parsed.command_arg, "from": sender.address,
           "at": ctx.now.isoformat(), "message_id": parsed.message_id, "token": session.get("token")}
    docs = {COMMANDS: [row]}
    if command == "pause" and doc["state"] == ACTIVE:
        doc["state"] = PAUSED
    elif command == "resume" and doc["state"] == PAUSED:
        doc["state"] = ACTIVE
    elif command == "stop" and doc["state"] in (ACTIVE, PAUSED):
        doc["state"] = ENDED
    elif command == "skip":
        return _skip(ctx, pair, doc, session, docs)
    else:
        return Update("command", f"{command} noted (state stays {doc['state']})", doc, docs)
    return Update("command", f"{command} by {sender.email}: now {doc['state']}", doc, docs)


def _skip(ctx: Context, pair: Pair, doc: dict, session: dict, docs: dict) -> Update:
    """Skip the session the reply is about if it is still ahead, else the next one."""
    series = doc.get("series")
    start = None
    if session.get("start") and datetime.fromisoformat(session["start"]) > ctx.now:
        start = datetime.fromisoformat(session["start"])
    elif series:
        start = upcoming(series, pair.pair_id, ctx.now)
    if start is None or not series or series.get("cancelled"):
        return Update("command", "skip: no upcoming session to skip", doc, docs)
    key = start.astimezone(timezone.utc).isoformat()
    if key in series.get("exdates", []):
        return Update("command", f"skip: session {key} already skipped", doc, docs)
    doc["series"] = dict(series, exdates=[*series.get("exdates", []), key], sequence=series["sequence"] + 1,
                         cancel_occurrences=[*series.get("cancel_occurrences", []), key])
    return Update("command", f"skip: session {key} cancelled", doc, docs)


def _log(ctx: Context, pair: Pair, doc: dict, session: dict | None, sender: Person, parsed: ParsedReply) -> Update:
    if session is None:
        return Update("quarantine", "a note arrived before any session was held")
    row = {
        "pair_id": pair.pair_id, "token": session["token"], "session_start": session["start"],
        "from": sender.address, "role": "mentor" if sender is pair.mentor else "mentee",
        "body": parsed.body, "fields": parsed.fields, "warnings": parsed.warnings,
        "received": ctx.now.isoformat(), "message_id": parsed.message_id,
    }
    doc["last_log"] = ctx.now.isoformat()
    return Update("log", f"session {session.get('number', '?')} logged by {sender.email}", doc, {LOGS: [row]})

