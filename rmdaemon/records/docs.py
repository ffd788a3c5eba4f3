"""Typed records of the state file's rows: read from a stored doc at one seam, spoken to by
attribute, written back as the very doc they came from.

Each record keeps the doc it was read from (``rest``); ``to_doc`` lays the record's fields over
it, so keys this version does not know (written by a newer one, or by hand) survive a round
trip, and an unchanged record writes the same JSON it was read from. A session is an
occurrence of a series, computed rather than stored: ``records/sessions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rmdaemon.records.vocabulary import OutboxStatus

Doc = dict[str, Any]


def _doc(rest: Doc, required: Doc, optional: Doc) -> Doc:
    """``rest`` with the fields laid over it; an optional field still None is written only when
    the stored doc had the key (so a record read and written unchanged is the same JSON)."""
    doc = {**rest, **required}
    doc.update((k, v) for k, v in optional.items() if v is not None or k in rest)
    return doc


@dataclass(slots=True)
class Log:
    """A session log: one reply about one session (``logs``)."""

    pair_id: str
    token: str
    session_start: str | None  # the session's actual start, UTC ISO
    sender: str  # ``from``: the address it came from
    role: str  # mentor | mentee
    body: str | None  # the private notes as written (None once retention stripped them)
    fields: Doc | None  # parsed: attended, topics, learned, next_steps, rating, goal, progress
    received: str
    message_id: str | None = None
    warnings: list[str] | None = None
    written: str | None = None  # the reply's Date, never later than ``received`` (which session it is about)
    people: list[str] | None = None  # the pair's two addresses when it was written (None: written before they were kept)
    rest: Doc = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_doc(cls, doc: Doc) -> Log:
        return cls(doc["pair_id"], doc["token"], doc.get("session_start"), doc["from"], doc.get("role", ""),
                   doc.get("body"), doc.get("fields"), doc["received"], doc.get("message_id"), doc.get("warnings"),
                   doc.get("written"), doc.get("people"), doc)

    def to_doc(self) -> Doc:
        return _doc(self.rest, {"pair_id": self.pair_id, "token": self.token, "session_start": self.session_start,
                                "from": self.sender, "role": self.role, "body": self.body, "fields": self.fields},
                    {"warnings": self.warnings, "received": self.received, "message_id": self.message_id,
                     "written": self.written, "people": self.people})

    def field(self, name: str) -> Any:
        """One parsed field (``rating``, ``next_steps`` …), None when the reply did not give it."""
        return (self.fields or {}).get(name)

    @property
    def attended(self) -> bool:
        """Held unless the log says ``Attended: no``."""
        return self.field("attended") is not False


@dataclass(slots=True)
class OutboxEntry:
    """An outgoing message's idempotency key and how far it got (``outbox``)."""

    key: str
    status: OutboxStatus
    kind: str | None = None
    pair_id: str | None = None
    to: list[str] | None = None
    at: str | None = None  # when it was recorded pending
    sent_at: str | None = None
    error: str | None = None  # why the backend refused it for good
    rest: Doc = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_doc(cls, doc: Doc) -> OutboxEntry:
        return cls(doc["key"], doc.get("status", OutboxStatus.PENDING), doc.get("kind"), doc.get("pair_id"),
                   doc.get("to"), doc.get("at"), doc.get("sent_at"), doc.get("error"), doc)

    @staticmethod
    def change(key: str, **fields: Any) -> Doc:
        """Only what changes, for ``records.save`` to lay over the stored entry: a tick marks
        thousands of entries sent, and a whole record per entry would double its memory."""
        unknown = set(fields) - OUTBOX_FIELDS
        if unknown:
            raise TypeError(f"not an outbox field: {', '.join(sorted(unknown))}")
        return {"key": key, **fields}

    def to_doc(self) -> Doc:
        return _doc(self.rest, {"key": self.key, "status": self.status},
                    {"kind": self.kind, "pair_id": self.pair_id, "to": self.to, "at": self.at,
                     "sent_at": self.sent_at, "error": self.error})


OUTBOX_FIELDS = frozenset({"status", "kind", "pair_id", "to", "at", "sent_at", "error"})


@dataclass(slots=True)
class InboxRow:
    """An inbox message processed, exactly once (``inbox``)."""

    message_key: str
    outcome: str  # an InboxOutcome
    pair_id: str | None = ""  # "" (or None in old rows): not about one pair
    reason: str | None = ""
    at: str | None = None
    quarantine: str | None = None  # the raw bytes' file name under quarantine/, while kept
    ref: str | None = None  # the backend's handle of the message
    rest: Doc = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_doc(cls, doc: Doc) -> InboxRow:
        return cls(doc["message_key"], doc.get("outcome", ""), doc.get("pair_id", ""), doc.get("reason", ""),
                   doc.get("at"), doc.get("quarantine"), doc.get("ref"), doc)

    def to_doc(self) -> Doc:
        return _doc(self.rest, {"message_key": self.message_key, "ref": self.ref, "outcome": self.outcome,
                                "pair_id": self.pair_id, "reason": self.reason, "at": self.at,
                                "quarantine": self.quarantine}, {})


@dataclass(slots=True)
class PairRecord:
    """Where a pair stands in the programme (``pairs``). Its ``series`` stays the doc that
    ``programme/series.py`` reads and edits; ``programme/sessions.py`` expands it into sessions."""

    pair_id: str
    state: str  # a PairState
    consent: Doc = field(default_factory=dict)  # address → yes | no
    goal: str | None = None  # refined by "Goal: ..." in a reply
    started: str | None = None
    series: Doc | None = None
    starters_used: list[str] = field(default_factory=list)
    responses: Doc = field(default_factory=dict)  # address → {"series" or occurrence UTC: PARTSTAT}
    errors: list[str] = field(default_factory=list)
    send_errors: list[str] | None = None
    share_notes: Doc | None = None  # address → bool
    pair: Doc | None = None  # the people as booked, so a removed roster row can still be cancelled
    sessions_used: int | None = None
    last_log: str | None = None
    milestones: list[str] | None = None  # surveys sent
    completed: str | None = None
    paused_by: str | None = None
    notices: list[Doc] | None = None  # short emails the booking job still owes
    ended_at: str | None = None  # when retention first saw it over
    redacted: str | None = None  # when retention removed its words
    earlier_series: list[Doc] | None = None  # series replaced by a re-plan or a resume (programme/sessions.py)
    milestones_not_sent: list[str] | None = None  # overtaken by the programme's end while the daemon was down
    rest: Doc = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_doc(cls, doc: Doc) -> PairRecord:
        get = doc.get
        return cls(doc["pair_id"], doc["state"], get("consent") or {}, get("goal"), get("started"), get("series"),
                   get("starters_used") or [], get("responses") or {}, get("errors") or [], get("send_errors"),
                   get("share_notes"), get("pair"), get("sessions_used"), get("last_log"), get("milestones"),
                   get("completed"), get("paused_by"), get("notices"), get("ended_at"), get("redacted"),
                   get("earlier_series"), get("milestones_not_sent"), doc)

    def to_doc(self) -> Doc:
        rest = self.rest
        required = {"pair_id": self.pair_id, "state": self.state}
        for key, value, empty in (("consent", self.consent, {}), ("starters_used", self.starters_used, []),
                                  ("responses", self.responses, {}), ("errors", self.errors, [])):
            if value != empty or key in rest:
                required[key] = value
        return _doc(rest, required, {
            "goal": self.goal, "started": self.started, "series": self.series, "send_errors": self.send_errors,
            "share_notes": self.share_notes, "pair": self.pair, "sessions_used": self.sessions_used,
            "last_log": self.last_log, "milestones": self.milestones, "completed": self.completed,
            "paused_by": self.paused_by, "notices": self.notices, "ended_at": self.ended_at,
            "redacted": self.redacted, "earlier_series": self.earlier_series,
            "milestones_not_sent": self.milestones_not_sent})

    def answer(self, address: str, occurrence: str) -> str | None:
        """What ``address`` said in their calendar about the series (``"series"``) or one occurrence."""
        return (self.responses.get(address) or {}).get(occurrence)

    @property
    def live_series(self) -> Doc | None:
        """The booked series unless it was cancelled."""
        return self.series if self.series and not self.series.get("cancelled") else None
