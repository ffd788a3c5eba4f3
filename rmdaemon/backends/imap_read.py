"""The programme mailbox over IMAP (IMAPClient): each message fetched once, handled ones marked with
a keyword (and optionally moved), nothing ever deleted.

How "fetched once" holds:
- a watermark (UIDVALIDITY, last UID) in the journal: everything at or below it was handled, so a
  read searches only above it. It advances past a message only when that message and every one
  below it were marked, so a crash between fetching and marking re-fetches instead of losing;
- the keyword: a search skips marked messages, also above the watermark;
- a changed UIDVALIDITY (mailbox migrated or rebuilt) makes UIDs meaningless: the read starts from
  UID 1 again and drops, by Message-ID, what the journal says was already handled — headers only,
  so an old 30 MB message is not downloaded again just to be recognised.

Big mailboxes and big messages: headers and sizes are fetched first; bodies are fetched in
commands of at most ``FETCH_BYTES`` and at most ``BATCH_BYTES`` per read (at least one message);
the rest waits for the next inbox run. A message over ``[security] max_message_bytes`` is never
downloaded: its first ``HEAD_BYTES`` go to the quarantine with the reason. UIDs are always
explicit lists, never ``1:*`` (IMAPClient 4.1.0 fails on `fetch("1:*")`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from imapclient.imapclient import SENT
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from rmdaemon.backends.base import DEFAULT_MAX_BYTES, HEAD_BYTES, too_large
from rmdaemon.backends.smtp_journal import Journal
from rmdaemon.backends.smtp_net import SECTION, Endpoint, explain, tls_context
from rmdaemon.errors import BackendError
from rmdaemon.model import Incoming

log = logging.getLogger("rmdaemon.smtp")
FETCH_BYTES = 8 << 20  # bodies per FETCH command
BATCH_BYTES = 64 << 20  # bodies per fetch_new; a bigger single message still comes, alone
HEADER_CHUNK = 500  # UIDs per header FETCH
HEADER_FIELDS = "MESSAGE-ID FROM X-RM-KEY"


@dataclass(frozen=True)
class MailboxSettings:
    folder: str
    keyword: str
    processed_folder: str  # "" → keyword only
    own_address: str  # the programme mailbox: copies of our own mail are recognised by it
    max_bytes: int = DEFAULT_MAX_BYTES  # [security] max_message_bytes: larger ones are never downloaded


@dataclass(frozen=True)
class _Head:
    size: int
    message_id: str
    sender: str
    rm_key: str


@dataclass
class _Window:
    """What the last read handed out: the watermark may pass a UID only once it is marked."""

    uidvalidity: int
    handled_to: int  # every candidate UID up to here was handed out or marked
    outstanding: dict[int, str] = field(default_factory=dict)  # UID → Message-ID, handed out, not yet marked


class ImapMailbox:
    def __init__(self, endpoint: Endpoint, settings: MailboxSettings, journal: Journal) -> None:
        self.endpoint, self.settings, self.journal = endpoint, settings, journal
        self._conn: IMAPClient | None = None
        self._selected: tuple[str, bool] | None = None
        self._uidvalidity: dict[str, int] = {}
        self._uidnext = 0
        self._window: _Window | None = None
        self._marked: set[tuple[int, int]] = set()
        self._sent_folder: str | None = None

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> IMAPClient:
        """A logged-in client; raises the library's own exceptions (``explain`` reads them)."""
        ep = self.endpoint
        context = tls_context(ep.ca_file)
        client = IMAPClient(ep.host, port=ep.port, ssl=ep.tls == "implicit", ssl_context=context, timeout=ep.timeout)
        try:
            if ep.tls == "starttls":
                client.starttls(context)
            client.login(ep.username, ep.password or "")
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def _live(self) -> IMAPClient:
        """The open connection, checked with NOOP (servers drop idle ones), else a new one."""
        if self._conn is not None:
            try:
                self._conn.noop()
                return self._conn
            except (IMAPClientError, OSError):
                self._drop()
        self._conn = self.connect()
        return self._conn

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Any network or protocol failure → a retryable BackendError; the connection is dropped."""
        try:
            yield
        except BackendError:
            raise
        except (IMAPClientError, OSError) as e:
            self._drop()
            raise BackendError(f"{what}: {explain(e, self.endpoint)}") from e

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.shutdown()
        self._conn, self._selected = None, None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.logout()
        self._drop()

    def _select(self, folder: str, readonly: bool = False) -> int:
        """Select ``folder`` unless it already is; returns its UIDVALIDITY."""
        if self._selected != (folder, readonly):
            info = self._live().select_folder(folder, readonly=readonly)
            self._selected = (folder, readonly)
            self._uidvalidity[folder] = int(info[b"UIDVALIDITY"])
            self._uidnext = int(info.get(b"UIDNEXT", 0))
        return self._uidvalidity[folder]

    # -- reading ---------------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        folder = self.settings.folder
        with self._guard(f"reading IMAP folder {folder!r}"):
            self._selected = None  # re-select: a fresh SELECT is what reports a changed UIDVALIDITY
            uidvalidity = self._select(folder)
            known, floor = self.journal.watermark(folder)
            rescan = known is not None and known != uidvalidity
            if known != uidvalidity:
                if rescan:
                    log.warning("IMAP folder %r: UIDVALIDITY changed (%s → %s); re-reading it and skipping by "
                                "Message-ID what was already handled", folder, known, uidvalidity)
                floor = 0
            client = self._live()
            uids = sorted(u for u in client.search(["UID", f"{floor + 1}:*", "UNKEYWORD", self.settings.keyword]) if u > floor)
            heads = self._heads(client, uids)
            skip = [u for u in uids if u in heads and self._already_handled(heads[u], rescan)]
            if skip:
                self._mark(client, skip)
            wanted = [u for u in uids if u in heads and u not in skip]
            bodies, handled_to = self._bodies(client, wanted, heads, floor, uids)
            self._window = _Window(uidvalidity, handled_to, {uid: heads[uid].message_id for uid in bodies})
            self._advance()
        limit = self.settings.max_bytes
        return [too_large(f"{uidvalidity}:{uid}", heads[uid].size, limit, raw) if heads[uid].size > limit
                else Incoming(ref=f"{uidvalidity}:{uid}", raw=raw) for uid, raw in bodies.items()]

    def _heads(self, client: IMAPClient, uids: list[int]) -> dict[int, _Head]:
        parser = BytesHeaderParser()
        heads: dict[int, _Head] = {}
        for start in range(0, len(uids), HEADER_CHUNK):
            chunk = uids[start:start + HEADER_CHUNK]
            data = client.fetch(chunk, ["RFC822.SIZE", f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]"])
            for uid, item in data.items():
                raw = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"") or b""
                head = parser.parsebytes(raw)
                heads[uid] = _Head(size=int(item.get(b"RFC822.SIZE", 0)), message_id=(head.get("Message-ID") or "").strip(),
                                   sender=parseaddr(head.get("From") or "")[1], rm_key=(head.get("X-RM-Key") or "").strip())
        return heads

    def _already_handled(self, head: _Head, rescan: bool) -> bool:
        """Our own copy (sent_copy = "bcc"), or — after a UIDVALIDITY change — a message we handled."""
        own = bool(head.rm_key) and head.sender.casefold() == self.settings.own_address.casefold()
        return own or (rescan and bool(head.message_id) and self.journal.was_seen(head.message_id))

    def _bodies(self, client: IMAPClient, wanted: list[int], heads: dict[int, _Head],
                floor: int, candidates: list[int]) -> tuple[dict[int, bytes], int]:
        """Download within the byte budget; returns the messages and how far the candidates were handled.
        A message over ``max_bytes`` (by its RFC822.SIZE) costs nothing: only its first
        ``HEAD_BYTES`` are fetched, for the quarantine."""
        limit = self.settings.max_bytes
        chosen, total = [], 0
        for uid in wanted:
            cost = heads[uid].size if heads[uid].size <= limit else 0
            if chosen and total + cost > BATCH_BYTES:
                break
            chosen.append(uid)
            total += cost
        cut = wanted[len(chosen)] if len(chosen) < len(wanted) else None
        fetched: dict[int, bytes] = {}
        for group in _groups([u for u in chosen if heads[u].size <= limit], heads, FETCH_BYTES):
            data = client.fetch(group, ["BODY.PEEK[]"])
            fetched.update((uid, data[uid][b"BODY[]"]) for uid in group if uid in data)
        big = [u for u in chosen if heads[u].size > limit]
        if big:
            data = client.fetch(big, [f"BODY.PEEK[]<0.{HEAD_BYTES}>"])
            fetched.update((uid, data[uid].get(b"BODY[]<0>") or b"") for uid in big if uid in data)
        incoming = {uid: fetched[uid] for uid in chosen if uid in fetched}  # UID order: oldest first
        if cut is not None:
            return incoming, cut - 1
        if candidates:
            return incoming, max(candidates)
        return incoming, max(floor, self._uidnext - 1)  # nothing unmarked: all below UIDNEXT is handled

    def mark_processed(self, ref: str) -> None:
        try:
            uidvalidity, uid = (int(x) for x in ref.split(":"))
        except ValueError:
            log.warning("IMAP: not one of our message refs: %r", ref)
            return
        if (uidvalidity, uid) in self._marked:
            return  # marking twice is harmless, and this way also free
        with self._guard(f"marking message {ref} processed in IMAP folder {self.settings.folder!r}"):
            if self._select(self.settings.folder) != uidvalidity:
                return  # the mailbox was rebuilt since: a re-read finds it again and skips it by Message-ID
            self._mark(self._live(), [uid])
        self._marked.add((uidvalidity, uid))
        window = self._window
        if window is not None and window.uidvalidity == uidvalidity and uid in window.outstanding:
            self.journal.record_seen(window.outstanding.pop(uid))
            self._advance()

    def _mark(self, client: IMAPClient, uids: list[int]) -> None:
        """Keyword always (it travels with the message); then move, or copy where MOVE is missing."""
        client.add_flags(uids, [self.settings.keyword], silent=True)
        target = self.settings.processed_folder
        if not target:
            return
        try:
            if client.has_capability("MOVE"):
                client.move(uids, target)
            else:
                client.copy(uids, target)  # the keyworded original stays: we never delete
        except IMAPClientError as e:
            if isinstance(e, IMAPClientAbortError):
                raise
            raise BackendError(f"IMAP: cannot move handled mail to {target!r} ({e}); create that folder "
                               f"or change {SECTION} processed_folder") from e

    def _advance(self) -> None:
        window = self._window
        if window is None:
            return
        last = min(window.outstanding) - 1 if window.outstanding else window.handled_to
        known, floor = self.journal.watermark(self.settings.folder)
        if known != window.uidvalidity or last > floor:
            self.journal.record_watermark(self.settings.folder, window.uidvalidity, last)

    # -- copies of what we sent ------------------------------------------------------------
    def holds(self, folders: list[str], message_id: str) -> bool:
        """Is a message with this Message-ID in any of ``folders``? (Missing folders hold nothing.)"""
        with self._guard(f"looking for {message_id} over IMAP"):
            client = self._live()
            for folder in folders:
                try:
                    self._select(folder, readonly=True)
                except IMAPClientError as e:
                    if isinstance(e, IMAPClientAbortError):
                        raise
                    log.warning("IMAP folder %r cannot be opened (%s); not looking there", folder, e)
                    continue
                if client.search(["HEADER", "Message-ID", message_id]):
                    return True
        return False

    def sent_folder(self, configured: str) -> str | None:
        """The configured Sent folder, else the one the server flags \\Sent (or names like it)."""
        if configured:
            return configured
        if self._sent_folder is None:
            with self._guard("finding the Sent folder over IMAP"):
                self._sent_folder = self._live().find_special_folder(SENT) or ""
        return self._sent_folder or None


def _groups(uids: list[int], heads: dict[int, _Head], limit: int) -> Iterator[list[int]]:
    group: list[int] = []
    size = 0
    for uid in uids:
        if group and size + heads[uid].size > limit:
            yield group
            group, size = [], 0
        group.append(uid)
        size += heads[uid].size
    if group:
        yield group
