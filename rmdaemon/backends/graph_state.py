"""graph-state.json: what the Graph backend must remember across restarts, written atomically.

- ``inbox``: the delta link of the inbox and the messages fetched but not yet marked processed
  (a delta link moves past a message once it is returned, so those are kept here until marked);
- ``series``: uid → event id, the sequence last applied and the series' shape, so an update is
  one PATCH and a skip or move reaches attendees as that session alone;
- ``creating``: uids whose create went out but whose answer we did not see (a crash or a lost
  connection): those are looked up by our extended property before anything is created again;
- ``sending`` / ``sent``: the send journal. A key is written to ``sending`` before its draft is
  made and moves to ``sent`` after Graph accepted the send; a key found in ``sending`` after a
  restart is looked for in Sent Items (by our tag) before anything is sent again.

The store's record is the truth for the jobs; this file only makes the backend's own steps safe
and cheap. It is small (digests, ids), rewritten whole with temp file + fsync + rename.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rmdaemon.atomic import atomic_write
from rmdaemon.errors import UserError

VERSION = 1
SENT_KEPT = timedelta(days=120)  # a re-offer comes within ticks; months of margin before pruning


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class GraphState:
    """The journal; ``google_state`` extends it with what only the google backend keeps."""

    owner = "Graph backend"
    recovery = ("the inbox is then read from the start (handled messages carry the processed category and are "
                "skipped) and series are found again by their extended property")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = self._load()

    def empty(self) -> dict[str, Any]:
        return {"version": VERSION, "inbox": {"delta_link": None, "pending": {}}, "series": {}, "creating": {},
                "sending": {}, "sent": {}}

    def _load(self) -> dict[str, Any]:
        empty = self.empty()
        if self.path is None or not self.path.exists():
            return empty
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("unknown layout")
        except (ValueError, OSError) as exc:
            raise UserError(f"{self.path}: the {self.owner}'s state file cannot be read ({exc})", [
                f"{self.path}: restore it from a backup; if there is none, move it away: {self.recovery}"]) from None
        return {**empty, **data}

    def save(self) -> None:
        """Temp file in the same directory, fsync, rename, fsync the directory: whole or not at all."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.data, separators=(",", ":"), sort_keys=True).encode(), mode=None)

    # -- sending ----------------------------------------------------------------------------
    def was_sent(self, key: str) -> bool:
        return digest(key) in self.data["sent"]

    def sending(self, key: str) -> str | None:
        """The draft id of an unfinished send ("" before the draft existed), or None."""
        return self.data["sending"].get(digest(key))

    def start_send(self, key: str, draft_id: str = "") -> None:
        self.data["sending"][digest(key)] = draft_id
        self.save()

    def finish_send(self, key: str, today: date) -> None:
        self.data["sending"].pop(digest(key), None)
        self.data["sent"][digest(key)] = today.isoformat()
        cutoff = (today - SENT_KEPT).isoformat()
        self.data["sent"] = {k: d for k, d in self.data["sent"].items() if d >= cutoff}
        self.save()

    # -- series -----------------------------------------------------------------------------
    def series(self, uid: str) -> dict[str, Any] | None:
        return self.data["series"].get(uid)

    def creating(self, uid: str) -> bool:
        return uid in self.data["creating"]

    def start_creates(self, uids: list[str]) -> None:
        if uids:
            self.data["creating"].update({u: 0 for u in uids})
            self.save()

    def applied(self, done: dict[str, dict[str, Any]], gone: Iterable[str] = ()) -> None:
        """Record uid → {"id", "sequence", "shape", "exceptions", "join_url"} Graph confirmed, and series gone."""
        gone = list(gone)
        if not done and not gone:
            return
        for uid, record in done.items():
            kept = ("id", "sequence", "shape", "exceptions", "join_url")
            self.data["series"][uid] = {k: record.get(k) for k in kept if k != "join_url" or record.get(k)}
            self.data["creating"].pop(uid, None)
        for uid in gone:
            self.data["series"].pop(uid, None)
            self.data["creating"].pop(uid, None)
        self.save()

    # -- inbox ------------------------------------------------------------------------------
    @property
    def delta_link(self) -> str | None:
        return self.data["inbox"]["delta_link"]

    @property
    def pending(self) -> dict[str, dict[str, Any]]:
        return self.data["inbox"]["pending"]

    def inbox_seen(self, delta_link: str | None, fresh: dict[str, dict[str, Any]], removed: list[str]) -> None:
        inbox = self.data["inbox"]
        inbox["delta_link"] = delta_link
        inbox["pending"].update(fresh)
        for ref in removed:
            inbox["pending"].pop(ref, None)
        self.save()

    def inbox_done(self, ref: str) -> None:
        if self.data["inbox"]["pending"].pop(ref, None) is not None:
            self.save()
