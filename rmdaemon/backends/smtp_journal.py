"""The SMTP backend's own memory, kept beside the state file: one JSON line per fact, appended and
fsynced as it happens.

Why a journal of its own: a mail server cannot be asked "did you already take key K?", and the
jobs record a whole batch as sent only after the batch. So the backend writes down each message's
fate the moment it knows it:

- ``attempt`` just before the message's bytes go to the server, ``sent`` once the server said 250
  (``failed`` when it said no). After a crash, ``sent`` means skip; ``attempt`` alone is the one
  uncertain case, settled by looking for the message's copy over IMAP before sending again.
- ``seen``: the Message-ID of every inbox message marked processed, so a changed UIDVALIDITY
  (a migrated or rebuilt mailbox) falls back to de-duplication by Message-ID.
- ``watermark``: (folder, UIDVALIDITY, last UID) below which everything was handled, so each
  message is fetched once.

Appends are atomic enough: a torn last line (crash mid-write) is ignored on reading, and its fact
is simply not known, which the protocol above already handles. The file is compacted (latest fact
per key, old entries dropped, atomic replace) the first time this process writes to it, so a
read-only user such as ``check --online`` never rewrites it under a running daemon.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rmdaemon.atomic import atomic_write
from rmdaemon.clock import Clock
from rmdaemon.errors import BackendError

log = logging.getLogger("rmdaemon.smtp")
RETAIN = timedelta(days=180)  # the jobs re-offer a key only while it is pending: days, not months
COMPACT_ABOVE = 5000  # lines; below this a rewrite is not worth it


@dataclass
class _Facts:
    sends: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (state, at)
    seen: dict[str, str] = field(default_factory=dict)  # message-id → at
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # folder → (uidvalidity, last uid)
    lines: int = 0


class Journal:
    def __init__(self, path: Path, clock: Clock) -> None:
        self.path, self.clock = path, clock
        self._facts: _Facts | None = None
        self._compacted = False

    # -- reading ---------------------------------------------------------------------------
    def send_state(self, key: str) -> str | None:
        """``attempt``, ``sent``, ``failed`` or None (never offered to the server)."""
        entry = self._load().sends.get(key)
        return entry[0] if entry else None

    def was_seen(self, message_id: str) -> bool:
        return message_id in self._load().seen

    def watermark(self, folder: str) -> tuple[int | None, int]:
        """(UIDVALIDITY, last handled UID) of ``folder``; (None, 0) before the first read."""
        return self._load().marks.get(folder, (None, 0))

    # -- writing ---------------------------------------------------------------------------
    def record_send(self, key: str, state: str) -> None:
        self._append({"kind": "send", "key": key, "state": state})

    def record_seen(self, message_id: str) -> None:
        if message_id and not self.was_seen(message_id):
            self._append({"kind": "seen", "id": message_id})

    def record_watermark(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        if self.watermark(folder) != (uidvalidity, last_uid):
            self._append({"kind": "watermark", "folder": folder, "uidvalidity": uidvalidity, "last_uid": last_uid})

    # -- the file --------------------------------------------------------------------------
    def _load(self) -> _Facts:
        if self._facts is None:
            self._facts = _Facts()
            try:
                with open(self.path, "rb") as f:
                    for line in f:
                        self._apply(line)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise BackendError(f"cannot read the SMTP backend journal {self.path}: {e.strerror}") from e
        return self._facts

    def _apply(self, line: bytes) -> None:
        try:
            fact = json.loads(line)
            kind, at = fact["kind"], fact.get("at", "")
        except (ValueError, KeyError, TypeError):
            return  # a torn last line: that fact is unknown, which the protocol tolerates
        facts = self._facts
        assert facts is not None
        facts.lines += 1
        if kind == "send":
            facts.sends[fact["key"]] = (fact["state"], at)
        elif kind == "seen":
            facts.seen[fact["id"]] = at
        elif kind == "watermark":
            facts.marks[fact["folder"]] = (int(fact["uidvalidity"]), int(fact["last_uid"]))

    def _append(self, fact: dict) -> None:
        self._load()
        if not self._compacted:
            self._compact()
        fact["at"] = self.clock().isoformat()
        line = json.dumps(fact, ensure_ascii=False).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise BackendError(f"cannot write the SMTP backend journal {self.path}: {e.strerror}") from e
        self._apply(line)

    def _compact(self) -> None:
        """Rewrite as the latest fact per key, dropping facts older than RETAIN; atomic replace."""
        self._compacted = True
        facts = self._load()
        if facts.lines <= COMPACT_ABOVE:
            return
        cutoff = (self.clock() - RETAIN).isoformat()
        keep = [{"kind": "send", "key": k, "state": s, "at": at} for k, (s, at) in facts.sends.items() if at >= cutoff]
        keep += [{"kind": "seen", "id": i, "at": at} for i, at in facts.seen.items() if at >= cutoff]
        keep += [{"kind": "watermark", "folder": f, "uidvalidity": v, "last_uid": u} for f, (v, u) in facts.marks.items()]
        atomic_write(self.path, b"".join(json.dumps(fact, ensure_ascii=False).encode() + b"\n" for fact in keep), mode=None)
        log.info("compacted %s: %d lines → %d", self.path, facts.lines, len(keep))
        self._facts = None
        self._load()

