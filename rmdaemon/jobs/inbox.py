"""Every inbox message ends exactly once as a session log, a command, a consent, an iTIP response
or a quarantined item (raw bytes kept, with the reason).

Outcomes of a whole fetch land in one batch keyed by Message-ID; only then are the messages
marked processed in the backend. A crash before the batch reprocesses them; a crash after it
finds them recorded and only marks them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from rmdaemon import authres, itip
from rmdaemon.programme import answers, calendar_answers, pairstate
from rmdaemon.records import (ACTIVE, COMMANDS, FLAGS, INBOX, LOGS, PAIRS, REQUESTS, SESSIONS, SURVEYS, InboxOutcome,
                              InboxRow, PairRecord, index, logs, pair_records, save)
from rmdaemon.programme.context import Context, log
from rmdaemon.programme.pruning import forgotten_before
from rmdaemon.programme.quarantine import quarantine_file, quarantine_name
from rmdaemon.model import Incoming, JobResult, Pair
from rmdaemon.replies import Inbound, ParsedReply, read_reply


# Parsing builds every MIME part in memory before anything can look at it: 780,000 parts inside
# the 25 MB limit cost 10 s and 570 MB. Real replies have a handful; forwarded threads dozens.
MAX_MIME_PARTS = 1_000


@dataclass
class Outcome:
    kind: InboxOutcome
    pair_id: str = ""
    reason: str = ""
    docs: dict[str, list[dict]] = field(default_factory=dict)  # table → docs to insert


def run(ctx: Context) -> JobResult:
    result = JobResult("inbox")
    done = index(ctx.store, INBOX, "message_key")
    horizon = forgotten_before(ctx.store)
    if horizon is not None:  # pruned ids: a log still knows the message it came from
        done |= {entry.message_id: {} for entry in logs(ctx.store) if entry.message_id}
    state = pair_records(ctx.store)
    fresh: list[tuple[Incoming, str]] = []
    for message in ctx.backend.fetch_new():
        # A message refused unread is known by its place, unless what was kept of it names its Message-ID.
        key = f"refused:{message.ref}" if message.refused and not message.raw else message_key(message.raw)
        if key in done:
            ctx.backend.mark_processed(message.ref)  # recorded before a crash: only the mark was missing
            continue
        fresh.append((message, key))
        done[key] = {}
    if not fresh:
        return result
    router = Router(ctx, state, horizon)
    outcomes = [(m, key, router.route_safely(m, key)) for m, key in fresh]
    for message, key, outcome in outcomes:
        if outcome.kind == InboxOutcome.QUARANTINE:  # an oversized message keeps its first max_message_bytes
            quarantine_file(ctx.settings, key, message.raw[: ctx.settings.security.max_message_bytes])
    with ctx.store.batch():
        record(ctx, router, outcomes)
    for message, key, outcome in outcomes:
        ctx.backend.mark_processed(message.ref)
        result.add(outcome.kind, f"{outcome.pair_id or '-'}: {outcome.kind}" + (f" ({outcome.reason})" if outcome.reason else ""))
    return result


def record(ctx: Context, router: Router, outcomes: list[tuple[Incoming, str, Outcome]]) -> None:
    stamp = ctx.now.isoformat()
    save(ctx.store, INBOX, "message_key", (
        InboxRow(key, o.kind, o.pair_id, o.reason, stamp,
                 quarantine_name(key) if o.kind == InboxOutcome.QUARANTINE else None, m.ref).to_doc()
        for m, key, o in outcomes))
    for table in (LOGS, COMMANDS, SURVEYS, FLAGS, REQUESTS):
        docs = [d for _, _, o in outcomes for d in o.docs.get(table, [])]
        if docs:
            ctx.store.table(table).insert_multiple(docs)
    save(ctx.store, PAIRS, "pair_id", (doc.to_doc() for doc in router.changed.values()))


def message_key(raw: bytes) -> str:
    """The Message-ID (so a message delivered twice counts once), else a hash of the bytes."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.replace(b"\r\n", b"\n").replace(b"\n ", b" ").replace(b"\n\t", b" ").split(b"\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"message-id" and value.strip():
            return value.strip().decode("ascii", "replace")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class Router:
    """Decides what one message is; collects pair state changes across the whole fetch."""

    def __init__(self, ctx: Context, state: dict[str, PairRecord], horizon: datetime | None = None) -> None:
        self.ctx, self.state, self.horizon = ctx, state, horizon
        self.roster = ctx.roster()
        self.sessions = index(ctx.store, SESSIONS, "token")
        self.logged: dict[str, set[str]] = {}  # pair → tokens of its sessions that have a log
        for entry in logs(ctx.store):
            self.logged.setdefault(entry.pair_id, set()).add(entry.token)
        self.by_uid = {d.series["uid"]: pid for pid, d in state.items() if d.series}
        self.changed: dict[str, PairRecord] = {}

    def route_safely(self, message: Incoming, key: str) -> Outcome:
        """``route``, but a bug met on one message quarantines that message (raw kept, reason
        given) instead of failing the whole fetch: the others are still processed."""
        try:
            return self.route(message, key)
        except Exception as e:  # noqa: BLE001 — isolation: one poisonous message must not block the inbox
            log.exception("inbox message %s (%s) could not be handled", message.ref, key)
            return Outcome(InboxOutcome.QUARANTINE, reason=f"internal error while handling it ({type(e).__name__}: {e})"[:300])

    def refused(self, message: Incoming, inbound: Inbound) -> Outcome | None:
        """Messages not read at all: too large, with a From that does not name one sender, or the mail
        server says the sender's domain did not send them. ``inbound`` is ``message.raw``'s one
        parsed view: nothing in it is computed before the size checks have passed."""
        security = self.ctx.settings.security
        if message.refused:
            return Outcome("quarantine", reason=message.refused)
        if len(message.raw) > security.max_message_bytes:
            return Outcome(InboxOutcome.QUARANTINE, reason=f"{len(message.raw):,} bytes is over [security] max_message_bytes "
                                                f"({security.max_message_bytes:,}); not read, the first "
                                                f"{security.max_message_bytes:,} bytes kept")
        parts = message.raw.count(b"\n--")  # every MIME part needs a delimiter line: an upper bound, before parsing
        if parts > MAX_MIME_PARTS:
            return Outcome("quarantine", reason=f"{parts:,} MIME boundary lines, over the {MAX_MIME_PARTS:,} we read; not parsed")
        moment = inbound.written if self.horizon is not None else None
        if moment is not None and moment < self.horizon:
            return Outcome(InboxOutcome.QUARANTINE, reason=f"written {moment:%Y-%m-%d}, before {self.horizon:%Y-%m-%d}: "
                           "rmdaemon no longer remembers which messages of that time it read ([storage] "
                           "prune_after_days), so this may be a copy of one already handled; not acted on")
        sender = inbound.envelope
        if sender.problem:  # before anything reads it: no part of this message may act
            return Outcome(InboxOutcome.QUARANTINE, reason=f"{sender.problem}; a message must name one sender")
        failed = (authres.failures(inbound.headers, security.authserv_id, sender.address)
                  if security.trust_authentication_results else [])
        if failed:
            return Outcome(InboxOutcome.QUARANTINE, reason=f"{security.authserv_id} found the sender's domain forged "
                                                f"({', '.join(failed)}); not trusted even though the From may match")
        return None

    def route(self, message: Incoming, key: str) -> Outcome:
        inbound = Inbound(message.raw)
        refused = self.refused(message, inbound)
        if refused is not None:
            return refused
        try:
            parsed = read_reply(inbound)
        except Exception as e:  # the parser promises never to raise; if it does, the message is still kept
            log.exception("reply parser failed on %s", message.ref)
            return Outcome(InboxOutcome.QUARANTINE, reason=f"could not be parsed ({type(e).__name__})")
        # Only answers count: a forwarded REQUEST or a PUBLISH must not overwrite real RSVPs.
        answers_found, methods = itip.read_calendars(inbound.tree)
        responses = [r for r in answers_found if r.method in itip.ANSWER_METHODS]
        if responses:
            return self._itip(parsed, responses)
        unknown = [m for m in methods if m not in itip.ITIP_METHODS]
        if unknown:
            return Outcome(InboxOutcome.QUARANTINE, reason=f"a calendar with method {', '.join(m or '(none)' for m in unknown)}, "
                                                           f"which is not an iTIP answer we know; not read")
        forwarded = self._forward_notification(parsed)
        if forwarded is not None:
            return forwarded
        if parsed.auto_submitted:
            return Outcome(InboxOutcome.QUARANTINE, reason="automatic reply (out of office, bounce or auto-generated)")
        admin = answers.champion_commands(self.ctx.settings, self.state, (parsed.from_addr or "").casefold(), parsed, key)
        if admin is not None:
            return self._apply(admin, "")
        pair, session = self._find_pair(parsed)
        if pair is None:
            return Outcome(InboxOutcome.QUARANTINE, reason=session.get("reason", "no session token and sender not in any pair"))
        sender = pair.member(parsed.from_addr or "")
        if sender is None:
            return Outcome(InboxOutcome.QUARANTINE, pair.pair_id,
                           f"sender {parsed.from_addr or 'unknown'} is not part of pair {pair.pair_id}")
        special = self._answer(pair, session, sender, parsed, key)
        if special is not None:
            return self._apply(special, pair.pair_id)
        doc = self.changed.get(pair.pair_id) or self.state[pair.pair_id]
        help_ = answers.help_request(self.ctx.now, pair, sender, parsed, key) if doc.state == ACTIVE else None
        if help_ is not None and answers.only_help(parsed.body):
            return self._apply(help_, pair.pair_id)
        update = pairstate.apply_reply(self.ctx.now, self.ctx.settings.program.blackout_dates, pair, doc, session,
                                       sender, parsed, inbound.written, self.logged.setdefault(pair.pair_id, set()))
        if update.doc is not None:
            self.changed[pair.pair_id] = update.doc
            self.state[pair.pair_id] = update.doc
        outcome = Outcome(update.kind, pair.pair_id, update.reason, update.docs)
        self.logged[pair.pair_id] |= {row["token"] for row in update.docs.get(LOGS, [])}
        if help_ is not None and outcome.kind != InboxOutcome.QUARANTINE:  # a HELP line rides along with a log or command
            for table, rows in help_.docs.items():
                outcome.docs[table] = [*outcome.docs.get(table, []), *rows]
            outcome.reason = "; ".join(filter(None, [outcome.reason, help_.reason]))
        return outcome

    def _forward_notification(self, parsed: ParsedReply) -> Outcome | None:
        """Exchange's plain "Meeting Forward Notification" (often auto-generated): never a log."""
        if not calendar_answers.FORWARD_SUBJECT_RE.match(parsed.subject or ""):
            return None
        pair, _ = self._find_pair(parsed)
        if pair is None:
            return None
        doc = self.changed.get(pair.pair_id) or self.state[pair.pair_id]
        found = calendar_answers.forward_notification(self.ctx.now, pair, doc, parsed, self.ctx.settings.program.organizer)
        if found is None:
            return None
        if found.doc is not None:
            self.changed[pair.pair_id] = self.state[pair.pair_id] = found.doc
        return Outcome(found.kind, pair.pair_id, found.reason)

    def _answer(self, pair: Pair, session: dict, sender, parsed: ParsedReply, key: str) -> answers.Answer | None:
        kind = session.get("kind")
        if kind == "survey":
            return answers.survey(self.ctx.templates, self.ctx.now, pair, session, sender, parsed, key)
        if kind == "checkin":
            return answers.checkin_reply(self.ctx.now, pair, session, sender, parsed, key)
        return None

    def _apply(self, answer: answers.Answer, pair_id: str) -> Outcome:
        for pid, doc in answer.pair_docs.items():
            self.changed[pid] = self.state[pid] = doc
        return Outcome(answer.kind, pair_id, answer.reason, answer.docs)

    def _find_pair(self, parsed: ParsedReply) -> tuple[Pair | None, dict]:
        token = (parsed.session_token or "").upper()
        session = self.sessions.get(token)
        if session is not None:
            pair = self.roster.get(session["pair_id"])
            if pair is None or session["pair_id"] not in self.state:
                return None, {"reason": f"pair {session['pair_id']} is no longer in the roster"}
            return pair, session
        sender = (parsed.from_addr or "").casefold()
        mine = [p for p in self.ctx.pairs if p.member(sender) and p.pair_id in self.state]
        if len(mine) == 1:
            return mine[0], {}
        if token:
            return None, {"reason": f"unknown session token {token}"}
        if len(mine) > 1:
            return None, {"reason": f"no session token and {sender} is in {len(mine)} pairs"}
        return None, {"reason": "no session token and sender not in any pair"}

    def _itip(self, parsed: ParsedReply, responses: list[itip.ItipResponse]) -> Outcome:
        """A calendar answer (REPLY, COUNTER, REFRESH): what it does is ``calendar_answers``' to say."""
        pair_id = next((self.by_uid[r.uid] for r in responses if r.uid in self.by_uid), "")
        pair = self.roster.get(pair_id)
        if pair is None:
            return Outcome(InboxOutcome.QUARANTINE, pair_id, "calendar reply for a series we do not know")
        doc = self.changed.get(pair_id) or self.state[pair_id]
        mine = [r for r in responses if self.by_uid.get(r.uid) == pair_id]
        result = calendar_answers.answer(self.ctx.now, pair, doc, parsed, mine)
        if result.doc is not None:
            self.changed[pair_id] = self.state[pair_id] = result.doc
        return Outcome(result.kind, pair_id, result.reason)
