"""The admin acts from the inbox: the champion (or a configured admin) replies with lines such as
``NUDGE P012``, ``PAUSE P012``, ``ASK-MENTOR P012``; each is carried out and confirmed by email.

Inbox side only (pure: returns new pair docs and request rows); the outreach job sends the
confirmations, nudges and check-ins the requests ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rmdaemon.phrases import phrase, word
from rmdaemon.records import ACTIVE, PAUSED, PairRecord

COMMAND_RE = re.compile(r"^\s*(NUDGE|PAUSE|RESUME|ASK-MENTOR)\s+([A-Za-z0-9_-]+)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class ChampionOutcome:
    lines: list[dict] = field(default_factory=list)  # what was done (phrases), for the confirmation email
    docs: dict[str, PairRecord] = field(default_factory=dict)  # pair_id → the pair's new state
    requests: list[dict] = field(default_factory=list)


def is_admin(address: str, champion: str, admins: tuple[str, ...]) -> bool:
    wanted = address.casefold()
    return wanted == champion.casefold() or wanted in {a.casefold() for a in admins}


def apply_commands(body: str, state: dict[str, PairRecord], request_id: str, sender: str) -> ChampionOutcome:
    """Every command line in ``body``; unknown pairs and impossible commands are said, not ignored."""
    out = ChampionOutcome()
    ids = {pid.casefold(): pid for pid in state}  # pair ids are unique regardless of case
    for n, match in enumerate(COMMAND_RE.finditer(body)):
        command, pair_id = match[1].upper(), ids.get(match[2].casefold(), match[2])
        doc = out.docs.get(pair_id) or state.get(pair_id)
        rid = f"{request_id}:{n}"
        if doc is None:
            out.lines.append(phrase("command.no_pair", command=command, pair=pair_id))
        elif command == "PAUSE":
            out.lines.append(_pause(out, doc, pair_id))
        elif command == "RESUME":
            out.lines.append(_resume(out, doc, pair_id))
        elif command == "NUDGE":
            out.requests.append({"id": rid, "kind": "nudge", "pair_id": pair_id, "by": sender})
            out.lines.append(phrase("command.nudge", pair=pair_id))
        else:
            out.requests.append({"id": rid, "kind": "checkin", "pair_id": pair_id, "by": sender, "reason": "champion"})
            out.lines.append(phrase("command.ask_mentor", pair=pair_id))
    if out.lines:
        out.requests.append({"id": f"{request_id}:confirm", "kind": "confirm", "pair_id": "", "to": sender,
                             "lines": out.lines})
    return out


def _pause(out: ChampionOutcome, doc: PairRecord, pair_id: str) -> dict:
    if doc.state != ACTIVE:
        return phrase("command.not_now", command="PAUSE", pair=pair_id, state=word("state", doc.state))
    out.docs[pair_id] = replace(doc, state=PAUSED, paused_by="champion")
    return phrase("command.paused", pair=pair_id)


def _resume(out: ChampionOutcome, doc: PairRecord, pair_id: str) -> dict:
    if doc.state != PAUSED:
        return phrase("command.not_now", command="RESUME", pair=pair_id, state=word("state", doc.state))
    out.docs[pair_id] = replace(doc, state=ACTIVE, paused_by=None)
    return phrase("command.resumed", pair=pair_id)
