"""Replies to our own questions rather than to an agenda: survey answers, the mentor's private
check-in (OK, or FLAG for the champion), a mentor's HELP, and the champion's commands.

Pure like ``pairstate``: each returns an ``Answer`` (outcome kind, reason, rows to insert, pair
docs to change); the inbox job writes them in its one batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from rmdaemon.programme import champion
from rmdaemon.records import COMMANDS, FLAGS, REQUESTS, SURVEYS, InboxOutcome, PairRecord
from rmdaemon.compose import Templates
from rmdaemon.config import Settings
from rmdaemon.model import Pair, Person
from rmdaemon.phrases import english
from rmdaemon.replies import ParsedReply

ANSWER_RE = re.compile(r"^\s*(?:q(?:uestion)?\s*)?(\d{1,2})\s*[.):\-–]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
SCALE_RE = re.compile(r"(?<!\d)([1-5])(?:\s*(?:/|out of)\s*5)?(?!\d)")
FLAG_RE = re.compile(r"^\s*FLAG\b\s*[:\-–]?\s*(?P<text>.*)$", re.IGNORECASE | re.MULTILINE)
HELP_RE = re.compile(r"^\s*HELP\s*[.!]*\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Answer:
    kind: InboxOutcome
    reason: str = ""
    docs: dict[str, list[dict]] = field(default_factory=dict)
    pair_docs: dict[str, PairRecord] = field(default_factory=dict)


def survey(templates: Templates, now: datetime, pair: Pair, session: dict, sender: Person, parsed: ParsedReply, key: str) -> Answer:
    if sender.address != session.get("person"):
        return Answer(InboxOutcome.QUARANTINE,
                      f"survey answer from {sender.email}, but the survey was sent to {session.get('person')}")
    questions = templates.survey(session["milestone"], session["role"])
    answers = parse_answers(parsed.body, questions)
    row = {"pair_id": pair.pair_id, "token": session["token"], "milestone": session["milestone"],
           "from": sender.address, "role": session["role"], "answers": answers, "received": now.isoformat(),
           "message_id": key}
    reason = f"{len(answers)} of {len(questions)} answers"
    return Answer(InboxOutcome.SURVEY, reason, {SURVEYS: [row]})


def checkin_reply(now: datetime, pair: Pair, session: dict, sender: Person, parsed: ParsedReply, key: str) -> Answer:
    """Only the mentor's answer counts, and only what follows FLAG travels (to the champion alone):
    the check-in promises that, so a FLAG with nothing after it says only "asked for help"."""
    if sender.address != session.get("person"):
        return Answer(InboxOutcome.QUARANTINE, "a reply to the mentor's private check-in from someone else")
    flag = FLAG_RE.search(parsed.body)
    if flag is None:
        return Answer(InboxOutcome.CHECKIN, "the mentor says all is well")
    text = flag["text"].strip()
    row = {"id": key, "pair_id": pair.pair_id, "from": sender.address, "text": text, "at": now.isoformat()}
    return Answer(InboxOutcome.CHECKIN, "the mentor flagged something for the champion", {FLAGS: [row]})


def help_request(now: datetime, pair: Pair, sender: Person, parsed: ParsedReply, key: str) -> Answer | None:
    """A mentor's HELP line asks for the private check-in; from the mentee it is an ordinary word."""
    if sender is not pair.mentor or not HELP_RE.search(parsed.body):
        return None
    command = {"pair_id": pair.pair_id, "command": "help", "arg": None, "from": sender.address,
               "at": now.isoformat(), "message_id": parsed.message_id, "token": None}
    request = {"id": key, "kind": "checkin", "pair_id": pair.pair_id, "by": sender.address, "reason": "help"}
    return Answer(InboxOutcome.COMMAND, "HELP: the mentor gets a private check-in", {COMMANDS: [command], REQUESTS: [request]})


def only_help(body: str) -> bool:
    """A reply that says nothing but HELP is a request, not a session note."""
    return bool(HELP_RE.fullmatch(body.strip()))


def champion_commands(settings: Settings, state: dict[str, PairRecord], sender: str, parsed: ParsedReply,
                      key: str) -> Answer | None:
    if not champion.is_admin(sender, settings.program.champion, settings.digest.admins):
        return None
    if not champion.COMMAND_RE.search(parsed.body):
        return None
    out = champion.apply_commands(parsed.body, state, key, sender)
    return Answer(InboxOutcome.CHAMPION, "; ".join(map(english, out.lines)), {REQUESTS: out.requests}, out.docs)


def parse_answers(body: str, questions: list) -> dict[str, object]:
    """Numbered lines ("1. 4", "2) the async stand-up") → {question id: 1-5 or text}."""
    answers: dict[str, object] = {}
    for match in ANSWER_RE.finditer(body):
        n, text = int(match[1]), match[2]
        if not 1 <= n <= len(questions):
            continue
        question = questions[n - 1]
        if question.kind == "scale":
            scale = SCALE_RE.search(text)
            if scale:
                answers[question.id] = int(scale[1])
        else:
            answers[question.id] = text
    return answers
