"""``rmdaemon quarantine list | show ID | release ID [--pair P] | delete ID``: the admin's way out
for mail the inbox set aside.

An ID is the start of the quarantined file's name (a hash of the Message-ID), so it names the
same message in ``list``, in the folder and in the inbox table. ``list`` and ``show`` only read
(safe while the daemon runs). ``release`` and ``delete`` change the state, so they take the
writer lock like ``purge``: while the daemon runs they say so and change nothing.

``release`` hands the kept bytes to the inbox job's own ``Router`` with the From replaced by the
pair member the admin vouches for, at the moment the message arrived, and records the outcome
on the message's inbox row in one batch, with who released it and when. The row is keyed by the
Message-ID, so the release replaces the quarantine and can neither lose the message nor count it
twice; the bytes go only after that batch is written.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses

from rmdaemon import daemon, phrases, roster
from rmdaemon.clock import Clock
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.model import Incoming, Pair, Person
from rmdaemon.programme.quarantine import quarantine_dir, quarantine_name
from rmdaemon.records import INBOX
from rmdaemon.store import Store

ID_LENGTH = 8
QUARANTINE = "quarantine"


def row_id(row: dict) -> str:
    return quarantine_name(row["message_key"])[:ID_LENGTH]


def _quarantined(store: Store) -> list[dict]:
    """Rows that are or were quarantined (a released one keeps what it was quarantined for)."""
    return [dict(r) for r in store.rows(INBOX).values() if r["outcome"] == QUARANTINE or r.get("released_at")]


def _find(store: Store, ident: str) -> dict:
    ident = ident.strip().lower().removesuffix(".eml")
    found = [r for r in _quarantined(store) if len(ident) >= 4 and quarantine_name(r["message_key"]).startswith(ident)]
    if len(found) != 1:
        why = "no quarantined message has" if not found else f"{len(found)} quarantined messages have"
        raise UserError(f"{why} the ID {ident!r}; 'rmdaemon quarantine list' shows the IDs")
    return found[0]


def _raw(settings: Settings, row: dict) -> bytes | None:
    if not row.get("quarantine"):
        return None
    try:
        return (quarantine_dir(settings) / row["quarantine"]).read_bytes()
    except FileNotFoundError:
        return None


def _headers(raw: bytes | None) -> EmailMessage:
    return message_from_bytes(raw or b"", policy=policy.default)  # type: ignore[return-value]


def _when(stamp: str, settings: Settings) -> str:
    return phrases.local_time(datetime.fromisoformat(stamp), settings.program.timezone)


def _status(row: dict, settings: Settings) -> str:
    if row.get("released_at"):
        then = "quarantined again" if row["outcome"] == QUARANTINE else f"now a {row['outcome']}: {row['reason']}"
        return f"released by {row['released_by']} as {row['released_as']}, {_when(row['released_at'], settings)}; {then}"
    if row.get("deleted_at"):
        return f"deleted by {row['deleted_by']}, {_when(row['deleted_at'], settings)}"
    return "kept" if row.get("quarantine") else "bytes removed (retention or purge)"


def list_lines(settings: Settings) -> list[str]:
    with Store.open(settings.storage_path, writer=False) as store:
        rows = sorted(_quarantined(store), key=lambda r: r["at"])
    if not rows:
        return ["no quarantined messages"]
    lines = []
    for row in rows:
        msg = _headers(_raw(settings, row))
        lines.append(f"{row_id(row)}  {_when(row['at'], settings)}  {row.get('pair_id') or '-'}  "
                     f"{msg['From'] or '(bytes gone)'}  {msg['Subject'] or ''}".rstrip())
        lines.append(f"    {row.get('quarantined_for') or row['reason']} [{_status(row, settings)}]")
    return [*lines, "show one with: rmdaemon quarantine show ID; then release ID [--pair P] or delete ID"]


def show(settings: Settings, ident: str) -> str:
    """The row, then the message's headers and text as a mail client shows them (never its HTML)."""
    with Store.open(settings.storage_path, writer=False) as store:
        row = _find(store, ident)
    head = [f"ID: {row_id(row)}", f"received: {_when(row['at'], settings)}", f"pair: {row.get('pair_id') or '-'}",
            f"reason: {row.get('quarantined_for') or row['reason']}", f"status: {_status(row, settings)}"]
    raw = _raw(settings, row)
    if raw is None:
        return "\n".join([*head, "", "(the message's bytes are no longer kept)"]) + "\n"
    msg = _headers(raw)
    fields = [f"{name}: {msg[name]}" for name in ("From", "To", "Date", "Subject", "Message-ID") if msg[name]]
    try:
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else "(no text part)"
    except Exception as e:  # noqa: BLE001 — quarantined mail may be malformed on purpose
        text = f"(the text cannot be decoded: {type(e).__name__}; the raw file is {quarantine_dir(settings) / row['quarantine']})"
    return "\n".join([*head, "", *fields, "", text.rstrip()]) + "\n"


def delete(settings: Settings, ident: str, now: datetime) -> str:
    """Remove the bytes; the row stays (counted as quarantined) and says who deleted it and when."""
    with Store.open(settings.storage_path) as store:
        row = _find(store, ident)
        if row["outcome"] != QUARANTINE:
            raise UserError(f"{row_id(row)} was {_status(row, settings)}; nothing to delete")
        name = row.get("quarantine")
        with store.batch():
            store.table(INBOX).update({"quarantine": None, "deleted_by": getpass.getuser(),
                                       "deleted_at": now.isoformat()}, doc_ids=[_doc_id(store, row)])
        if name:  # after the row stops naming it: a crash in between leaves a stray file, never a dangling name
            (quarantine_dir(settings) / name).unlink(missing_ok=True)
    return f"deleted {row_id(row)}: its bytes are gone; the inbox row stays, saying so"


def _doc_id(store: Store, row: dict) -> int:
    return next(int(i) for i, r in store.rows(INBOX).items() if r["message_key"] == row["message_key"])


def release(settings: Settings, ident: str, pair_id: str | None, clock: Clock) -> str:
    pairs = {p.pair_id: p for p in roster.load_roster(settings.roster_path, settings.program)}
    with Store.open(settings.storage_path) as store:
        row = _find(store, ident)
        if row["outcome"] != QUARANTINE:
            raise UserError(f"{row_id(row)} was already {_status(row, settings)}")
        raw = _raw(settings, row)
        if raw is None:
            raise UserError(f"{row_id(row)}: its bytes are no longer kept ({_status(row, settings)}); nothing to release")
        pair = _pair(pairs, pair_id or row.get("pair_id") or "")
        sender = _vouched(pair, _headers(raw))
        message = Incoming(row["ref"], vouch(raw, sender))
        with store.batch():
            kind, reason = daemon.handle_again(settings, store, clock, message, row["message_key"], datetime.fromisoformat(row["at"]))
            store.table(INBOX).update({"released_by": getpass.getuser(), "released_at": clock().isoformat(),
                                       "released_as": sender.email, "quarantined_for": row["reason"]},
                                      doc_ids=[_doc_id(store, row)])
        if kind != QUARANTINE:  # after the row stops naming it (as delete)
            (quarantine_dir(settings) / row["quarantine"]).unlink(missing_ok=True)
    who = f"released {row_id(row)} as from {sender.name} <{sender.email}> of {pair.pair_id}"
    if kind == QUARANTINE:
        return f"{who}, but it is quarantined again: {reason}"
    return f"{who}: {kind}" + (f" ({reason})" if reason else "")


def _pair(pairs: dict[str, Pair], pair_id: str) -> Pair:
    if not pair_id:
        raise UserError("this message names no pair; give the pair it belongs to with --pair P")
    if pair_id not in pairs:
        raise UserError(f"no pair {pair_id!r} in the roster; known pairs: {', '.join(sorted(pairs)) or 'none'}")
    return pairs[pair_id]


def _vouched(pair: Pair, msg: EmailMessage) -> Person:
    """The member the admin vouches for: the one whose address, name or mailbox name the From shows."""
    (name, addr), = getaddresses([str(msg["From"] or "")])[:1] or [("", "")]
    local = addr.partition("@")[0].casefold()
    for test in (lambda p: p.address == addr.casefold(),
                 lambda p: name and p.name.casefold() == name.casefold(),
                 lambda p: local and p.email.partition("@")[0].casefold() == local):
        found = [p for p in pair.people if test(p)]
        if len(found) == 1:
            return found[0]
    raise UserError(f"the From ({msg['From'] or 'none'}) shows neither {pair.mentor.name} <{pair.mentor.email}> nor "
                    f"{pair.mentee.name} <{pair.mentee.email}> of {pair.pair_id}; is it really theirs?")


def vouch(raw: bytes, sender: Person) -> bytes:
    """The bytes with one From, the vouched member's, and without Authentication-Results (the admin
    vouches instead of the mail server). The original From is kept as X-RM-Released-From."""
    eol = b"\r\n" if b"\r\n" in raw.partition(b"\n")[0] + b"\n" else b"\n"
    head, sep, body = raw.partition(eol + eol)
    kept: list[bytes] = [f"From: {Address(sender.name, addr_spec=sender.email)}".encode()]
    field = b""
    for line in head.split(eol):
        if line[:1] not in (b" ", b"\t"):  # a new header; continuation lines follow their header
            field = line.partition(b":")[0].strip().lower()
            if field == b"from":
                line = b"X-RM-Released-From:" + line.partition(b":")[2]
        if field != b"authentication-results":
            kept.append(line)
    return eol.join(kept) + (sep or eol + eol) + body
