"""``preview`` and ``export``: what a pair will receive, built by the very code that sends it,
from a read-only view of the store (safe while the daemon runs)."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy

from rmdaemon import compose, itip, roster
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.programme.agenda import agenda_messages, latest_next_steps, session_record
from rmdaemon.programme.messages import Mailer
from rmdaemon.records import SESSIONS, pair_records
from rmdaemon.programme.series import meeting_for, upcoming
from rmdaemon.model import Pair
from rmdaemon.secret import installation_secret
from rmdaemon.store import Store


def _pair_and_state(settings: Settings, store: Store, pair_id: str) -> tuple[Pair, dict]:
    pairs = {p.pair_id: p for p in roster.load_roster(settings.roster_path, settings.program)}
    if pair_id not in pairs:
        raise UserError(f"{settings.roster_path}: no pair {pair_id!r}; known pairs: {', '.join(sorted(pairs)) or 'none'}")
    found = pair_records(store).get(pair_id)
    if found is None or not found.series:
        state = found.state if found else "not started"
        raise UserError(f"pair {pair_id} has no booked series yet (state: {state}); run 'rmdaemon run --once' first")
    return pairs[pair_id], found.to_doc()


def _mailer(settings: Settings, store: Store, now: datetime) -> Mailer:
    return Mailer(settings.program, compose.load_templates(settings.templates_dir), now, installation_secret(store))


def preview(settings: Settings, pair_id: str, now: datetime) -> str:
    """The next agenda email of the pair, headers and text part, exactly as it would be sent."""
    with Store.open(settings.storage_path, writer=False) as store:
        pair, doc = _pair_and_state(settings, store, pair_id)
        start = upcoming(doc["series"], pair_id, now)
        if start is None:
            raise UserError(f"pair {pair_id} has no session after {now.isoformat()}")
        mail = _mailer(settings, store, now)
        sessions = {d["token"]: d for d in store.table(SESSIONS).all()}
        session = session_record(mail.templates, pair, doc, start, sessions)
        steps = latest_next_steps(store, {pair_id: pair}, pair_id).get(pair_id, {})
        outs = agenda_messages(mail, pair, doc, session, pair.people, steps)
    return "\n".join(_readable(o.raw) for o in outs)


def _readable(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    head = "".join(f"{k}: {v}\n" for k, v in msg.items())
    body = msg.get_body(("plain",))
    return head + "\n" + (body.get_content() if body else "") + "\n"


def export_ics(settings: Settings, pair_id: str, now: datetime) -> bytes:
    """The pair's current series as a REQUEST .ics (for clients that want a file to import)."""
    with Store.open(settings.storage_path, writer=False) as store:
        pair, doc = _pair_and_state(settings, store, pair_id)
        meeting = meeting_for(_mailer(settings, store, now), pair, doc)
    return itip.build_cancel(meeting, now) if meeting.cancelled else itip.build_request(meeting, now)
