"""The words the state file stores: table names, the states a pair, a repair offer and an
outgoing message move through, and what an inbox message became."""

from __future__ import annotations

from enum import StrEnum

PAIRS, OUTBOX, SESSIONS, LOGS, INBOX, COMMANDS = "pairs", "outbox", "sessions", "logs", "inbox", "commands"
SURVEYS, FLAGS, REQUESTS = "surveys", "flags", "requests"


class PairState(StrEnum):
    """Where a pair stands in the programme (``pairs.state``); the roster's ``status`` is the admin's
    own switch on top of it."""

    AWAITING = "awaiting_consent"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"
    DECLINED = "declined"


AWAITING, ACTIVE, PAUSED, ENDED, DECLINED = (PairState.AWAITING, PairState.ACTIVE, PairState.PAUSED,
                                             PairState.ENDED, PairState.DECLINED)
YES, NO = "yes", "no"  # a person's answer in ``pairs.consent``


class OutboxStatus(StrEnum):
    """An outgoing message's idempotency key (``outbox.status``): recorded ``pending`` before it
    leaves, ``sent`` once the backend took it, ``failed`` when the backend refused it for good."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


FINAL = (OutboxStatus.SENT, OutboxStatus.FAILED)  # nothing more to do for these keys


class RepairState(StrEnum):
    """An offer of new times after a declined session (``series.repairs[planned].state``)."""

    OFFERED = "offered"
    MOVED = "moved"  # someone picked a time (or RESCHEDULEd)
    WITHDRAWN = "withdrawn"  # nobody declines any more
    SKIPPED = "skipped"  # the session's time came without a pick


class InboxOutcome(StrEnum):
    """What an inbox message became (``inbox.outcome``), exactly one per message."""

    LOG = "log"
    COMMAND = "command"
    CONSENT = "consent"
    ITIP = "itip"
    SURVEY = "survey"
    CHECKIN = "checkin"
    CHAMPION = "champion"
    QUARANTINE = "quarantine"


MILESTONES = ("first", "midpoint", "end")  # survey milestones, in programme order
# What a session log's ``fields`` hold (the reply parser's fields, see rmdaemon/replies).
LOG_FIELDS = ("attended", "topics", "learned", "next_steps", "rating", "goal", "progress")
