"""``purge --pair``: forget a pair's private material (notes, logs, commands, sessions, requests,
its quarantined mail, the state's backups, the local inbox's copies) — the right to be forgotten,
and the end of a safe space done properly. It says what it removed and what is out of its reach."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from tinydb import Query

from rmdaemon.atomic import atomic_write
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.programme.quarantine import delete_mentioning, delete_quarantined, mentions, quarantine_dir
from rmdaemon.records import COMMANDS, FLAGS, INBOX, LOGS, PAIRS, REQUESTS, SESSIONS, SURVEYS, PairRecord, pair_records
from rmdaemon.roster import load_roster
from rmdaemon.store import META_TABLE, Store


def purge(settings: Settings, pair_id: str) -> str:
    q = Query()
    counts: dict[str, int] = {}
    with Store.open(settings.storage_path) as store:
        with store.batch():
            found = pair_records(store).get(pair_id)
            if found is not None:
                series = found.live_series or {}
                if series.get("published") is not None and not found.completed:
                    raise UserError(f"pair {pair_id} still has a booked series; set its status to ended in "
                                    f"{settings.roster_path} and run 'rmdaemon run --once' first, so the calendars are cleared")
            tokens = {s["token"] for s in store.table(SESSIONS).search(q.pair_id == pair_id)}
            addresses = _addresses(settings, pair_id, found)
            # The outbox keeps its keys (no private content): they stop a restarted pair's mail going out twice.
            for table in (LOGS, COMMANDS, SESSIONS, SURVEYS, FLAGS, PAIRS):
                counts[table] = len(store.table(table).remove(q.pair_id == pair_id))
            counts[REQUESTS] = len(store.table(REQUESTS).remove(
                lambda r: r.get("pair_id") == pair_id or str(r.get("by", "")).casefold() in addresses))
            folder = quarantine_dir(settings)
            delete_quarantined(store, folder, {pair_id})
            gone = delete_mentioning(folder, tokens | addresses)
            counts["quarantine"] = len(gone) + len(store.table(INBOX).search(
                (q.pair_id == pair_id) & (q.quarantine != None)))  # noqa: E711 — TinyDB's query syntax
            store.table(INBOX).update({"reason": "purged", "quarantine": None, "pair_id": ""},
                                      (q.pair_id == pair_id) | q.quarantine.one_of(sorted(gone)))
        backup = _refresh_backup(settings.storage_path)
        older = _scrub_schema_backups(settings.storage_path, pair_id, tokens | addresses)
    copies = _local_copies(settings, tokens | addresses)
    if not any(counts.values()) and not copies:
        return f"nothing stored for pair {pair_id}"
    lines = [f"purged pair {pair_id}: {counts[LOGS]} session logs, {counts[SURVEYS]} survey answers, {counts[FLAGS]} "
             f"flags, {counts[COMMANDS]} commands, {counts[REQUESTS]} requests, {counts[SESSIONS]} sessions, "
             f"{counts['quarantine']} quarantined messages, {copies} processed inbox copies",
             f"the state's backup {backup} now holds the purged state",
             *(f"{path} (kept by an upgrade) {what}" for path, what in older),
             "out of rmdaemon's reach: the mail already sent to and from "
             + (", ".join(sorted(addresses)) if addresses else "the pair")
             + " stays in their mailboxes and in the programme mailbox's sent items"
             + (f" ({settings.backend.local.outbox})" if settings.backend.kind == "local" else "")
             + (f"; search for {', '.join(sorted(tokens))}" if tokens else "") + " and delete it there",
             "remove the row from the roster too, or it starts again as a new pair"]
    return "\n".join(lines)


def _addresses(settings: Settings, pair_id: str, record: PairRecord | None) -> set[str]:
    """Everyone who has been in the pair: the roster row now, the people stored at booking, and
    whoever answered its consent or sharing question (a replaced participant included)."""
    found: set[str] = set()
    if record is not None:
        for person in (record.pair or {}).get("people") or []:
            found.add(str(person[1]).casefold())
        found.update(str(a).casefold() for a in (*record.consent, *(record.share_notes or {})))
    try:
        pair = next((p for p in load_roster(settings.roster_path, settings.program) if p.pair_id == pair_id), None)
    except Exception:  # noqa: BLE001 — a broken roster must not stop a purge; the state knows the people
        pair = None
    if pair is not None:
        found.update(p.address for p in pair.people)
    return {a for a in found if "@" in a}


def _refresh_backup(state: Path) -> Path:
    """``state.json.bak`` is the state before the last write, i.e. with the pair: replace it by the
    purged state (0600), so the pair's notes do not wait in it for the next run."""
    backup = state.with_name(state.name + ".bak")
    if state.exists():
        atomic_write(backup, state.read_bytes(), 0o600)
    return backup


def _scrub_schema_backups(state: Path, pair_id: str, needles: set[str]) -> list[tuple[Path, str]]:
    """The copies an upgrade kept of the state in an older schema (``<file>.schema<N>.bak``,
    store.py) hold the pair as it was then. Each is rewritten (0600) without every document of
    the pair or naming its tokens or people, in whatever tables that schema had, so it still
    restores the other pairs; one that cannot be read as a state file is removed."""
    done = []
    for path in sorted(state.parent.glob(f"{state.name}.schema*.bak")):
        try:
            data = orjson.loads(path.read_bytes())
            kept = {name: {i: d for i, d in docs.items() if name == META_TABLE or not _about(d, pair_id, needles)}
                    for name, docs in data.items()}
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            path.unlink()
            done.append((path, "could not be read, so it was removed"))
            continue
        atomic_write(path, orjson.dumps(kept), 0o600)
        done.append((path, "was rewritten without the pair"))
    return done


def _about(doc: object, pair_id: str, needles: set[str]) -> bool:
    text = orjson.dumps(doc).decode().casefold()
    return (isinstance(doc, dict) and doc.get("pair_id") == pair_id) or any(n.casefold() in text for n in needles)


def _local_copies(settings: Settings, needles: set[str]) -> int:
    """The local backend keeps processed replies in its inbox Maildir: delete those of the pair."""
    if settings.backend.kind != "local" or not needles:
        return 0
    removed = 0
    for sub in ("cur", "new"):
        folder = settings.backend.local.inbox / sub
        for entry in (os.scandir(folder) if folder.is_dir() else []):
            if entry.is_file(follow_symlinks=False) and mentions(Path(entry.path), needles):
                os.unlink(entry.path)
                removed += 1
    return removed
