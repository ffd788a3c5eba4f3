"""What a calendar answer (iTIP REPLY, COUNTER or REFRESH) does to its pair.

Pure like ``pairstate``: the inbox job passes the pair's record and the answers read from one
message, and writes the record this returns. Everything that needs a calendar or sends mail is
only queued in the series doc and the pair's notices; the booking job carries it out:

- ``series.counters``: proposals of another time (Outlook's "Propose New Time", Google's "Propose
  a new time"), each ``pending`` until the booking job accepts or refuses it;
- a notice carrying the current invitation for an attendee who asked for it again (REFRESH);
- ``series.comments``: what a person wrote with an answer (address → slot → text), shown to the
  other person in the repair offer or a notice, never in anything the champion reads;
- ``series.outsiders``: people outside the pair the invitation reached (a forward, a delegate).
  They are never added; both people are told and ``status`` shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from rmdaemon import compose
from rmdaemon.itip import ItipResponse
from rmdaemon.model import Pair, Person
from rmdaemon.phrases import english, phrase
from rmdaemon.programme.series import utc_key
from rmdaemon.records import InboxOutcome, PairRecord
from rmdaemon.replies import ParsedReply

MAX_COMMENT_CHARS = 1000
# Exchange tells the organizer when an attendee forwards a meeting; without a calendar part it is
# only this subject and a body naming the new recipients.
FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:re:\s*)?meeting forward notification\s*:", re.IGNORECASE)
# What calendar clients write above the calendar part by themselves (Thunderbird: "Aisha Khan has
# accepted your event invitation."; our own tests and some clients: the answer's word alone).
GENERATED_RE = re.compile(r"^[^\n]*\bhas (?:accepted|declined|tentatively accepted|delegated)\b[^\n]*$"
                          r"|^\s*(?:accepted|declined|tentative|tentatively accepted|delegated)[.!]?\s*$",
                          re.IGNORECASE | re.MULTILINE)
ADDRESS_RE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
NOTICE = "calendar_notice"  # the template of every notice queued here


@dataclass(frozen=True)
class Result:
    kind: InboxOutcome
    reason: str
    doc: PairRecord | None = None


def answer(now: datetime, pair: Pair, doc: PairRecord, parsed: ParsedReply, found: list[ItipResponse]) -> Result:
    """The answers of one message about this pair's series. Only the sender's own answer counts:
    a person answers for themselves, never for the other; people outside the pair are noted."""
    sender = pair.member(parsed.from_addr or "")
    if sender is None:
        # Someone outside the pair: a stranger, or a colleague who got a forwarded invitation. Their
        # answer changes nothing (anyone can write one), so it is kept aside; a forward the pair's
        # own mail server reports (below) is what the pair is told about.
        return Result(InboxOutcome.QUARANTINE, f"calendar reply sent by {parsed.from_addr or 'nobody'}, who is not "
                                               f"part of pair {pair.pair_id} (a forwarded invitation?); not added")
    others = sorted({r.attendee for r in found if r.method == "REPLY" and pair.member(r.attendee) not in (None, sender)})
    if others:
        return Result(InboxOutcome.QUARANTINE, f"calendar reply sent by {sender.address} changes the "
                                               f"answer of {', '.join(others)}")
    # A COUNTER or REFRESH lists the attendees it proposes or asks about: only the sender's own line answers.
    found = [r for r in found if r.method == "REPLY" or r.attendee == sender.address]
    doc = replace(doc, series=dict(doc.series or {}), responses=dict(doc.responses))
    said = _comment(parsed, found)
    reasons = []
    for r in found:
        if r.attendee == sender.address:
            reasons.append(_own(now, pair, doc, sender, r, said, parsed))
        else:  # Exchange's Meeting Forward Notification names the people it was forwarded to
            _note_outsider(now, pair, doc, r.attendee, "forwarded", sender.address, parsed)
            reasons.append(f"{sender.address} forwarded the invitation to {r.attendee}: not added, the pair is told")
    return Result(InboxOutcome.ITIP, "; ".join(dict.fromkeys(reasons)), doc)


def forward_notification(now: datetime, pair: Pair, doc: PairRecord, parsed: ParsedReply, organizer: str) -> Result | None:
    """Exchange's "Meeting Forward Notification" as plain mail from a pair member: never a session
    note; the people it names outside the pair are noted and the pair is told."""
    sender = pair.member(parsed.from_addr or "")
    if sender is None or not FORWARD_SUBJECT_RE.match(parsed.subject or ""):
        return None
    known = {p.address for p in pair.people} | {organizer.casefold()}
    named = list(dict.fromkeys(a.casefold() for a in ADDRESS_RE.findall(parsed.body) if a.casefold() not in known))
    if not named:
        return Result(InboxOutcome.ITIP, f"{sender.address}'s mail server says the invitation was forwarded, to nobody it names")
    doc = replace(doc, series=dict(doc.series or {}))
    for address in named:
        _note_outsider(now, pair, doc, address, "forwarded", sender.address, parsed)
    return Result(InboxOutcome.ITIP, f"{sender.address} forwarded the invitation to {', '.join(named)}: not added, "
                                     f"the pair is told", doc)


def _own(now: datetime, pair: Pair, doc: PairRecord, sender: Person, r: ItipResponse, said: str,
         parsed: ParsedReply) -> str:
    slot = utc_key(r.recurrence_id) if r.recurrence_id else "series"
    if r.method == "REFRESH":
        doc.notices = [*(doc.notices or []), notice(doc.pair_id, sender, parsed.message_id or now.isoformat(), "refresh",
                                                    what=phrase("notice.refresh"),
                                                    calendar="REQUEST")]
        return f"{sender.address} asked for the invitation again"
    if r.method == "COUNTER":
        reason = _counter(now, doc, sender, r, slot, said, parsed)
        if r.partstat != "DECLINED":
            return reason
        _record(doc, sender, slot, "DECLINED", said)
        return f"{reason}; {sender.address} declined"
    _record(doc, sender, slot, r.partstat, said)
    if r.partstat == "DELEGATED":
        for delegate in r.delegated_to:
            _note_outsider(now, pair, doc, delegate, "delegated", sender.address, parsed)
        return f"{sender.address} delegated {_slot_text(slot)} to {', '.join(r.delegated_to) or 'someone'}: not added"
    if said and not (slot != "series" and r.partstat == "DECLINED"):  # a decline's comment rides on the repair offer
        other = next(p for p in pair.people if p is not sender)
        what = phrase(f"notice.{_ANSWERS.get(r.partstat, 'answered')}_{'series' if slot == 'series' else 'one'}",
                      name=sender.name, answer=r.partstat.lower())
        _notice(doc, other, parsed, sender.address, what=what, comment=said, who=sender.name,
                planned=None if slot == "series" else slot)
    return f"{r.attendee} {r.partstat.lower()}" + (" with a comment" if said else "")


def _record(doc: PairRecord, sender: Person, slot: str, partstat: str, said: str) -> None:
    doc.responses[sender.address] = {**doc.responses.get(sender.address, {}), slot: partstat}
    comments = dict(doc.series.get("comments") or {})
    mine = dict(comments.get(sender.address) or {})
    if said:
        mine[slot] = said
    else:
        mine.pop(slot, None)  # a new answer without words replaces the old words
    comments[sender.address] = mine
    kept = {a: c for a, c in comments.items() if c}
    if kept or "comments" in doc.series:
        doc.series["comments"] = kept


def _counter(now: datetime, doc: PairRecord, sender: Person, r: ItipResponse, slot: str, said: str,
             parsed: ParsedReply) -> str:
    if r.proposed_start is None:
        return f"{sender.address} proposed a new time for {_slot_text(slot)} without saying which"
    key = compose.digest(parsed.message_id or "", sender.address, slot, utc_key(r.proposed_start))
    counters = [c for c in doc.series.get("counters", []) if c["id"] != key]
    # A newer proposal for the same session replaces an older one still waiting.
    counters = [c for c in counters if not (c["state"] == "pending" and c["from"] == sender.address and c["slot"] == slot)]
    counters.append({"id": key, "from": sender.address, "slot": slot, "start": utc_key(r.proposed_start),
                     "end": utc_key(r.proposed_end) if r.proposed_end else None, "partstat": r.partstat,
                     "comment": said, "state": "pending", "at": now.isoformat(), "reply_to": parsed.message_id or ""})
    doc.series["counters"] = counters
    return f"{sender.address} proposed {utc_key(r.proposed_start)} for {_slot_text(slot)}"


def _note_outsider(now: datetime, pair: Pair, doc: PairRecord, address: str, kind: str, by: str,
                   parsed: ParsedReply) -> None:
    known = doc.series.get("outsiders", [])
    if any(o["address"] == address for o in known):
        return
    doc.series["outsiders"] = [*known, {"address": address, "kind": kind, "by": by, "at": now.isoformat()}]
    what = phrase(f"notice.{kind}", name=next(p.name for p in pair.people if p.address == by), address=address)
    reason = phrase("notice.outsider", address=address)
    for person in pair.people:
        _notice(doc, person, parsed, address, what=what, comment="", who="", reason=reason)


def _notice(doc: PairRecord, to: Person, parsed: ParsedReply, about: str, *, what: dict, comment: str, who: str,
            planned: str | None = None, reason: dict | str = "") -> None:
    doc.notices = [*(doc.notices or []), notice(doc.pair_id, to, parsed.message_id or "", about, what=what,
                                                comment=comment, who=who, planned=planned, reason=reason)]


def notice(pair_id: str, to: Person, cause: str, about: str, *, what: dict, comment: str = "", who: str = "",
           planned: str | None = None, reason: dict | str = "", calendar: str = "") -> dict:
    """A short email the booking job owes ``to`` (templates/calendar_notice): ``what`` happened,
    ``who`` wrote ``comment`` with it, and ``reason`` (a sentence more) where there is one; both
    phrases (rmdaemon/phrases.py), written in ``to``'s language when the notice is sent.
    ``calendar`` names the iTIP part it carries, built when it is sent: "REQUEST" (the current
    invitation, after a REFRESH) or "DECLINECOUNTER" (a refused proposal)."""
    return {"key": f"notice:{pair_id}:{compose.digest(cause, about, english(what))}:{to.address}", "kind": NOTICE,
            "to": to.address, "asked": "", "what": what, "reason": reason, "comment": comment, "who": who,
            "planned": planned, "reply_to": cause if "@" in cause else "", "calendar": calendar}


def _comment(parsed: ParsedReply, found: list[ItipResponse]) -> str:
    """The COMMENT of the answer and the text its writer put above the calendar part (not the
    text a calendar server writes by itself: an auto-generated message's body is not theirs)."""
    parts = [r.comment for r in found if r.comment]
    body = "" if parsed.auto_submitted else GENERATED_RE.sub("", parsed.body).strip()
    if body and not any(body in p or p in body for p in parts):
        parts.append(body)
    return "\n".join(dict.fromkeys(parts)).strip()[:MAX_COMMENT_CHARS]


def _slot_text(slot: str) -> str:
    return "the whole series" if slot == "series" else f"the session of {slot}"


_ANSWERS = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}  # notice.<answer>_series/_one
